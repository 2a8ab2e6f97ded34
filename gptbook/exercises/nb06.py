"""Notebook 06's exercises (The GPT model): references, cases, common mistakes, hints, solutions."""

from __future__ import annotations


import torch
import torch.nn.functional as F

from ..config import GPT2_CONFIGS, GPT_CONFIG_124M, GPT_CONFIG_TINY
from ..model import GPTModel
from ..params import parameter_breakdown
from .spec import Answer, Case, Exercise, Mistake
from ._common import _GPT_CFG, _dropout_in_eval, _dropout_note, _ids, _run_module

EXERCISES: list[Exercise] = []


class _GPTVariant(GPTModel):
    """gptbook's model written out, with one thing done wrong or differently (``fault``)."""

    fault = ""

    def forward(self, idx):
        b, T = idx.shape
        fault, drop = self.fault, self.drop_emb
        if fault == "drop_always":
            drop = lambda h: F.dropout(h, self.drop_emb.p)  # noqa: E731  (training=True by default)
        x = self.tok_emb(idx)
        if fault == "drop_tokens":
            x = self.drop_emb(x)
        if fault == "pos_from_1":
            x = x + self.pos_emb(torch.arange(1, T + 1))
        elif fault == "weights":  # valid: the positions' rows, sliced
            x = x + self.pos_emb.weight[:T]
        elif fault != "no_pos":
            x = x + self.pos_emb(torch.arange(T))
        if fault not in ("no_drop", "drop_logits", "drop_tokens"):
            x = drop(x)
        if fault == "loop":  # valid: the blocks one by one
            for block in self.trf_blocks:
                x = block(x)
        else:
            x = self.trf_blocks(x)
        if fault != "no_final_norm":
            x = self.final_norm(x)
        logits = self.out_head(x)
        if fault == "drop_logits":
            logits = self.drop_emb(logits)
        return logits[:, -1, :] if fault == "last_only" else logits


def _gpt_variant(fault):
    return type(f"GPT_{fault}", (_GPTVariant,), {"fault": fault})



def _gpt_cases():
    return [Case(label, lambda a=a: a, _dropout_note(label, a)) for label, a in [
        ("batch of 2, 4 tokens", (_GPT_CFG, 1, (_ids(1, 100, 2, 4),))),
        ("batch of 1", (_GPT_CFG, 2, (_ids(2, 100, 1, 4),))),
        ("one token", (_GPT_CFG, 3, (_ids(3, 100, 2, 1),))),
        ("the full context (8), qkv bias", ({**_GPT_CFG, "qkv_bias": True}, 4, (_ids(4, 100, 2, 8),))),
        ("another seed, 3 layers", ({**_GPT_CFG, "n_layers": 3}, 5, (_ids(5, 100, 3, 6),))),
        ("drop_rate 0.5 in evaluation mode (no dropout)", ({**_GPT_CFG, "drop_rate": 0.5}, 6, (_ids(6, 100, 2, 5),))),
        ("drop_rate 0.5 in training mode (the embeddings dropped, then the blocks' dropout; seeded)",
         ({**_GPT_CFG, "drop_rate": 0.5}, 7, (_ids(7, 100, 2, 6),), "train")),
    ]]


