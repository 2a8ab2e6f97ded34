"""Notebook 01's exercises (Text to tokens): references, cases, common mistakes, hints, solutions."""

from __future__ import annotations


import torch

from ..tokenizer import get_tokenizer, text_to_token_ids
from .spec import Answer, Case, Exercise, Mistake
from ._common import EOT

EXERCISES: list[Exercise] = []


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


EXERCISES.append(Exercise(
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


EXERCISES.append(Exercise(
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
