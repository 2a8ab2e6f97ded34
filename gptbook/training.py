"""Training a GPT: the loss, the classic training loop, and the full trainer behind ``gptbook train``.

Part 1, the classic chapter-5 functions, with the same names, arguments and results:

    calc_loss_batch(input_batch, target_batch, model, device)     mean cross-entropy of one batch
    calc_loss_loader(data_loader, model, device, num_batches)     average over (some) batches
    evaluate_model(model, train_loader, val_loader, device, eval_iter)
    generate_and_print_sample(model, tokenizer, device, start_context)
    train_model_simple(model, train_loader, val_loader, optimizer, device, num_epochs,
                       eval_freq, eval_iter, start_context, tokenizer)
                       -> train_losses, val_losses, track_tokens_seen
    plot_losses(epochs_seen, tokens_seen, train_losses, val_losses)

Part 2, what makes training fast and stable (all optional in ``train_model_simple``):
a memory-light output head + loss, learning-rate warm-up and cosine decay, gradient clipping,
gradient accumulation, device choice and bf16 autocast.

Part 3, ``Trainer``: everything together, checkpoints and resuming included, on one process or
on several under ``torchrun`` (``DistributedDataParallel``).

Taught in notebook 08 (training).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional, Protocol, Union

import torch
import torch.nn.functional as F
from torch import nn

from .generation import generate, generate_text_simple
from ._shared import choose_device, eval_mode
from .layers import is_residual_output, use_dropout_generator
from .model import GPTModel, reads_out_head
from .tokenizer import EOT_ID, EOT_TEXT, get_tokenizer, text_to_token_ids, token_ids_to_text

try:  # tqdm.auto: a widget in Jupyter, a text bar in a terminal
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - tqdm is a dependency, but training works without it
    tqdm = None


def _write(message: str) -> None:
    """Print a line without breaking a progress bar that may be on screen."""
    if tqdm is not None:
        tqdm.write(message)
    else:  # pragma: no cover
        print(message, flush=True)


# =============================================================================================
# Part 1a: the loss, computed fast
# =============================================================================================
#
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


# =============================================================================================
# Part 1b: the classic functions
# =============================================================================================

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


def evaluate_model(model: nn.Module, train_loader, val_loader, device: Union[str, torch.device],
                   eval_iter: int) -> tuple[float, float]:
    """Training and validation loss over ``eval_iter`` batches each, in eval mode (no dropout)."""
    with eval_mode(model), torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    return train_loss, val_loss


def generate_and_print_sample(model: nn.Module, tokenizer, device: Union[str, torch.device],
                              start_context: str, max_new_tokens: int = 50) -> str:
    """Greedily continue ``start_context`` by 50 tokens and print it on one line (returns the text too)."""
    context_size = model.pos_emb.weight.shape[0]
    encoded = text_to_token_ids(start_context, tokenizer).to(device)  # (1, n)
    with eval_mode(model), torch.no_grad():
        token_ids = generate_text_simple(model=model, idx=encoded, max_new_tokens=max_new_tokens,
                                         context_size=context_size)
    decoded_text = token_ids_to_text(token_ids, tokenizer)
    _write(decoded_text.replace("\n", " "))
    return decoded_text


# =============================================================================================
# Part 2: learning-rate schedule, devices, autocast
# =============================================================================================

def lr_at_step(step: int, max_lr: float, total_steps: int, warmup_steps: int = 0,
               min_lr: float = 0.0) -> float:
    """Learning rate at optimizer step ``step`` (0-based): linear warm-up, then cosine decay.

    Rises linearly from ``max_lr / warmup_steps`` to ``max_lr`` over the first ``warmup_steps``
    steps, then follows half a cosine from ``max_lr`` down to ``min_lr`` at ``total_steps``;
    stays at ``min_lr`` after that.
    """
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)  # 0 -> 1
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def bf16_autocast_supported(device: Union[str, torch.device]) -> bool:
    """Whether bf16 autocast is worth turning on by default: CUDA GPUs that support bf16.

    On CPUs autocast to bf16 works but is usually *slower* without bf16 matrix units
    (bench/RESULTS_TRAINING.md has the measurement); pass ``autocast=True`` to try it anyway.
    """
    device = torch.device(device)
    return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def autocast_context(device: Union[str, torch.device], enabled: bool) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bf16 on ``device`` when ``enabled``, else a context that does nothing."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


@torch.no_grad()
def init_weights_gpt2(model: nn.Module, std: float = 0.02) -> nn.Module:
    """Re-initialise a ``GPTModel`` the way GPT-2 (and nanoGPT) does; returns the model.

    Every linear layer and embedding gets normal(0, ``std``) weights and zero biases; the two
    projections that end a residual branch (``att.out_proj`` and the feed-forward's last layer)
    get ``std / sqrt(2 * n_layers)``, so that the residual stream does not grow with depth.
    PyTorch's defaults (normal(0, 1) embeddings) make a model whose head is tied to the token
    embedding start out hugely over-confident (a loss far above ln(vocab_size)); this start
    gives a loss of about ln(vocab_size) and trains much faster. ``Trainer`` applies it to new models.
    """
    n_layers = getattr(model, "cfg", {}).get("n_layers", 1)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.normal_(0.0, std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.zero_()
    for module in model.modules():  # the layers that end a residual branch (marked where they are built)
        if is_residual_output(module):
            module.weight.normal_(0.0, std / math.sqrt(2 * n_layers))
    return model


def sinusoidal_positions(context_length: int, emb_dim: int, std: float = 0.02) -> torch.Tensor:
    """The original Transformer's position signals (Vaswani et al., 2017), scaled to about standard deviation ``std``.

    Row ``p`` holds ``sin(p / 10000^(2i/d))`` and ``cos(...)`` for ``i = 0 .. d/2 - 1``: (context_length, emb_dim).
    Between neighbouring positions every sin/cos pair turns by the same angle, so "the position just before
    me" is one fixed linear map away: a head can learn to look at the previous token from its first steps.
    """
    position = torch.arange(context_length, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    frequency = torch.exp(-math.log(10000.0) * torch.arange(0, emb_dim, 2, dtype=torch.float32) / emb_dim)
    table = torch.zeros(context_length, emb_dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: emb_dim // 2])
    return table * (std * math.sqrt(2.0))  # sin and cos have standard deviation 1/sqrt(2)


def make_optimizer(model: nn.Module, lr: float = 4e-4, weight_decay: float = 0.1,
                   betas: tuple[float, float] = (0.9, 0.95)) -> torch.optim.AdamW:
    """AdamW with weight decay on the weight matrices and embeddings only, not on biases or LayerNorm.

    Uses PyTorch's fused AdamW where the device supports it (same update, one kernel).

    (GPT-2's recipe. The classic chapter code uses ``torch.optim.AdamW(model.parameters(),
    lr=0.0004, weight_decay=0.1)``, which decays everything; both train fine.)
    """
    decay, no_decay = [], []
    for param in model.parameters():  # a tied weight appears once here
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:  # the fused kernel (one pass over all parameters) is several times faster, where PyTorch has it
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr, betas=betas)


# =============================================================================================
# Part 1c: the classic training loop (with the optional extras of part 2)
# =============================================================================================

class TrainingCallback(Protocol):
    """What ``train_model_simple`` and ``Trainer`` call as training goes (e.g. ``gptbook.dashboard.TrainingDashboard``).

    ``callback(event, **info)`` with ``event`` one of:

    - ``"start"``: ``model``, ``total_steps`` (and from ``Trainer``: ``step``, ``tokens_per_step``, ``history``);
    - ``"step"``, after every optimizer step: ``step`` (steps done), ``train_loss``, ``lr``, ``tokens_seen``;
    - ``"eval"``: ``step``, ``val_loss``, ``model`` (and ``train_loss`` from ``train_model_simple``;
      ``sample`` and ``probes`` from ``Trainer``);
    - ``"end"``: ``step``, ``stopped``, ``model``.

    Returning True from ``"step"`` or ``"eval"`` stops training cleanly after that step.
    """

    def __call__(self, event: str, **info: Any) -> Optional[bool]: ...


def train_model_simple(
    model: nn.Module,
    train_loader,
    val_loader,
    optimizer: torch.optim.Optimizer,
    device: Union[str, torch.device],
    num_epochs: int,
    eval_freq: int,
    eval_iter: int,
    start_context: str,
    tokenizer,
    *,
    warmup_steps: int = 0,
    cosine_decay: bool = False,
    min_lr: float = 0.0,
    grad_clip: Optional[float] = None,
    grad_accum_steps: int = 1,
    autocast: bool = False,
    max_steps: Optional[int] = None,
    max_seconds: Optional[float] = None,
    progress: bool = True,
    callback: Optional[TrainingCallback] = None,
) -> tuple[list[float], list[float], list[int]]:
    """The classic training loop: returns ``(train_losses, val_losses, track_tokens_seen)``.

    Every ``eval_freq`` optimizer steps it measures the training and validation loss over
    ``eval_iter`` batches each and prints them; after each epoch it prints a greedy continuation
    of ``start_context``. With the defaults it does exactly what the chapter-5 code does.

    Optional extras (all off by default):
        warmup_steps: raise the learning rate linearly over the first steps (from the optimizer's lr).
        cosine_decay: then lower it along a cosine to ``min_lr`` by the last step.
        grad_clip: clip the gradient norm to this value before each step.
        grad_accum_steps: add up the gradients of this many batches per optimizer step (a bigger
            batch at the same memory).
        autocast: run forward and loss under bf16 autocast (fast on recent GPUs; see
            ``bf16_autocast_supported``).
        max_steps / max_seconds: stop after this many optimizer steps / this much wall time
            (the current step finishes and the epoch's sample is still printed).
        progress: show a ``tqdm`` progress bar.
        callback: called as ``callback(event, **info)`` at "start", after every optimizer "step",
            at every "eval" and at the "end" (see ``TrainingCallback``); when it returns True,
            training stops after the current step (the model keeps what it learned).
    """
    if grad_accum_steps < 1:
        raise ValueError(f"grad_accum_steps must be at least 1, got {grad_accum_steps}")
    if len(train_loader) == 0:
        raise ValueError("the training loader has no batches; use a longer text or a smaller batch_size/max_length")
    train_losses, val_losses, track_tokens_seen = [], [], []
    tokens_seen, global_step = 0, -1
    steps_per_epoch = len(train_loader) // grad_accum_steps
    total_steps = steps_per_epoch * num_epochs if max_steps is None else min(max_steps, steps_per_epoch * num_epochs)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    schedule = warmup_steps > 0 or cosine_decay
    bar = tqdm(total=total_steps, desc="training", disable=not progress) if tqdm is not None else None
    started = time.perf_counter()
    stop = False
    notify = callback if callback is not None else (lambda event, **info: None)
    notify("start", model=model, total_steps=total_steps)

    for epoch in range(num_epochs):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        micro = 0
        for input_batch, target_batch in train_loader:
            with autocast_context(device, autocast):
                loss = calc_loss_batch(input_batch, target_batch, model, device)
            (loss / grad_accum_steps).backward()  # gradients add up over the accumulated batches
            tokens_seen += input_batch.numel()
            micro += 1
            if micro % grad_accum_steps != 0:
                continue
            global_step += 1
            if schedule:
                for group, base in zip(optimizer.param_groups, base_lrs):
                    if cosine_decay:
                        group["lr"] = lr_at_step(global_step, base, total_steps, warmup_steps, min_lr)
                    else:  # warm-up only, then constant
                        group["lr"] = base * min(1.0, (global_step + 1) / warmup_steps)
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if callback is not None and notify("step", step=global_step + 1, train_loss=loss.item(),
                                               lr=optimizer.param_groups[0]["lr"], tokens_seen=tokens_seen):
                stop = True

            if global_step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                track_tokens_seen.append(tokens_seen)
                _write(f"Ep {epoch + 1} (Step {global_step:06d}): Train loss {train_loss:.3f}, Val loss {val_loss:.3f}")
                if notify("eval", step=global_step + 1, val_loss=val_loss, train_loss=train_loss, model=model):
                    stop = True
            if stop or (max_steps is not None and global_step + 1 >= max_steps) or (
                    max_seconds is not None and time.perf_counter() - started >= max_seconds):
                stop = True
                break
        generate_and_print_sample(model, tokenizer, device, start_context)
        if stop:
            break
    if bar is not None:
        bar.close()
    notify("end", step=global_step + 1, stopped=stop, model=model)
    return train_losses, val_losses, track_tokens_seen


def plot_losses(epochs_seen, tokens_seen, train_losses, val_losses, *, xlabel: str = "Epochs"):
    """Plot training and validation loss against epochs (bottom axis) and tokens seen (top axis).

    ``epochs_seen`` can be any x values: ``torch.linspace(0, num_epochs, len(train_losses))`` as
    in the classic code, or optimizer steps with ``xlabel="Steps"``. Returns the matplotlib
    ``Figure``; in a notebook end the cell with ``plt.show()`` (or ``;``) to show it once.
    """
    import matplotlib.pyplot as plt

    fig, ax1 = plt.subplots(figsize=(5, 3))
    ax1.plot(epochs_seen, train_losses, label="Training loss")
    ax1.plot(epochs_seen, val_losses, linestyle="-.", label="Validation loss")
    ax1.set_xlabel(xlabel)
    ax1.set_ylabel("Loss")
    ax1.legend(loc="upper right")
    ax2 = ax1.twiny()  # a second x-axis sharing the same y-axis
    ax2.plot(tokens_seen, train_losses, alpha=0)  # invisible plot, only to align the ticks
    ax2.set_xlabel("Tokens seen")
    fig.tight_layout()
    return fig


# =============================================================================================
# Part 3: the full trainer (used by ``gptbook train``)
# =============================================================================================

def _check_train_config(cfg: "TrainConfig") -> None:
    """Raise a ``ValueError`` naming the first setting of ``cfg`` that cannot work, and what it must be."""
    def fail(name: str, what: str) -> None:
        raise ValueError(f"TrainConfig.{name} must be {what}, got {getattr(cfg, name)!r}")

    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def is_number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    at_least = {"batch_size": 1, "max_steps": 1, "warmup_steps": 0, "grad_accum_steps": 1, "eval_every": 1,
                "eval_batches": 1, "save_every": 1, "log_every": 1, "sample_tokens": 0}
    for name, low in at_least.items():
        if not is_int(getattr(cfg, name)) or getattr(cfg, name) < low:
            fail(name, f"a whole number >= {low}")
    if cfg.max_length is not None and (not is_int(cfg.max_length) or cfg.max_length < 1):
        fail("max_length", "None (the model's context length) or a whole number >= 1")
    if not is_int(cfg.seed):
        fail("seed", "a whole number")
    if not is_number(cfg.lr) or cfg.lr <= 0:
        fail("lr", "a number > 0")
    if cfg.grad_clip is not None and (not is_number(cfg.grad_clip) or cfg.grad_clip <= 0):
        fail("grad_clip", "a number > 0 (the largest gradient norm) or None (no clipping)")
    for name in ("min_lr", "weight_decay", "max_seconds"):  # max_seconds may also be None (no time limit)
        value = getattr(cfg, name)
        if not (value is None and name == "max_seconds") and (not is_number(value) or value < 0):
            fail(name, "a number >= 0" + (" or None (no time limit)" if name == "max_seconds" else ""))
    if not is_number(cfg.val_fraction) or not 0 < cfg.val_fraction < 1:
        fail("val_fraction", "a number between 0 and 1 (the share of your text kept for validation)")
    if cfg.init not in ("gpt2", "sinusoidal", "default"):
        fail("init", "'gpt2' (GPT-2's initialisation), 'sinusoidal' (GPT-2's, with sinusoidal position "
                     "embeddings) or 'default' (PyTorch's)")
    if isinstance(cfg.init_std, bool) or not isinstance(cfg.init_std, (int, float)) or not 0 < cfg.init_std <= 1:
        fail("init_std", "a standard deviation above 0 and at most 1, e.g. 0.02 (GPT-2's) or 1 / sqrt(emb_dim)")
    if not isinstance(cfg.model_overrides, dict):
        fail("model_overrides", "a dict of configuration fields, e.g. {'n_layers': 2}")
    if not isinstance(cfg.merge_unused, bool):
        fail("merge_unused", "True (train the head rows of unused tokens as one shared row) or False")
    for name in ("copy_drills", "copy_echo"):
        if not is_number(getattr(cfg, name)) or not 0 <= getattr(cfg, name) <= 1:
            fail(name, "a probability between 0 and 1" + (" (the share of rows that are copy drills; 0: none)"
                                                          if name == "copy_drills" else ""))
    if not isinstance(cfg.probes, bool):
        fail("probes", "True (run the probes at every evaluation on the bundled corpus) or False")
    if not is_int(cfg.probe_stories) or cfg.probe_stories < 1:
        fail("probe_stories", "a whole number >= 1 (to run no probes, set probes=False)")


@dataclass
class TrainConfig:
    """Every setting of a ``Trainer`` run; the command line ``gptbook train`` fills one in.

    Checked when it is made: a setting that cannot work raises a ``ValueError`` that names it.
    """

    def __post_init__(self) -> None:
        _check_train_config(self)

    model: str = "tiny"  # a name for get_config ("tiny", "124M", "gpt2", ...)
    model_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {"n_layers": 2}
    data: Optional[str] = None  # None: the bundled corpus; else a text file or an http(s) URL
    val_fraction: float = 0.1  # for a text of your own: the last 10 % validates
    out_dir: str = "runs/tiny"
    batch_size: int = 4  # small batches, many steps: what learns fastest in a few CPU minutes
    max_length: Optional[int] = None  # tokens per window; default: the model's context_length
    max_steps: int = 200  # optimizer steps
    lr: float = 2e-3  # peak learning rate
    min_lr: float = 2e-4
    warmup_steps: int = 10
    weight_decay: float = 0.1
    grad_clip: Optional[float] = 1.0
    grad_accum_steps: int = 1
    eval_every: int = 50
    eval_batches: int = 8
    save_every: int = 100
    log_every: int = 10
    seed: int = 123
    device: str = "auto"
    autocast: Optional[bool] = None  # None: bf16 where it pays off (bf16-capable CUDA GPUs)
    sample_prompt: str = "Once upon a time"
    sample_tokens: int = 60
    init: str = "gpt2"  # "gpt2": init_weights_gpt2; "sinusoidal": the same, with sinusoidal_positions; "default": PyTorch's
    init_std: float = 0.02  # the standard deviation of "gpt2" and "sinusoidal" (GPT-2's 0.02 was chosen for width 768)
    resume: Optional[str] = None  # a checkpoint folder to continue from
    max_seconds: Optional[float] = None  # stop (and save) after this much time; the cosine then ends there
    probes: bool = True  # on the bundled corpus: run gptbook.probes at every evaluation (kept in the history)
    probe_stories: int = 40  # validation stories the probes read
    merge_unused: bool = False  # train the head rows of tokens the text never uses as one row (UnusedTokens)
    copy_drills: float = 0.0  # share of training rows replaced by copy drills (gptbook.copy_drills); 0: none
    copy_echo: float = 0.3  # of the drills, the share that are "X by X" echoes (the rest: repeated sequences)


class _LossModule(nn.Module):
    """Wraps a model so that ``forward(inputs, targets)`` returns the loss (what DDP needs to wrap)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.unused_tokens: Optional[UnusedTokens] = None  # set by Trainer when merge_unused is on

    def forward(self, input_batch: torch.Tensor, target_batch: torch.Tensor) -> torch.Tensor:
        if self.unused_tokens is not None:
            return self.unused_tokens.loss(self.model, input_batch, target_batch)
        return model_loss(self.model, input_batch, target_batch)


class TokenWindows:
    """Non-overlapping windows over a token tensor, shuffled per epoch and sharded over processes.

    The order of epoch ``e`` depends only on ``(seed, e)``, and process ``rank`` of ``world_size``
    reads windows ``rank, rank + world_size, ...`` of it: its own shard. So the batch of any
    step can be found again from the step number alone, which is how a resumed run continues
    exactly where it stopped.
    """

    def __init__(self, token_ids: torch.Tensor, max_length: int, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        self.token_ids = token_ids
        self.max_length, self.batch_size = max_length, batch_size
        self.seed, self.rank, self.world_size, self.shuffle = seed, rank, world_size, shuffle
        self.n_windows = (len(token_ids) - 1) // max_length
        # every process gets the same number of batches (DDP needs the steps to line up)
        self.batches_per_epoch = self.n_windows // world_size // batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"the text gives {self.n_windows} window(s) of {max_length} tokens ({len(token_ids)} tokens), "
                f"not enough for one batch of {batch_size} per process on {world_size} process(es); "
                "use a longer text, a smaller batch size or a smaller max_length"
            )

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``index``-th batch this process reads (counting across epochs): inputs, targets (b, T)."""
        epoch, i = divmod(index, self.batches_per_epoch)
        if self.shuffle:
            order = torch.randperm(self.n_windows, generator=torch.Generator().manual_seed(self.seed + epoch))
        else:
            order = torch.arange(self.n_windows)
        mine = order[self.rank::self.world_size]  # this process's shard
        starts = mine[i * self.batch_size:(i + 1) * self.batch_size] * self.max_length  # (b,)
        offsets = torch.arange(self.max_length + 1)  # (T + 1,)
        chunk = self.token_ids[starts.unsqueeze(1) + offsets]  # (b, T + 1)
        return chunk[:, :-1], chunk[:, 1:]


def _dist_info() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from the environment ``torchrun`` sets; (0, 0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class Trainer:
    """Trains a ``GPTModel`` as ``TrainConfig`` says: one process, or one of many under ``torchrun``.

    ``Trainer(config).fit()`` builds (or resumes) the model, trains ``max_steps`` optimizer steps
    with warm-up + cosine learning rate, gradient clipping and accumulation, evaluates and prints
    a sample every ``eval_every`` steps, saves a checkpoint to ``out_dir`` every ``save_every``
    steps and at the end, and returns the history. Under ``torchrun`` each process reads its own
    shard of the data, gradients are averaged by ``DistributedDataParallel``, and only rank 0
    prints and writes checkpoints. Dropout is seeded from ``(seed, step, rank)`` so that a resumed
    run continues exactly as the uninterrupted run would have. With ``max_seconds`` the cosine
    schedule is fitted to the time budget as the run goes (from the pace of the steps so far), so
    that a run cut short by the clock still ends at ``min_lr``.
    """

    def __init__(self, config: TrainConfig, log: Callable[[str], None] = _write,
                 callback: Optional[TrainingCallback] = None, dashboard: Any = False) -> None:
        self.config = config
        # dashboard=True: a live TrainingDashboard (gptbook.dashboard) is the callback and shows the log
        self.dashboard = None
        if dashboard:
            from .dashboard import TrainingDashboard

            self.dashboard = TrainingDashboard() if dashboard is True else dashboard
            callback, log = self.dashboard, self.dashboard.log_to(log)
        self.callback = callback
        self.rank, self.local_rank, self.world_size = _dist_info()
        self.distributed = self.world_size > 1
        self._log = log
        self.tokenizer = get_tokenizer()
        self.history: dict[str, list] = {"steps": [], "train_losses": [], "val_steps": [], "val_losses": [],
                                         "tokens_seen": [], "val_probes": [], "val_seconds": []}
        self.step = 0  # optimizer steps done
        self.unused_tokens: Optional[UnusedTokens] = None  # with merge_unused: the shared head row (fit sets it)
        self.copy_drills: Any = None  # with copy_drills > 0: a gptbook.copy_drills.CopyDrills (set by _load_data)
        self._finished = False  # fit() ran to the end (close() then waits for the other processes)
        self._steps_this_run = 0  # ... of which in this process (not before a resume)
        self._started = time.perf_counter()

    # -- setup -----------------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self.rank == 0:
            self._log(message)

    def _setup_device(self) -> None:
        cfg = self.config
        if self.distributed:
            import torch.distributed as dist

            device = choose_device(cfg.device)
            if device.type == "cuda":
                device = torch.device("cuda", self.local_rank)
                torch.cuda.set_device(device)
            # DistributedDataParallel imports torch._dynamo; imported while a process group exists, it
            # keeps references to that group for good, so destroy_process_group() could no longer stop
            # the group's threads and they would die with the interpreter (see close()). Import it first.
            import torch._dynamo.utils  # noqa: F401

            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            self.device = device
        else:
            self.device = choose_device(cfg.device)
        self.use_autocast = bf16_autocast_supported(self.device) if cfg.autocast is None else bool(cfg.autocast)

    def _load_data(self) -> None:
        from .corpus import load_corpus, load_text

        cfg = self.config
        if cfg.data in (None, "bundled"):
            train_text, val_text = load_corpus("train"), load_corpus("val")
        else:
            text = load_text(cfg.data)
            split = int(len(text) * (1.0 - cfg.val_fraction))
            train_text, val_text = text[:split], text[split:]
        encode = lambda s: torch.tensor(self.tokenizer.encode(s, allowed_special={EOT_TEXT}), dtype=torch.long)
        self.train_ids, self.val_ids = encode(train_text), encode(val_text)
        max_length = self.max_length
        self.train_windows = TokenWindows(self.train_ids, max_length, cfg.batch_size, cfg.seed,
                                          self.rank, self.world_size, shuffle=True)
        if cfg.copy_drills > 0:
            from .copy_drills import CopyDrills

            self.copy_drills = CopyDrills(self.train_ids.unique().tolist(), cfg.copy_drills, cfg.copy_echo,
                                          seed=cfg.seed + self.rank)
        try:
            self.val_windows = TokenWindows(self.val_ids, max_length, cfg.batch_size, cfg.seed,
                                            self.rank, self.world_size, shuffle=False)
        except ValueError as exc:
            raise ValueError(f"validation text too short: {exc}") from None

    def _build(self) -> None:
        from .checkpoint import load_checkpoint, load_checkpoint_metadata
        from .config import get_config

        cfg = self.config
        if cfg.init not in ("gpt2", "sinusoidal", "default"):
            raise ValueError(f"init must be 'gpt2', 'sinusoidal' or 'default', got {cfg.init!r}")
        metadata: dict[str, Any] = {}
        # Initial weights come from torch's global generator (nn.Linear and init_weights_gpt2 draw
        # from it): seed it for the same weights on every process, then give the caller back its state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            if cfg.resume:
                metadata = load_checkpoint_metadata(cfg.resume)
                self.model = load_checkpoint(cfg.resume, model=None)
            else:
                self.model = GPTModel({**get_config(cfg.model), **cfg.model_overrides})
                if cfg.init in ("gpt2", "sinusoidal"):
                    init_weights_gpt2(self.model, std=cfg.init_std)
                if cfg.init == "sinusoidal":  # the position embedding starts from sinusoids instead of noise
                    with torch.no_grad():
                        self.model.pos_emb.weight.copy_(
                            sinusoidal_positions(*self.model.pos_emb.weight.shape, std=cfg.init_std))
        self.max_length = cfg.max_length or self.model.cfg["context_length"]
        if self.max_length > self.model.cfg["context_length"]:
            raise ValueError(f"max_length {self.max_length} exceeds the model's context_length "
                             f"{self.model.cfg['context_length']}")
        self.model.to(self.device).train()
        self.dropout_generator = torch.Generator(device=self.device)  # seeded anew at every step
        self.optimizer = make_optimizer(self.model, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.resume:
            load_checkpoint(cfg.resume, model=self.model, optimizer=self.optimizer)
            self.step = int(metadata.get("step", 0))
            for key in self.history:
                self.history[key] = list(metadata.get("history", {}).get(key, []))
            self.log(f"resumed from {cfg.resume} at step {self.step}")
        self.loss_module: nn.Module = _LossModule(self.model)
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.loss_module = DDP(self.loss_module, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    # -- the steps -------------------------------------------------------------------------
    def _all_reduce_mean(self, value: float) -> float:
        if not self.distributed:
            return value
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def _any_process(self, flag: bool) -> bool:
        """True if ``flag`` is true on any process (so that all processes take the same decision)."""
        if not self.distributed:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def planned_steps(self) -> int:
        """The step at which the cosine schedule reaches ``min_lr``: ``max_steps``, or earlier when
        ``max_seconds`` will stop the run first (estimated from the pace of the steps so far)."""
        cfg = self.config
        if cfg.max_seconds is None or self._steps_this_run == 0:
            return cfg.max_steps
        elapsed = time.perf_counter() - self._started
        remaining = int(self._steps_this_run * max(cfg.max_seconds - elapsed, 0.0) / elapsed)
        planned = float(max(self.step + remaining, self.step + 1))
        if self.distributed:  # every process must use the same learning rate
            import torch.distributed as dist

            t = torch.tensor([planned], dtype=torch.float64, device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.MIN)
            planned = float(t.item())
        return min(cfg.max_steps, int(planned))

    def train_step(self) -> float:
        """One optimizer step over ``grad_accum_steps`` batches; returns the mean loss (over processes too)."""
        cfg = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at_step(self.step, cfg.lr, self.planned_steps(), cfg.warmup_steps, cfg.min_lr)
        self.dropout_generator.manual_seed(cfg.seed * 1_000_003 + self.step * 1009 + self.rank)  # this step's masks
        self.loss_module.train()
        total = 0.0
        for micro in range(cfg.grad_accum_steps):
            index = self.step * cfg.grad_accum_steps + micro
            inputs, targets = self.train_windows.batch(index)
            if self.copy_drills is not None:  # some rows become copy drills (validation stays stories only)
                inputs, targets = self.copy_drills.mix(inputs, targets, index)
            inputs, targets = inputs.to(self.device), targets.to(self.device)
            last = micro == cfg.grad_accum_steps - 1
            # under DDP, average the gradients across processes only once, on the last micro-batch
            sync = contextlib.nullcontext() if (last or not self.distributed) else self.loss_module.no_sync()
            with sync:
                with autocast_context(self.device, self.use_autocast):
                    loss = self.loss_module(inputs, targets)
                (loss / cfg.grad_accum_steps).backward()
            total += loss.item()
        if cfg.grad_clip is not None and self.unused_tokens is not None:
            self.unused_tokens.clip_grad_norm_(self.model, cfg.grad_clip)
        elif cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.unused_tokens is not None:
            self.unused_tokens.sync(self.model)
        self.step += 1
        self._steps_this_run += 1
        return self._all_reduce_mean(total / cfg.grad_accum_steps)

    @torch.no_grad()
    def evaluate(self) -> float:
        """Validation loss over (up to) ``eval_batches`` batches per process, averaged over processes."""
        n = min(self.config.eval_batches, self.val_windows.batches_per_epoch)
        total = 0.0
        with eval_mode(self.model):
            for i in range(n):
                inputs, targets = self.val_windows.batch(i)
                with autocast_context(self.device, self.use_autocast):
                    inputs, targets = inputs.to(self.device), targets.to(self.device)
                    if self.unused_tokens is not None:  # the same loss, computed with the shared row
                        total += self.unused_tokens.loss(self.model, inputs, targets).item()
                    else:
                        total += model_loss(self.model, inputs, targets).item()
        return self._all_reduce_mean(total / n)

    def sample(self, max_new_tokens: Optional[int] = None) -> str:
        """A continuation of ``sample_prompt`` (temperature 0.8, top-k 40, fixed seed), as text."""
        cfg = self.config
        idx = text_to_token_ids(cfg.sample_prompt, self.tokenizer).to(self.device)
        with eval_mode(self.model):
            out = generate(self.model, idx, max_new_tokens or cfg.sample_tokens, temperature=0.8, top_k=40,
                           eos_id=EOT_ID, seed=cfg.seed)
        return token_ids_to_text(out[0], self.tokenizer)

    def _probe(self) -> None:
        """Run the corpus probes (``gptbook.probes``) when training on the bundled corpus; keep them in the history."""
        if not self.config.probes or self.config.data not in (None, "bundled"):
            return
        from .probes import format_probes, induction_accuracy, run_probes

        accuracies = run_probes(self.model, n_stories=self.config.probe_stories, tokenizer=None)
        # in-context copying of random corpus tokens (second copy): the skill of an induction head
        accuracies["induction"] = induction_accuracy(self.model)["second"]
        self.history["val_probes"].append({"step": self.step, **accuracies})
        self.log(f"step {self.step:5d} | probes: {format_probes(accuracies)}")

    def save(self) -> None:
        """Write a checkpoint of the current state to ``out_dir`` (rank 0 only)."""
        if self.rank != 0:
            return
        from .checkpoint import save_checkpoint

        save_checkpoint(self.config.out_dir, self.model, self.optimizer, step=self.step,
                        history=self.history, train_config=asdict(self.config))
        self.log(f"saved checkpoint to {self.config.out_dir} (step {self.step})")

    # -- the run ---------------------------------------------------------------------------
    def _notify(self, event: str, **info: Any) -> bool:
        """Call the callback (rank 0); True when it asks to stop (then on every process)."""
        if self.callback is None:
            return False
        stop = bool(self.callback(event, **info)) if self.rank == 0 else False
        return self._any_process(stop)

    def fit(self) -> dict[str, list]:
        """Train until ``max_steps`` (or ``max_seconds``, or a callback's stop); returns the history of losses.

        With a live dashboard in Jupyter, training runs in a background thread (so that its Stop
        button works) and ``fit`` returns at once; the history fills in as it trains.

        Training leaves torch's global random state alone, so it cannot race with the cells that
        run meanwhile: the model is built here, in the caller's thread, under its own seed
        (``torch.random.fork_rng``), and the dropout masks come from ``self.dropout_generator``.
        """
        self._setup_device()
        self._build()
        self._load_data()
        self.unused_tokens = UnusedTokens(self.model, self.train_ids) if self.config.merge_unused else None
        (self.loss_module.module if self.distributed else self.loss_module).unused_tokens = self.unused_tokens
        if self.dashboard is not None and self.dashboard.should_run_in_background():
            return self.dashboard.run(self._train)
        return self._train()

    def _train(self) -> dict[str, list]:
        """The training loop of ``fit``, on the model that ``_build`` made."""
        use_dropout_generator(self.model, self.dropout_generator)
        try:
            return self._train_loop()
        finally:
            use_dropout_generator(self.model, None)  # the model goes back to plain dropout

    def _train_loop(self) -> dict[str, list]:
        cfg = self.config
        tokens_per_step = cfg.batch_size * self.max_length * cfg.grad_accum_steps * self.world_size
        n_params = sum(p.numel() for p in self.model.parameters())
        self.log(f"model {cfg.model} {self.model.cfg['emb_dim']}x{self.model.cfg['n_layers']} layers, "
                 f"{n_params:,} parameters | {self.world_size} process(es) on {self.device} | "
                 f"{len(self.train_ids):,} training tokens, {tokens_per_step:,} tokens per step | "
                 f"bf16 autocast {'on' if self.use_autocast else 'off'}")
        started = self._started = time.perf_counter()
        last_log_time, last_log_step = started, self.step
        # seconds of training (set-up excluded) before this run: a resumed run's clock goes on from there
        seconds_before = self.history["val_seconds"][-1] if self.history["val_seconds"] else 0.0
        self._notify("start", model=self.model, total_steps=cfg.max_steps, step=self.step,
                     tokens_per_step=tokens_per_step, history=self.history)
        stopped = False
        while self.step < cfg.max_steps:
            loss = self.train_step()
            self.history["steps"].append(self.step)
            self.history["train_losses"].append(loss)
            self.history["tokens_seen"].append(self.step * tokens_per_step)
            if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                now = time.perf_counter()
                rate = (self.step - last_log_step) * tokens_per_step / max(now - last_log_time, 1e-9)
                last_log_time, last_log_step = now, self.step
                self.log(f"step {self.step:5d}/{cfg.max_steps} | loss {loss:.3f} | "
                         f"lr {self.optimizer.param_groups[0]['lr']:.2e} | {rate:,.0f} tokens/s")
            stopped = self._notify("step", step=self.step, train_loss=loss, tokens_seen=self.step * tokens_per_step,
                                   lr=self.optimizer.param_groups[0]["lr"])
            out_of_time = cfg.max_seconds is not None and self._any_process(
                time.perf_counter() - started >= cfg.max_seconds)  # all processes must stop together
            if self.step % cfg.eval_every == 0 or self.step == cfg.max_steps or out_of_time:
                val = self.evaluate()
                self.history["val_steps"].append(self.step)
                self.history["val_losses"].append(val)
                self.history["val_seconds"].append(seconds_before + time.perf_counter() - started)
                self.log(f"step {self.step:5d} | val loss {val:.3f} | val perplexity {perplexity(val):.1f}")
                sample, n_probes = None, len(self.history["val_probes"])
                if self.rank == 0:
                    sample = self.sample()
                    self.log("sample: " + sample.replace("\n", " "))
                    self._probe()
                probes = self.history["val_probes"][-1] if len(self.history["val_probes"]) > n_probes else None
                stopped = self._notify("eval", step=self.step, val_loss=val, sample=sample, probes=probes,
                                       model=self.model) or stopped
            if stopped:
                self.log(f"stopped at step {self.step} (the model keeps what it learned)")
                break
            if self.step % cfg.save_every == 0 and self.step != cfg.max_steps and not out_of_time:
                self.save()
            if out_of_time:
                self.log(f"stopping after {time.perf_counter() - started:.0f} s (max_seconds={cfg.max_seconds})")
                break
        self.save()
        self._finished = True
        self._notify("end", step=self.step, stopped=stopped, model=self.model)
        return self.history

    def close(self) -> None:
        """Leave the process group (under torchrun); call it once ``fit`` has returned or raised.

        The order matters. After a finished run every process first waits for the others (rank 0
        is still sampling and saving when the others are done), then drops the DDP wrapper, which
        holds the process group, and only then destroys the group: so its communication threads
        are stopped here, while Python is fully alive. Left running until the interpreter exits,
        they can abort the process at shutdown ("terminate called without an active exception").
        """
        if not self.distributed:
            return
        import gc

        import torch.distributed as dist

        if not dist.is_initialized():
            return
        if self._finished:  # after an error another process may be gone: no barrier
            dist.barrier()
        if hasattr(self, "loss_module"):
            self.loss_module = _LossModule(self.model)  # the plain module, without DDP
        gc.collect()
        dist.destroy_process_group()
