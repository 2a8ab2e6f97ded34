"""Notebook 08's exercises (Training): references, cases, common mistakes, hints, solutions."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .comparison import compare
from .spec import Answer, Case, Exercise, Mistake, Property
from ._common import _ids, _tiny_model

EXERCISES: list[Exercise] = []


def _ref_next_token_loss(model, token_ids):
    inputs, targets = token_ids[:, :-1], token_ids[:, 1:]
    logits = model(inputs)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def _loss_variant(fault):
    def loss(model, token_ids):
        if fault == "not_shifted":
            inputs = targets = token_ids[:, :-1]
        elif fault == "wrong_way":
            inputs, targets = token_ids[:, 1:], token_ids[:, :-1]
        else:
            inputs, targets = token_ids[:, :-1], token_ids[:, 1:]
        logits = model(inputs)
        if fault == "softmax":
            logits = torch.softmax(logits, dim=-1)
        if fault == "last":
            return F.cross_entropy(logits[:, -1, :], targets[:, -1])
        if fault == "time_major":
            return F.cross_entropy(logits.transpose(0, 1).flatten(0, 1), targets.flatten())
        if fault == "log_softmax_gather":  # valid
            logprobs = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1))
            return -logprobs.mean()
        if fault == "nll_reshape":  # valid
            return F.nll_loss(F.log_softmax(logits.reshape(-1, logits.shape[-1]), dim=-1), targets.reshape(-1))
        if fault == "no_grad":
            with torch.no_grad():
                return F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        if fault == "detach":
            return F.cross_entropy(logits.flatten(0, 1), targets.flatten()).detach()
        if fault == "backward":  # the loop's job, done here: the graph is freed
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
            loss.backward()
            model.zero_grad(set_to_none=True)
            return loss
        if fault == "item":
            return F.cross_entropy(logits.flatten(0, 1), targets.flatten()).item()
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum" if fault == "sum" else "mean")
    return loss


_NO_GRADIENT = Mistake(
    "the loss is cut off from the graph (torch.no_grad(), .detach() or .item()), so it cannot train anything",
    "Training calls loss.backward(): the loss must be a tensor computed with gradients on. Compute it outside "
    "torch.no_grad(), and return it as it is, without .detach() or .item().")


def _loss_trains(answer, run):
    """The property of 08.1: loss.backward() gives the reference's gradients (with gradients on, even if the
    check itself runs under torch.no_grad())."""
    model, ids = _tiny_model(2), _ids(26, 100, 2, 7)
    params = dict(model.named_parameters())
    with torch.enable_grad():
        outcome = run(lambda: answer(model, ids))
        loss = outcome.value
        if outcome.error is not None or outcome.timed_out or loss is None:
            return None  # reported by the cases already, or out of time (reported by the caller)
        if not isinstance(loss, torch.Tensor) or loss.grad_fn is None:
            what = ("a Python number" if not isinstance(loss, torch.Tensor)
                    else "a tensor without a gradient (grad_fn is None)")
            return f"With gradients on, your loss is {what}: loss.backward() cannot compute anything.", _NO_GRADIENT
        try:
            mine = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        except RuntimeError as err:  # e.g. the answer called loss.backward() itself, which frees the graph
            return (f"loss.backward() could not run on your loss ({str(err).split('. ')[0]}). Return the loss "
                    "without calling .backward() on it: the training loop does that.")
        want = torch.autograd.grad(_ref_next_token_loss(model, ids), list(params.values()), allow_unused=True)
    for name, g, w in zip(params, mine, want):
        problem = compare(w if w is not None else torch.zeros_like(params[name]),
                          g if g is not None else torch.zeros_like(params[name]), 1e-6, 1e-3, f"the gradient of {name}")
        if problem:
            return f"loss.backward() does not give the reference's gradients: {problem}."
    return None


def _loss_cases():
    return [Case(label, lambda a=a: (_tiny_model(a[0]), a[1])) for label, a in [
        ("batch of 2, 6 tokens", (1, _ids(21, 100, 2, 6))), ("batch of 1", (1, _ids(22, 100, 1, 6))),
        ("one input token", (1, _ids(23, 100, 3, 2))), ("the full context (8 inputs)", (2, _ids(24, 100, 2, 9))),
        ("another model seed", (3, _ids(25, 100, 4, 5)))]]


EXERCISES.append(Exercise(
    id="08.1", title="The next-token loss", name="next_token_loss",
    expects="a function next_token_loss(model, token_ids) that takes token IDs (b, T + 1) and returns the mean "
            "cross-entropy of predicting each next token",
    kind="function", reference=_ref_next_token_loss, cases=_loss_cases, atol=1e-5, rtol=1e-4,
    properties=[Property("the loss trains: loss.backward() gives the reference's gradients", _loss_trains)],
    hints=["Inputs are all tokens but the last, targets all tokens but the first; cross-entropy of the logits "
           "against the targets.",
           "inputs, targets = token_ids[:, :-1], token_ids[:, 1:]; logits = model(inputs) is (b, T, V); "
           "F.cross_entropy(logits.flatten(0, 1), targets.flatten())."],
    solution="def next_token_loss(model, token_ids):\n"
             "    inputs, targets = token_ids[:, :-1], token_ids[:, 1:]     # targets: shifted by one\n"
             "    logits = model(inputs)                                     # (b, T, vocab_size)\n"
             "    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())",
    mistakes=[
        Mistake("the targets are not shifted by one", "The target at position t is the token at t + 1: "
                                                      "targets = token_ids[:, 1:].",
                answer=_loss_variant("not_shifted")),
        Mistake("inputs and targets are swapped (shifted the wrong way)",
                "The inputs are the first T tokens, token_ids[:, :-1]; the targets the last T, token_ids[:, 1:].",
                answer=_loss_variant("wrong_way")),
        Mistake("a softmax is applied before F.cross_entropy",
                "F.cross_entropy takes raw logits; it applies log-softmax itself.",
                answer=_loss_variant("softmax")),
        Mistake("the losses are summed, not averaged", "Use the mean (F.cross_entropy's default reduction).",
                answer=_loss_variant("sum")),
        Mistake("only the last position is scored", "Every position predicts its next token: flatten all positions.",
                answer=_loss_variant("last")),
        Mistake("the logits are flattened time-major (transposed) while the targets are batch-major",
                "Flatten both the same way: logits.flatten(0, 1) (b·T rows, sequence after sequence) against "
                "targets.flatten().",
                answer=_loss_variant("time_major")),
        _NO_GRADIENT,
        Mistake("the logits are not flattened for F.cross_entropy",
                "F.cross_entropy wants (N, vocab_size) and (N,): logits.flatten(0, 1), targets.flatten().",
                error=r"Expected target size|expected.*target|size mismatch"),
    ],
    wrong_answers=[
        Answer("computed under torch.no_grad()", _loss_variant("no_grad"), _NO_GRADIENT.name),
        Answer("loss.detach()", _loss_variant("detach"), _NO_GRADIENT.name),
        Answer("loss.item()", _loss_variant("item"), _NO_GRADIENT.name),
        Answer("not flattened", lambda model, ids: F.cross_entropy(model(ids[:, :-1]), ids[:, 1:]),
               "the logits are not flattened for F.cross_entropy"),
        Answer("a hand-written log-softmax whose normaliser is .detach()ed (right value, wrong gradients)",
               lambda model, ids: -(lambda z: (z - z.logsumexp(-1, keepdim=True).detach()).gather(
                   -1, ids[:, 1:].unsqueeze(-1)))(model(ids[:, :-1])).mean()),
        Answer("loss.backward() called inside", _loss_variant("backward")),
        Answer("the mean over the batch of per-sequence sums",
               lambda model, ids: F.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten(),
                                                  reduction="sum") / ids.shape[0]),
    ],
    variants=[
        Answer("log_softmax and gather", _loss_variant("log_softmax_gather")),
        Answer("F.nll_loss of F.log_softmax, reshape(-1, V)", _loss_variant("nll_reshape")),
        Answer("reduction='none', then .mean()",
               lambda model, ids: F.cross_entropy(model(ids[:, :-1]).transpose(1, 2), ids[:, 1:],
                                                  reduction="none").mean()),
    ],
))


def _ref_target_logit(p, vocab_size):
    return math.log(p * (vocab_size - 1) / (1 - p))


EXERCISES.append(Exercise(
    id="08.2", title="A logit for a given probability", name="target_logit",
    expects="a function target_logit(p, vocab_size) that returns the logit c for one token, all others 0, so that "
            "the softmax gives that token probability p",
    kind="function", reference=_ref_target_logit, atol=1e-9, rtol=1e-9,
    cases=lambda: [Case(f"p={p}, vocab {v:,}", lambda p=p, v=v: (p, v)) for p, v in
                   [(0.5, 50257), (0.9, 50257), (0.1, 100), (0.5, 2), (0.99, 10)]],
    hints=["With the target at logit c and the other vocab_size - 1 tokens at 0: p = e^c / (e^c + vocab_size - 1). "
           "Solve for c.",
           "e^c = p (vocab_size - 1) / (1 - p), so c = math.log(p * (vocab_size - 1) / (1 - p))."],
    solution="def target_logit(p, vocab_size):\n"
             "    return math.log(p * (vocab_size - 1) / (1 - p))",
    mistakes=[
        Mistake("vocab_size instead of vocab_size - 1 other tokens",
                "The target is one of the vocab_size tokens; the *other* ones number vocab_size - 1.",
                answer=lambda p, v: math.log(p * v / (1 - p))),
        Mistake("e^c instead of c", "The logit is the log: math.log(...).",
                answer=lambda p, v: p * (v - 1) / (1 - p)),
        Mistake("log base 10 instead of the natural log", "The softmax uses e: math.log, not math.log10.",
                answer=lambda p, v: math.log10(p * (v - 1) / (1 - p))),
    ],
    wrong_answers=[
        Answer("the log-odds p / (1 - p) alone", lambda p, v: math.log(p / (1 - p))),
        Answer("log(p) only", lambda p, v: math.log(p)),
        Answer("rounded to 2 digits", lambda p, v: round(math.log(p * (v - 1) / (1 - p)), 2)),
    ],
    variants=[
        Answer("a sum of logs", lambda p, v: math.log(p) - math.log1p(-p) + math.log(v - 1)),
        Answer("torch.logit plus log(vocab_size - 1)",
               lambda p, v: torch.logit(torch.tensor(p, dtype=torch.float64)) + math.log(v - 1)),
    ],
))
