"""Text to train on: the course's own story corpus, your text files, and (when online) a URL.

The bundled corpus, "Week Stories", is *generated* from a fixed seed by ``gptbook.training.stories``: short
children's stories about a week in someone's life. Nothing is downloaded and no text is copied
from anywhere; the same seed gives the same characters on every machine, in about a second.

Why generated stories rather than one short novel? A small model trained on a single short text
mostly memorises it: its training loss falls while its validation loss rises. These stories
are combinatorial -- thousands of different stories built from a few hundred words and a few
dozen sentence patterns -- so what a model can learn from them *generalises*:

- grammar and spelling of simple English sentences, capital letters, quotation marks;
- agreement: "Mia ... she ... her", "one apple" / "three apples";
- sequences: counting "one, two, three, four", and Monday -> Tuesday -> Wednesday
  ("It was a fun Tuesday.\n\nOn Wednesday");
- cause and effect: rain -> an umbrella and a trip to the library, wind -> a kite on the hill;
- copying from the context: names introduced at the start come back in every paragraph (the
  pet's name is made up for each story: "Zobatu"), and a secret code of 6-12 words made up each
  day is said back twice -- after its first word, only copying what followed it predicts the rest;
- memory across a story: the red kite lost at the park on Tuesday is found at the park later,
  a question "How many shells do you have?" is answered with the number just counted.

Validation stories come from the same generator but are different stories, so the validation
loss tells whether the model learned the patterns rather than the training text.

Functions:
    load_corpus(split)        the bundled corpus: "train", "val" or "all"
    generate_story(rng)       one story from a ``random.Random`` (``gptbook.training.stories``)
    load_text_file(path)      any UTF-8 text file, with clear errors for anything else
    load_text_url(url)        a UTF-8 text from the web (needs a network)
    load_text(source)         one of the three, chosen from ``source``
    unigram_entropy(ids)      the entropy of the token frequencies: the loss of a model that
                              ignores context, and so the bar a trained model must get below

Taught in notebook 08 (training).
"""

from __future__ import annotations

import functools
import math
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Iterable, Union

import torch

from .stories import (  # noqa: F401  (the story world, as gptbook.training.corpus.DAYS etc.)
    CORPUS_SEED, CORPUS_STORIES, DAYS, NUMBERS, generate_stories, generate_story,
)
from ..tokenizer import EOT_TEXT

#: Fraction of the stories used for validation (the last ones generated).
VAL_FRACTION = 0.1
#: Separator between stories: GPT-2's end-of-text token (the one string, ``gptbook.tokenizer.EOT_TEXT``).
STORY_SEPARATOR = EOT_TEXT


@functools.lru_cache(maxsize=4)
def _corpus_splits(n_stories: int, seed: int, val_fraction: float) -> tuple[str, str]:
    stories = generate_stories(n_stories, seed)
    n_val = max(1, round(n_stories * val_fraction))
    train, val = stories[:-n_val], stories[-n_val:]
    return STORY_SEPARATOR.join(train), STORY_SEPARATOR.join(val)


def load_corpus(split: str = "train", *, n_stories: int = CORPUS_STORIES, seed: int = CORPUS_SEED,
                val_fraction: float = VAL_FRACTION) -> str:
    """The bundled "Week Stories" corpus as one string, stories separated by ``<|endoftext|>``.

    Args:
        split: ``"train"`` (the first 90 % of the stories), ``"val"`` (the last 10 %: different
            stories, same generator) or ``"all"`` (train + val, in that order).
        n_stories, seed, val_fraction: change these for a bigger, smaller or different corpus.

    Generated on first use (well under a second) and cached. Encode it with
    ``tokenizer.encode(text, allowed_special={"<|endoftext|>"})`` (``GPTDatasetV1`` does).
    """
    if split not in ("train", "val", "all"):
        raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
    if n_stories < 2:
        raise ValueError(f"n_stories must be at least 2 (one for training, one for validation), got {n_stories}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    train, val = _corpus_splits(n_stories, seed, val_fraction)
    if split == "train":
        return train
    if split == "val":
        return val
    return train + STORY_SEPARATOR + val


# ---------------------------------------------------------------------------------------------
# Your own text
# ---------------------------------------------------------------------------------------------

def _decode_utf8(data: bytes, where: str) -> str:
    """Decode bytes as UTF-8 text, or raise a ValueError that says what was found instead."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a byte-order mark some editors write: not part of the text
    if b"\x00" in data[:8192]:
        raise ValueError(
            f"{where} looks like a binary file (it contains NUL bytes), not text; "
            "give a plain-text file (.txt) such as a book from Project Gutenberg in UTF-8"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{where} is not UTF-8 text: byte 0x{data[exc.start]:02x} at position {exc.start} cannot be decoded. "
            "Save the file as UTF-8 (most editors offer 'Save with encoding'), or convert it, e.g. "
            "`iconv -f latin1 -t utf-8 in.txt > out.txt`"
        ) from None


def load_text_file(path: Union[str, Path]) -> str:
    """Read a UTF-8 text file and return its contents.

    Raises ``FileNotFoundError`` for a missing path, ``IsADirectoryError`` for a folder and
    ``ValueError`` for an empty file, a binary file or text in another encoding (with a hint on
    how to convert it).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no such file: {str(path)!r} (the current directory is {str(Path.cwd())!r})")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder; give the path of a text file inside it")
    text = _decode_utf8(path.read_bytes(), f"the file {str(path)!r}")
    if not text.strip():
        raise ValueError(f"the file {str(path)!r} is empty; there is nothing to train on")
    return text


