"""The classic training loop of chapter 5, with the optional extras (warm-up, cosine decay, clipping,
accumulation, autocast, a callback): ``train_model_simple``, ``evaluate_model``, ``generate_and_print_sample``,
``plot_losses``, and ``TrainingCallback``, what both loops call as training goes (notebook 08)."""

from __future__ import annotations

import time
from typing import Any, Optional, Protocol, Union

import torch
from torch import nn

from .._shared import eval_mode
from ..generation import generate_text_simple
from ..tokenizer import text_to_token_ids, token_ids_to_text
from .loss import calc_loss_loader, calc_loss_batch
from .schedule import autocast_context, lr_at_step

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


class TrainingCallback(Protocol):
    """What ``train_model_simple`` and ``Trainer`` call as training goes (e.g. ``gptbook.ui.dashboard.TrainingDashboard``).

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
