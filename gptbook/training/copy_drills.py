"""Copy drills: training rows that can only be predicted by copying from the context.

The stories teach a model to copy the things they repeat (names, secret codes). To make that
copying a *general* rule -- "whatever came after this token last time comes next" -- the course
model also trains on a share of rows that have no other pattern at all:

- **repeated sequences**: ``<|endoftext|> A B C ... A B C ...``, 8-32 distinct tokens drawn at
  random from the corpus's vocabulary, then the same again. The first copy cannot be predicted;
  the second can, only by an *induction head* (notebook 10): find the earlier ``A``, read what
  followed it, predict ``B``;
- **echoes**: ``X by X Y by Y ...``: at " by" the next token is the token just before it. Only a
  head that looks at the previous token predicts it -- the first half of the induction circuit.

``CopyDrills(vocabulary, share=0.25).mix(inputs, targets, index)`` replaces about ``share`` of the
rows of batch ``index`` with drills. The rows depend only on ``(seed, index)``: a resumed run draws
the very same ones. ``gptbook.train`` uses it when ``TrainConfig.copy_drills`` is above 0.

Taught in notebooks 08 (training) and 10 (inside the trained model).
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..tokenizer import EOT_ID, get_tokenizer

#: The length of a repeated sequence is drawn from this range (both ends included).
SEGMENT_LENGTH = (8, 32)
#: How many "X by X" triples an echo drill holds before the next drill starts.
ECHO_TRIPLES = 10


def drill_row(length: int, vocabulary: torch.Tensor, echo: float, by_id: int,
              generator: torch.Generator) -> torch.Tensor:
    """``length`` tokens of drills, one after another, each starting with ``<|endoftext|>``.

    Each drill is an echo with probability ``echo``, else a repeated sequence (module docstring).
    """
    row: list[int] = []
    while len(row) < length:
        n = int(torch.randint(SEGMENT_LENGTH[0], SEGMENT_LENGTH[1] + 1, (1,), generator=generator))
        segment = vocabulary[torch.randperm(len(vocabulary), generator=generator)[:n]].tolist()
        if float(torch.rand(1, generator=generator)) < echo:
            row += [EOT_ID] + [t for x in segment[:ECHO_TRIPLES] for t in (x, by_id, x)]
        else:
            row += [EOT_ID] + segment + segment
    return torch.tensor(row[:length], dtype=torch.long)


class CopyDrills:
    """Mixes copy drills into training batches (see the module docstring)."""

    def __init__(self, vocabulary: Sequence[int], share: float = 0.25, echo: float = 0.3, seed: int = 0) -> None:
        """``vocabulary``: the token IDs drills draw from (the training text's, without ``<|endoftext|>``);
        ``share``: the chance that a row is a drill; ``echo``: the chance that a drill is an echo."""
        if not 0.0 <= share <= 1.0 or not 0.0 <= echo <= 1.0:
            raise ValueError(f"share and echo are probabilities between 0 and 1, got share={share}, echo={echo}")
        self.vocabulary = torch.tensor(sorted(set(vocabulary) - {EOT_ID}), dtype=torch.long)
        if len(self.vocabulary) < SEGMENT_LENGTH[1]:
            raise ValueError(f"copy drills draw up to {SEGMENT_LENGTH[1]} distinct tokens, but the text uses only "
                             f"{len(self.vocabulary)}; use a longer text or set copy_drills=0")
        self.share, self.echo, self.seed = share, echo, seed
        self.by_id = get_tokenizer().encode(" by")[0]

    def mix(self, inputs: torch.Tensor, targets: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``index`` (inputs, targets: (b, T)) with about ``share`` of its rows replaced by drills."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        drills = torch.rand(inputs.shape[0], generator=generator) < self.share  # (b,): which rows
        if not drills.any():
            return inputs, targets
        inputs, targets = inputs.clone(), targets.clone()
        for r in drills.nonzero().flatten().tolist():
            row = drill_row(inputs.shape[1] + 1, self.vocabulary, self.echo, self.by_id, generator)  # (T + 1,)
            inputs[r], targets[r] = row[:-1], row[1:]
        return inputs, targets
