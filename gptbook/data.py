"""From one long text to batches of (input, target) token windows for next-token training.

The text is encoded once into token IDs; a window of ``max_length`` tokens slides over them,
``stride`` tokens at a time. Each window is an input; the target is the same window shifted one
token to the right, so position ``i`` of the target is the token that follows position ``i`` of
the input::

    token IDs:  [ 40, 367, 2885, 1464, 1807, 3619, 402, 271, ... ]
    input  0:   [ 40, 367, 2885, 1464]          max_length = 4, stride = 4
    target 0:   [367, 2885, 1464, 1807]
    input  1:                       [1807, 3619, 402, 271]
    target 1:                       [3619, 402, 271, ...]

``stride == max_length`` uses every token once per epoch; a smaller stride makes overlapping
windows (more, but partly repeated, examples).

Taught in notebook 02 (data loading) and notebook 08 (training).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch.utils.data import DataLoader, Dataset

from .tokenizer import EOT_TEXT, get_tokenizer


class GPTDatasetV1(Dataset):
    """Sliding windows of token IDs: item ``i`` is ``(input_ids, target_ids)``, each of shape (max_length,).

    Args:
        txt: the text to cut into windows (or a sequence / 1-D tensor of token IDs, already encoded).
        tokenizer: a tiktoken encoding such as ``get_tokenizer()``; ``<|endoftext|>`` in the text
            becomes token 50256. ``None`` uses GPT-2's tokenizer.
        max_length: tokens per window (at most the model's ``context_length``).
        stride: how far the window moves between items.

    Window ``i`` starts at token ``i * stride``; there are ``ceil((n_tokens - max_length) / stride)``
    windows, as in the classic implementation (the last token is only ever a target).
    """

    def __init__(self, txt: Union[str, Sequence[int], torch.Tensor], tokenizer=None, max_length: int = 256,
                 stride: int = 128) -> None:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        if isinstance(txt, str):
            tokenizer = tokenizer if tokenizer is not None else get_tokenizer()
            token_ids = tokenizer.encode(txt, allowed_special={EOT_TEXT})
        else:
            token_ids = txt
        self.token_ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()  # (n_tokens,)
        self.max_length = max_length
        self.stride = stride
        n = len(self.token_ids)
        if n < max_length + 1:
            raise ValueError(
                f"the text has {n} tokens but one window needs at least max_length + 1 = {max_length + 1} "
                f"({max_length} inputs and the token after them as the last target); give a longer text "
                f"or a smaller max_length (at most {max(n - 1, 0)} for this text)"
            )
        # Starts 0, stride, 2*stride, ... while start < n - max_length (the classic range()).
        self.starts = torch.arange(0, n - max_length, stride)  # (n_windows,)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = int(self.starts[idx])
        chunk = self.token_ids[start:start + self.max_length + 1]  # (max_length + 1,)
        return chunk[:-1], chunk[1:]  # input (max_length,), target shifted by one (max_length,)

    @property
    def num_tokens(self) -> int:
        """Number of token IDs the text was encoded into."""
        return len(self.token_ids)


def create_dataloader_v1(
    txt: Union[str, Sequence[int], torch.Tensor],
    batch_size: int = 4,
    max_length: int = 256,
    stride: int = 128,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
    *,
    tokenizer=None,
    generator: Optional[torch.Generator] = None,
) -> DataLoader:
    """A ``DataLoader`` yielding batches ``(inputs, targets)``, each of shape (batch_size, max_length).

    Same arguments and behaviour as the classic function, plus:
        tokenizer: the encoding to use (default: GPT-2's, offline).
        generator: a ``torch.Generator`` for the shuffling order (default: torch's global one,
            so ``torch.manual_seed`` makes the order reproducible).

    Raises ``ValueError`` when the text is too short for one window, or when ``drop_last`` would
    drop every batch (fewer windows than ``batch_size``), which would otherwise give an empty
    loader and a loss of ``nan`` much later.
    """
    dataset = GPTDatasetV1(txt, tokenizer, max_length, stride)
    if drop_last and len(dataset) < batch_size:
        raise ValueError(
            f"the text gives only {len(dataset)} window(s) of {max_length} tokens, fewer than batch_size={batch_size}, "
            "so drop_last=True would leave no batch at all; use a smaller batch_size, a smaller stride or "
            "max_length, or drop_last=False (usual for validation data)"
        )
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers, generator=generator)


def train_val_split(text: str, train_ratio: float = 0.9) -> tuple[str, str]:
    """Split a text into a training part (the first ``train_ratio`` of its characters) and a validation part.

    The classic chapter-5 split: ``split_idx = int(train_ratio * len(text))``. The bundled corpus
    has its own split of whole stories: ``load_corpus("train")`` and ``load_corpus("val")``.
    """
    if not 0.0 < train_ratio < 1.0:
        raise ValueError(f"train_ratio must lie strictly between 0 and 1, got {train_ratio!r}")
    split_idx = int(train_ratio * len(text))
    return text[:split_idx], text[split_idx:]


def create_train_val_loaders(
    train_text: str,
    val_text: str,
    cfg: dict,
    batch_size: int = 8,
    max_length: Optional[int] = None,
    tokenizer=None,
) -> tuple[DataLoader, DataLoader]:
    """The two loaders of a classic training run: shuffled training windows, ordered validation windows.

    ``max_length`` and ``stride`` default to the model's ``context_length`` (non-overlapping
    windows). Validation keeps its last, incomplete batch (``drop_last=False``).
    """
    max_length = max_length or cfg["context_length"]
    train_loader = create_dataloader_v1(train_text, batch_size=batch_size, max_length=max_length, stride=max_length,
                                        shuffle=True, drop_last=True, tokenizer=tokenizer)
    val_loader = create_dataloader_v1(val_text, batch_size=batch_size, max_length=max_length, stride=max_length,
                                      shuffle=False, drop_last=False, tokenizer=tokenizer)
    return train_loader, val_loader
