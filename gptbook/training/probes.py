"""Probes: which of the story corpus's regularities has a model learned?

A validation loss says *how much* a model has learned, not *what*. The bundled "Week Stories"
(``gptbook.training.corpus``) are built from a few rules, and each rule leaves places in a story where
the next token is fully determined by the text before it. A probe collects such places from
**validation stories** (the model never trained on them) and asks: is the model's top-1
prediction there the right token? Four skills, from easy to hard:

``counting``
    continuing a count: ``"counted them: one, two, three,"`` -> ``" four"``.
``count_recall``
    repeating the number just counted: ``"... one, two, three. There were"`` -> ``" three"``
    (and ``"I have"`` -> ``" three"`` in the dialogue version).
``weekday_order``
    the day after the previous paragraph's day: ``"On Tuesday, ... \\n\\nOn"`` -> ``" Wednesday"``
    (each day of a story gets a paragraph that starts with "On"; the first one is skipped:
    nothing before it says which day it is).
``name_copying``
    copying a name the story introduced: the hero's (``"..., so"`` -> ``" Mia"``, ``"Thank you,"``
    -> ``" Mia"``, ...), the pet's (``"came home,"`` -> ``" Rex"``) and the friend's
    (``"went to the park with"`` -> ``" Leo"``). For a name of several tokens (the pets' names are
    made up: ``" Zobatu"``) the probe asks for the tokens after the first, which only copying from
    the context can give. A site counts only when the name was said within the ``NAME_LOOKBACK``
    tokens before it: a name out of the model's sight cannot be copied.

``run_probes(model)`` returns the accuracy of each probe (a number in [0, 1]); guessing
among the week's days would give about 0.14 on ``weekday_order`` and guessing among the names
about 0.02 on ``name_copying``.

Beside the probes, ``induction_accuracy(model)`` measures in-context copying of anything: a random
sequence of tokens the corpus uses, shown twice (``A B C ... A B C ...``); the share of the second
copy predicted right. Only a model that looks up "what came after this token last time" gets it
right: the job of an *induction head*. On the first copy no model can do better than chance.

Taught in notebooks 08 (training) and 10 (inside the trained model).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from .._shared import eval_mode
from .corpus import DAYS, STORY_SEPARATOR, load_corpus
from ..model import reads_out_head
from ..tokenizer import EOT_ID, get_tokenizer

#: The probes, in the order ``run_probes`` returns them (roughly: the order a model learns them).
PROBES = ("counting", "count_recall", "weekday_order", "name_copying")
#: The random sequences of ``induction_accuracy``: how many, how long each copy, and their seed.
INDUCTION_SEQUENCES, INDUCTION_LENGTH, INDUCTION_SEED = 32, 24, 2024
#: A name site counts only when the name was said within this many tokens before it: three quarters of the
#: course model's context of 256, the least context ``predict_at_sites`` gives (a name out of sight can't be copied).
NAME_LOOKBACK = 192
#: Validation stories used by default: enough for accuracies to about +-3 %, a few seconds on a CPU.
PROBE_STORIES = 40

_DAY = "|".join(DAYS)


@dataclass(frozen=True)
class ProbeSite:
    """One place in one validation story where the next token is determined by the story so far."""

    probe: str  # one of PROBES
    story: int  # index of the story among the validation stories
    position: int  # index of the target token in the story's token list (which starts with <|endoftext|>)
    target: int  # the token ID that must come next
    context: str  # the last few words before it, for printing
    answer: str  # the text of the target token


def _sites_in_story(text: str) -> list[tuple[str, int, str]]:
    """(probe, character offset, answer word with its leading space) for every probe site of one story."""
    sites: list[tuple[str, int, str]] = []  # name_copying sites may be several tokens long (see _find_sites)
    for m in re.finditer(r"counted them: (one(?:, [a-z]+)*)\.", text):  # counting: every number after the first
        words, offset = m.group(1).split(", "), m.start(1)
        for k in range(1, len(words)):
            offset += len(words[k - 1]) + 1  # past "word," -- the offset of " next"
            sites.append(("counting", offset, " " + words[k]))
            offset += 1
    for pattern in (r"There were( [a-z]+)", r'"I have( [a-z]+)'):
        sites += [("count_recall", m.start(1), m.group(1)) for m in re.finditer(pattern, text)]
    days = list(re.finditer(rf"\n\nOn( (?:{_DAY}))", text))
    sites += [("weekday_order", m.start(1), m.group(1)) for m in days[1:]]  # the first day is a free choice
    names = {role: re.search(pattern, text) for role, pattern in
             (("hero", r"named (\w+)\."), ("pet", r"called (\w+)\."), ("friend", r"best friend was (\w+)\."))}
    if all(names.values()):
        hero, pet, friend = (re.escape(names[r].group(1)) for r in ("hero", "pet", "friend"))
        for pattern in (rf", so( {hero}) ", rf"When( {hero}) came home", rf"Thank you,( {hero})\.",
                        rf"Don't worry,( {hero})\.", rf'"Look,( {hero})!', rf"That night,( {hero}) told",
                        rf"came home,( {pet}) the", rf" with( {friend})\."):
            sites += [("name_copying", m.start(1), m.group(1)) for m in re.finditer(pattern, text)]
    return sorted(sites, key=lambda site: site[1])


def probe_sites(n_stories: int = PROBE_STORIES, tokenizer=None) -> tuple[list[list[int]], list[ProbeSite]]:
    """The first ``n_stories`` validation stories as token lists, and every probe site in them.

    Each story's token list starts with ``<|endoftext|>``, as it follows one in the training text.
    """
    if isinstance(n_stories, bool) or not isinstance(n_stories, int) or n_stories < 1:
        raise ValueError(f"n_stories must be a whole number of at least 1, got {n_stories!r}")
    if tokenizer is None:
        return _default_sites(n_stories)
    return _find_sites(n_stories, tokenizer)


@functools.lru_cache(maxsize=4)
def _default_sites(n_stories: int) -> tuple[list[list[int]], list[ProbeSite]]:
    return _find_sites(n_stories, get_tokenizer())


def _find_sites(n_stories: int, tokenizer) -> tuple[list[list[int]], list[ProbeSite]]:
    stories = load_corpus("val").split(STORY_SEPARATOR)[:n_stories]
    token_lists: list[list[int]] = []
    sites: list[ProbeSite] = []
    for s, text in enumerate(stories):
        ids = [EOT_ID] + tokenizer.encode(text)
        token_lists.append(ids)
        for probe, offset, answer in _sites_in_story(text):
            position = 1 + len(tokenizer.encode(text[:offset]))
            answer_ids = tokenizer.encode(answer)
            if ids[position:position + len(answer_ids)] != answer_ids:
                continue  # the prefix tokenised differently inside the story: not a clean site
            if probe == "name_copying" and not _said_before(ids, position, answer_ids):
                continue  # the name is out of sight: no model with this context can copy it
            context = " ".join(text[max(0, offset - 60):offset].split()[-6:])
            # a name of several tokens: the tokens after the first (the first says which name; the rest copy it)
            first = 1 if probe == "name_copying" and len(answer_ids) > 1 else 0
            for k in range(first, len(answer_ids)):
                shown = context + (" " + tokenizer.decode(answer_ids[:k]).strip() if k else "")
                sites.append(ProbeSite(probe, s, position + k, answer_ids[k], shown, tokenizer.decode([answer_ids[k]])))
    return token_lists, sites


def _said_before(ids: list[int], position: int, name_ids: list[int]) -> bool:
    """True when the tokens ``name_ids`` occur in the ``NAME_LOOKBACK`` tokens before ``position``."""
    before, n = ids[max(0, position - NAME_LOOKBACK):position], len(name_ids)
    return any(before[i:i + n] == name_ids for i in range(len(before) - n + 1))


@torch.no_grad()
def predict_at_sites(model: nn.Module, token_lists: list[list[int]], sites: list[ProbeSite],
                     batch_size: int = 8) -> torch.Tensor:
    """The model's top-1 prediction at every site, shape (len(sites),).

    A story longer than the model's context is read in windows of ``context_length`` tokens that
    start every quarter context; each site is predicted from the window that gives it the most
    context (at least three quarters of the context length).
    """
    device = next(model.parameters()).device
    ctx = model.cfg["context_length"] if hasattr(model, "cfg") else 256
    stride = max(1, ctx // 4)
    windows: dict[tuple[int, int], list[int]] = {}  # (story, start) -> indices of the sites it predicts
    for i, site in enumerate(sites):
        start = max(0, -(-(site.position - ctx) // stride)) * stride  # smallest start whose window holds position-1
        windows.setdefault((site.story, start), []).append(i)
    predictions = torch.empty(len(sites), dtype=torch.long)
    keys = sorted(windows)
    with eval_mode(model):
        for b in range(0, len(keys), batch_size):
            chunk = keys[b:b + batch_size]
            rows = [token_lists[s][start:start + ctx] for s, start in chunk]
            width = max(len(r) for r in rows)
            batch = torch.zeros(len(rows), width, dtype=torch.long)  # padded at the end: causal, so harmless
            for r, row in enumerate(rows):
                batch[r, :len(row)] = torch.tensor(row)
            logits = _logits_at(model, batch.to(device), chunk, windows, sites)
            for key in chunk:
                for i, row_logits in zip(windows[key], logits[key]):
                    predictions[i] = int(row_logits.argmax())
    return predictions


def _logits_at(model: nn.Module, batch: torch.Tensor, chunk: list[tuple[int, int]],
               windows: dict[tuple[int, int], list[int]], sites: list[ProbeSite]) -> dict:
    """Logits at the sites of each window of the batch: {window: (n_sites, vocab)}."""
    rows, cols = [], []
    for r, key in enumerate(chunk):
        for i in windows[key]:
            rows.append(r)
            cols.append(sites[i].position - 1 - key[1])  # the input position that predicts the site
    if reads_out_head(model):  # a GPTModel: run the output head only where it is needed
        hidden = model.hidden_states(batch)[rows, cols]  # (n_sites, emb_dim)
        logits = model.out_head(hidden)  # (n_sites, vocab)
    else:
        logits = model(batch)[rows, cols]
    out, n = {}, 0
    for key in chunk:
        out[key] = logits[n:n + len(windows[key])]
        n += len(windows[key])
    return out


def run_probes(model: nn.Module, n_stories: int = PROBE_STORIES, tokenizer=None,
               return_sites: bool = False):
    """Accuracy of ``model`` on each probe (see the module docstring), over ``n_stories`` validation stories.

    Returns ``{"counting": 0.97, "count_recall": ..., "weekday_order": ..., "name_copying": ...}``
    (fractions in [0, 1], in the order of ``PROBES``). With ``return_sites=True`` it returns
    ``(accuracies, sites, predictions)`` so that you can look at the individual cases.
    The model is left in the mode (train or eval) it was in.
    """
    token_lists, sites = probe_sites(n_stories, tokenizer)
    predictions = predict_at_sites(model, token_lists, sites)
    correct = predictions == torch.tensor([site.target for site in sites])
    accuracies = {}
    for probe in PROBES:
        mask = torch.tensor([site.probe == probe for site in sites])
        accuracies[probe] = float(correct[mask].float().mean()) if mask.any() else float("nan")
    if return_sites:
        return accuracies, sites, predictions
    return accuracies


def corpus_token_ids(tokenizer=None) -> list[int]:
    """Every token ID the training stories use (ascending), ``<|endoftext|>`` left out."""
    if tokenizer is None:
        return list(_default_corpus_tokens())
    return _corpus_tokens(tokenizer)


@functools.lru_cache(maxsize=1)
def _default_corpus_tokens() -> tuple[int, ...]:
    return tuple(_corpus_tokens(get_tokenizer()))


def _corpus_tokens(tokenizer) -> list[int]:
    ids = set(tokenizer.encode(load_corpus("train"), allowed_special={STORY_SEPARATOR}))
    return sorted(ids - {EOT_ID})


def repeated_sequences(n: int = INDUCTION_SEQUENCES, length: int = INDUCTION_LENGTH, seed: int = INDUCTION_SEED,
                       tokenizer=None, vocabulary: Optional[list[int]] = None) -> torch.Tensor:
    """``n`` rows of ``<|endoftext|>`` + a random sequence of ``length`` distinct corpus tokens + the same again.

    Shape (n, 1 + 2 * length). The same rows on every machine (drawn with ``torch.Generator`` from ``seed``).
    ``vocabulary``: the token IDs to draw from (default: ``corpus_token_ids()``).
    """
    vocab = torch.as_tensor(list(vocabulary) if vocabulary is not None else corpus_token_ids(tokenizer),
                            dtype=torch.long)
    if len(vocab) < length:
        raise ValueError(f"a sequence of {length} distinct tokens needs a vocabulary of at least {length} tokens, "
                         f"got {len(vocab)}")
    g = torch.Generator().manual_seed(seed)
    seqs = torch.stack([vocab[torch.randperm(len(vocab), generator=g)[:length]] for _ in range(n)])  # (n, length)
    return torch.cat([torch.full((n, 1), EOT_ID), seqs, seqs], dim=1)


@torch.no_grad()
def induction_accuracy(model: nn.Module, tokenizer=None, n: int = INDUCTION_SEQUENCES,
                       length: int = INDUCTION_LENGTH) -> dict[str, float]:
    """Top-1 accuracy on random token sequences shown twice: ``{"first": ..., "second": ...}``.

    ``first``: the first copy's tokens 2..length predicted from what comes before them (chance level:
    nothing predicts a random token). ``second``: the same tokens in the second copy, which an induction
    head copies from the first. A model whose context is shorter than ``1 + 2 * length`` tokens reads
    sequences of ``(context_length - 1) // 2`` tokens. The model is left in the mode it was in.
    """
    context = model.cfg["context_length"] if hasattr(model, "cfg") else 1 + 2 * length
    length = min(length, (context - 1) // 2)  # a model with a short context reads shorter sequences
    rows = repeated_sequences(n, length, tokenizer=tokenizer)  # (n, 1 + 2 * length)
    device = next(model.parameters()).device
    with eval_mode(model), torch.no_grad():
        predictions = model(rows[:, :-1].to(device)).argmax(-1).cpu()  # (n, 2 * length): prediction for rows[:, 1:]
    correct = predictions == rows[:, 1:]
    return {"first": float(correct[:, 1:length].float().mean()),  # tokens 2..length of the first copy
            "second": float(correct[:, length + 1:].float().mean())}  # the same tokens, second copy


def format_probes(accuracies: dict[str, float]) -> str:
    """One line: ``counting 97% | count_recall 91% | ...``, rounded to whole per cent."""
    return " | ".join(f"{name} {100 * value:.0f}%" for name, value in accuracies.items())
