"""The course's exercises: for each one the reference, the inputs it is checked on, the common
mistakes (each written out as a wrong answer, so ``check`` can recognise it), hints and solution.

Used by ``gptbook.exercises`` (``check``, ``hint``, ``solution``, ``progress``). Ids are
"notebook.number": "04.1" is the first exercise of notebook 04.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional

import torch
import torch.nn.functional as F

from .attention import MultiHeadAttention
from .config import GPT2_CONFIGS, GPT_CONFIG_124M, GPT_CONFIG_TINY
from .exercises import Answer, Case, Exercise, Mistake, Property, compare, register
from .generation import filter_logits, generate_text_simple
from .layers import GELU, LayerNorm
from .model import GPTModel, TransformerBlock
from .params import parameter_breakdown
from .tokenizer import get_tokenizer, text_to_token_ids
from .weights import hf_to_gptbook_state_dict

EOT = {"<|endoftext|>"}


def _rand(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _ids(seed: int, high: int, *shape: int) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


_DROPOUT_SEED = 1234


def _dropout_note(label: str, args: tuple) -> Optional[str]:
    """What a dropout case of 04.2, 05.3 or 06.1 tests, for its failure message."""
    if args[-1] == "train":
        return ("In training mode the check seeds PyTorch's random generator for your module and for the reference "
                "alike, so the same dropout masks come out only if each dropout sits where GPT-2 has it and is "
                "drawn once, in the same order (nn.Dropout or F.dropout(..., training=self.training)).")
    if "evaluation mode" in label:
        return "In evaluation mode (after model.eval()) dropout must do nothing."
    return None


def _run_module(reference_cls, takes_cfg: bool = False):
    """How a class answer runs: build it with the case's arguments, copy the reference's (randomised)
    weights into it by name, and call it. ``run.prepare`` builds the reference once, outside the time
    budget."""

    def prepare(args):
        ctor, seed, inputs, *mode = args
        torch.manual_seed(seed)
        ref = reference_cls(ctor) if takes_cfg else reference_cls(**ctor)
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for name, p in ref.named_parameters():
                if name.endswith("scale"):
                    p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
                elif name.endswith(("shift", "bias")):
                    p.copy_(0.2 * torch.randn(p.shape, generator=gen))
        return (ctor, ref.state_dict(), inputs, *mode)

    def run(answer, args):
        ctor, want, inputs, *mode = args
        mine = answer(ctor) if takes_cfg else answer(**ctor)
        have = mine.state_dict()
        missing = [k for k in want if k not in have]
        extra = [k for k in have if k not in want]
        if missing or extra:
            raise ValueError(
                f"the parameters are named differently from {reference_cls.__name__}'s: "
                + (f"missing {', '.join(missing[:3])}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"unexpected {', '.join(extra[:3])}" if extra else "")
            )
        for k in want:
            if have[k].shape != want[k].shape:
                raise ValueError(f"parameter {k} has shape {tuple(have[k].shape)}, expected {tuple(want[k].shape)}")
        mine.load_state_dict(want)
        # A case marked "train" runs in training mode, where dropout is on: the same seed draws the same
        # masks as the reference's when the dropout sits where GPT-2 has it (and is drawn in the same order).
        mine.train(mode == ["train"])
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(_DROPOUT_SEED)
            return mine(*inputs)

    run.prepare = prepare
    return run


# ==============================================================================================
# 01 · Text to tokens
# ==============================================================================================

def _ref_text_to_ids(text, tokenizer):
    return text_to_token_ids(text, tokenizer)


def _text_cases():
    tok = get_tokenizer()
    return [Case(label, lambda t=t: (t, tok)) for label, t in [
        ("a sentence", "Every effort moves you"),
        ("one token", "Hello"),
        ("with <|endoftext|>", "The end.<|endoftext|> A new story"),
        ("accents and emoji", "café 🙂"),
    ]]


register(Exercise(
    id="01.1", title="Text to a batch of token IDs", name="my_text_to_token_ids",
    expects="a function my_text_to_token_ids(text, tokenizer) that returns a tensor of shape (1, n)",
    kind="function", reference=_ref_text_to_ids, cases=_text_cases,
    hints=["Three steps: encode the text, turn the list into a tensor, add a batch dimension.",
           "tokenizer.encode(text, allowed_special={'<|endoftext|>'}) gives the IDs; torch.tensor(ids) makes "
           "a tensor of shape (n,); .unsqueeze(0) makes it (1, n)."],
    solution="def my_text_to_token_ids(text, tokenizer):\n"
             "    ids = tokenizer.encode(text, allowed_special={'<|endoftext|>'})\n"
             "    return torch.tensor(ids).unsqueeze(0)   # (1, n): a batch of one",
    mistakes=[
        Mistake("the batch dimension is missing (shape (n,) instead of (1, n))",
                "Models take batches: add a dimension in front with .unsqueeze(0).",
                answer=lambda text, tok: torch.tensor(tok.encode(text, allowed_special=EOT))),
        Mistake("the batch dimension is added at the end (shape (n, 1))",
                "unsqueeze(0) puts the new dimension first, unsqueeze(1) (or -1) last: the batch comes first.",
                answer=lambda text, tok: torch.tensor(tok.encode(text, allowed_special=EOT)).unsqueeze(1)),
        Mistake("a Python list instead of a tensor",
                "Wrap the IDs in torch.tensor(...) before adding the batch dimension.",
                answer=lambda text, tok: [tok.encode(text, allowed_special=EOT)]),
        Mistake("<|endoftext|> is not allowed",
                "tiktoken refuses special tokens unless you allow them: "
                "tokenizer.encode(text, allowed_special={'<|endoftext|>'}).",
                error="disallowed special token"),
    ],
    wrong_answers=[
        Answer("no allowed_special", lambda text, tok: torch.tensor(tok.encode(text)).unsqueeze(0),
               "<|endoftext|> is not allowed"),
        Answer("float token IDs", lambda text, tok: torch.tensor([tok.encode(text, allowed_special=EOT)],
                                                                 dtype=torch.float32)),
        Answer("encode_ordinary: <|endoftext|> spelled out in pieces",
               lambda text, tok: torch.tensor([tok.encode_ordinary(text)])),
        Answer("one ID per character", lambda text, tok: torch.tensor([[ord(c) for c in text]])),
    ],
    variants=[
        Answer("torch.tensor([ids])",
               lambda text, tok: torch.tensor([tok.encode(text, allowed_special={"<|endoftext|>"})])),
        Answer("allowed_special='all' and [None]",
               lambda text, tok: torch.tensor(tok.encode(text, allowed_special="all"))[None]),
        Answer("gptbook.text_to_token_ids", text_to_token_ids),
    ],
))


def _ref_tokens_per_character(text, tokenizer):
    return len(tokenizer.encode(text)) / len(text)


def _ratio_cases():
    tok = get_tokenizer()
    return [Case(label, lambda t=t: (t, tok)) for label, t in [
        ("English", "The weather is nice today."),
        ("German", "Das Wetter ist heute schön."),
        ("Japanese", "今日はいい天気です。"),
        ("one character", "a"),
        ("emoji", "I ❤️ tea 🙂👍"),
    ]]


register(Exercise(
    id="01.2", title="Tokens per character", name="tokens_per_character",
    expects="a function tokens_per_character(text, tokenizer) that returns GPT-2 tokens divided by characters",
    kind="function", reference=_ref_tokens_per_character, cases=_ratio_cases, atol=1e-9, rtol=1e-9,
    hints=["Count two things: the tokens of the encoded text, and the characters of the text itself.",
           "len(tokenizer.encode(text)) tokens, len(text) characters; divide the first by the second with /."],
    solution="def tokens_per_character(text, tokenizer):\n"
             "    return len(tokenizer.encode(text)) / len(text)",
    mistakes=[
        Mistake("it counts UTF-8 bytes instead of characters",
                "len(text) counts characters; len(text.encode('utf-8')) counts bytes, which differ for ü, 日 or 🙂.",
                answer=lambda text, tok: len(tok.encode(text)) / len(text.encode("utf-8"))),
        Mistake("the ratio is upside down (characters per token)",
                "Tokens per character: the number of tokens goes on top.",
                answer=lambda text, tok: len(text) / len(tok.encode(text))),
        Mistake("integer division (//) throws the fraction away",
                "Use / for a fraction; // rounds down to a whole number.",
                answer=lambda text, tok: len(tok.encode(text)) // len(text)),
        Mistake("it counts words instead of characters",
                "len(text.split()) counts words; the exercise asks for characters, len(text).",
                answer=lambda text, tok: len(tok.encode(text)) / len(text.split())),
    ],
    wrong_answers=[
        Answer("rounded to 2 digits", lambda text, tok: round(len(tok.encode(text)) / len(text), 2)),
        Answer("distinct tokens only", lambda text, tok: len(set(tok.encode(text))) / len(text)),
        Answer("characters without spaces", lambda text, tok: len(tok.encode(text)) / len(text.replace(" ", ""))),
    ],
    variants=[
        Answer("a 0-dim tensor",
               lambda text, tok: torch.tensor(len(tok.encode(text)) / len(text), dtype=torch.float64)),
        Answer("len(list(text)) and a float", lambda text, tok: float(len(tok.encode(text))) / len(list(text))),
    ],
))


# ==============================================================================================
# 02 · Inputs and targets
# ==============================================================================================

def _ref_pairs(token_ids, max_length, stride):
    return [(list(token_ids[i:i + max_length]), list(token_ids[i + 1:i + max_length + 1]))
            for i in range(0, len(token_ids) - max_length, stride)]


def _run_pairs(answer, args):
    out = answer(*args)
    if isinstance(out, (list, tuple)):  # accept tensors or tuples inside: compare the numbers
        return [tuple(x.tolist() if isinstance(x, torch.Tensor) else list(x) if isinstance(x, (list, tuple)) else x
                      for x in pair) if isinstance(pair, (list, tuple)) else pair for pair in out]
    return out


def _pair_cases():
    ids = list(range(100, 120))
    return [Case(label, lambda a=a: a) for label, a in [
        ("20 tokens, max_length=4, stride=4", (ids, 4, 4)),
        ("20 tokens, max_length=4, stride=2", (ids, 4, 2)),
        ("20 tokens, max_length=8, stride=1", (ids, 8, 1)),
        ("one token per window", (ids[:6], 1, 1)),
        ("exactly one window (5 tokens, max_length=4)", (ids[:5], 4, 4)),
        ("too short (4 tokens, max_length=4)", (ids[:4], 4, 4)),
    ]]


def _pairs_while(token_ids, max_length, stride):
    pairs, i = [], 0
    while i + max_length < len(token_ids):
        pairs.append((tuple(token_ids[i:i + max_length]), tuple(token_ids[i + 1:i + max_length + 1])))
        i += stride
    return pairs


register(Exercise(
    id="02.1", title="Inputs and targets with a sliding window", name="input_target_pairs",
    expects="a function input_target_pairs(token_ids, max_length, stride) that returns a list of "
            "(input, target) pairs of lists",
    kind="function", reference=_ref_pairs, cases=_pair_cases, run=_run_pairs,
    hints=["A window starts at 0, stride, 2*stride, ...; its target is the same window moved one token to the right.",
           "for i in range(0, len(token_ids) - max_length, stride): input token_ids[i:i + max_length], target "
           "token_ids[i + 1:i + max_length + 1]. The loop stops early enough that the last target is complete."],
    solution="def input_target_pairs(token_ids, max_length, stride):\n"
             "    pairs = []\n"
             "    for i in range(0, len(token_ids) - max_length, stride):\n"
             "        pairs.append((token_ids[i:i + max_length], token_ids[i + 1:i + max_length + 1]))\n"
             "    return pairs",
    mistakes=[
        Mistake("the targets are not shifted by one (target == input)",
                "The target at each position is the *next* token: slice it from i + 1 to i + max_length + 1.",
                answer=lambda t, m, s: [(t[i:i + m], t[i:i + m]) for i in range(0, len(t) - m, s)]),
        Mistake("the loop runs one window too far, so the last target is one token short",
                "Each window needs max_length + 1 tokens; range(0, len(token_ids) - max_length, stride) stops in time.",
                answer=lambda t, m, s: [(t[i:i + m], t[i + 1:i + m + 1]) for i in range(0, len(t) - m + 1, s)]),
        Mistake("the stride is ignored (every window starts one token after the previous one)",
                "Move the start by stride: range(0, ..., stride).",
                answer=lambda t, m, s: [(t[i:i + m], t[i + 1:i + m + 1]) for i in range(0, len(t) - m)]),
    ],
    wrong_answers=[
        Answer("the target one token too long",
               lambda t, m, s: [(t[i:i + m], t[i + 1:i + m + 2]) for i in range(0, len(t) - m, s)]),
        Answer("the first window skipped",
               lambda t, m, s: [(t[i:i + m], t[i + 1:i + m + 1]) for i in range(s, len(t) - m, s)]),
        Answer("inputs and targets swapped",
               lambda t, m, s: [(t[i + 1:i + m + 1], t[i:i + m]) for i in range(0, len(t) - m, s)]),
    ],
    variants=[
        Answer("tensors inside", lambda t, m, s: [(torch.tensor(t[i:i + m]), torch.tensor(t[i + 1:i + m + 1]))
                                                  for i in range(0, len(t) - m, s)]),
        Answer("a while loop and tuples", _pairs_while),
    ],
))


def _ref_count_windows(n_tokens, max_length, stride):
    return len(range(0, n_tokens - max_length, stride))


def _count_windows_loop(n_tokens, max_length, stride):
    count, start = 0, 0
    while start < n_tokens - max_length:
        count, start = count + 1, start + stride
    return count


register(Exercise(
    id="02.2", title="Count the windows", name="count_windows",
    expects="a function count_windows(n_tokens, max_length, stride) that returns how many windows GPTDatasetV1 makes",
    kind="function", reference=_ref_count_windows,
    cases=lambda: [Case(label, lambda a=a: a) for label, a in [
        ("the lighthouse story", (147, 4, 4)), ("the corpus, stride 100", (460004, 256, 100)),
        ("stride 1", (10, 4, 1)), ("exactly one window", (5, 4, 4)), ("too short", (4, 4, 4)),
        ("far too short", (2, 8, 2)), ("uneven", (100, 10, 3))]],
    hints=["The windows start at 0, stride, 2*stride, ... as long as the start is below n_tokens - max_length.",
           "That is ceil((n_tokens - max_length) / stride) starts, and never fewer than 0: "
           "max(0, math.ceil((n_tokens - max_length) / stride))."],
    solution="import math\n\n"
             "def count_windows(n_tokens, max_length, stride):\n"
             "    return max(0, math.ceil((n_tokens - max_length) / stride))",
    mistakes=[
        Mistake("it rounds down instead of up",
                "A last, partial step still starts a window: round up with math.ceil, not //.",
                answer=lambda n, m, s: max(0, (n - m) // s)),
        Mistake("it forgets that each window needs max_length tokens (n_tokens / stride)",
                "Only starts below n_tokens - max_length leave room for a whole window and its target.",
                answer=lambda n, m, s: math.ceil(n / s)),
        Mistake("a text that is too short gives a negative count",
                "There cannot be fewer than 0 windows: max(0, ...).",
                answer=lambda n, m, s: math.ceil((n - m) / s)),
    ],
    wrong_answers=[
        Answer("one more than fits (// + 1)", lambda n, m, s: max(0, (n - m) // s + 1)),
        Answer("n_tokens // max_length", lambda n, m, s: n // m),
        Answer("a float", lambda n, m, s: max(0, (n - m) / s)),
    ],
    variants=[
        Answer("len(range(...))", lambda n, m, s: len(range(0, n - m, s))),
        Answer("ceiling by negative floor division", lambda n, m, s: max(0, -(-(n - m) // s))),
        Answer("counting in a loop", _count_windows_loop),
    ],
))


# ==============================================================================================
# 03 · Embeddings
# ==============================================================================================

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


def _dropout_in_eval(module: str, answer) -> Mistake:
    """The mistake of 04.2, 05.3 and 06.1 where ``module`` (an nn.Dropout) is replaced by F.dropout(x, p)."""
    return Mistake("dropout stays on in evaluation mode",
                   f"F.dropout(x, p) drops in every mode unless you pass training=self.training; the module "
                   f"self.{module} follows model.train() / model.eval() by itself.", answer=answer)


def _run_no_grad(answer, args):
    with torch.no_grad():
        return answer(*args)


register(Exercise(
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


register(Exercise(
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


# ==============================================================================================
# 04 · Attention
# ==============================================================================================

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


register(Exercise(
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


register(Exercise(
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


# ==============================================================================================
# 05 · The building blocks
# ==============================================================================================

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


register(Exercise(
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


register(Exercise(
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


register(Exercise(
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


# ==============================================================================================
# 06 · The GPT model
# ==============================================================================================

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


_GPT_CFG = {**GPT_CONFIG_124M, "vocab_size": 100, "emb_dim": 16, "n_heads": 4, "n_layers": 2,
            "context_length": 8, "drop_rate": 0.0}


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


register(Exercise(
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


register(Exercise(
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


register(Exercise(
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


# ==============================================================================================
# 07 · Generating text (placed in notebook 07)
# ==============================================================================================

@lru_cache(maxsize=4)
def _tiny_model(seed: int, n_layers: int = 2) -> GPTModel:
    torch.manual_seed(seed)
    return GPTModel({**_GPT_CFG, "n_layers": n_layers}).eval()


def _ref_generate_greedy(model, idx, max_new_tokens, context_size):
    return generate_text_simple(model, idx, max_new_tokens, context_size)


def _greedy_variant(fault):
    def generate(model, idx, max_new_tokens, context_size):
        start = idx
        for _ in range(max_new_tokens):
            if fault == "no_crop":
                cond = idx
            elif fault == "crop_front":
                cond = idx[:, :context_size]
            elif fault == "model_context":
                cond = idx[:, -model.cfg["context_length"]:]
            else:
                cond = idx[:, -context_size:]
            with torch.no_grad():
                logits = model(cond)
            last = logits[:, 0, :] if fault == "first" else logits[:, -1, :]
            if fault == "dim0":
                nxt = torch.argmax(last, dim=0, keepdim=True)
            else:
                nxt = torch.argmax(last, dim=-1, keepdim=True)
            idx = torch.cat((idx, nxt), dim=1)
        return idx[:, start.shape[1]:] if fault == "only_new" else idx
    return generate


def _generation_cases():
    return [Case(label, lambda a=a: (_tiny_model(a[0]), *a[1:])) for label, a in [
        ("batch of 2, 3-token prompts, 5 new", (1, _ids(1, 100, 2, 3), 5, 8)),
        ("batch of 1", (1, _ids(2, 100, 1, 3), 5, 8)),
        ("one-token prompt", (1, _ids(3, 100, 2, 1), 4, 8)),
        ("a prompt longer than the context (10 > 8)", (2, _ids(4, 100, 2, 10), 3, 8)),
        ("another model seed", (3, _ids(5, 100, 3, 4), 6, 8)),
        ("context_size 4, shorter than the model's 8 (6-token prompts)", (1, _ids(6, 100, 2, 6), 4, 4)),
    ]]


def _greedy_preallocated(model, idx, max_new_tokens, context_size):
    b, n = idx.shape
    out = torch.empty(b, n + max_new_tokens, dtype=idx.dtype)
    out[:, :n] = idx
    with torch.no_grad():
        for i in range(n, n + max_new_tokens):
            probas = torch.softmax(model(out[:, max(0, i - context_size):i])[:, -1], dim=-1)
            out[:, i] = probas.argmax(dim=-1)
    return out


def _greedy_max(model, idx, max_new_tokens, context_size):
    for _ in range(max_new_tokens):
        logits = model(idx[:, -context_size:]).detach()[:, -1, :]
        idx = torch.cat([idx, logits.max(dim=-1).indices.unsqueeze(-1)], dim=-1)
    return idx


def _greedy_sampled(model, idx, max_new_tokens, context_size):
    gen = torch.Generator().manual_seed(0)
    for _ in range(max_new_tokens):
        with torch.no_grad():
            probas = torch.softmax(model(idx[:, -context_size:])[:, -1, :], dim=-1)
        idx = torch.cat((idx, torch.multinomial(probas, 1, generator=gen)), dim=1)
    return idx


register(Exercise(
    id="07.1", title="Greedy generation", name="generate_greedy",
    expects="a function generate_greedy(model, idx, max_new_tokens, context_size) that returns idx with "
            "max_new_tokens greedy tokens appended, shape (b, n + max_new_tokens)",
    kind="function", reference=_ref_generate_greedy, cases=_generation_cases,
    hints=["Loop max_new_tokens times: crop to the last context_size tokens, run the model, take the most likely "
           "next token at the last position, append it.",
           "logits = model(idx[:, -context_size:])[:, -1, :] is (b, vocab_size); "
           "torch.argmax(logits, dim=-1, keepdim=True) is (b, 1); torch.cat((idx, next_id), dim=1)."],
    solution="def generate_greedy(model, idx, max_new_tokens, context_size):\n"
             "    for _ in range(max_new_tokens):\n"
             "        with torch.no_grad():\n"
             "            logits = model(idx[:, -context_size:])[:, -1, :]        # (b, vocab_size)\n"
             "        next_id = torch.argmax(logits, dim=-1, keepdim=True)       # (b, 1)\n"
             "        idx = torch.cat((idx, next_id), dim=1)\n"
             "    return idx",
    mistakes=[
        Mistake("argmax over the wrong dimension",
                "The vocabulary is the last dimension: torch.argmax(logits, dim=-1, keepdim=True).",
                answer=_greedy_variant("dim0")),
        Mistake("the first position's logits are used instead of the last",
                "Only the last position predicts the token after the prompt: logits[:, -1, :].",
                answer=_greedy_variant("first")),
        Mistake("the input is not cropped to the context",
                "The model reads at most context_size tokens: feed idx[:, -context_size:].",
                error=r"context_length is"),
        Mistake("only the new tokens are returned", "Return the prompt with the new tokens appended: torch.cat((idx, ...)).",
                answer=_greedy_variant("only_new")),
        Mistake("the front of the context is kept instead of the back",
                "Crop to the *last* context_size tokens, the newest ones: idx[:, -context_size:], not "
                "idx[:, :context_size].",
                answer=_greedy_variant("crop_front")),
        Mistake("the input is cropped to the model's context_length instead of context_size",
                "Use the context_size argument: idx[:, -context_size:] (it may be shorter than the model's).",
                answer=_greedy_variant("model_context")),
    ],
    wrong_answers=[
        Answer("no crop at all", lambda m, idx, k, c: _greedy_variant("no_crop")(m, idx, k, c),
               "the input is not cropped to the context"),
        Answer("sampling instead of the most likely token", _greedy_sampled),
        Answer("one token too few", lambda m, idx, k, c: generate_text_simple(m, idx, k - 1, c)),
    ],
    variants=[
        Answer("a preallocated output, probas.argmax", _greedy_preallocated),
        Answer("logits.max(-1).indices", _greedy_max),
        Answer("gptbook.generate_text_simple", generate_text_simple),
    ],
))


def _ref_next_token_probas(logits, temperature, top_k):
    kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
    logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.softmax(logits / temperature, dim=-1)


def _probas_variant(fault):
    def probas(logits, temperature, top_k):
        if fault == "after_softmax":
            p = torch.softmax(logits / temperature, dim=-1)
            kth = torch.topk(p, top_k, dim=-1).values[:, -1:]
            return p.masked_fill(p < kth, 0.0)
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        drop = logits <= kth if fault == "le" else logits < kth
        masked = logits.masked_fill(drop, 0.0 if fault == "zero" else float("-inf"))
        scaled = masked * temperature if fault == "times" else masked / temperature
        return torch.softmax(scaled, dim=0 if fault == "batch" else -1)
    return probas


def _probas_cases():
    return [Case(label, lambda a=a: (3 * _rand(a[0], a[1], 10), a[2], a[3])) for label, a in [
        ("batch of 2, temperature 1, top-3", (1, 2, 1.0, 3)),
        ("temperature 0.5, top-5", (2, 2, 0.5, 5)),
        ("temperature 2, top-5", (3, 2, 2.0, 5)),
        ("batch of 1, top-1", (4, 1, 1.5, 1)),
        ("top-k = the whole vocabulary", (5, 3, 0.8, 10)),
    ]]


def _probas_scatter(logits, temperature, top_k):
    top = torch.topk(logits / temperature, top_k, dim=-1)
    kept = torch.full_like(logits, float("-inf")).scatter(-1, top.indices, top.values)
    return F.softmax(kept, dim=1)


def _probas_sorted(logits, temperature, top_k):
    kth = logits.sort(dim=-1, descending=True).values[:, top_k - 1:top_k]
    return torch.softmax(torch.where(logits >= kth, logits / temperature, -torch.inf), dim=-1)


register(Exercise(
    id="07.2", title="Top-k and temperature", name="next_token_probas",
    expects="a function next_token_probas(logits, temperature, top_k) that takes logits (b, vocab_size) and "
            "returns the sampling probabilities (b, vocab_size)",
    kind="function", reference=_ref_next_token_probas, cases=_probas_cases,
    hints=["Keep the top_k largest logits, set the others to -inf, divide by the temperature, softmax.",
           "kth = torch.topk(logits, top_k, dim=-1).values[:, -1:] (b, 1); "
           "logits.masked_fill(logits < kth, float('-inf')); torch.softmax(logits / temperature, dim=-1)."],
    solution="def next_token_probas(logits, temperature, top_k):\n"
             "    kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]            # (b, 1)\n"
             "    logits = logits.masked_fill(logits < kth, float('-inf'))\n"
             "    return torch.softmax(logits / temperature, dim=-1)",
    mistakes=[
        Mistake("the logits are multiplied by the temperature", "Divide by it: a high temperature must flatten.",
                answer=_probas_variant("times")),
        Mistake("the filtered tokens get logit 0 instead of -inf",
                "exp(0) = 1 is not a probability of zero: use float('-inf').",
                answer=_probas_variant("zero")),
        Mistake("top-k is applied after the softmax, so the probabilities no longer sum to 1",
                "Filter the logits first (with -inf), then take the softmax.",
                answer=_probas_variant("after_softmax")),
        Mistake("<= instead of < drops the k-th largest logit too (k - 1 tokens are left, none for top-1)",
                "Drop only the logits *below* the k-th largest: logits < kth (ties with it stay).",
                answer=_probas_variant("le")),
        Mistake("the softmax runs over the batch instead of the vocabulary",
                "Each row is one sequence's distribution over the vocabulary: torch.softmax(..., dim=-1).",
                answer=_probas_variant("batch")),
    ],
    wrong_answers=[
        Answer("no top-k at all", lambda logits, t, k: torch.softmax(logits / t, dim=-1)),
        Answer("the k smallest logits kept", lambda logits, t, k: _ref_next_token_probas(-logits, t, k)),
        Answer("logits returned, not probabilities", lambda logits, t, k: filter_logits(logits, t, k)),
    ],
    variants=[
        Answer("topk values scattered into -inf", _probas_scatter),
        Answer("sort, torch.where and logits >= kth", _probas_sorted),
        Answer("gptbook.filter_logits and a softmax",
               lambda logits, t, k: torch.softmax(filter_logits(logits, t, k), -1)),
    ],
))


def _cached_generate(model, idx, max_new_tokens, pos_shift=0, mask_offset=True, one_by_one=False):
    """Greedy generation with a key/value cache written out by hand on gptbook's GPTModel; ``pos_shift``
    (None: no offset at all) and ``mask_offset`` build in mistakes. The prompt goes in at once (or, with
    ``one_by_one``, token by token), and the last new token goes through the model too."""
    cache = [([], []) for _ in model.trf_blocks]
    out = idx
    pending = [idx[:, i:i + 1] for i in range(idx.shape[1])] if one_by_one else [idx]
    with torch.no_grad():
        while pending:
            new = pending.pop(0)
            start = sum(k.shape[2] for k in cache[0][0])  # tokens seen so far
            t = new.shape[1]
            pos = torch.arange(t) if pos_shift is None else torch.arange(start + pos_shift, start + pos_shift + t)
            x = model.tok_emb(new) + model.pos_emb(pos)
            for block, (ks, vs) in zip(model.trf_blocks, cache):
                att = block.att
                h = block.norm1(x)
                b = h.shape[0]
                split = lambda z: z.view(b, t, att.num_heads, att.head_dim).transpose(1, 2)  # noqa: E731
                ks.append(split(att.W_key(h)))
                vs.append(split(att.W_value(h)))
                k, v = torch.cat(ks, dim=2), torch.cat(vs, dim=2)
                n = k.shape[2]
                mask = att.mask[n - t:n, :n] if mask_offset else att.mask[:t, :n]
                scores = (split(att.W_query(h)) @ k.transpose(2, 3)).masked_fill(mask, float("-inf"))
                ctx = (torch.softmax(scores / att.head_dim**0.5, dim=-1) @ v).transpose(1, 2).reshape(b, t, -1)
                x = x + att.out_proj(ctx)
                x = x + block.ff(block.norm2(x))
            if pending or out.shape[1] == idx.shape[1] + max_new_tokens:
                continue
            logits = model.out_head(model.final_norm(x))[:, -1, :]
            pending.append(torch.argmax(logits, dim=-1, keepdim=True))
            out = torch.cat((out, pending[0]), dim=1)
    return out


def _cache_reset_every_step(model, idx, max_new_tokens):
    for _ in range(max_new_tokens):
        idx = _cached_generate(model, idx, 1)
    return idx


def _ref_generate_cached(model, idx, max_new_tokens):
    cache = model.new_kv_cache()  # gptbook's own cache
    with torch.no_grad():
        logits = model(idx, kv_cache=cache)[:, -1, :]
        for _ in range(max_new_tokens):
            next_id = torch.argmax(logits, dim=-1, keepdim=True)
            idx = torch.cat((idx, next_id), dim=1)
            if idx.shape[1] < cache.capacity:
                logits = model(next_id, kv_cache=cache)[:, -1, :]
    return idx


def _cache_cases():
    return [Case(label, lambda a=a: (_tiny_model(a[0]), a[1], a[2])) for label, a in [
        ("batch of 2, 3-token prompts, 4 new", (1, _ids(11, 100, 2, 3), 4)),
        ("batch of 1", (1, _ids(12, 100, 1, 3), 4)),
        ("one-token prompt", (1, _ids(13, 100, 2, 1), 5)),
        ("up to the full context (8)", (2, _ids(14, 100, 2, 4), 4)),
        ("another model seed", (3, _ids(15, 100, 3, 2), 5)),
    ]]


_NO_CACHE = Mistake(
    "nothing is cached: the whole sequence goes through the model again at every step",
    "Run the prompt once and keep every layer's keys and values; after that feed only the newest token "
    "(b, 1) through the model, at position n (the number of tokens seen), and attend over the stored keys too.")


def _cache_is_used(answer, run):
    """The property of 07.3: each position goes through the model once, at its own position. Hooks on the
    first block's key projection (W_key) and on pos_emb record the rows and positions the answer computes."""
    model, idx, new = _tiny_model(1), _ids(16, 100, 2, 3), 4
    rows, positions = [], []
    hooks = [model.trf_blocks[0].att.W_key.register_forward_pre_hook(lambda m, a: rows.append(a[0].shape[-2])),
             model.pos_emb.register_forward_pre_hook(lambda m, a: positions.extend(a[0].flatten().tolist()))]
    try:
        outcome = run(lambda: answer(model, idx, new))
    finally:
        for hook in hooks:
            hook.remove()
    if outcome.error is not None or outcome.timed_out:
        return None  # reported by the cases already, or out of time (reported by the caller)
    n = idx.shape[1]
    if rows and sum(rows) > n + new:
        return (f"Generating {new} tokens after a {n}-token prompt, the first block computed keys for "
                f"{sum(rows)} positions ({' + '.join(map(str, rows))}); with a cache each position goes through "
                f"the model once: {n} for the prompt, then 1 per new token.", _NO_CACHE)
    if positions and positions != list(range(len(positions))):
        return (f"The positions looked up in pos_emb were {positions}: with a cache every token is looked up "
                f"once, at its own position 0, 1, 2, ...")
    return None


