"""Notebook 03's exercises (Embeddings): references, cases, common mistakes, hints, solutions."""

from __future__ import annotations


import torch
import torch.nn.functional as F

from ..config import GPT2_CONFIGS, GPT_CONFIG_124M, GPT_CONFIG_TINY
from ..params import parameter_breakdown
from .spec import Answer, Case, Exercise, Mistake
from ._common import _ids, _run_no_grad

EXERCISES: list[Exercise] = []


def _ref_input_embeddings(token_ids, tok_emb, pos_emb):
    return tok_emb(token_ids) + pos_emb(torch.arange(token_ids.shape[1]))


def _embedding_cases():
    def make(seed, b, T):
        torch.manual_seed(seed)
        tok_emb, pos_emb = torch.nn.Embedding(50, 8), torch.nn.Embedding(6, 8)
        return _ids(seed, 50, b, T), tok_emb, pos_emb
    return [Case(label, lambda a=a: make(*a)) for label, a in [
        ("batch of 2, 4 tokens", (1, 2, 4)), ("batch of 1", (2, 1, 4)), ("one token", (3, 2, 1)),
        ("the full context (6)", (4, 3, 6)), ("another seed", (5, 2, 5))]]



EXERCISES.append(Exercise(
    id="03.1", title="Input embeddings", name="input_embeddings",
    expects="a function input_embeddings(token_ids, tok_emb, pos_emb) that returns token plus positional "
            "embeddings, shape (b, T, emb_dim)",
    kind="function", reference=_ref_input_embeddings, cases=_embedding_cases, run=_run_no_grad,
    hints=["Look up every token ID in tok_emb, look up the positions 0, 1, ..., T-1 in pos_emb, and add.",
           "positions = torch.arange(token_ids.shape[1]); tok_emb(token_ids) has shape (b, T, d) and "
           "pos_emb(positions) (T, d): broadcasting adds the positions to every sequence of the batch."],
    solution="def input_embeddings(token_ids, tok_emb, pos_emb):\n"
             "    positions = torch.arange(token_ids.shape[1])        # 0, 1, ..., T-1\n"
             "    return tok_emb(token_ids) + pos_emb(positions)      # (b, T, d) + (T, d) -> (b, T, d)",
    mistakes=[
        Mistake("the positional embeddings are left out",
                "Without positions the model cannot tell 'dog bites man' from 'man bites dog': add pos_emb(...).",
                answer=lambda ids, te, pe: te(ids)),
        Mistake("the positional table is indexed with the token IDs",
                "pos_emb takes positions 0 .. T-1 (torch.arange(T)), not the token IDs.",
                error=r"index out of range"),
        Mistake("the positions are counted from 1",
                "Python counts from 0: the first token sits at position 0, so positions = torch.arange(T) "
                "(the last one, T - 1, is the table's last row when T is the full context).",
                answer=lambda ids, te, pe: te(ids) + pe(torch.arange(1, ids.shape[1] + 1))),
        Mistake("the two embeddings are concatenated instead of added",
                "GPT-2 adds the two vectors (same width), it does not put them side by side.",
                answer=lambda ids, te, pe: torch.cat(
                    [te(ids), pe(torch.arange(ids.shape[1])).expand(ids.shape[0], -1, -1)], dim=-1)),
    ],
    wrong_answers=[
        Answer("the token IDs as positions", lambda ids, te, pe: te(ids) + pe(ids),
               "the positional table is indexed with the token IDs"),
        Answer("positions 1 .. T", lambda ids, te, pe: te(ids) + pe(torch.arange(1, ids.shape[1] + 1)),
               "the positions are counted from 1"),
        Answer("positions in reverse", lambda ids, te, pe: te(ids) + pe(torch.arange(ids.shape[1] - 1, -1, -1))),
        Answer("multiplied instead of added", lambda ids, te, pe: te(ids) * pe(torch.arange(ids.shape[1]))),
    ],
    variants=[
        Answer("the tables' weights, indexed", lambda ids, te, pe: te.weight[ids] + pe.weight[:ids.shape[1]]),
        Answer("F.embedding and a batch of positions",
               lambda ids, te, pe: F.embedding(ids, te.weight) + pe(torch.arange(ids.shape[1]).unsqueeze(0))),
    ],
))


def _ref_embedding_parameters(cfg):
    return cfg["vocab_size"] * cfg["emb_dim"] + cfg["context_length"] * cfg["emb_dim"]


EXERCISES.append(Exercise(
    id="03.2", title="Parameters of the two embedding tables", name="embedding_parameters",
    expects="a function embedding_parameters(cfg) that returns the number of parameters of tok_emb plus pos_emb",
    kind="function", reference=_ref_embedding_parameters,
    cases=lambda: [Case(name, lambda c=c: (c,)) for name, c in
                   [("GPT_CONFIG_TINY", GPT_CONFIG_TINY), ("GPT_CONFIG_124M", GPT_CONFIG_124M), *GPT2_CONFIGS.items()]],
    hints=["Each table has one row of emb_dim numbers per entry: one per token, one per position.",
           "vocab_size × emb_dim for the tokens plus context_length × emb_dim for the positions."],
    solution="def embedding_parameters(cfg):\n"
             "    return cfg['vocab_size'] * cfg['emb_dim'] + cfg['context_length'] * cfg['emb_dim']",
    mistakes=[
        Mistake("the positional table is left out", "The positional table has context_length × emb_dim numbers too.",
                answer=lambda c: c["vocab_size"] * c["emb_dim"]),
        Mistake("vocab_size × context_length is not a table of the model",
                "Both tables have emb_dim columns: rows × emb_dim for each.",
                answer=lambda c: c["vocab_size"] * c["context_length"]),
        Mistake("the output head is counted too", "Only the two embedding tables: the output head is another matrix.",
                answer=lambda c: 2 * c["vocab_size"] * c["emb_dim"] + c["context_length"] * c["emb_dim"]),
    ],
    wrong_answers=[
        Answer("rows only", lambda c: c["vocab_size"] + c["context_length"]),
        Answer("the output head counted twice", lambda c: 3 * c["vocab_size"] * c["emb_dim"]),
        Answer("emb_dim squared", lambda c: c["vocab_size"] * c["emb_dim"] + c["emb_dim"] ** 2),
    ],
    variants=[
        Answer("(rows) × emb_dim", lambda c: (c["vocab_size"] + c["context_length"]) * c["emb_dim"]),
        Answer("gptbook.parameter_breakdown", lambda c: parameter_breakdown(c)["token_embedding"]
               + parameter_breakdown(c)["positional_embedding"]),
    ],
))
