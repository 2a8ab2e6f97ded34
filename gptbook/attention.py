"""Causal multi-head self-attention, with a key/value cache for fast generation.

Each token builds a query ("what am I looking for?"), a key ("what do I contain?") and a value
("what do I pass on?"). A token's output is the average of the values of the tokens before it
(and itself), weighted by how well its query matches their keys. The causal mask hides the
future, so the model can be trained to predict every next token at once.

Two paths compute the same thing:
- the explicit one, written out step by step (and the one that can hand back the attention
  weights for the heat maps of notebooks 04 and 08);
- the fast one, ``torch.nn.functional.scaled_dot_product_attention`` (``fused_causal_attention``),
  used whenever the weights are not requested; the CPU fast path of ``gptbook.prepack`` calls it too.

Taught in notebook 04 (attention); the cache in notebook 07 (generating text).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Dropout, mark_residual_output


def fused_causal_attention(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                           causal_mask: torch.Tensor, dropout_p: float = 0.0) -> torch.Tensor:
    """Causal attention in one fused kernel: (b, heads, num_tokens, head_dim) queries over n_keys keys and values.

    The queries are the last ``num_tokens`` positions of the ``n_keys`` (earlier keys come from a cache).
    ``causal_mask`` is the (context, context) table of ``MultiHeadAttention`` (True = hidden). Returns the
    context vectors, (b, heads, num_tokens, head_dim): the same as the explicit path's ``weights @ values``.
    """
    num_tokens, n_keys = queries.shape[2], keys.shape[2]
    if num_tokens == n_keys:  # no earlier tokens: the ordinary causal mask
        return F.scaled_dot_product_attention(queries, keys, values, dropout_p=dropout_p, is_causal=True)
    if num_tokens == 1:  # one new token: it may see every cached key
        return F.scaled_dot_product_attention(queries, keys, values, dropout_p=dropout_p)
    mask = causal_mask[n_keys - num_tokens:n_keys, :n_keys]  # query i sits at position n_keys - num_tokens + i
    return F.scaled_dot_product_attention(queries, keys, values, attn_mask=~mask, dropout_p=dropout_p)


class LayerKVCache:
    """The keys and values one attention layer has computed so far for a batch of sequences.

    During generation only the newest token goes through the model; its query attends to the
    keys and values stored here, so nothing is computed twice. Buffers are allocated on first
    use with room for ``capacity`` tokens.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.length = 0  # tokens stored so far
        self.keys: Optional[torch.Tensor] = None  # (b, num_heads, capacity, head_dim)
        self.values: Optional[torch.Tensor] = None

    def update(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append new keys/values of shape (b, num_heads, t, head_dim); return all stored so far."""
        b, h, t, hd = keys.shape
        end = self.length + t
        if end > self.capacity:
            raise ValueError(
                f"the key/value cache holds at most {self.capacity} tokens (the context length) "
                f"but {end} were given; start a new cache or crop the input"
            )
        if self.keys is None:
            self.keys = keys.new_empty(b, h, self.capacity, hd)
            self.values = values.new_empty(b, h, self.capacity, hd)
        self.keys[:, :, self.length:end] = keys
        self.values[:, :, self.length:end] = values
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


class KVCache:
    """One ``LayerKVCache`` per transformer block; ``length`` is the number of tokens seen."""

    def __init__(self, n_layers: int, capacity: int) -> None:
        self.capacity = capacity
        self.layers = [LayerKVCache(capacity) for _ in range(n_layers)]

    @property
    def length(self) -> int:
        return self.layers[0].length if self.layers else 0


class MultiHeadAttention(nn.Module):
    """Causal multi-head self-attention.

    Args:
        d_in: width of the input token vectors.
        d_out: width of the output vectors (split evenly over the heads).
        context_length: the longest sequence the causal mask is built for.
        dropout: probability of dropping an attention weight during training.
        num_heads: number of heads; ``d_out`` must be divisible by it.
        qkv_bias: whether the query/key/value projections have a bias (GPT-2: yes).
    """

    def __init__(
        self,
        d_in: int,
        d_out: int,
        context_length: int,
        dropout: float,
        num_heads: int,
        qkv_bias: bool = False,
    ) -> None:
        super().__init__()
        if d_out % num_heads != 0:
            raise ValueError(f"d_out ({d_out}) must be divisible by num_heads ({num_heads})")
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.context_length = context_length
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)  # combines the heads' outputs
        self.dropout = Dropout(dropout)
        # True above the diagonal = "this key lies in the future of this query": hidden.
        # persistent=False keeps the mask out of state_dict() and so out of every checkpoint.
        self.register_buffer("mask", self._causal_mask(context_length), persistent=False)
        mark_residual_output(self.out_proj)  # it ends a residual branch (GPT-2 scales its initial weights)

    @staticmethod
    def _causal_mask(context_length: int, device: Optional[torch.device] = None) -> torch.Tensor:
        return torch.triu(torch.ones(context_length, context_length, dtype=torch.bool, device=device), diagonal=1)

    def reset_mask(self) -> None:
        """Build the causal mask again (after ``to_empty``, which leaves buffers uninitialised)."""
        self.mask = self._causal_mask(self.context_length, device=self.mask.device)

    def forward(
        self,
        x: torch.Tensor,
        kv_cache: Optional[LayerKVCache] = None,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend over ``x`` of shape (b, num_tokens, d_in); return (b, num_tokens, d_out).

        With ``kv_cache``, ``x`` holds only the new tokens and attends to the cached ones too.
        With ``return_attention=True`` also return the weights, shape (b, num_heads, num_tokens, n_keys).
        """
        b, num_tokens, _ = x.shape

        queries = self.W_query(x)  # (b, num_tokens, d_out)
        keys = self.W_key(x)
        values = self.W_value(x)

        # Split d_out into heads: (b, num_tokens, d_out) -> (b, num_heads, num_tokens, head_dim)
        queries = queries.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        keys = keys.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        values = values.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)

        if kv_cache is not None:
            keys, values = kv_cache.update(keys, values)  # (b, num_heads, n_keys, head_dim)
        n_keys = keys.shape[2]
        # Query i sits at position n_keys - num_tokens + i; it may see keys 0..that position.
        mask = self.mask[n_keys - num_tokens:n_keys, :n_keys]  # (num_tokens, n_keys)

        if return_attention:
            attn_scores = queries @ keys.transpose(2, 3)  # (b, num_heads, num_tokens, n_keys)
            attn_scores = attn_scores.masked_fill(mask, float("-inf"))
            attn_weights = torch.softmax(attn_scores / self.head_dim**0.5, dim=-1)
            attn_weights = self.dropout(attn_weights)
            context = attn_weights @ values  # (b, num_heads, num_tokens, head_dim)
        elif self.training and self.dropout.p > 0 and self.dropout.generator is not None:
            context = self._attend_with_private_dropout(queries, keys, values, mask)
        else:
            # The same computation in one fused kernel (it never materialises the weights).
            context = fused_causal_attention(queries, keys, values, self.mask,
                                             dropout_p=self.dropout.p if self.training else 0.0)

        # Merge the heads again: (b, num_heads, num_tokens, head_dim) -> (b, num_tokens, d_out)
        context = context.transpose(1, 2).reshape(b, num_tokens, self.d_out)
        out = self.out_proj(context)
        return (out, attn_weights) if return_attention else out

    def _attend_with_private_dropout(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                                     mask: torch.Tensor) -> torch.Tensor:
        """What ``scaled_dot_product_attention`` computes with dropout on the CPU, step by step,
        with the dropout mask drawn from ``self.dropout.generator`` (see ``layers.use_dropout_generator``).

        Written as PyTorch's own reference ("math") implementation, the one it runs on the CPU when
        dropout is on: on the CPU the results, gradients included, equal its bit for bit.
        """
        scale = (1.0 / self.head_dim**0.5) ** 0.5  # applied to the queries and the keys
        scores = (queries * scale) @ (keys.transpose(-2, -1) * scale)  # (b, num_heads, num_tokens, n_keys)
        scores = scores + torch.zeros(mask.shape, dtype=scores.dtype, device=scores.device).masked_fill_(
            mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return self.dropout(weights) @ values  # (b, num_heads, num_tokens, head_dim)
