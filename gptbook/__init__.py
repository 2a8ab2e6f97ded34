"""gptbook: a GPT-2 style language model built from scratch in PyTorch, for learning.

Every piece the course builds by hand, importable in one line::

    from gptbook import GPT_CONFIG_124M, GPTModel, get_tokenizer, text_to_token_ids, generate

Modules, in the order the course teaches them:

    tokenizer   text <-> token IDs (GPT-2 byte-pair encoding, offline)        notebook 01
    config      the model configurations                                      notebooks 03, 06
    attention   causal multi-head self-attention, the key/value cache         notebook 04
    layers      LayerNorm, GELU, the feed-forward network                     notebook 05
    model       the transformer block and the GPT model                       notebooks 05, 06
    params      where every parameter comes from                              notebook 06
    generation  greedy decoding, temperature, top-k, top-p, streaming         notebook 07
    data        sliding windows of token IDs, data loaders                    notebook 02
    corpus      the bundled story corpus (generated), loading your own text    notebooks 02, 08
    training    the loss, the training loop, the full Trainer                 notebook 08
    checkpoint  saving and loading with safetensors (never pickle)            notebook 08
    probes      which of the corpus's regularities a model has learned        notebooks 08, 10
    course_model  the course's trained tiny model, shipped with gptbook      notebooks 07, 08, 10
    weights     loading OpenAI's GPT-2 weights                                notebook 09
    exercises   check("04.1", answer): exercises that check themselves     every notebook

The rooms beside the core (ARCHITECTURE.md has the map): ``gptbook.exercises`` (the checker and one catalogue per
notebook), ``gptbook.ui`` (widgets and plots), ``gptbook.loading`` (checkpoints, GPT-2 weights, which model a name
means), and the training modules above. Small shared rules (``eval_mode``, the cache folder, ...) are in
``gptbook._shared``.

Command line: ``gptbook train`` and ``gptbook generate`` (also ``python -m gptbook ...``), in ``gptbook.cli``.

``gptbook.viz`` (matplotlib) and ``gptbook.widgets`` (ipywidgets) are imported on their own, and so are
``gptbook.dashboard`` (the live training dashboard, notebook 08), ``gptbook.interpret`` and
``gptbook.explorer`` (looking inside a trained model, notebook 10).
"""

from ._version import __version__
from .attention import KVCache, LayerKVCache, MultiHeadAttention
from .config import GPT2_CONFIGS, GPT_CONFIG_124M, GPT_CONFIG_TINY, get_config, validate_config
from .generation import filter_logits, generate, generate_stream, generate_text_simple
from .layers import GELU, FeedForward, LayerNorm
from .model import GPTModel, TransformerBlock
from .params import count_parameters, format_breakdown, model_size_mb, parameter_breakdown
from .tokenizer import EOT_ID, get_tokenizer, text_to_token_ids, token_ids_to_text
from .weights import load_gpt2_checkpoint
from .data import GPTDatasetV1, create_dataloader_v1, create_train_val_loaders, train_val_split
from .corpus import corpus_stats, load_corpus, load_text, load_text_file, unigram_entropy
from .training import (
    TrainConfig, Trainer, calc_loss_batch, calc_loss_loader, evaluate_model, generate_and_print_sample,
    perplexity, plot_losses, train_model_simple,
)
from .loading.checkpoint import CheckpointError, load_checkpoint, load_checkpoint_metadata, save_checkpoint
from .course_model import course_model_info, load_course_model
from .probes import run_probes
from .exercises import check, hint, progress, solution


__all__ = [
    "CheckpointError",
    "GPTDatasetV1",
    "TrainConfig",
    "Trainer",
    "calc_loss_batch",
    "check",
    "calc_loss_loader",
    "corpus_stats",
    "create_dataloader_v1",
    "create_train_val_loaders",
    "evaluate_model",
    "generate_and_print_sample",
    "hint",
    "load_checkpoint",
    "load_checkpoint_metadata",
    "load_corpus",
    "load_course_model",
    "course_model_info",
    "run_probes",
    "load_text",
    "load_text_file",
    "perplexity",
    "plot_losses",
    "progress",
    "save_checkpoint",
    "solution",
    "train_model_simple",
    "train_val_split",
    "unigram_entropy",
    "EOT_ID",
    "FeedForward",
    "GELU",
    "GPT2_CONFIGS",
    "GPTModel",
    "GPT_CONFIG_124M",
    "GPT_CONFIG_TINY",
    "KVCache",
    "LayerKVCache",
    "LayerNorm",
    "MultiHeadAttention",
    "TransformerBlock",
    "count_parameters",
    "filter_logits",
    "format_breakdown",
    "generate",
    "generate_stream",
    "generate_text_simple",
    "get_config",
    "get_tokenizer",
    "load_gpt2_checkpoint",
    "model_size_mb",
    "parameter_breakdown",
    "text_to_token_ids",
    "token_ids_to_text",
    "validate_config",
]
