"""The loss, computed fast: the chunked head + cross-entropy, the shared row of unused tokens, and the classic
``calc_loss_batch`` / ``calc_loss_loader`` / ``perplexity`` on top of them (notebook 08)."""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..model import GPTModel, reads_out_head


# The classic loss is two lines:
#
#     logits = model(input_batch)                                            # (b, T, vocab)
#     loss = F.cross_entropy(logits.flatten(0, 1), target_batch.flatten())
#
# For a small model almost all the work is in the output head: with vocab 50,257 and a batch of
# 8 x 256 tokens, the logits alone take 412 MB, and the softmax inside the loss reads and writes
# them several times more (forward and backward). The loss only needs, for each position, the
# log of the sum of exp(logits) and the logit of the right token. So we compute the logits a few
# hundred positions at a time, turn each chunk into its loss *and its gradient* at once
# (d loss / d logits = softmax - one_hot), and throw the chunk away: same numbers, a fraction of
# the memory, and about twice as fast on a CPU (bench/bench_train.py measures it).

class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """mean_i cross_entropy(hidden_i @ weight.T, target_i), without storing all the logits."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_size: int):
        # hidden (n, emb_dim), weight (vocab, emb_dim), targets (n,)
        n = hidden.shape[0]
        want_h, want_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_h = torch.empty_like(hidden) if want_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if want_w else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, n, chunk_size):
            h = hidden[start:start + chunk_size]  # (c, emb_dim)
            t = targets[start:start + chunk_size]  # (c,)
            # (c, vocab) log-probabilities: the only logits that exist at any time
            log_probs = torch.log_softmax((h @ weight.T).float(), dim=1)
            total -= log_probs.gather(1, t.unsqueeze(1)).sum()  # sum of -log p(target)
            if want_h or want_w:
                # softmax, in place: (c, vocab). Probabilities below e^-70 are raised to e^-70 (an error
                # of < 1e-25 in the gradient): tinier ones would be "denormal" floats, which make the CPU's
                # matrix products up to 100x slower.
                probs = log_probs.clamp_(min=-70.0).exp_()
                probs[torch.arange(len(t), device=t.device), t] -= 1.0  # softmax - one_hot
                if want_h:  # the loss is a mean over all n positions: hence the 1 / n
                    grad_h[start:start + chunk_size] = (probs.to(weight.dtype) @ weight) / n  # (c, emb_dim)
                if want_w:
                    grad_w.addmm_(probs.T, h.float(), alpha=1.0 / n)  # (vocab, emb_dim)
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        return total / n

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        return (
            grad_h * grad_output if grad_h is not None else None,
            (grad_w * grad_output).to(ctx.weight_dtype) if grad_w is not None else None,
            None,
            None,
        )


def chunked_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                          chunk_size: int = 512) -> torch.Tensor:
    """``F.cross_entropy(hidden @ weight.T, targets)`` computed ``chunk_size`` rows at a time.

    Args:
        hidden: (n, emb_dim) final hidden states (after the final LayerNorm).
        weight: (vocab, emb_dim) the output head's weight.
        targets: (n,) the right next token for each row.

    Returns the mean loss (a 0-d tensor) with exact gradients for ``hidden`` and ``weight``;
    never holds more than (chunk_size, vocab) logits.
    """
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
        raise ValueError(f"expected hidden (n, emb_dim) and targets (n,), got {tuple(hidden.shape)} "
                         f"and {tuple(targets.shape)}")
    if not torch.is_grad_enabled():  # evaluation: the loss alone, a third of the work
        with torch.no_grad():
            total = sum(F.cross_entropy((hidden[s:s + chunk_size] @ weight.T).float(),
                                        targets[s:s + chunk_size], reduction="sum")
                        for s in range(0, hidden.shape[0], chunk_size))
        return total / hidden.shape[0]
    return _ChunkedLinearCrossEntropy.apply(hidden, weight, targets, chunk_size)


def hidden_states(model: GPTModel, in_idx: torch.Tensor) -> torch.Tensor:
    """What ``GPTModel.forward`` computes before its output head: (b, T) IDs -> (b, T, emb_dim).

    ``model.hidden_states(in_idx)``: kept here under the name the chapter code uses.
    """
    return model.hidden_states(in_idx)


def supports_fast_loss(model: nn.Module) -> bool:
    """True for a ``GPTModel`` whose forward is gptbook's own (so the chunked loss computes the same thing).

    A model class of your own, or a subclass that overrides ``forward``, gets the classic loss
    (``gptbook.model.reads_out_head``).
    """
    return reads_out_head(model)


def model_loss(model: nn.Module, input_batch: torch.Tensor, target_batch: torch.Tensor,
               fast: Optional[bool] = None) -> torch.Tensor:
    """Mean next-token cross-entropy of ``model`` on a batch that is already on the right device.

    ``fast=None`` picks the chunked head + loss whenever ``supports_fast_loss(model)``; ``False``
    forces the classic two lines. Both give the same value and the same gradients.
    """
    if fast is None:
        fast = supports_fast_loss(model)
    if fast:
        hidden = hidden_states(model, input_batch)  # (b, T, emb_dim)
        return chunked_cross_entropy(hidden.flatten(0, 1), model.out_head.weight, target_batch.flatten())
    logits = model(input_batch)  # (b, T, vocab)
    return F.cross_entropy(logits.flatten(0, 1), target_batch.flatten())


# The tokens a text never uses. The stories use about 700 of GPT-2's 50,257 tokens, yet every
# position's softmax runs over all 50,257 rows of the output head: 98 % of the head's work goes
# to tokens that are never the right answer. Full training still moves those rows: each unused
# row u gets the gradient p_u * h (push its logit down), and since nothing else touches it, rows
# that start *equal* get equal gradients and stay equal for good. So they can be trained as one:
# one shared row r with logit h . r + ln(n_unused) stands for all of them in the softmax, and its
# gradient, divided by n_unused, is the gradient each of them gets. Same loss, same gradients,
# same updates as the full softmax (from a start where the unused rows are equal), at a fiftieth
# of the head's cost.

class UnusedTokens:
    """Trains the output-head rows of the tokens a training text never uses as one shared row.

    ``UnusedTokens(model, train_ids)`` makes the rows of the unused tokens equal (their mean),
    ``loss(model, inputs, targets)`` is the full next-token cross-entropy computed with one
    shared row for them, and ``sync(model)`` copies the shared row back to every unused row
    after an optimizer step. ``clip_grad_norm_(model, max_norm)`` clips as the full model's
    gradients would be clipped (the shared row's gradient counts once for every unused token).
    """

    def __init__(self, model: GPTModel, train_ids: torch.Tensor) -> None:
        weight = model.out_head.weight  # (vocab, emb_dim), the token embedding too when tied
        vocab = weight.shape[0]
        used = torch.zeros(vocab, dtype=torch.bool)
        used[train_ids.flatten().cpu()] = True
        device = weight.device
        self.used = used.nonzero().squeeze(1).to(device)  # (n_used,) token IDs, ascending
        self.unused = (~used).nonzero().squeeze(1).to(device)  # (n_unused,)
        if len(self.unused) == 0:
            raise ValueError("the training text uses every token of the vocabulary: there are no unused "
                             "tokens to share a row; train with merge_unused=False")
        self.shared = int(self.unused[0])  # the row that stands for all of them
        self.n_unused = len(self.unused)
        # column of each token ID in the small softmax: used tokens 0 .. n_used-1, unused ones n_used
        self.column = torch.full((vocab,), len(self.used), dtype=torch.long, device=device)
        self.column[self.used] = torch.arange(len(self.used), device=device)
        with torch.no_grad():
            weight[self.unused] = weight[self.unused].mean(0)

    def loss(self, model: GPTModel, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over all ``vocab_size`` tokens; exact while the unused rows are equal."""
        hidden = hidden_states(model, inputs).flatten(0, 1)  # (n, emb_dim)
        weight = model.out_head.weight
        rows = weight.index_select(0, self.used)  # (n_used, emb_dim)
        k = self.n_unused
        shared = weight[self.shared]  # (emb_dim,): the value of the shared row, its gradient divided by k
        shared = shared / k + (shared * (1 - 1 / k)).detach()
        logits = torch.cat([hidden @ rows.T, (hidden @ shared).unsqueeze(1) + math.log(k)], dim=1)
        columns = self.column[targets.flatten()]  # (n,)
        losses = F.cross_entropy(logits.float(), columns, reduction="none")  # (n,)
        # an unused target (possible in validation text) has 1/k of the shared probability
        losses = losses + math.log(k) * (columns == len(self.used))
        return losses.mean()

    @torch.no_grad()
    def sync(self, model: GPTModel) -> None:
        """Copy the shared row to every unused row (after each optimizer step)."""
        weight = model.out_head.weight
        weight[self.unused] = weight[self.shared].clone()

    def clip_grad_norm_(self, model: nn.Module, max_norm: float) -> float:
        """``torch.nn.utils.clip_grad_norm_`` as on the full model, where each unused row has the shared row's gradient."""
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        total = sum(float(g.float().pow(2).sum()) for g in grads)
        shared_grad = model.out_head.weight.grad
        if shared_grad is not None:
            total += (self.n_unused - 1) * float(shared_grad[self.shared].float().pow(2).sum())
        norm = math.sqrt(total)
        scale = max_norm / (norm + 1e-6)
        if scale < 1.0:
            for g in grads:
                g.mul_(scale)
        return norm


# -- the classic functions ------------------------------------------------------------------------

def calc_loss_batch(input_batch: torch.Tensor, target_batch: torch.Tensor, model: nn.Module,
                    device: Union[str, torch.device]) -> torch.Tensor:
    """Mean cross-entropy over every position of one batch; inputs and targets are (b, T) token IDs.

    The classic function: moves the batch to ``device`` and returns
    ``F.cross_entropy(model(input_batch).flatten(0, 1), target_batch.flatten())``. For a
    ``GPTModel`` the same value is computed with the memory-light chunked head (see ``model_loss``).
    """
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    return model_loss(model, input_batch, target_batch)


def calc_loss_loader(data_loader, model: nn.Module, device: Union[str, torch.device],
                     num_batches: Optional[int] = None) -> float:
    """Average of ``calc_loss_batch`` over the first ``num_batches`` batches (all by default).

    Returns ``nan`` for an empty loader, as the classic code does. Runs without gradients.
    """
    if len(data_loader) == 0:
        return float("nan")
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    total_loss = 0.0
    with torch.no_grad():
        for i, (input_batch, target_batch) in enumerate(data_loader):
            if i >= num_batches:
                break
            total_loss += calc_loss_batch(input_batch, target_batch, model, device).item()
    return total_loss / num_batches


def perplexity(loss: float) -> float:
    """``exp(loss)``: the number of tokens the model is, on average, as unsure as choosing among."""
    return math.exp(loss)
