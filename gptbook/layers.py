"""The small layers inside every transformer block: LayerNorm, GELU, the feed-forward network and dropout.

Taught in notebook 05 (the building blocks), where each is first written out by hand.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.Module):
    """Normalise each token vector to mean 0 and variance 1, then scale and shift it.

    ``y = scale * (x - mean) / sqrt(var + eps) + shift`` over the last dimension, with the
    biased variance (divide by n, not n - 1) and ``eps = 1e-5``, exactly as GPT-2 does.
    ``scale`` starts at ones and ``shift`` at zeros; both are trained.
    """

    def __init__(self, emb_dim: int) -> None:
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (..., emb_dim). F.layer_norm computes the formula above in one fused kernel.
        return F.layer_norm(x, self.scale.shape, self.scale, self.shift, self.eps)


class GELU(nn.Module):
    """The Gaussian error linear unit, in the tanh approximation that GPT-2 was trained with.

    ``GELU(x) = 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Same formula as the docstring, computed by PyTorch's fused kernel.
        return F.gelu(x, approximate="tanh")

    @staticmethod
    def formula(x: torch.Tensor) -> torch.Tensor:
        """The tanh approximation written out, for comparing against ``forward``."""
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


RESIDUAL_OUTPUT = "residual_output"  # the attribute that marks a layer ending a residual branch


def mark_residual_output(layer: nn.Module) -> nn.Module:
    """Mark ``layer`` as the projection that ends a residual branch (attention's ``out_proj``, the feed-forward's
    last layer): GPT-2 initialises those with a standard deviation scaled by 1/√(2·n_layers)."""
    setattr(layer, RESIDUAL_OUTPUT, True)
    return layer


def is_residual_output(layer: nn.Module) -> bool:
    """Whether ``layer`` ends a residual branch (see ``mark_residual_output``); found by module, not by name."""
    return getattr(layer, RESIDUAL_OUTPUT, False) is True


class FeedForward(nn.Module):
    """Two linear layers with a GELU between them; the hidden layer is 4× wider than ``emb_dim``.

    ``layers`` = Linear(emb_dim → 4·emb_dim), GELU, Linear(4·emb_dim → emb_dim).
    """

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),
            GELU(),
            nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),
        )
        mark_residual_output(self.layers[2])  # it ends a residual branch (GPT-2 scales its initial weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (b, T, emb_dim) -> (b, T, 4*emb_dim) -> (b, T, emb_dim)
        return self.layers(x)


def dropout_noise(like: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """The multiplier dropout applies to ``like``: 0 with probability ``p``, else ``1 / (1 - p)``.

    Drawn from ``generator``, in the same way as PyTorch's own CPU dropout draws it from the global
    generator (``bernoulli_(1 - p)``, then ``div_(1 - p)``), so with equal seeds the masks are equal.
    """
    if p >= 1.0:
        return torch.zeros_like(like)
    return torch.empty_like(like).bernoulli_(1.0 - p, generator=generator).div_(1.0 - p)


class Dropout(nn.Dropout):
    """``nn.Dropout`` that can draw its masks from a private ``torch.Generator``.

    With ``generator`` left at ``None`` it is ``nn.Dropout``. ``Trainer`` sets one (with
    ``use_dropout_generator``) so that training never draws from, or reseeds, torch's global
    generator: a notebook's ``torch.manual_seed(...)`` then means the same while a dashboard trains
    in a background thread. On the CPU the masks are those ``nn.Dropout`` draws from an equally
    seeded global generator.
    """

    generator: Optional[torch.Generator] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.generator is None or not self.training or self.p == 0:
            return super().forward(x)
        return x * dropout_noise(x, self.p, self.generator)


def use_dropout_generator(model: nn.Module, generator: Optional[torch.Generator]) -> int:
    """Make every ``gptbook`` ``Dropout`` in ``model`` draw from ``generator`` (``None``: the global one again).

    Returns how many dropout layers now use it. Attention's dropout is one of them: while it has a
    generator, ``MultiHeadAttention`` computes a training step's attention with its explicit path,
    whose dropout it can seed (``scaled_dot_product_attention`` always draws from the global generator).
    Raises ``TypeError`` for a plain ``nn.Dropout``, which cannot use a generator: build the model
    from ``gptbook``'s classes (``GPTModel``) or set its dropout rate to 0.
    """
    n = 0
    for name, module in model.named_modules():
        if isinstance(module, Dropout):
            module.generator = generator
            n += 1
        elif isinstance(module, nn.Dropout) and module.p > 0:
            raise TypeError(f"{name or 'the model'} is a plain nn.Dropout, which draws from torch's global "
                            "generator: use gptbook.layers.Dropout there (GPTModel does), or dropout 0")
    return n
