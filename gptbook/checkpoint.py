"""Saving and loading gptbook checkpoints with safetensors (never pickle): the public path of
``gptbook.loading.checkpoint``, which holds the code. Notebook 08, the tests and the trainer import from here."""

from .loading.checkpoint import (  # noqa: F401  (names without __all__, and the private ones the course model uses)
    FORMAT, META_FILE, MODEL_FILE, OPTIMIZER_FILE, STRUCTURAL_KEYS, VERSION, CheckpointError, _sha256,
    load_checkpoint, load_checkpoint_metadata, save_checkpoint,
)