register(Exercise(
    id="07.3", title="A key/value cache by hand", name="generate_with_cache",
    expects="a function generate_with_cache(model, idx, max_new_tokens) that generates greedily with your own "
            "key/value cache and returns (b, n + max_new_tokens) token IDs, the same as without a cache",
    kind="function", reference=_ref_generate_cached, cases=_cache_cases,
    properties=[Property("the cache is used: after the prompt, only the newest token goes through the model, at "
                         "its own position", _cache_is_used)],
    hints=["First run the whole prompt and store every layer's keys and values; then feed only the newest token, "
           "append its keys and values, and attend over all stored ones.",
           "Two offsets: the new token's position is the number of tokens seen so far (pos_emb(torch.arange(start, "
           "start + t))), and its row of the causal mask is mask[n - t:n, :n] where n counts the stored keys."],
    solution="def generate_with_cache(model, idx, max_new_tokens):\n"
             "    cache = [None] * len(model.trf_blocks)       "
             "# per block: (keys, values), each (b, heads, n, head_dim)\n"
             "    new = idx                                    # the whole prompt first, then one token at a time\n"
             "    with torch.no_grad():\n"
             "        for _ in range(max_new_tokens):\n"
             "            b, t = new.shape\n"
             "            start = idx.shape[1] - t             # tokens seen before the new ones\n"
             "            x = model.tok_emb(new) + model.pos_emb(torch.arange(start, start + t))\n"
             "            for i, block in enumerate(model.trf_blocks):\n"
             "                att, h = block.att, block.norm1(x)\n"
             "                split = lambda z: z.view(b, t, att.num_heads, att.head_dim).transpose(1, 2)\n"
             "                q, k, v = split(att.W_query(h)), split(att.W_key(h)), split(att.W_value(h))\n"
             "                if cache[i] is not None:         # append to the stored keys and values\n"
             "                    k = torch.cat([cache[i][0], k], dim=2)\n"
             "                    v = torch.cat([cache[i][1], v], dim=2)\n"
             "                cache[i] = (k, v)\n"
             "                n = k.shape[2]\n"
             "                scores = (q @ k.transpose(2, 3)).masked_fill(att.mask[n - t:n, :n], float('-inf'))\n"
             "                weights = torch.softmax(scores / att.head_dim**0.5, dim=-1)\n"
             "                x = x + att.out_proj((weights @ v).transpose(1, 2).reshape(b, t, -1))\n"
             "                x = x + block.ff(block.norm2(x))\n"
             "            logits = model.out_head(model.final_norm(x))[:, -1, :]\n"
             "            new = torch.argmax(logits, dim=-1, keepdim=True)   # (b, 1): all that goes in next\n"
             "            idx = torch.cat((idx, new), dim=1)\n"
             "    return idx",
    mistakes=[
        Mistake("the new token's position is not offset (it gets position 0 every time)",
                "The token after n cached ones sits at position n: pos_emb(torch.arange(n, n + t)).",
                answer=lambda m, i, k: _cached_generate(m, i, k, pos_shift=None)),
        Mistake("the new token's position is off by one",
                "Positions count from 0: after n cached tokens the new one sits at position n, "
                "torch.arange(n, n + t), not n + 1.",
                answer=lambda m, i, k: _cached_generate(m, i, k, pos_shift=1)),
        Mistake("the causal mask is not offset for the new query",
                "The new query is row n - 1 of the full mask, not row 0: mask[n - t:n, :n].",
                answer=lambda m, i, k: _cached_generate(m, i, k, mask_offset=False)),
        _NO_CACHE,
    ],
    wrong_answers=[
        Answer("no cache at all: generate_text_simple",
               lambda m, idx, k: generate_text_simple(m, idx, k, m.cfg["context_length"]), _NO_CACHE.name),
        Answer("a hand-written cache started afresh at every step", _cache_reset_every_step, _NO_CACHE.name),
        Answer("positions counted from 1", lambda m, i, k: _cached_generate(m, i, k, pos_shift=1),
               "the new token's position is off by one"),
    ],
    variants=[
        Answer("the prompt token by token, the last token through the model too",
               lambda m, i, k: _cached_generate(m, i, k, one_by_one=True)),
        Answer("gptbook's cache: model(ids, kv_cache=model.new_kv_cache())", _ref_generate_cached),
    ],
))


