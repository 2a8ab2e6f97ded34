"""``TokenWindows``: the batches ``Trainer`` reads, each found again from the step number alone (which is how a
resumed run goes on where it stopped)."""

from __future__ import annotations

import torch


class TokenWindows:
    """Non-overlapping windows over a token tensor, shuffled per epoch and sharded over processes.

    The order of epoch ``e`` depends only on ``(seed, e)``, and process ``rank`` of ``world_size``
    reads windows ``rank, rank + world_size, ...`` of it: its own shard. So the batch of any
    step can be found again from the step number alone, which is how a resumed run continues
    exactly where it stopped.
    """

    def __init__(self, token_ids: torch.Tensor, max_length: int, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        self.token_ids = token_ids
        self.max_length, self.batch_size = max_length, batch_size
        self.seed, self.rank, self.world_size, self.shuffle = seed, rank, world_size, shuffle
        self.n_windows = (len(token_ids) - 1) // max_length
        # every process gets the same number of batches (DDP needs the steps to line up)
        self.batches_per_epoch = self.n_windows // world_size // batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"the text gives {self.n_windows} window(s) of {max_length} tokens ({len(token_ids)} tokens), "
                f"not enough for one batch of {batch_size} per process on {world_size} process(es); "
                "use a longer text, a smaller batch size or a smaller max_length"
            )

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``index``-th batch this process reads (counting across epochs): inputs, targets (b, T)."""
        epoch, i = divmod(index, self.batches_per_epoch)
        if self.shuffle:
            order = torch.randperm(self.n_windows, generator=torch.Generator().manual_seed(self.seed + epoch))
        else:
            order = torch.arange(self.n_windows)
        mine = order[self.rank::self.world_size]  # this process's shard
        starts = mine[i * self.batch_size:(i + 1) * self.batch_size] * self.max_length  # (b,)
        offsets = torch.arange(self.max_length + 1)  # (T + 1,)
        chunk = self.token_ids[starts.unsqueeze(1) + offsets]  # (b, T + 1)
        return chunk[:, :-1], chunk[:, 1:]
