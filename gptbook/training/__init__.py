"""Training a GPT: the loss, the classic training loop, and the full trainer behind ``gptbook train``.

Part 1, the classic chapter-5 functions, with the same names, arguments and results:

    calc_loss_batch(input_batch, target_batch, model, device)     mean cross-entropy of one batch
    calc_loss_loader(data_loader, model, device, num_batches)     average over (some) batches
    evaluate_model(model, train_loader, val_loader, device, eval_iter)
    generate_and_print_sample(model, tokenizer, device, start_context)
    train_model_simple(model, train_loader, val_loader, optimizer, device, num_epochs,
                       eval_freq, eval_iter, start_context, tokenizer)
                       -> train_losses, val_losses, track_tokens_seen
    plot_losses(epochs_seen, tokens_seen, train_losses, val_losses)

Part 2, what makes training fast and stable (all optional in ``train_model_simple``):
a memory-light output head + loss, learning-rate warm-up and cosine decay, gradient clipping,
gradient accumulation, device choice and bf16 autocast.

Part 3, ``Trainer``: everything together, checkpoints and resuming included, on one process or
on several under ``torchrun`` (``DistributedDataParallel``).

One job a file; import every name from here (``from gptbook.training import ...``):

    loss.py         the chunked head + cross-entropy (``chunked_cross_entropy``, ``model_loss``,
                    ``supports_fast_loss``, ``hidden_states``), ``UnusedTokens``, ``calc_loss_batch``,
                    ``calc_loss_loader``, ``perplexity``                                    parts 1, 2
    simple_loop.py  ``train_model_simple``, ``evaluate_model``, ``generate_and_print_sample``,
                    ``plot_losses``, ``TrainingCallback``                                   part 1
    schedule.py     ``lr_at_step``, bf16 autocast, ``init_weights_gpt2``, ``sinusoidal_positions``,
                    ``make_optimizer``                                                      part 2
    config.py       ``TrainConfig`` and its checks                                          part 3
    windows.py      ``TokenWindows``: the batches of a run, found again from the step       part 3
    trainer.py      ``Trainer`` (and the loss module DDP wraps, the torchrun environment)   part 3

What the course trains on, and how it measures what a model learned (import these from their modules,
e.g. ``from gptbook.training.probes import run_probes``):

    stories.py      the story world: heroes, pets with made-up names, secret codes, the week (generated)
    corpus.py       the bundled corpus built from the stories, loading your own text, statistics
    copy_drills.py  rows that only copying from the context predicts (random tokens shown twice, "X by X")
    probes.py       which of the stories' rules a model has learned, and in-context copying (induction)
    recipes.py      the course's recipes: ``COURSE_RECIPE`` (the shipped model), ``NOTEBOOK_RECIPE`` (notebook 08)
    course_model.py exporting a finished run as the shipped course model (reading it back is
                    ``gptbook.loading.course_model``, ``gptbook.load_course_model``)

Taught in notebook 08 (training).
"""

from .._shared import choose_device, eval_mode  # imported from here by older code (and tests): kept
from .config import TrainConfig
from .loss import (
    UnusedTokens, calc_loss_batch, calc_loss_loader, chunked_cross_entropy, hidden_states, model_loss, perplexity,
    supports_fast_loss,
)
from .schedule import (
    autocast_context, bf16_autocast_supported, init_weights_gpt2, lr_at_step, make_optimizer, sinusoidal_positions,
)
from .simple_loop import (
    TrainingCallback, evaluate_model, generate_and_print_sample, plot_losses, train_model_simple,
)
from .trainer import Trainer
from .windows import TokenWindows

__all__ = [
    "TokenWindows", "TrainConfig", "Trainer", "TrainingCallback", "UnusedTokens", "autocast_context",
    "bf16_autocast_supported", "calc_loss_batch", "calc_loss_loader", "choose_device", "chunked_cross_entropy",
    "eval_mode", "evaluate_model", "generate_and_print_sample", "hidden_states", "init_weights_gpt2", "lr_at_step",
    "make_optimizer", "model_loss", "perplexity", "plot_losses", "sinusoidal_positions", "supports_fast_loss",
    "train_model_simple",
]