# ==============================================================================================
# 08 · Training (placed in notebook 08)
# ==============================================================================================

def _ref_next_token_loss(model, token_ids):
    inputs, targets = token_ids[:, :-1], token_ids[:, 1:]
    logits = model(inputs)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def _loss_variant(fault):
    def loss(model, token_ids):
        if fault == "not_shifted":
            inputs = targets = token_ids[:, :-1]
        elif fault == "wrong_way":
            inputs, targets = token_ids[:, 1:], token_ids[:, :-1]
        else:
            inputs, targets = token_ids[:, :-1], token_ids[:, 1:]
        logits = model(inputs)
        if fault == "softmax":
            logits = torch.softmax(logits, dim=-1)
        if fault == "last":
            return F.cross_entropy(logits[:, -1, :], targets[:, -1])
        if fault == "time_major":
            return F.cross_entropy(logits.transpose(0, 1).flatten(0, 1), targets.flatten())
        if fault == "log_softmax_gather":  # valid
            logprobs = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1))
            return -logprobs.mean()
        if fault == "nll_reshape":  # valid
            return F.nll_loss(F.log_softmax(logits.reshape(-1, logits.shape[-1]), dim=-1), targets.reshape(-1))
        if fault == "no_grad":
            with torch.no_grad():
                return F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        if fault == "detach":
            return F.cross_entropy(logits.flatten(0, 1), targets.flatten()).detach()
        if fault == "backward":  # the loop's job, done here: the graph is freed
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
            loss.backward()
            model.zero_grad(set_to_none=True)
            return loss
        if fault == "item":
            return F.cross_entropy(logits.flatten(0, 1), targets.flatten()).item()
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum" if fault == "sum" else "mean")
    return loss


