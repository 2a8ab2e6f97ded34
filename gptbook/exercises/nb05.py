"""Notebook 05's exercises (The building blocks): references, cases, common mistakes, hints, solutions."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..config import GPT_CONFIG_124M
from ..layers import GELU, LayerNorm
from ..model import TransformerBlock
from .spec import Answer, Case, Exercise, Mistake
from ._common import _dropout_in_eval, _dropout_note, _rand, _run_module

EXERCISES: list[Exercise] = []


class _LNVariant(LayerNorm):
    fault = ""

    def forward(self, x):
        if self.fault == "functional":  # valid
            return F.layer_norm(x, x.shape[-1:], self.scale, self.shift, 1e-5)
        dim = 0 if self.fault == "dim" else -1
        mean = x.mean(dim=dim, keepdim=True)
        var = x.var(dim=dim, keepdim=True, unbiased=self.fault == "bessel")
        if self.fault == "rsqrt":  # valid
            inv_std = torch.rsqrt((x - mean).pow(2).mean(-1, keepdim=True) + self.eps)
            return self.scale * (x - mean) * inv_std + self.shift
        if self.fault == "std":
            norm = (x - mean) / (x.std(dim=-1, keepdim=True) + self.eps)
        elif self.fault == "eps_big":
            norm = (x - mean) / torch.sqrt(var + 1e-3)
        elif self.fault == "no_center":
            norm = x / torch.sqrt(var + self.eps)
        elif self.fault == "eps_outside":
            norm = (x - mean) / (torch.sqrt(var) + self.eps)
        elif self.fault == "no_eps":
            norm = (x - mean) / torch.sqrt(var)
        else:
            norm = (x - mean) / torch.sqrt(var + self.eps)
        return norm if self.fault == "no_scale_shift" else self.scale * norm + self.shift


def _ln_variant(fault):
    return type(f"LN_{fault}", (_LNVariant,), {"fault": fault})


def _ln_cases():
    return [Case(label, lambda a=a: a) for label, a in [
        ("batch of 2, 4 tokens, 8 features", (dict(emb_dim=8), 1, (_rand(1, 2, 4, 8),))),
        ("one token", (dict(emb_dim=8), 2, (_rand(2, 1, 1, 8),))),
        ("GPT-2 width (768)", (dict(emb_dim=768), 3, (3 + 5 * _rand(3, 2, 3, 768),))),
        ("2 features", (dict(emb_dim=2), 4, (_rand(4, 3, 2),))),
        ("a constant vector (variance 0)", (dict(emb_dim=8), 5, (torch.full((1, 2, 8), 0.5),))),
        ("values close together", (dict(emb_dim=6), 6, (1 + 0.001 * _rand(6, 2, 6),))),
    ]]


EXERCISES.append(Exercise(
    id="05.1", title="Layer normalisation", name="MyLN",
    expects="a class MyLN(emb_dim) with parameters scale and shift, normalising over the last dimension",
    kind="class", reference=LayerNorm, cases=_ln_cases, run=_run_module(LayerNorm), atol=1e-4, rtol=1e-4,
    hints=["Per token vector: subtract the mean, divide by the standard deviation (with eps inside the square "
           "root), then multiply by scale and add shift.",
           "mean = x.mean(dim=-1, keepdim=True); var = x.var(dim=-1, keepdim=True, unbiased=False); "
           "self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift, with eps = 1e-5."],
    solution="class MyLN(nn.Module):\n"
             "    def __init__(self, emb_dim):\n"
             "        super().__init__()\n"
             "        self.eps = 1e-5\n"
             "        self.scale = nn.Parameter(torch.ones(emb_dim))\n"
             "        self.shift = nn.Parameter(torch.zeros(emb_dim))\n\n"
             "    def forward(self, x):\n"
             "        mean = x.mean(dim=-1, keepdim=True)\n"
             "        var = x.var(dim=-1, keepdim=True, unbiased=False)   # divide by n, not n - 1\n"
             "        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift",
    mistakes=[
        Mistake("the variance has Bessel's correction (unbiased, divides by n - 1)",
                "Layer normalisation divides by n: x.var(dim=-1, keepdim=True, unbiased=False).",
                answer=_ln_variant("bessel")),
        Mistake("eps is added outside the square root",
                "Add eps to the variance, inside the root: torch.sqrt(var + self.eps).",
                answer=_ln_variant("eps_outside")),
        Mistake("there is no eps, so a constant vector gives NaN",
                "A constant vector has variance 0: divide by torch.sqrt(var + self.eps) with eps = 1e-5.",
                answer=_ln_variant("no_eps")),
        Mistake("scale and shift are not applied",
                "After normalising, multiply by self.scale and add self.shift.",
                answer=_ln_variant("no_scale_shift")),
        Mistake("the statistics are taken over the wrong dimension",
                "Each token vector is normalised on its own: mean and variance over dim=-1 with keepdim=True.",
                answer=_ln_variant("dim")),
    ],
    wrong_answers=[
        Answer("x.std() + eps: Bessel's correction and eps outside the root", _ln_variant("std")),
        Answer("eps 1e-3", _ln_variant("eps_big")),
        Answer("the mean not subtracted", _ln_variant("no_center")),
    ],
    variants=[
        Answer("F.layer_norm", _ln_variant("functional")),
        Answer("torch.rsqrt and (x - mean)²", _ln_variant("rsqrt")),
    ],
))


def _gelu_cases():
    return [Case(label, lambda a=a: a) for label, a in [
        ("601 points from -3 to 3", (torch.linspace(-3, 3, 601),)),
        ("a (2, 3, 8) batch", (_rand(1, 2, 3, 8),)),
        ("one value: 0", (torch.tensor([0.0]),)),
        ("large values", (torch.tensor([-10.0, -6.0, 6.0, 10.0]),)),
        ("where exact and tanh differ most", (torch.linspace(-3, -2.4, 61),)),
    ]]


EXERCISES.append(Exercise(
    id="05.2", title="GELU, as GPT-2 computes it", name="my_gelu",
    expects="a function my_gelu(x) that returns the tanh approximation of GELU",
    kind="function", reference=GELU.formula, cases=_gelu_cases, atol=1e-5, rtol=1e-4,
    hints=["GPT-2 uses 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))).",
           "In PyTorch: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))."],
    solution="def my_gelu(x):\n"
             "    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))",
    mistakes=[
        Mistake("this is the exact (erf) GELU, not GPT-2's tanh approximation",
                "Close (at most 0.0005 apart), but GPT-2's numbers come from the tanh formula.",
                answer=lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))),
        Mistake("this is ReLU", "GELU is smooth: x times a soft step, 0.5 · (1 + tanh(...)).",
                answer=torch.relu),
        Mistake("x² instead of x³ inside the tanh", "The cubic term is 0.044715 * x**3.",
                answer=lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**2)))),
        Mistake("the factor 0.5 is missing", "0.5 * x * (1 + tanh(...)): the soft step goes from 0 to 1.",
                answer=lambda x: x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))),
        Mistake("the factor √(2/π) is missing", "Multiply the bracket by math.sqrt(2 / math.pi) inside the tanh.",
                answer=lambda x: 0.5 * x * (1 + torch.tanh(x + 0.044715 * x**3))),
        Mistake("this is the sigmoid approximation x · σ(1.702 x)",
                "GPT-2 uses the tanh form: 0.5 * x * (1 + tanh(√(2/π) (x + 0.044715 x³))).",
                answer=lambda x: x * torch.sigmoid(1.702 * x)),
    ],
    wrong_answers=[
        Answer("F.gelu without approximate='tanh'", lambda x: F.gelu(x),
               "this is the exact (erf) GELU, not GPT-2's tanh approximation"),
        Answer("x³ without the x", lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * 0.044715 * x**3))),
        Answer("tanh(x) alone", lambda x: 0.5 * x * (1 + torch.tanh(x))),
    ],
    variants=[
        Answer("F.gelu(approximate='tanh')", lambda x: F.gelu(x, approximate="tanh")),
        Answer("torch.nn.GELU('tanh') and torch.pow", lambda x: torch.nn.GELU("tanh")(x)),
        Answer("the formula with math.pi under torch.sqrt",
               lambda x: 0.5 * x * (1.0 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi))
                                                      * (x + 0.044715 * torch.pow(x, 3))))),
    ],
))


class _BlockVariant(TransformerBlock):
    """gptbook's block written out, with one thing done wrong or differently (``fault``)."""

    fault = ""

    def forward(self, x):
        fault, drop = self.fault, self.drop_shortcut
        if fault == "no_drop":
            drop = torch.nn.Identity()
        elif fault == "drop_always":
            drop = lambda h: F.dropout(h, self.drop_shortcut.p)  # noqa: E731  (training=True by default)
        elif fault == "functional":  # valid
            drop = lambda h: F.dropout(h, self.drop_shortcut.p, self.training)  # noqa: E731
        if fault == "no_shortcut":
            x = drop(self.att(self.norm1(x)))
            return drop(self.ff(self.norm2(x)))
        if fault == "post_norm":
            x = self.norm1(x + drop(self.att(x)))
            return self.norm2(x + drop(self.ff(x)))
        if fault == "one_norm":
            x = x + drop(self.att(self.norm1(x)))
            return x + drop(self.ff(self.norm1(x)))
        if fault == "shortcut_after_norm":
            h = self.norm1(x)
            x = h + drop(self.att(h))
            h = self.norm2(x)
            return h + drop(self.ff(h))
        if fault == "ff_no_shortcut":
            x = x + drop(self.att(self.norm1(x)))
            return drop(self.ff(self.norm2(x)))
        if fault == "drop_after_add":
            x = drop(x + self.att(self.norm1(x)))
            return drop(x + self.ff(self.norm2(x)))
        if fault == "drop_input":
            x = x + self.att(drop(self.norm1(x)))
            return x + self.ff(drop(self.norm2(x)))
        if fault == "book":  # valid: the book's way, the shortcut kept in a variable
            shortcut = x
            x = shortcut + self.drop_shortcut(self.att(self.norm1(x)))
            shortcut = x
            return shortcut + self.drop_shortcut(self.ff(self.norm2(x)))
        x = x + drop(self.att(self.norm1(x)))
        return x + drop(self.ff(self.norm2(x)))


