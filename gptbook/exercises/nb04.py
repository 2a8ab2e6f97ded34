"""Notebook 04's exercises (Attention): references, cases, common mistakes, hints, solutions."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..attention import MultiHeadAttention
from .spec import Answer, Case, Exercise, Mistake
from ._common import _dropout_in_eval, _dropout_note, _rand, _run_module

EXERCISES: list[Exercise] = []


def _attention(q, k, v, scale="sqrt", mask="before", dim=-1, diagonal=1):
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1)  # (b, T, T)
    if scale == "sqrt":
        scores = scores / k.shape[-1] ** 0.5
    elif scale == "d":
        scores = scores / k.shape[-1]
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=diagonal)
    if mask == "before":
        scores = scores.masked_fill(future, float("-inf"))
    elif mask == "zero":
        scores = scores.masked_fill(future, 0.0)
    elif mask == "past":
        scores = scores.masked_fill(future.T & ~torch.eye(T, dtype=torch.bool), float("-inf"))
    weights = torch.softmax(scores, dim=dim)
    if mask == "after":
        weights = weights.masked_fill(future, 0.0)
    return weights @ v


def _ref_causal_attention(queries, keys, values):
    return _attention(queries, keys, values)


def _attention_cases():
    def make(seed, b, T, d):
        return _rand(seed, b, T, d), _rand(seed + 100, b, T, d), _rand(seed + 200, b, T, d)
    return [Case(label, lambda a=a: make(*a)) for label, a in [
        ("batch of 2, 6 tokens", (1, 2, 6, 4)), ("batch of 1", (2, 1, 6, 4)), ("one token", (3, 2, 1, 4)),
        ("the full context of 16 tokens", (4, 1, 16, 8)), ("another seed", (5, 3, 5, 4))]]


def _attention_tril(queries, keys, values):
    T = queries.shape[1]
    allowed = torch.tril(torch.ones(T, T))
    scores = torch.einsum("bqd,bkd->bqk", queries, keys) / math.sqrt(keys.shape[-1])
    return torch.softmax(scores.masked_fill(allowed == 0, -torch.inf), dim=-1) @ values


EXERCISES.append(Exercise(
    id="04.1", title="Causal attention, one head", name="my_causal_attention",
    expects="a function my_causal_attention(queries, keys, values), each (b, T, d), that returns the context "
            "vectors (b, T, d)",
    kind="function", reference=_ref_causal_attention, cases=_attention_cases,
    hints=["Four steps: scores = queries @ keys^T, divide by √d_k, hide the future, softmax over the keys; "
           "then mix the values.",
           "keys.transpose(1, 2) swaps T and d. The mask is torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1): "
           "fill those scores with -inf *before* torch.softmax(..., dim=-1)."],
    solution="def my_causal_attention(queries, keys, values):\n"
             "    T, d_k = queries.shape[1], keys.shape[-1]\n"
             "    scores = queries @ keys.transpose(1, 2)                     # (b, T, T)\n"
             "    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)\n"
             "    scores = scores.masked_fill(future, float('-inf'))          # hide the future\n"
             "    weights = torch.softmax(scores / d_k**0.5, dim=-1)          # each row sums to 1\n"
             "    return weights @ values                                     # (b, T, d)",
    mistakes=[
        Mistake("the scores are not divided by √d_k",
                "Dot products grow with the head size; divide the scores by keys.shape[-1] ** 0.5 before the softmax.",
                answer=lambda q, k, v: _attention(q, k, v, scale=None)),
        Mistake("the scores are divided by d_k instead of √d_k",
                "Divide by the square root: keys.shape[-1] ** 0.5.",
                answer=lambda q, k, v: _attention(q, k, v, scale="d")),
        Mistake("the mask is applied after the softmax",
                "Zeroing weights after the softmax leaves rows that no longer sum to 1. Fill the future *scores* with "
                "-inf before the softmax.",
                answer=lambda q, k, v: _attention(q, k, v, mask="after")),
        Mistake("the future is not masked",
                "A token must not see the tokens after it: fill the scores above the diagonal with -inf.",
                answer=lambda q, k, v: _attention(q, k, v, mask=None)),
        Mistake("the mask hides the diagonal too, so the first token sees nothing (NaN)",
                "Use torch.triu(..., diagonal=1): a token may attend to itself.",
                answer=lambda q, k, v: _attention(q, k, v, diagonal=0)),
        Mistake("the mask hides the past instead of the future",
                "The future is *above* the diagonal (triu), columns after the row.",
                answer=lambda q, k, v: _attention(q, k, v, mask="past")),
        Mistake("the future scores are set to 0 instead of -inf",
                "A score of 0 still gets weight e^0 = 1 after the softmax: fill the future with float('-inf').",
                answer=lambda q, k, v: _attention(q, k, v, mask="zero")),
        Mistake("the softmax runs over the wrong dimension (the queries)",
                "Each query's weights over the keys must sum to 1: softmax over the last dimension, dim=-1.",
                answer=lambda q, k, v: _attention(q, k, v, dim=-2)),
    ],
    wrong_answers=[
        Answer("the √d_k applied to the weights after the softmax",
               lambda q, k, v: (torch.softmax((q @ k.transpose(1, 2)).masked_fill(
                   torch.ones(q.shape[1], q.shape[1], dtype=torch.bool).triu(1), float("-inf")), -1)
                   / k.shape[-1] ** 0.5) @ v),
        Answer("the weights returned instead of the context vectors",
               lambda q, k, v: _attention(q, k, torch.eye(q.shape[1]).expand(q.shape[0], -1, -1))),
        Answer("keys and queries swapped, no transpose of the mask",
               lambda q, k, v: _attention(k, q, v)),
    ],
    variants=[
        Answer("einsum and a tril mask compared with 0", _attention_tril),
        Answer("F.scaled_dot_product_attention(is_causal=True)",
               lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
        Answer("keys.mT and a preallocated output",
               lambda q, k, v: torch.matmul(torch.softmax((q @ k.mT / math.sqrt(k.shape[-1])).masked_fill(
                   torch.triu(torch.ones(q.shape[1], q.shape[1]), 1).bool(), float("-inf")), -1), v,
                   out=torch.empty(v.shape))),
    ],
))


class _MHAVariant(MultiHeadAttention):
    """gptbook's attention written out, with one thing done wrong (a common mistake) or done differently
    (a valid variant): ``fault`` says which."""

    fault = ""

    def forward(self, x):
        b, T, _ = x.shape
        H, hd, fault = self.num_heads, self.head_dim, self.fault
        q = self.W_query(x).view(b, T, H, hd).transpose(1, 2)
        k = self.W_key(x).view(b, T, H, hd).transpose(1, 2)
        v = self.W_value(x).view(b, T, H, hd).transpose(1, 2)
        if fault == "sdpa":  # valid: PyTorch's fused attention, dropout only while training
            context = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                     dropout_p=self.dropout.p if self.training else 0.0)
        else:
            if fault == "einsum":  # valid
                scores = torch.einsum("bhqd,bhkd->bhqk", q, k)
            else:
                scores = q @ k.transpose(2, 3)
            scores = scores.masked_fill(self.mask[:T, :T], float("-inf"))
            scale = self.d_out ** 0.5 if fault == "scale_d_out" else hd ** 0.5
            weights = torch.softmax(scores / scale, dim=-1)
            if fault == "dropout_always":
                weights = F.dropout(weights, self.dropout.p)  # F.dropout's training=True is the default
            elif fault == "functional_dropout":  # valid
                weights = F.dropout(weights, self.dropout.p, training=self.training)
            elif fault not in ("no_dropout", "dropout_context"):
                weights = self.dropout(weights)
            context = weights @ v  # (b, H, T, hd)
        if fault == "dropout_context":
            context = self.dropout(context)
        if fault == "no_transpose_back":
            context = context.reshape(b, T, self.d_out)
        else:
            context = context.transpose(1, 2).reshape(b, T, self.d_out)
        return context if fault == "no_out_proj" else self.out_proj(context)


def _mha_variant(fault):
    return type(f"MHA_{fault}", (_MHAVariant,), {"fault": fault})


def _mha_cases():
    small = dict(d_in=3, d_out=4, context_length=6, dropout=0.0, num_heads=2)
    wide = dict(d_in=8, d_out=12, context_length=10, dropout=0.0, num_heads=3, qkv_bias=True)
    drop = {**wide, "dropout": 0.5}
    return [Case(label, lambda a=a: a, _dropout_note(label, a)) for label, a in [
        ("batch of 2, 6 tokens, 2 heads", (small, 1, (_rand(1, 2, 6, 3),))),
        ("batch of 1", (small, 2, (_rand(2, 1, 6, 3),))),
        ("one token", (small, 3, (_rand(3, 2, 1, 3),))),
        ("3 heads, qkv bias, the full context of 10", (wide, 4, (_rand(4, 2, 10, 8),))),
        ("another seed, 4 tokens", (wide, 5, (_rand(5, 3, 4, 8),))),
        ("dropout 0.5 in evaluation mode (no dropout)", (drop, 6, (_rand(6, 2, 7, 8),))),
        ("dropout 0.5 in training mode (the attention weights dropped, seeded)",
         (drop, 7, (_rand(7, 2, 7, 8),), "train")),
        ("dropout 0.5 in training mode, one sequence of 10", (drop, 8, (_rand(8, 1, 10, 8),), "train")),
    ]]


class _MHAViewNoContiguous(_MHAVariant):
    """A learner's MHA that calls .view on the transposed context (no .contiguous())."""

    def forward(self, x):
        b, T, _ = x.shape
        split = lambda t: t.view(b, T, self.num_heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.W_query(x)), split(self.W_key(x)), split(self.W_value(x))
        scores = (q @ k.transpose(2, 3)).masked_fill(self.mask[:T, :T], float("-inf"))
        weights = self.dropout(torch.softmax(scores / self.head_dim**0.5, dim=-1))
        return self.out_proj((weights @ v).transpose(1, 2).view(b, T, self.d_out))


