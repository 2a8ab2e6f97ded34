"""gptbook: a GPT-2 style language model built from scratch in PyTorch, for learning.

Every piece the course builds by hand, importable in one line::

    from gptbook import GPT_CONFIG_124M, GPTModel, get_tokenizer, text_to_token_ids, generate

The core, at the top of the package, in the order the course teaches it (read it in one sitting):

    tokenizer   text <-> token IDs (GPT-2 byte-pair encoding, offline)        notebook 01
    data        sliding windows of token IDs, data loaders                    notebook 02
    config      the model configurations                                      notebooks 03, 06
    attention   causal multi-head self-attention, the key/value cache         notebook 04
    layers      LayerNorm, GELU, the feed-forward network                     notebook 05
    model       the transformer block and the GPT model                       notebooks 05, 06
    params      where every parameter comes from                              notebook 06
    generation  greedy decoding, temperature, top-k, top-p, streaming         notebook 07
    prepack     the CPU fast path ``generate`` takes                          notebook 07

The rooms (ARCHITECTURE.md has the map; imports run from the rooms down to the core, never back up):

    training/   the loss, the training loops, ``Trainer``; the story corpus, the probes, the recipes,
                the course model's training and export                        notebooks 02, 08, 10
    loading/    checkpoints (safetensors, never pickle), GPT-2 weights, the shipped course model  08, 09
    ui/         widgets, plots, the live training dashboard                   notebooks 01, 04, 07, 08, 10
    exercises/  check("04.1", answer): exercises that check themselves     every notebook
    cli/        ``gptbook train`` and ``gptbook generate`` (also ``python -m gptbook ...``)

And the doors the notebooks import from: ``gptbook.widgets`` (every widget), ``gptbook.viz`` (the pictures, with
matplotlib), ``gptbook.weights`` (loading OpenAI's GPT-2 weights, notebook 09) and ``gptbook.interpret`` (logit lens,
head scores, ablations, notebook 10). Neither ``widgets`` nor ``viz`` is imported by ``import gptbook``. Small shared
rules (``eval_mode``, the cache folder, ...) are in ``gptbook._shared``.
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
from .training.corpus import corpus_stats, load_corpus, load_text, load_text_file, unigram_entropy
from .training import (
    TrainConfig, Trainer, calc_loss_batch, calc_loss_loader, evaluate_model, generate_and_print_sample,
    perplexity, plot_losses, train_model_simple,
)
from .loading.checkpoint import CheckpointError, load_checkpoint, load_checkpoint_metadata, save_checkpoint
from .loading.course_model import course_model_info, load_course_model
from .training.probes import run_probes
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
