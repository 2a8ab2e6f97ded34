"""The small layers inside every transformer block: LayerNorm, GELU and the feed-forward network.

Taught in notebook 05 (the building blocks), where each is first written out by hand.
"""

from __future__ import annotations

import math
from typing import Any

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (b, T, emb_dim) -> (b, T, 4*emb_dim) -> (b, T, emb_dim)
        return self.layers(x)