EXERCISES.append(Exercise(
    id="04.2", title="Multi-head attention", name="MyMHA",
    expects="a class MyMHA(d_in, d_out, context_length, dropout, num_heads, qkv_bias=False) "
            "with gptbook.MultiHeadAttention's parameter names (W_query, W_key, W_value, out_proj)",
    # The reference is the attention written out, with nn.Dropout on the weights: in training mode it draws
    # its masks exactly as a learner's answer does (gptbook's fused path gives the same, as a variant shows).
    kind="class", reference=_mha_variant("written_out"), cases=_mha_cases, run=_run_module(MultiHeadAttention),
    hints=["Project once to d_out, split the last dimension into heads with .view, make the heads a batch "
           "dimension with .transpose(1, 2), attend, then undo both steps and apply out_proj.",
           "After the attention the context is (b, heads, T, head_dim): .transpose(1, 2) gives (b, T, heads, "
           "head_dim), and .contiguous().view(b, T, d_out) (or .reshape) glues the heads together. Scale by "
           "√head_dim, not √d_out."],
    solution="class MyMHA(nn.Module):\n"
             "    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):\n"
             "        super().__init__()\n"
             "        self.d_out, self.num_heads, self.head_dim = d_out, num_heads, d_out // num_heads\n"
             "        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)\n"
             "        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)\n"
             "        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)\n"
             "        self.out_proj = nn.Linear(d_out, d_out)\n"
             "        self.dropout = nn.Dropout(dropout)\n"
             "        self.register_buffer('mask', torch.triu(torch.ones(context_length, context_length,\n"
             "                             dtype=torch.bool), diagonal=1), persistent=False)\n\n"
             "    def forward(self, x):\n"
             "        b, T, _ = x.shape\n"
             "        split = lambda t: t.view(b, T, self.num_heads, self.head_dim).transpose(1, 2)\n"
             "        q, k, v = split(self.W_query(x)), split(self.W_key(x)), split(self.W_value(x))\n"
             "        scores = (q @ k.transpose(2, 3)).masked_fill(self.mask[:T, :T], float('-inf'))\n"
             "        weights = self.dropout(torch.softmax(scores / self.head_dim**0.5, dim=-1))\n"
             "        context = (weights @ v).transpose(1, 2).contiguous().view(b, T, self.d_out)\n"
             "        return self.out_proj(context)",
    mistakes=[
        Mistake(".view is called on the transposed (non-contiguous) tensor",
                "After .transpose(1, 2) the numbers are no longer laid out row by row, and .view cannot "
                "reinterpret them: write .contiguous().view(b, T, d_out), or .reshape(b, T, d_out), which "
                "copies only when it must.",
                error=r"view size is not compatible|contiguous"),
        Mistake("the heads are merged without transposing back",
                "The context is (b, heads, T, head_dim): .transpose(1, 2) first, so that each token's heads sit "
                "next to each other, then reshape to (b, T, d_out).",
                answer=_mha_variant("no_transpose_back")),
        Mistake("the scores are divided by √d_out instead of √head_dim",
                "Each head's dot products add up head_dim products: divide by self.head_dim ** 0.5.",
                answer=_mha_variant("scale_d_out")),
        Mistake("out_proj is not applied",
                "The last step mixes the heads: return self.out_proj(context).",
                answer=_mha_variant("no_out_proj")),
        Mistake("the attention weights are never dropped out in training",
                "GPT-2 drops attention weights while training: weights = self.dropout(torch.softmax(...)) "
                "before weights @ values (nn.Dropout is off by itself in evaluation mode).",
                answer=_mha_variant("no_dropout")),
        Mistake("dropout is applied to the context vectors instead of the attention weights",
                "Drop out the attention weights, right after the softmax: self.dropout(weights) @ values.",
                answer=_mha_variant("dropout_context")),
        _dropout_in_eval("dropout", _mha_variant("dropout_always")),
    ],
    wrong_answers=[
        Answer(".view on the transposed context", _MHAViewNoContiguous,
               ".view is called on the transposed (non-contiguous) tensor"),
    ],
    variants=[
        Answer("torch.einsum for the scores", _mha_variant("einsum")),
        Answer("F.scaled_dot_product_attention with dropout_p while training", _mha_variant("sdpa")),
        Answer("F.dropout(weights, p, training=self.training)", _mha_variant("functional_dropout")),
        Answer("gptbook's MultiHeadAttention itself", MultiHeadAttention),
    ],
))