_NO_GRADIENT = Mistake(
    "the loss is cut off from the graph (torch.no_grad(), .detach() or .item()), so it cannot train anything",
    "Training calls loss.backward(): the loss must be a tensor computed with gradients on. Compute it outside "
    "torch.no_grad(), and return it as it is, without .detach() or .item().")


def _loss_trains(answer, run):
    """The property of 08.1: loss.backward() gives the reference's gradients (with gradients on, even if the
    check itself runs under torch.no_grad())."""
    model, ids = _tiny_model(2), _ids(26, 100, 2, 7)
    params = dict(model.named_parameters())
    with torch.enable_grad():
        outcome = run(lambda: answer(model, ids))
        loss = outcome.value
        if outcome.error is not None or outcome.timed_out or loss is None:
            return None  # reported by the cases already, or out of time (reported by the caller)
        if not isinstance(loss, torch.Tensor) or loss.grad_fn is None:
            what = ("a Python number" if not isinstance(loss, torch.Tensor)
                    else "a tensor without a gradient (grad_fn is None)")
            return f"With gradients on, your loss is {what}: loss.backward() cannot compute anything.", _NO_GRADIENT
        try:
            mine = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        except RuntimeError as err:  # e.g. the answer called loss.backward() itself, which frees the graph
            return (f"loss.backward() could not run on your loss ({str(err).split('. ')[0]}). Return the loss "
                    "without calling .backward() on it: the training loop does that.")
        want = torch.autograd.grad(_ref_next_token_loss(model, ids), list(params.values()), allow_unused=True)
    for name, g, w in zip(params, mine, want):
        problem = compare(w if w is not None else torch.zeros_like(params[name]),
                          g if g is not None else torch.zeros_like(params[name]), 1e-6, 1e-3, f"the gradient of {name}")
        if problem:
            return f"loss.backward() does not give the reference's gradients: {problem}."
    return None