def _block_variant(fault):
    return type(f"Block_{fault}", (_BlockVariant,), {"fault": fault})


_BLOCK_CFG = {**GPT_CONFIG_124M, "emb_dim": 16, "n_heads": 4, "context_length": 8, "drop_rate": 0.0}


def _block_cases():
    bias = {**_BLOCK_CFG, "qkv_bias": True}
    drop = {**_BLOCK_CFG, "drop_rate": 0.5}
    return [Case(label, lambda a=a: a, _dropout_note(label, a)) for label, a in [
        ("batch of 2, 5 tokens", (_BLOCK_CFG, 1, (_rand(1, 2, 5, 16),))),
        ("batch of 1", (_BLOCK_CFG, 2, (_rand(2, 1, 5, 16),))),
        ("one token", (_BLOCK_CFG, 3, (_rand(3, 2, 1, 16),))),
        ("the full context (8), qkv bias", (bias, 4, (_rand(4, 2, 8, 16),))),
        ("another seed", (_BLOCK_CFG, 5, (_rand(5, 3, 4, 16),))),
        ("drop_rate 0.5 in evaluation mode (no dropout)", (drop, 6, (_rand(6, 2, 5, 16),))),
        ("drop_rate 0.5 in training mode (dropout on both sub-layers' outputs, seeded)",
         (drop, 7, (_rand(7, 2, 6, 16),), "train")),
    ]]


