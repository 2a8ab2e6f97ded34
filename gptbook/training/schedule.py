"""What a run sets up before its first step: the learning-rate schedule (warm-up, cosine), bf16 autocast, GPT-2's
initial weights (and sinusoidal positions), the AdamW optimizer (notebook 08)."""

from __future__ import annotations

import contextlib
import math
from typing import Union

import torch
from torch import nn

from ..layers import is_residual_output


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