def _loss_cases():
    return [Case(label, lambda a=a: (_tiny_model(a[0]), a[1])) for label, a in [
        ("batch of 2, 6 tokens", (1, _ids(21, 100, 2, 6))), ("batch of 1", (1, _ids(22, 100, 1, 6))),
        ("one input token", (1, _ids(23, 100, 3, 2))), ("the full context (8 inputs)", (2, _ids(24, 100, 2, 9))),
        ("another model seed", (3, _ids(25, 100, 4, 5)))]]


register(Exercise(
    id="08.1", title="The next-token loss", name="next_token_loss",
    expects="a function next_token_loss(model, token_ids) that takes token IDs (b, T + 1) and returns the mean "
            "cross-entropy of predicting each next token",
    kind="function", reference=_ref_next_token_loss, cases=_loss_cases, atol=1e-5, rtol=1e-4,
    properties=[Property("the loss trains: loss.backward() gives the reference's gradients", _loss_trains)],
    hints=["Inputs are all tokens but the last, targets all tokens but the first; cross-entropy of the logits "
           "against the targets.",
           "inputs, targets = token_ids[:, :-1], token_ids[:, 1:]; logits = model(inputs) is (b, T, V); "
           "F.cross_entropy(logits.flatten(0, 1), targets.flatten())."],
    solution="def next_token_loss(model, token_ids):\n"
             "    inputs, targets = token_ids[:, :-1], token_ids[:, 1:]     # targets: shifted by one\n"
             "    logits = model(inputs)                                     # (b, T, vocab_size)\n"
             "    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())",
    mistakes=[
        Mistake("the targets are not shifted by one", "The target at position t is the token at t + 1: "
                                                      "targets = token_ids[:, 1:].",
                answer=_loss_variant("not_shifted")),
        Mistake("inputs and targets are swapped (shifted the wrong way)",
                "The inputs are the first T tokens, token_ids[:, :-1]; the targets the last T, token_ids[:, 1:].",
                answer=_loss_variant("wrong_way")),
        Mistake("a softmax is applied before F.cross_entropy",
                "F.cross_entropy takes raw logits; it applies log-softmax itself.",
                answer=_loss_variant("softmax")),
        Mistake("the losses are summed, not averaged", "Use the mean (F.cross_entropy's default reduction).",
                answer=_loss_variant("sum")),
        Mistake("only the last position is scored", "Every position predicts its next token: flatten all positions.",
                answer=_loss_variant("last")),
        Mistake("the logits are flattened time-major (transposed) while the targets are batch-major",
                "Flatten both the same way: logits.flatten(0, 1) (b·T rows, sequence after sequence) against "
                "targets.flatten().",
                answer=_loss_variant("time_major")),
        _NO_GRADIENT,
        Mistake("the logits are not flattened for F.cross_entropy",
                "F.cross_entropy wants (N, vocab_size) and (N,): logits.flatten(0, 1), targets.flatten().",
                error=r"Expected target size|expected.*target|size mismatch"),
    ],
    wrong_answers=[
        Answer("computed under torch.no_grad()", _loss_variant("no_grad"), _NO_GRADIENT.name),
        Answer("loss.detach()", _loss_variant("detach"), _NO_GRADIENT.name),
        Answer("loss.item()", _loss_variant("item"), _NO_GRADIENT.name),
        Answer("not flattened", lambda model, ids: F.cross_entropy(model(ids[:, :-1]), ids[:, 1:]),
               "the logits are not flattened for F.cross_entropy"),
        Answer("a hand-written log-softmax whose normaliser is .detach()ed (right value, wrong gradients)",
               lambda model, ids: -(lambda z: (z - z.logsumexp(-1, keepdim=True).detach()).gather(
                   -1, ids[:, 1:].unsqueeze(-1)))(model(ids[:, :-1])).mean()),
        Answer("loss.backward() called inside", _loss_variant("backward")),
        Answer("the mean over the batch of per-sequence sums",
               lambda model, ids: F.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten(),
                                                  reduction="sum") / ids.shape[0]),
    ],
    variants=[
        Answer("log_softmax and gather", _loss_variant("log_softmax_gather")),
        Answer("F.nll_loss of F.log_softmax, reshape(-1, V)", _loss_variant("nll_reshape")),
        Answer("reduction='none', then .mean()",
               lambda model, ids: F.cross_entropy(model(ids[:, :-1]).transpose(1, 2), ids[:, 1:],
                                                  reduction="none").mean()),
    ],
))