EXERCISES.append(Exercise(
    id="06.1", title="Your own GPT", name="GPT",
    expects="a class GPT(cfg) with gptbook.GPTModel's parameter names (tok_emb, pos_emb, trf_blocks, final_norm, "
            "out_head) that returns logits (b, T, vocab_size)",
    kind="class", reference=GPTModel, cases=_gpt_cases, run=_run_module(GPTModel, takes_cfg=True),
    hints=["Embeddings (tokens + positions), the blocks, a final LayerNorm, the output head.",
           "x = self.tok_emb(idx) + self.pos_emb(torch.arange(T)); x = self.trf_blocks(self.drop_emb(x)); "
           "return self.out_head(self.final_norm(x))."],
    solution="class GPT(nn.Module):\n"
             "    def __init__(self, cfg):\n"
             "        super().__init__()\n"
             "        self.tok_emb = nn.Embedding(cfg['vocab_size'], cfg['emb_dim'])\n"
             "        self.pos_emb = nn.Embedding(cfg['context_length'], cfg['emb_dim'])\n"
             "        self.drop_emb = nn.Dropout(cfg['drop_rate'])\n"
             "        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg['n_layers'])])\n"
             "        self.final_norm = LayerNorm(cfg['emb_dim'])\n"
             "        self.out_head = nn.Linear(cfg['emb_dim'], cfg['vocab_size'], bias=False)\n\n"
             "    def forward(self, idx):\n"
             "        T = idx.shape[1]\n"
             "        x = self.tok_emb(idx) + self.pos_emb(torch.arange(T, device=idx.device))\n"
             "        x = self.trf_blocks(self.drop_emb(x))\n"
             "        return self.out_head(self.final_norm(x))        # (b, T, vocab_size)",
    mistakes=[
        Mistake("the positional embeddings are left out", "Add self.pos_emb(torch.arange(T)) to the token embeddings.",
                answer=_gpt_variant("no_pos")),
        Mistake("the final LayerNorm is left out", "Normalise once more after the last block: self.final_norm(x).",
                answer=_gpt_variant("no_final_norm")),
        Mistake("only the last position's logits are returned",
                "The model returns logits for every position, (b, T, vocab_size); generation picks the last one.",
                answer=_gpt_variant("last_only")),
        Mistake("the embeddings are not dropped out in training (drop_emb is never used)",
                "GPT-2 drops out the sum of the token and positional embeddings before the first block: "
                "x = self.drop_emb(tok_emb + pos_emb).",
                answer=_gpt_variant("no_drop")),
        Mistake("the dropout is applied to the logits instead of the embeddings",
                "drop_emb belongs right after the embeddings, before the blocks: "
                "self.trf_blocks(self.drop_emb(x)); the logits are never dropped out.",
                answer=_gpt_variant("drop_logits")),
        _dropout_in_eval("drop_emb", _gpt_variant("drop_always")),
        Mistake("the positions are counted from 1",
                "The first token sits at position 0: self.pos_emb(torch.arange(T)).",
                answer=_gpt_variant("pos_from_1")),
    ],
    wrong_answers=[
        Answer("dropout on the token embeddings only, before adding the positions", _gpt_variant("drop_tokens")),
    ],
    variants=[
        Answer("the blocks in a loop", _gpt_variant("loop")),
        Answer("pos_emb.weight[:T]", _gpt_variant("weights")),
        Answer("gptbook's GPTModel itself", GPTModel),
    ],
))


def _ref_gpt_parameters(cfg):
    return parameter_breakdown({**cfg, "tie_weights": False})["total"]


def _param_cases():
    return [Case(name, lambda c=c: (c,)) for name, c in [
        ("GPT_CONFIG_124M", GPT_CONFIG_124M), ("GPT_CONFIG_TINY (untied)", {**GPT_CONFIG_TINY, "tie_weights": False}),
        ("GPT-2 medium, book-style", {**GPT2_CONFIGS["gpt2-medium (355M)"], "qkv_bias": False, "tie_weights": False}),
        ("GPT-2 small with qkv bias", {**GPT_CONFIG_124M, "qkv_bias": True}),
        ("one layer", {**GPT_CONFIG_124M, "n_layers": 1})]]


def _params(cfg, head=True, norms=True, biases=True, final_norm=True):
    d, V, C, L = cfg["emb_dim"], cfg["vocab_size"], cfg["context_length"], cfg["n_layers"]
    qkv = 3 * d if cfg.get("qkv_bias") and biases else 0
    b = 1 if biases else 0
    block = 3 * d * d + qkv + d * d + b * d + (d * 4 * d + b * 4 * d) + (4 * d * d + b * d) + (4 * d if norms else 0)
    return V * d + C * d + L * block + (2 * d if final_norm else 0) + (d * V if head else 0)


