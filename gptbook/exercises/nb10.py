"""Notebook 10's exercises (inside the trained model): the logit lens and ablation, as small functions.

Each exercise asks for a general function that ``check`` runs on small random models and made-up
logit-lens results next to the reference, in well under a second; the notebook then applies the
learner's function to the course model. Collected with the other notebooks'
catalogues by ``gptbook.exercises.registry``.

    10.1  settled_layer(lens, token)         the first layer from which the top guess is ``token`` for good
    10.2  ablated_logits(model, ids, heads)  the logits with heads switched off, the model left as it was
    10.3  most_important_head(model, score)  the head whose ablation lowers a score the most
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import GPT_CONFIG_124M
from ..interpret import LogitLens, ablate, logit_lens
from ..model import GPTModel
from ..tokenizer import get_tokenizer
from .spec import Answer, Case, Exercise, Mistake

EXERCISES: list[Exercise] = []

# Small random models: 100 tokens, 16 dimensions, 4 heads of 4 dimensions, context 8.
_CFG = {**GPT_CONFIG_124M, "vocab_size": 100, "emb_dim": 16, "n_heads": 4, "n_layers": 2,
        "context_length": 8, "drop_rate": 0.0}


def _model(seed: int, **changes) -> GPTModel:
    """A fresh small random model (never cached: a wrong answer may change its weights)."""
    torch.manual_seed(seed)
    return GPTModel({**_CFG, **changes}).eval()


def _ids(seed: int, *shape: int) -> torch.Tensor:
    return torch.randint(0, _CFG["vocab_size"], shape, generator=torch.Generator().manual_seed(seed))


# ==============================================================================================
# 10.1 · Where does the answer settle? (the logit lens)
# ==============================================================================================

def _ref_settled_layer(lens, token):
    last = [row[-1] for row in lens.top_tokens()]  # each layer's top guess after the last token
    settled = None
    for layer in range(len(last) - 1, -1, -1):  # from the top down, as long as the guess is `token`
        if last[layer] != token:
            break
        settled = lens.layer_names[layer]
    return settled


def _made_up_lens(last: list, first: str = " Tuesday") -> LogitLens:
    """A logit lens of 3 positions whose top guesses after the last position are ``last`` (one per
    layer, the embedding first) and after the first position always ``first``."""
    tok = get_tokenizer()
    token_id = lambda text: tok.encode(text)[0]  # noqa: E731  (single-token texts)
    top_ids = torch.tensor([[token_id(first), token_id(" the"), token_id(guess)] for guess in last])  # (L + 1, 3)
    inputs = ["On", " Monday", ","]
    lens = LogitLens(
        layer_names=["embedding"] + [f"block {i}" for i in range(len(last) - 1)], tokens=inputs,
        top_ids=top_ids, top_probs=torch.full(top_ids.shape, 0.5), next_probs=torch.full((len(last), 2), 0.1))
    lens._targets = torch.tensor([token_id(t) for t in inputs[1:]])
    return lens


def _random_model_lens():
    lens = logit_lens(_model(7, n_layers=3), _ids(7, 6))
    return lens, lens.top_tokens()[-1][-1]  # the model's own final guess


def _settled_cases():
    T, M, F5 = " Tuesday", " Monday", " five"
    return [Case(label, lambda a=a: (_made_up_lens(a[0], *a[2:]), a[1])) for label, a in [
        ("settles after block 0", ([",", T, T, T, T], T)),
        ("appears after block 0 and is lost, then settles after block 2", ([",", T, M, T, T], T)),
        ("the top guess from the embedding on", ([T, T, T], T)),
        ("only the last layer", ([M, M, M, M, T], T)),
        ("never the top guess", ([",", M, M, M, M], T)),
        ("the top guess after the embedding only", ([T, M, M, M, M], T)),
        ("another token and 2 blocks", ([",", F5, F5], F5, F5)),
    ]] + [Case("a small random model's logit lens (3 blocks)", _random_model_lens)]


def _settled_variant(fault):
    def settled_layer(lens, token):
        position = 0 if fault == "first_position" else -1
        guesses = [row[position] for row in lens.top_tokens()]
        for i in range(1 if fault == "skip_embedding" else 0, len(guesses)):
            if guesses[i] == token if fault == "appears" else all(t == token for t in guesses[i:]):
                return i if fault == "index" else lens.layer_names[i]
        return None
    return settled_layer


def _settled_while(lens, token):
    guesses = [row[-1] for row in lens.top_tokens()]
    i = len(guesses)
    while i > 0 and guesses[i - 1] == token:
        i -= 1
    return lens.layer_names[i] if i < len(guesses) else None


EXERCISES.append(Exercise(
    id="10.1", title="Where the answer settles", name="settled_layer",
    expects="a function settled_layer(lens, token) that returns the name of the first layer (such as 'block 2') "
            "from which on the top guess after the last token is token, or None",
    kind="function", reference=_ref_settled_layer, cases=_settled_cases,
    hints=["Take each layer's top guess after the last token: [row[-1] for row in lens.top_tokens()]. Find the "
           "first layer from which every guess up to the last layer is token; return its name.",
           "for i in range(len(guesses)): if all(t == token for t in guesses[i:]): return lens.layer_names[i]; "
           "after the loop return None."],
    solution="def settled_layer(lens, token):\n"
             "    guesses = [row[-1] for row in lens.top_tokens()]   # each layer's top guess after the last token\n"
             "    for i in range(len(guesses)):\n"
             "        if all(t == token for t in guesses[i:]):        # here and in every layer above\n"
             "            return lens.layer_names[i]\n"
             "    return None",
    mistakes=[
        Mistake("the first layer where token appears, even if a later layer changes its mind",
                "The answer settles where it stays the top guess up to the last layer: check guesses[i:], not "
                "guesses[i] alone.",
                answer=_settled_variant("appears")),
        Mistake("the layer's index instead of its name",
                "Return lens.layer_names[i] (such as 'block 2'); index 0 is the embedding, so index i is block i - 1.",
                answer=_settled_variant("index")),
        Mistake("the guesses after the first token instead of the last",
                "Each row of lens.top_tokens() holds one layer's guesses for every position: the last one is row[-1].",
                answer=_settled_variant("first_position")),
        Mistake("the loop skips the embedding (layer 0 of the lens)",
                "The lens's first row is the embedding: start at index 0, so that an answer settled from the "
                "embedding on is reported as 'embedding'.",
                answer=_settled_variant("skip_embedding")),
    ],
    wrong_answers=[
        Answer("range(1, len(guesses))", _settled_variant("skip_embedding"),
               "the loop skips the embedding (layer 0 of the lens)"),
        Answer("the top guess of the last layer's name, always", lambda lens, token: lens.layer_names[-1]),
        Answer("the token compared without its leading space",
               lambda lens, token: _ref_settled_layer(lens, token.strip())),
    ],
    variants=[
        Answer("a while loop from the top", _settled_while),
        Answer("the course's reference, top down", _ref_settled_layer),
    ],
))


# ==============================================================================================
# 10.2 · Ablation, undone afterwards
# ==============================================================================================

def _ref_ablated_logits(model, ids, heads):
    with torch.no_grad(), ablate(model, heads=heads):
        return model(ids)


def _run_ablated(answer, args):
    """Call the answer, then run the model once more: it must compute what it did before."""
    model, ids, heads = args
    logits = answer(model, ids, heads)
    if logits is None:
        return None
    with torch.no_grad():
        after = model(ids)
    return {"the logits with the heads off": logits, "the model's logits after your function returned": after}


def _ablation_cases():
    return [Case(label, lambda a=a: (_model(a[0], **a[3]), _ids(a[0], *a[1]), a[2])) for label, a in [
        ("one head in a batch of 1", (1, (1, 5), [(0, 1)], {})),
        ("two heads in two layers (batch of 2)", (2, (2, 6), [(0, 2), (1, 3)], {})),
        ("every head of layer 1", (3, (2, 4), [(1, h) for h in range(4)], {})),
        ("no head at all", (4, (1, 8), [], {})),
        ("another seed with 3 layers and qkv bias", (5, (3, 8), [(2, 0), (0, 0)], {"n_layers": 3, "qkv_bias": True})),
    ]]


def _ablation_variant(fault):
    def ablated_logits(model, ids, heads):
        with torch.no_grad():
            if fault == "zero_weights":  # the heads' columns of the output projection, never restored
                head_dim = model.cfg["emb_dim"] // model.cfg["n_heads"]
                for layer, head in heads:
                    model.trf_blocks[layer].att.out_proj.weight[:, head * head_dim:(head + 1) * head_dim] = 0.0
                return model(ids)
            if fault == "blocks":
                with ablate(model, layers=sorted({layer for layer, _ in heads})):
                    return model(ids)
            with ablate(model, heads=heads):
                pass
            return model(ids)  # fault "outside": the hooks are gone already
    return ablated_logits


def _ablated_in_place(model, ids, heads):
    """A learner's ablation by hand: zero the heads' columns of out_proj (raises: the weights need grad)."""
    head_dim = model.cfg["emb_dim"] // model.cfg["n_heads"]
    for layer, head in heads:
        model.trf_blocks[layer].att.out_proj.weight[:, head * head_dim:(head + 1) * head_dim] = 0.0
    return model(ids)


def _ablated_inference_mode(model, ids, heads):
    with torch.inference_mode(), ablate(model, heads=heads):
        return model(ids)


def _ablated_detached(model, ids, heads):
    with ablate(model, heads=heads):
        logits = model(ids)
    return logits.detach()


EXERCISES.append(Exercise(
    id="10.2", title="Ablation, undone afterwards", name="ablated_logits",
    expects="a function ablated_logits(model, ids, heads) that returns the model's logits for ids with the "
            "(layer, head) pairs in heads switched off, and leaves the model exactly as it was",
    kind="function", reference=_ref_ablated_logits, cases=_ablation_cases, run=_run_ablated,
    hints=["ablate(model, heads=heads) switches the heads off while its with block runs: run the model inside the "
           "block and return what it gives.",
           "with torch.no_grad(), ablate(model, heads=heads): return model(ids). The hooks are removed when "
           "the block ends, even by a return."],
    solution="from gptbook.interpret import ablate\n\n\n"
             "def ablated_logits(model, ids, heads):\n"
             "    with torch.no_grad(), ablate(model, heads=heads):   # the heads are off in here only\n"
             "        return model(ids)                               # (b, T, vocab_size)",
    mistakes=[
        Mistake("the model is left changed (the heads stay off after your function returned)",
                "Let ablate switch the heads off: its hooks are removed when the with block ends. If you change "
                "weights yourself, keep a copy and put it back before returning.",
                answer=_ablation_variant("zero_weights")),
        Mistake("the heads are not switched off: the logits are computed after the with block",
                "The heads are off only while the with block runs: call model(ids) inside it.",
                answer=_ablation_variant("outside")),
        Mistake("whole blocks are switched off instead of single heads",
                "ablate(model, layers=[...]) skips whole blocks; single heads are ablate(model, heads=heads).",
                answer=_ablation_variant("blocks")),
        Mistake("the weights are changed in place, which PyTorch refuses while they require gradients",
                "Leave the weights alone: ablate(model, heads=heads) switches the heads off with hooks and removes "
                "them when its with block ends.",
                error=r"leaf Variable that requires grad"),
    ],
    wrong_answers=[
        Answer("the weights zeroed in place", _ablated_in_place, "the weights are changed in place, which PyTorch "
               "refuses while they require gradients"),
        Answer("the first head only", lambda model, ids, heads: _ref_ablated_logits(model, ids, heads[:1])),
        Answer("the last position only", lambda model, ids, heads: _ref_ablated_logits(model, ids, heads)[:, -1]),
    ],
    variants=[
        Answer("torch.inference_mode()", _ablated_inference_mode),
        Answer("ablate first, gradients on, then .detach()", _ablated_detached),
    ],
))


# ==============================================================================================
# 10.3 · The head a score needs most
# ==============================================================================================

def _ref_most_important_head(model, score):
    base = score(model)
    drops = {}
    for layer in range(model.cfg["n_layers"]):
        for head in range(model.cfg["n_heads"]):
            with ablate(model, heads=[(layer, head)]):
                drops[(layer, head)] = base - score(model)
    return max(drops, key=drops.get)  # the largest drop (the first one, if several tie)


def _next_token_logprob(ids: torch.Tensor, target: int):
    """A score: the log-probability the model gives ``target`` after ``ids`` (1, T)."""
    def score(model):
        with torch.no_grad():
            return float(torch.log_softmax(model(ids)[0, -1], dim=-1)[target])
    return score


def _minus_loss(ids: torch.Tensor):
    """A score: minus the next-token loss over ``ids`` (b, T + 1)."""
    def score(model):
        with torch.no_grad():
            return -float(F.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten()))
    return score


def _head_cases():
    return [Case(label, lambda a=a: (_model(a[0], **a[2]), a[1])) for label, a in [
        ("2 layers x 4 heads: the log-probability of a next token", (1, _next_token_logprob(_ids(11, 1, 6), 42), {})),
        ("1 layer x 4 heads", (2, _next_token_logprob(_ids(12, 1, 8), 7), {"n_layers": 1})),
        ("3 layers x 2 heads: minus a text's loss", (3, _minus_loss(_ids(13, 2, 9)), {"n_layers": 3, "n_heads": 2})),
        ("another seed and token: a head of layer 1", (4, _next_token_logprob(_ids(14, 1, 5), 60), {})),
    ]]


def _head_variant(fault):
    def most_important_head(model, score):
        base = score(model)
        drops, done = {}, []
        for layer in range(model.cfg["n_layers"]):
            for head in range(model.cfg["n_heads"]):
                with ablate(model, heads=[(layer, head)]):
                    ablated = score(model)
                if fault == "outside":
                    ablated = score(model)  # the head is back on already
                if fault == "cumulative":  # every head so far stays off
                    done.append((layer, head))
                    with ablate(model, heads=done):
                        ablated = score(model)
                drops[(head, layer) if fault == "swapped" else (layer, head)] = base - ablated
        pick = min if fault == "raises" else max
        return pick(drops, key=drops.get)
    return most_important_head


def _head_argmax(model, score):
    n_layers, n_heads = model.cfg["n_layers"], model.cfg["n_heads"]
    scores = torch.zeros(n_layers, n_heads)
    for layer in range(n_layers):
        for head in range(n_heads):
            with ablate(model, heads=[(layer, head)]):
                scores[layer, head] = score(model)
    layer, head = divmod(int(torch.argmin(scores)), n_heads)  # the lowest score left: the largest drop
    return layer, head


def _head_max_tuple(model, score):
    base = score(model)
    found = []
    for layer in range(model.cfg["n_layers"]):
        for head in range(model.cfg["n_heads"]):
            with ablate(model, heads=[(layer, head)]):
                found.append((base - score(model), -layer, -head))  # ties: the first head wins
    _, layer, head = max(found)
    return -layer, -head


EXERCISES.append(Exercise(
    id="10.3", title="The head a score needs most", name="most_important_head",
    expects="a function most_important_head(model, score) that switches each head off in turn and returns the "
            "(layer, head) whose ablation lowers score(model) the most",
    kind="function", reference=_ref_most_important_head, cases=_head_cases,
    hints=["Measure score(model) once with every head on. Then for each layer and each head, inside "
           "ablate(model, heads=[(layer, head)]), measure it again: the drop is the first score minus this one.",
           "Keep the drops in a dict {(layer, head): drop} and return max(drops, key=drops.get). "
           "model.cfg['n_layers'] and model.cfg['n_heads'] give the ranges."],
    solution="from gptbook.interpret import ablate\n\n\n"
             "def most_important_head(model, score):\n"
             "    base = score(model)                                   # every head on\n"
             "    drops = {}\n"
             "    for layer in range(model.cfg['n_layers']):\n"
             "        for head in range(model.cfg['n_heads']):\n"
             "            with ablate(model, heads=[(layer, head)]):\n"
             "                drops[(layer, head)] = base - score(model)   # how much worse without it\n"
             "    return max(drops, key=drops.get)",
    mistakes=[
        Mistake("the head whose ablation raises the score the most",
                "The head the score needs most is the one whose loss lowers it the most: the largest base - "
                "ablated, max(drops, key=drops.get).",
                answer=_head_variant("raises")),
        Mistake("layer and head are swapped", "Return (layer, head): the layer first, as ablate takes them.",
                answer=_head_variant("swapped")),
        Mistake("the score is measured after the with block, when the head is back on",
                "The head is off only inside the with block: call score(model) there.",
                answer=_head_variant("outside")),
        Mistake("the ablations add up: the heads switched off before stay off",
                "Switch off one head at a time, each in its own with block: ablate(model, heads=[(layer, head)]), "
                "not the list of every head so far.",
                answer=_head_variant("cumulative")),
    ],
    wrong_answers=[
        Answer("the smallest drop", _head_variant("raises"), "the head whose ablation raises the score the most"),
        Answer("the head with the highest score left", lambda model, score: _head_argmax(model, lambda m: -score(m))),
        Answer("always the first head", lambda model, score: (0, 0)),
    ],
    variants=[
        Answer("scores in a tensor, argmin and divmod", _head_argmax),
        Answer("a list of (drop, layer, head), max", _head_max_tuple),
    ],
))