EXERCISES.append(Exercise(
    id="05.3", title="The transformer block", name="MyBlock",
    expects="a class MyBlock(cfg) with gptbook.TransformerBlock's parameter names (att, ff, norm1, norm2)",
    kind="class", reference=TransformerBlock, cases=_block_cases, run=_run_module(TransformerBlock, takes_cfg=True),
    hints=["Two sub-layers, each as x = x + sublayer(norm(x)): first attention with norm1, then the "
           "feed-forward network with norm2.",
           "Keep x for the shortcut *before* normalising: shortcut = x; x = self.att(self.norm1(x)); "
           "x = self.drop_shortcut(x) + shortcut; the same again with norm2 and ff."],
    solution="class MyBlock(nn.Module):\n"
             "    def __init__(self, cfg):\n"
             "        super().__init__()\n"
             "        self.att = MultiHeadAttention(cfg['emb_dim'], cfg['emb_dim'], cfg['context_length'],\n"
             "                                      cfg['drop_rate'], cfg['n_heads'], cfg['qkv_bias'])\n"
             "        self.ff = FeedForward(cfg)\n"
             "        self.norm1 = LayerNorm(cfg['emb_dim'])\n"
             "        self.norm2 = LayerNorm(cfg['emb_dim'])\n"
             "        self.drop_shortcut = nn.Dropout(cfg['drop_rate'])\n\n"
             "    def forward(self, x):\n"
             "        x = x + self.drop_shortcut(self.att(self.norm1(x)))   # shortcut around attention\n"
             "        x = x + self.drop_shortcut(self.ff(self.norm2(x)))    # shortcut around the feed-forward\n"
             "        return x",
    mistakes=[
        Mistake("the shortcut connections are left out",
                "Add each sub-layer's input back to its output: x = x + self.att(self.norm1(x)).",
                answer=_block_variant("no_shortcut")),
        Mistake("the shortcut around the feed-forward network is left out",
                "The second sub-layer needs its shortcut too: x = x + self.ff(self.norm2(x)).",
                answer=_block_variant("ff_no_shortcut")),
        Mistake("the norms come after the addition (post-LayerNorm, the 2017 transformer)",
                "GPT-2 normalises *before* each sub-layer: x + att(norm1(x)); the shortcut path stays untouched.",
                answer=_block_variant("post_norm")),
        Mistake("norm1 is used for both sub-layers", "The feed-forward network gets its own norm: self.norm2.",
                answer=_block_variant("one_norm")),
        Mistake("the shortcut is taken after the norm",
                "Keep the input *before* normalising for the shortcut: shortcut = x, then x = self.norm1(x).",
                answer=_block_variant("shortcut_after_norm")),
        Mistake("the sub-layers' outputs are not dropped out in training (drop_shortcut is never used)",
                "GPT-2 drops out each sub-layer's output before adding it to the shortcut: "
                "x = x + self.drop_shortcut(self.att(self.norm1(x))), the same around the feed-forward.",
                answer=_block_variant("no_drop")),
        Mistake("the dropout comes after adding the shortcut, so the shortcut is dropped out too",
                "Drop out only the sub-layer's output: x + self.drop_shortcut(sublayer), not "
                "self.drop_shortcut(x + sublayer).",
                answer=_block_variant("drop_after_add")),
        _dropout_in_eval("drop_shortcut", _block_variant("drop_always")),
    ],
    wrong_answers=[
        Answer("dropout on the sub-layers' inputs instead of their outputs", _block_variant("drop_input")),
    ],
    variants=[
        Answer("the book's way: shortcut = x", _block_variant("book")),
        Answer("F.dropout(..., training=self.training)", _block_variant("functional")),
        Answer("gptbook's TransformerBlock itself", TransformerBlock),
    ],
))