def _ref_target_logit(p, vocab_size):
    return math.log(p * (vocab_size - 1) / (1 - p))


register(Exercise(
    id="08.2", title="A logit for a given probability", name="target_logit",
    expects="a function target_logit(p, vocab_size) that returns the logit c for one token, all others 0, so that "
            "the softmax gives that token probability p",
    kind="function", reference=_ref_target_logit, atol=1e-9, rtol=1e-9,
    cases=lambda: [Case(f"p={p}, vocab {v:,}", lambda p=p, v=v: (p, v)) for p, v in
                   [(0.5, 50257), (0.9, 50257), (0.1, 100), (0.5, 2), (0.99, 10)]],
    hints=["With the target at logit c and the other vocab_size - 1 tokens at 0: p = e^c / (e^c + vocab_size - 1). "
           "Solve for c.",
           "e^c = p (vocab_size - 1) / (1 - p), so c = math.log(p * (vocab_size - 1) / (1 - p))."],
    solution="def target_logit(p, vocab_size):\n"
             "    return math.log(p * (vocab_size - 1) / (1 - p))",
    mistakes=[
        Mistake("vocab_size instead of vocab_size - 1 other tokens",
                "The target is one of the vocab_size tokens; the *other* ones number vocab_size - 1.",
                answer=lambda p, v: math.log(p * v / (1 - p))),
        Mistake("e^c instead of c", "The logit is the log: math.log(...).",
                answer=lambda p, v: p * (v - 1) / (1 - p)),
        Mistake("log base 10 instead of the natural log", "The softmax uses e: math.log, not math.log10.",
                answer=lambda p, v: math.log10(p * (v - 1) / (1 - p))),
    ],
    wrong_answers=[
        Answer("the log-odds p / (1 - p) alone", lambda p, v: math.log(p / (1 - p))),
        Answer("log(p) only", lambda p, v: math.log(p)),
        Answer("rounded to 2 digits", lambda p, v: round(math.log(p * (v - 1) / (1 - p)), 2)),
    ],
    variants=[
        Answer("a sum of logs", lambda p, v: math.log(p) - math.log1p(-p) + math.log(v - 1)),
        Answer("torch.logit plus log(vocab_size - 1)",
               lambda p, v: torch.logit(torch.tensor(p, dtype=torch.float64)) + math.log(v - 1)),
    ],
))