EXERCISES.append(Exercise(
    id="06.2", title="Count the parameters by formula", name="gpt_parameters",
    expects="a function gpt_parameters(cfg) that returns the parameter count of GPTModel(cfg) with a separate "
            "output head",
    kind="function", reference=_ref_gpt_parameters, cases=_param_cases,
    hints=["Add up: token embedding, positional embedding, n_layers × one block, the final norm, the output head.",
           "One block: attention 3·d² (+ 3·d qkv biases if cfg['qkv_bias']) + d² + d (out_proj); feed-forward "
           "d·4d + 4d + 4d·d + d; two LayerNorms 4·d."],
    solution="def gpt_parameters(cfg):\n"
             "    d, V, C, L = cfg['emb_dim'], cfg['vocab_size'], cfg['context_length'], cfg['n_layers']\n"
             "    attention = 3 * d * d + (3 * d if cfg['qkv_bias'] else 0) + d * d + d\n"
             "    feed_forward = (d * 4 * d + 4 * d) + (4 * d * d + d)\n"
             "    norms = 2 * (d + d)\n"
             "    return V * d + C * d + L * (attention + feed_forward + norms) + 2 * d + d * V",
    mistakes=[
        Mistake("the output head is left out (that is the tied count)",
                "With a separate head, add its vocab_size × emb_dim weights.",
                answer=lambda c: _params(c, head=False)),
        Mistake("the LayerNorms are left out", "Each block has two LayerNorms of 2·d (scale and shift), and there is "
                                               "a final one.", answer=lambda c: _params(c, norms=False, final_norm=False)),
        Mistake("the final LayerNorm is left out", "After the blocks comes one more LayerNorm: 2·d parameters.",
                answer=lambda c: _params(c, final_norm=False)),
        Mistake("the biases are left out", "out_proj and both feed-forward layers have biases (d, 4d and d).",
                answer=lambda c: _params(c, biases=False)),
    ],
    wrong_answers=[
        Answer("the qkv biases ignored", lambda c: _params({**c, "qkv_bias": False})),
        Answer("a feed-forward layer 2x wide instead of 4x",
               lambda c: _params(c) - c["n_layers"] * (4 * c["emb_dim"] ** 2 + 2 * c["emb_dim"])),
        Answer("the positional table left out", lambda c: _params(c) - c["context_length"] * c["emb_dim"]),
    ],
    variants=[
        Answer("12·L·d² + 10·L·d + ... collected", lambda c: 12 * c["n_layers"] * c["emb_dim"] ** 2
               + (10 + 3 * bool(c["qkv_bias"])) * c["n_layers"] * c["emb_dim"]
               + (2 * c["vocab_size"] + c["context_length"] + 2) * c["emb_dim"]),
        Answer("gptbook.parameter_breakdown, untied", _ref_gpt_parameters),
    ],
))


def _ref_training_memory(n_params):
    return 4 * n_params * 4 / 1024**2


EXERCISES.append(Exercise(
    id="06.3", title="Memory for training", name="training_memory_mb",
    expects="a function training_memory_mb(n_params) that returns the MB (1024 × 1024 bytes) for weights, "
            "gradients and AdamW's two statistics in fp32",
    kind="function", reference=_ref_training_memory, atol=1e-6, rtol=1e-9,
    cases=lambda: [Case(f"{n:,} parameters", lambda n=n: (n,)) for n in
                   (163_009_536, 124_439_808, 1_557_611_200, 1, 12_865_792)],
    hints=["Four numbers per parameter (weight, gradient, two AdamW averages), four bytes each.",
           "4 × 4 × n_params bytes, divided by 1024 ** 2."],
    solution="def training_memory_mb(n_params):\n"
             "    return 4 * n_params * 4 / 1024**2   # 4 copies x 4 bytes (fp32)",
    mistakes=[
        Mistake("only the weights are counted", "Training keeps 4 numbers per parameter: weight, gradient and "
                                                "AdamW's two running averages.",
                answer=lambda n: n * 4 / 1024**2),
        Mistake("megabytes of 1000 × 1000 bytes", "The course's MB is 1024 × 1024 bytes.",
                answer=lambda n: 16 * n / 1000**2),
        Mistake("2 bytes per number (bf16) instead of 4 (fp32)", "fp32 takes 4 bytes per number.",
                answer=lambda n: 8 * n / 1024**2),
    ],
    wrong_answers=[
        Answer("weights and gradients only (the same number as bf16)", lambda n: 2 * n * 4 / 1024**2),
        Answer("bits instead of bytes", lambda n: 16 * 8 * n / 1024**2),
        Answer("kilobytes", lambda n: 16 * n / 1024),
    ],
    variants=[
        Answer("16 bytes / 2**20", lambda n: n * 16 / 2**20),
        Answer("a step at a time", lambda n: (n * 4 + n * 4 + 2 * n * 4) / (1024 * 1024)),
    ],
))