def load_text_url(url: str, timeout: float = 30.0) -> str:
    """Download a UTF-8 text file (``http://`` or ``https://``) and return it. Needs a network.

    Raises ``ConnectionError`` when the address cannot be reached, ``ValueError`` when what
    came back is not UTF-8 text.
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"load_text_url expects an http:// or https:// address, got {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (only http/https)
            data = response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(
            f"could not download {url!r} ({reason}); check the address and your network, or download the file "
            "yourself and use load_text_file(path)"
        ) from None
    text = _decode_utf8(data, f"the download from {url!r}")
    if not text.strip():
        raise ValueError(f"the download from {url!r} is empty")
    return text


def load_text(source: Union[str, Path, None] = None, split: str = "train") -> str:
    """Load training text from wherever ``source`` says.

    - ``None`` or ``"bundled"``: the bundled corpus, ``split`` as in ``load_corpus``;
    - a string starting with ``http://`` or ``https://``: ``load_text_url``;
    - anything else: a path, ``load_text_file``.
    """
    if source is None or str(source) == "bundled":
        return load_corpus(split)
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        return load_text_url(source)
    return load_text_file(source)


# ---------------------------------------------------------------------------------------------
# How hard is the text? The unigram entropy.
# ---------------------------------------------------------------------------------------------

def unigram_entropy(token_ids: Union[torch.Tensor, Iterable[int]]) -> float:
    """Entropy of the token frequencies, in nats per token (the unit of ``F.cross_entropy``).

    ``H = -sum_t p(t) ln p(t)``, where ``p(t)`` is how often token ``t`` occurs. It is the
    cross-entropy loss of the best model that ignores context and always predicts the same
    distribution: a trained model whose validation loss lies far below it has learned to use
    the context. ``math.exp`` of it is that model's perplexity.
    """
    if isinstance(token_ids, torch.Tensor):
        counts = torch.bincount(token_ids.flatten().long()).double()
        counts = counts[counts > 0]
        total = counts.sum()
        if total == 0:
            raise ValueError("unigram_entropy needs at least one token")
        p = counts / total
        return float(-(p * p.log()).sum())
    counts = Counter(token_ids)
    total = sum(counts.values())
    if total == 0:
        raise ValueError("unigram_entropy needs at least one token")
    return -sum(c / total * math.log(c / total) for c in counts.values())


def corpus_stats(tokenizer=None) -> dict[str, float]:
    """Sizes and unigram entropy of the bundled corpus, for printing in notebooks and benchmarks.

    Returns a dict with ``train_chars``, ``val_chars``, ``train_tokens``, ``val_tokens``,
    ``distinct_tokens`` and ``unigram_entropy`` (nats per token, of the training split).
    """
    if tokenizer is None:
        from ..tokenizer import get_tokenizer

        tokenizer = get_tokenizer()
    train, val = load_corpus("train"), load_corpus("val")
    train_ids = tokenizer.encode(train, allowed_special={STORY_SEPARATOR})
    val_ids = tokenizer.encode(val, allowed_special={STORY_SEPARATOR})
    return {
        "train_chars": len(train),
        "val_chars": len(val),
        "train_tokens": len(train_ids),
        "val_tokens": len(val_ids),
        "distinct_tokens": len(set(train_ids) | set(val_ids)),
        "unigram_entropy": unigram_entropy(train_ids),
    }