# ==============================================================================================
# 09 · GPT-2's weights (placed in notebook 09)
# ==============================================================================================

def _ref_ours_to_hf(model):
    cfg, sd = model.cfg, model.state_dict()
    d = cfg["emb_dim"]
    hf = {"wte.weight": sd["tok_emb.weight"], "wpe.weight": sd["pos_emb.weight"]}
    for i in range(cfg["n_layers"]):
        h, o = f"h.{i}.", f"trf_blocks.{i}."
        zeros = torch.zeros(d)
        hf[h + "ln_1.weight"], hf[h + "ln_1.bias"] = sd[o + "norm1.scale"], sd[o + "norm1.shift"]
        hf[h + "attn.c_attn.weight"] = torch.cat([sd[o + f"att.{n}.weight"].T for n in ("W_query", "W_key", "W_value")], 1)
        hf[h + "attn.c_attn.bias"] = torch.cat([sd.get(o + f"att.{n}.bias", zeros) for n in ("W_query", "W_key", "W_value")])
        hf[h + "attn.c_proj.weight"], hf[h + "attn.c_proj.bias"] = sd[o + "att.out_proj.weight"].T, sd[o + "att.out_proj.bias"]
        hf[h + "ln_2.weight"], hf[h + "ln_2.bias"] = sd[o + "norm2.scale"], sd[o + "norm2.shift"]
        hf[h + "mlp.c_fc.weight"], hf[h + "mlp.c_fc.bias"] = sd[o + "ff.layers.0.weight"].T, sd[o + "ff.layers.0.bias"]
        hf[h + "mlp.c_proj.weight"], hf[h + "mlp.c_proj.bias"] = sd[o + "ff.layers.2.weight"].T, sd[o + "ff.layers.2.bias"]
    hf["ln_f.weight"], hf["ln_f.bias"] = sd["final_norm.scale"], sd["final_norm.shift"]
    return {name: t.contiguous() for name, t in hf.items()}


_HF_CFG = {**_GPT_CFG, "qkv_bias": True, "tie_weights": True}


def _hf_model(seed, cfg=_HF_CFG):
    torch.manual_seed(seed)
    model = GPTModel(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("bias", "shift", "scale")):
                p.copy_(torch.randn(p.shape, generator=gen))
    return model


def _hf_cases():
    return [Case(label, lambda a=a: (_ref_ours_to_hf(_hf_model(a[0], a[1])), a[1])) for label, a in [
        ("2 layers", (1, _HF_CFG)), ("1 layer", (2, {**_HF_CFG, "n_layers": 1})),
        ("another seed, 3 layers, 8 heads", (3, {**_HF_CFG, "n_layers": 3, "n_heads": 8}))]]


def _hf_variant(fault):
    def convert(hf, cfg):
        sd = hf_to_gptbook_state_dict(hf, cfg)
        d = cfg["emb_dim"]
        for i in range(cfg["n_layers"]):
            h, o = f"h.{i}.", f"trf_blocks.{i}."
            if fault == "c_proj":
                sd[o + "att.out_proj.weight"] = hf[h + "attn.c_proj.weight"]
            if fault == "qkv_order":
                w = hf[h + "attn.c_attn.weight"]
                sd[o + "att.W_query.weight"], sd[o + "att.W_key.weight"] = w[:, d:2 * d].T, w[:, :d].T
            if fault == "c_fc":
                sd[o + "ff.layers.0.weight"] = hf[h + "mlp.c_fc.weight"]
            if fault == "split_dim0":
                w = hf[h + "attn.c_attn.weight"].T  # (3d, d): transposed first, then split the wrong way
                sd[o + "att.W_query.weight"], sd[o + "att.W_key.weight"], sd[o + "att.W_value.weight"] = \
                    w.reshape(d, 3, d).unbind(1)
            if fault == "bias_order":
                bq, bk, _ = hf[h + "attn.c_attn.bias"].split(d)
                sd[o + "att.W_query.bias"], sd[o + "att.W_key.bias"] = bk, bq
            if fault == "chunk":  # valid
                ws = torch.chunk(hf[h + "attn.c_attn.weight"], 3, dim=1)
                for name, w in zip(("W_query", "W_key", "W_value"), ws):
                    sd[o + f"att.{name}.weight"] = w.t()
        return sd
    return convert


