"""Notebook 02's exercises (Inputs and targets): references, cases, common mistakes, hints, solutions."""

from __future__ import annotations

import math

import torch

from .spec import Answer, Case, Exercise, Mistake

EXERCISES: list[Exercise] = []


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


EXERCISES.append(Exercise(
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


EXERCISES.append(Exercise(
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