register(Exercise(
    id="09.1", title="Hugging Face names to ours", name="hf_to_ours",
    expects="a function hf_to_ours(hf_state, cfg) that turns a GPT-2 state dict (Hugging Face names, Conv1D "
            "layout) into a state dict for GPTModel(cfg)",
    kind="function", reference=hf_to_gptbook_state_dict, cases=_hf_cases,
    hints=["Rename every tensor; split c_attn into query, key and value; transpose the four Conv1D matrices "
           "(c_attn, attn.c_proj, c_fc, mlp.c_proj), which are stored (in, out).",
           "w_q, w_k, w_v = hf[h + 'attn.c_attn.weight'].split(d, dim=1), each transposed (.T). attn.c_proj is "
           "square: forgetting its .T raises no error. With tie_weights the output head needs no tensor."],
    solution="def hf_to_ours(hf, cfg):\n"
             "    sd = {'tok_emb.weight': hf['wte.weight'], 'pos_emb.weight': hf['wpe.weight']}\n"
             "    d = cfg['emb_dim']\n"
             "    for i in range(cfg['n_layers']):\n"
             "        h, o = f'h.{i}.', f'trf_blocks.{i}.'\n"
             "        sd[o + 'norm1.scale'], sd[o + 'norm1.shift'] = hf[h + 'ln_1.weight'], hf[h + 'ln_1.bias']\n"
             "        sd[o + 'norm2.scale'], sd[o + 'norm2.shift'] = hf[h + 'ln_2.weight'], hf[h + 'ln_2.bias']\n"
             "        ws = hf[h + 'attn.c_attn.weight'].split(d, dim=1)\n"
             "        bs = hf[h + 'attn.c_attn.bias'].split(d)\n"
             "        for name, w, b in zip(('W_query', 'W_key', 'W_value'), ws, bs):\n"
             "            sd[o + f'att.{name}.weight'], sd[o + f'att.{name}.bias'] = w.T, b\n"
             "        sd[o + 'att.out_proj.weight'] = hf[h + 'attn.c_proj.weight'].T\n"
             "        sd[o + 'att.out_proj.bias'] = hf[h + 'attn.c_proj.bias']\n"
             "        sd[o + 'ff.layers.0.weight'], sd[o + 'ff.layers.0.bias'] = hf[h + 'mlp.c_fc.weight'].T, hf[h + 'mlp.c_fc.bias']\n"
             "        sd[o + 'ff.layers.2.weight'], sd[o + 'ff.layers.2.bias'] = hf[h + 'mlp.c_proj.weight'].T, hf[h + 'mlp.c_proj.bias']\n"
             "    sd['final_norm.scale'], sd['final_norm.shift'] = hf['ln_f.weight'], hf['ln_f.bias']\n"
             "    return sd",
    mistakes=[
        Mistake("attn.c_proj.weight is not transposed",
                "Conv1D stores (in, out); nn.Linear wants (out, in). c_proj is square, so no shape check notices: "
                "transpose it with .T like the others.",
                answer=_hf_variant("c_proj")),
        Mistake("query and key are swapped when splitting c_attn",
                "c_attn holds [query | key | value] along dim 1, in that order.",
                answer=_hf_variant("qkv_order")),
    ],
    wrong_answers=[
        Answer("c_fc not transposed", _hf_variant("c_fc")),
        Answer("c_attn split along dim 0", _hf_variant("split_dim0")),
        Answer("the biases of query and key swapped", _hf_variant("bias_order")),
    ],
    variants=[
        Answer("torch.chunk and .t()", _hf_variant("chunk")),
        Answer("gptbook.hf_to_gptbook_state_dict", hf_to_gptbook_state_dict),
    ],
))


def _ours_cases():
    return [Case(label, lambda a=a: (_hf_model(a[0], a[1]),)) for label, a in [
        ("2 layers", (4, _HF_CFG)), ("1 layer", (5, {**_HF_CFG, "n_layers": 1})),
        ("no qkv bias (biases written as zeros)", (6, {**_HF_CFG, "qkv_bias": False}))]]


def _ours_variant(fault):
    def convert(model):
        hf = _ref_ours_to_hf(model)
        sd = model.state_dict()
        for i in range(model.cfg["n_layers"]):
            h, o = f"h.{i}.", f"trf_blocks.{i}."
            if fault == "no_transpose":
                hf[h + "attn.c_proj.weight"] = sd[o + "att.out_proj.weight"]
                hf[h + "mlp.c_fc.weight"] = sd[o + "ff.layers.0.weight"]
                hf[h + "mlp.c_proj.weight"] = sd[o + "ff.layers.2.weight"]
            if fault == "cat_dim0":
                hf[h + "attn.c_attn.weight"] = torch.cat(
                    [sd[o + f"att.{n}.weight"] for n in ("W_query", "W_key", "W_value")], 0)
            if fault == "no_zero_bias" and not model.cfg["qkv_bias"]:
                del hf[h + "attn.c_attn.bias"]
            if fault == "c_proj":
                hf[h + "attn.c_proj.weight"] = sd[o + "att.out_proj.weight"]
            if fault == "kv_order":
                hf[h + "attn.c_attn.weight"] = torch.cat(
                    [sd[o + f"att.{n}.weight"].T for n in ("W_query", "W_value", "W_key")], 1)
            if fault == "hstack":  # valid
                hf[h + "attn.c_attn.weight"] = torch.hstack(
                    [sd[o + f"att.{n}.weight"].t() for n in ("W_query", "W_key", "W_value")])
        if fault == "not_contiguous":  # valid
            hf = {name: t.T.contiguous().T if t.dim() == 2 else t for name, t in hf.items()}
        return hf
    return convert


register(Exercise(
    id="09.2", title="Our names to Hugging Face's", name="ours_to_hf",
    expects="a function ours_to_hf(model) that turns a GPTModel into a GPT-2 state dict with Hugging Face's "
            "names and layout",
    kind="function", reference=_ref_ours_to_hf, cases=_ours_cases,
    hints=["The inverse of hf_to_ours: rename, concatenate query, key and value into c_attn, transpose the four "
           "matrices back to (in, out).",
           "c_attn.weight = torch.cat([W_query.T, W_key.T, W_value.T], dim=1), shape (d, 3d); without qkv biases "
           "write torch.zeros(d) for each."],
    solution="def ours_to_hf(model):  # the solution of notebook 09's exercise 3\n"
             "    cfg, sd = model.cfg, model.state_dict()\n"
             "    hf = {'wte.weight': sd['tok_emb.weight'], 'wpe.weight': sd['pos_emb.weight']}\n"
             "    for i in range(cfg['n_layers']):\n"
             "        h, o = f'h.{i}.', f'trf_blocks.{i}.'\n"
             "        zeros = torch.zeros(cfg['emb_dim'])\n"
             "        hf[h + 'ln_1.weight'], hf[h + 'ln_1.bias'] = sd[o + 'norm1.scale'], sd[o + 'norm1.shift']\n"
             "        hf[h + 'attn.c_attn.weight'] = torch.cat(\n"
             "            [sd[o + f'att.{n}.weight'].T for n in ('W_query', 'W_key', 'W_value')], dim=1)\n"
             "        hf[h + 'attn.c_attn.bias'] = torch.cat(\n"
             "            [sd.get(o + f'att.{n}.bias', zeros) for n in ('W_query', 'W_key', 'W_value')])\n"
             "        hf[h + 'attn.c_proj.weight'], hf[h + 'attn.c_proj.bias'] = sd[o + 'att.out_proj.weight'].T, sd[o + 'att.out_proj.bias']\n"
             "        hf[h + 'ln_2.weight'], hf[h + 'ln_2.bias'] = sd[o + 'norm2.scale'], sd[o + 'norm2.shift']\n"
             "        hf[h + 'mlp.c_fc.weight'], hf[h + 'mlp.c_fc.bias'] = sd[o + 'ff.layers.0.weight'].T, sd[o + 'ff.layers.0.bias']\n"
             "        hf[h + 'mlp.c_proj.weight'], hf[h + 'mlp.c_proj.bias'] = sd[o + 'ff.layers.2.weight'].T, sd[o + 'ff.layers.2.bias']\n"
             "    hf['ln_f.weight'], hf['ln_f.bias'] = sd['final_norm.scale'], sd['final_norm.shift']\n"
             "    return {name: t.contiguous() for name, t in hf.items()}",
    mistakes=[
        Mistake("the matrices are not transposed back",
                "Hugging Face's Conv1D stores (in, out): write each nn.Linear weight as weight.T.",
                answer=_ours_variant("no_transpose")),
        Mistake("query, key and value are stacked along dim 0",
                "c_attn.weight is (d, 3d): concatenate the transposed (d, d) matrices along dim=1.",
                answer=_ours_variant("cat_dim0")),
    ],
    wrong_answers=[
        Answer("no zero biases without qkv_bias", _ours_variant("no_zero_bias")),
        Answer("only attn.c_proj left untransposed", _ours_variant("c_proj")),
        Answer("key and value swapped in c_attn", _ours_variant("kv_order")),
    ],
    variants=[
        Answer("torch.hstack and .t()", _ours_variant("hstack")),
        Answer("not made contiguous", _ours_variant("not_contiguous")),
    ],
))
