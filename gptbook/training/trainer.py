"""``Trainer``: everything together (the fast loss, the schedule, clipping and accumulation, evaluations, samples,
probes, checkpoints and resuming), on one process or on several under ``torchrun`` (``DistributedDataParallel``);
what ``gptbook train`` runs."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict
from typing import Any, Callable, Optional

import torch
from torch import nn

from .._shared import choose_device, eval_mode
from ..generation import generate
from ..layers import use_dropout_generator
from ..model import GPTModel
from ..tokenizer import EOT_ID, EOT_TEXT, get_tokenizer, text_to_token_ids, token_ids_to_text
from .config import TrainConfig
from .copy_drills import CopyDrills
from .loss import UnusedTokens, model_loss, perplexity
from .schedule import (
    autocast_context, bf16_autocast_supported, init_weights_gpt2, lr_at_step, make_optimizer, sinusoidal_positions,
)
from .simple_loop import TrainingCallback, _write
from .windows import TokenWindows


class _LossModule(nn.Module):
    """Wraps a model so that ``forward(inputs, targets)`` returns the loss (what DDP needs to wrap)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.unused_tokens: Optional[UnusedTokens] = None  # set by Trainer when merge_unused is on

    def forward(self, input_batch: torch.Tensor, target_batch: torch.Tensor) -> torch.Tensor:
        if self.unused_tokens is not None:
            return self.unused_tokens.loss(self.model, input_batch, target_batch)
        return model_loss(self.model, input_batch, target_batch)


def _dist_info() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from the environment ``torchrun`` sets; (0, 0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class Trainer:
    """Trains a ``GPTModel`` as ``TrainConfig`` says: one process, or one of many under ``torchrun``.

    ``Trainer(config).fit()`` builds (or resumes) the model, trains ``max_steps`` optimizer steps
    with warm-up + cosine learning rate, gradient clipping and accumulation, evaluates and prints
    a sample every ``eval_every`` steps, saves a checkpoint to ``out_dir`` every ``save_every``
    steps and at the end, and returns the history. Under ``torchrun`` each process reads its own
    shard of the data, gradients are averaged by ``DistributedDataParallel``, and only rank 0
    prints and writes checkpoints. Dropout is seeded from ``(seed, step, rank)`` so that a resumed
    run continues exactly as the uninterrupted run would have. With ``max_seconds`` the cosine
    schedule is fitted to the time budget as the run goes (from the pace of the steps so far), so
    that a run cut short by the clock still ends at ``min_lr``.
    """

    def __init__(self, config: TrainConfig, log: Callable[[str], None] = _write,
                 callback: Optional[TrainingCallback] = None, dashboard: Any = False) -> None:
        self.config = config
        # dashboard=True: a live TrainingDashboard (gptbook.ui.dashboard) is the callback and shows the log
        self.dashboard = None
        if dashboard:
            from ..ui.dashboard import TrainingDashboard

            self.dashboard = TrainingDashboard() if dashboard is True else dashboard
            callback, log = self.dashboard, self.dashboard.log_to(log)
        self.callback = callback
        self.rank, self.local_rank, self.world_size = _dist_info()
        self.distributed = self.world_size > 1
        self._log = log
        self.tokenizer = get_tokenizer()
        self.history: dict[str, list] = {"steps": [], "train_losses": [], "val_steps": [], "val_losses": [],
                                         "tokens_seen": [], "val_probes": [], "val_seconds": [],
                                         "val_heads": []}
        self.step = 0  # optimizer steps done
        self.unused_tokens: Optional[UnusedTokens] = None  # with merge_unused: the shared head row (fit sets it)
        self.copy_drills: Optional[CopyDrills] = None  # with copy_drills > 0: the drills (set by _load_data)
        self._finished = False  # fit() ran to the end (close() then waits for the other processes)
        self._steps_this_run = 0  # ... of which in this process (not before a resume)
        self._started = time.perf_counter()

    # -- setup -----------------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self.rank == 0:
            self._log(message)

    def _setup_device(self) -> None:
        cfg = self.config
        if self.distributed:
            import torch.distributed as dist

            device = choose_device(cfg.device)
            if device.type == "cuda":
                device = torch.device("cuda", self.local_rank)
                torch.cuda.set_device(device)
            # DistributedDataParallel imports torch._dynamo; imported while a process group exists, it
            # keeps references to that group for good, so destroy_process_group() could no longer stop
            # the group's threads and they would die with the interpreter (see close()). Import it first.
            import torch._dynamo.utils  # noqa: F401

            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            self.device = device
        else:
            self.device = choose_device(cfg.device)
        self.use_autocast = bf16_autocast_supported(self.device) if cfg.autocast is None else bool(cfg.autocast)

    def _load_data(self) -> None:
        from .corpus import load_corpus, load_text

        cfg = self.config
        if cfg.data in (None, "bundled"):
            train_text, val_text = load_corpus("train"), load_corpus("val")
        else:
            text = load_text(cfg.data)
            split = int(len(text) * (1.0 - cfg.val_fraction))
            train_text, val_text = text[:split], text[split:]
        encode = lambda s: torch.tensor(self.tokenizer.encode(s, allowed_special={EOT_TEXT}), dtype=torch.long)
        self.train_ids, self.val_ids = encode(train_text), encode(val_text)
        max_length = self.max_length
        self.train_windows = TokenWindows(self.train_ids, max_length, cfg.batch_size, cfg.seed,
                                          self.rank, self.world_size, shuffle=True)
        if cfg.copy_drills > 0:

            self.copy_drills = CopyDrills(self.train_ids.unique().tolist(), cfg.copy_drills, cfg.copy_echo,
                                          seed=cfg.seed + self.rank)
        try:
            self.val_windows = TokenWindows(self.val_ids, max_length, cfg.batch_size, cfg.seed,
                                            self.rank, self.world_size, shuffle=False)
        except ValueError as exc:
            raise ValueError(f"validation text too short: {exc}") from None

    def _build(self) -> None:
        from ..loading.checkpoint import load_checkpoint, load_checkpoint_metadata
        from ..config import get_config

        cfg = self.config
        if cfg.init not in ("gpt2", "sinusoidal", "default"):
            raise ValueError(f"init must be 'gpt2', 'sinusoidal' or 'default', got {cfg.init!r}")
        metadata: dict[str, Any] = {}
        # Initial weights come from torch's global generator (nn.Linear and init_weights_gpt2 draw
        # from it): seed it for the same weights on every process, then give the caller back its state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            if cfg.resume:
                metadata = load_checkpoint_metadata(cfg.resume)
                self.model = load_checkpoint(cfg.resume, model=None)
            else:
                self.model = GPTModel({**get_config(cfg.model), **cfg.model_overrides})
                if cfg.init in ("gpt2", "sinusoidal"):
                    init_weights_gpt2(self.model, std=cfg.init_std)
                if cfg.init == "sinusoidal":  # the position embedding starts from sinusoids instead of noise
                    with torch.no_grad():
                        self.model.pos_emb.weight.copy_(
                            sinusoidal_positions(*self.model.pos_emb.weight.shape, std=cfg.init_std))
        self.max_length = cfg.max_length or self.model.cfg["context_length"]
        if self.max_length > self.model.cfg["context_length"]:
            raise ValueError(f"max_length {self.max_length} exceeds the model's context_length "
                             f"{self.model.cfg['context_length']}")
        self.model.to(self.device).train()
        self.dropout_generator = torch.Generator(device=self.device)  # seeded anew at every step
        self.optimizer = make_optimizer(self.model, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.resume:
            load_checkpoint(cfg.resume, model=self.model, optimizer=self.optimizer)
            self.step = int(metadata.get("step", 0))
            for key in self.history:
                self.history[key] = list(metadata.get("history", {}).get(key, []))
            self.log(f"resumed from {cfg.resume} at step {self.step}")
        self.loss_module: nn.Module = _LossModule(self.model)
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.loss_module = DDP(self.loss_module, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    # -- the steps -------------------------------------------------------------------------
    def _all_reduce_mean(self, value: float) -> float:
        if not self.distributed:
            return value
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def _any_process(self, flag: bool) -> bool:
        """True if ``flag`` is true on any process (so that all processes take the same decision)."""
        if not self.distributed:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def planned_steps(self) -> int:
        """The step at which the cosine schedule reaches ``min_lr``: ``max_steps``, or earlier when
        ``max_seconds`` will stop the run first (estimated from the pace of the steps so far)."""
        cfg = self.config
        if cfg.max_seconds is None or self._steps_this_run == 0:
            return cfg.max_steps
        elapsed = time.perf_counter() - self._started
        remaining = int(self._steps_this_run * max(cfg.max_seconds - elapsed, 0.0) / elapsed)
        planned = float(max(self.step + remaining, self.step + 1))
        if self.distributed:  # every process must use the same learning rate
            import torch.distributed as dist

            t = torch.tensor([planned], dtype=torch.float64, device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.MIN)
            planned = float(t.item())
        return min(cfg.max_steps, int(planned))

    def train_step(self) -> float:
        """One optimizer step over ``grad_accum_steps`` batches; returns the mean loss (over processes too)."""
        cfg = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at_step(self.step, cfg.lr, self.planned_steps(), cfg.warmup_steps, cfg.min_lr)
        self.dropout_generator.manual_seed(cfg.seed * 1_000_003 + self.step * 1009 + self.rank)  # this step's masks
        self.loss_module.train()
        total = 0.0
        for micro in range(cfg.grad_accum_steps):
            index = self.step * cfg.grad_accum_steps + micro
            inputs, targets = self.train_windows.batch(index)
            if self.copy_drills is not None:  # some rows become copy drills (validation stays stories only)
                inputs, targets = self.copy_drills.mix(inputs, targets, index)
            inputs, targets = inputs.to(self.device), targets.to(self.device)
            last = micro == cfg.grad_accum_steps - 1
            # under DDP, average the gradients across processes only once, on the last micro-batch
            sync = contextlib.nullcontext() if (last or not self.distributed) else self.loss_module.no_sync()
            with sync:
                with autocast_context(self.device, self.use_autocast):
                    loss = self.loss_module(inputs, targets)
                (loss / cfg.grad_accum_steps).backward()
            total += loss.item()
        if cfg.grad_clip is not None and self.unused_tokens is not None:
            self.unused_tokens.clip_grad_norm_(self.model, cfg.grad_clip)
        elif cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.unused_tokens is not None:
            self.unused_tokens.sync(self.model)
        self.step += 1
        self._steps_this_run += 1
        return self._all_reduce_mean(total / cfg.grad_accum_steps)

    @torch.no_grad()
    def evaluate(self) -> float:
        """Validation loss over (up to) ``eval_batches`` batches per process, averaged over processes."""
        n = min(self.config.eval_batches, self.val_windows.batches_per_epoch)
        total = 0.0
        with eval_mode(self.model):
            for i in range(n):
                inputs, targets = self.val_windows.batch(i)
                with autocast_context(self.device, self.use_autocast):
                    inputs, targets = inputs.to(self.device), targets.to(self.device)
                    if self.unused_tokens is not None:  # the same loss, computed with the shared row
                        total += self.unused_tokens.loss(self.model, inputs, targets).item()
                    else:
                        total += model_loss(self.model, inputs, targets).item()
        return self._all_reduce_mean(total / n)

    def sample(self, max_new_tokens: Optional[int] = None) -> str:
        """A continuation of ``sample_prompt`` (temperature 0.8, top-k 40, fixed seed), as text."""
        cfg = self.config
        idx = text_to_token_ids(cfg.sample_prompt, self.tokenizer).to(self.device)
        with eval_mode(self.model):
            out = generate(self.model, idx, max_new_tokens or cfg.sample_tokens, temperature=0.8, top_k=40,
                           eos_id=EOT_ID, seed=cfg.seed)
        return token_ids_to_text(out[0], self.tokenizer)

    def _probe(self) -> None:
        """Run the corpus probes (``gptbook.training.probes``) when training on the bundled corpus; keep them in the history."""
        if not self.config.probes or self.config.data not in (None, "bundled"):
            return
        from ..interpret import head_scores
        from .probes import format_probes, induction_accuracy, run_probes

        accuracies = run_probes(self.model, n_stories=self.config.probe_stories, tokenizer=None)
        # in-context copying of random corpus tokens (second copy): the skill of an induction head
        accuracies["induction"] = induction_accuracy(self.model)["second"]
        self.history["val_probes"].append({"step": self.step, **accuracies})
        # every head's previous-token and induction score (n_layers x n_heads): which heads form, and when
        scores = head_scores(self.model, n_tokens=min(40, (self.model.cfg["context_length"] - 1) // 2))
        self.history["val_heads"].append({"step": self.step, **{
            role: scores[role].double().round(decimals=3).tolist() for role in ("previous_token", "induction")}})
        self.log(f"step {self.step:5d} | probes: {format_probes(accuracies)}")

    def save(self) -> None:
        """Write a checkpoint of the current state to ``out_dir`` (rank 0 only)."""
        if self.rank != 0:
            return
        from ..loading.checkpoint import save_checkpoint

        save_checkpoint(self.config.out_dir, self.model, self.optimizer, step=self.step,
                        history=self.history, train_config=asdict(self.config))
        self.log(f"saved checkpoint to {self.config.out_dir} (step {self.step})")

    # -- the run ---------------------------------------------------------------------------
    def _notify(self, event: str, **info: Any) -> bool:
        """Call the callback (rank 0); True when it asks to stop (then on every process)."""
        if self.callback is None:
            return False
        stop = bool(self.callback(event, **info)) if self.rank == 0 else False
        return self._any_process(stop)

    def fit(self) -> dict[str, list]:
        """Train until ``max_steps`` (or ``max_seconds``, or a callback's stop); returns the history of losses.

        With a live dashboard in Jupyter, training runs in a background thread (so that its Stop
        button works) and ``fit`` returns at once; the history fills in as it trains.

        Training leaves torch's global random state alone, so it cannot race with the cells that
        run meanwhile: the model is built here, in the caller's thread, under its own seed
        (``torch.random.fork_rng``), and the dropout masks come from ``self.dropout_generator``.
        """
        self._setup_device()
        self._build()
        self._load_data()
        self.unused_tokens = UnusedTokens(self.model, self.train_ids) if self.config.merge_unused else None
        (self.loss_module.module if self.distributed else self.loss_module).unused_tokens = self.unused_tokens
        if self.dashboard is not None and self.dashboard.should_run_in_background():
            return self.dashboard.run(self._train)
        return self._train()

    def _train(self) -> dict[str, list]:
        """The training loop of ``fit``, on the model that ``_build`` made."""
        use_dropout_generator(self.model, self.dropout_generator)
        try:
            return self._train_loop()
        finally:
            use_dropout_generator(self.model, None)  # the model goes back to plain dropout

    def _train_loop(self) -> dict[str, list]:
        cfg = self.config
        tokens_per_step = cfg.batch_size * self.max_length * cfg.grad_accum_steps * self.world_size
        n_params = sum(p.numel() for p in self.model.parameters())
        self.log(f"model {cfg.model} {self.model.cfg['emb_dim']}x{self.model.cfg['n_layers']} layers, "
                 f"{n_params:,} parameters | {self.world_size} process(es) on {self.device} | "
                 f"{len(self.train_ids):,} training tokens, {tokens_per_step:,} tokens per step | "
                 f"bf16 autocast {'on' if self.use_autocast else 'off'}")
        started = self._started = time.perf_counter()
        last_log_time, last_log_step = started, self.step
        # seconds of training (set-up excluded) before this run: a resumed run's clock goes on from there
        seconds_before = self.history["val_seconds"][-1] if self.history["val_seconds"] else 0.0
        self._notify("start", model=self.model, total_steps=cfg.max_steps, step=self.step,
                     tokens_per_step=tokens_per_step, history=self.history)
        stopped = False
        while self.step < cfg.max_steps:
            loss = self.train_step()
            self.history["steps"].append(self.step)
            self.history["train_losses"].append(loss)
            self.history["tokens_seen"].append(self.step * tokens_per_step)
            if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                now = time.perf_counter()
                rate = (self.step - last_log_step) * tokens_per_step / max(now - last_log_time, 1e-9)
                last_log_time, last_log_step = now, self.step
                self.log(f"step {self.step:5d}/{cfg.max_steps} | loss {loss:.3f} | "
                         f"lr {self.optimizer.param_groups[0]['lr']:.2e} | {rate:,.0f} tokens/s")
            stopped = self._notify("step", step=self.step, train_loss=loss, tokens_seen=self.step * tokens_per_step,
                                   lr=self.optimizer.param_groups[0]["lr"])
            out_of_time = cfg.max_seconds is not None and self._any_process(
                time.perf_counter() - started >= cfg.max_seconds)  # all processes must stop together
            if self.step % cfg.eval_every == 0 or self.step == cfg.max_steps or out_of_time:
                val = self.evaluate()
                self.history["val_steps"].append(self.step)
                self.history["val_losses"].append(val)
                self.history["val_seconds"].append(seconds_before + time.perf_counter() - started)
                self.log(f"step {self.step:5d} | val loss {val:.3f} | val perplexity {perplexity(val):.1f}")
                sample, n_probes = None, len(self.history["val_probes"])
                if self.rank == 0:
                    sample = self.sample()
                    self.log("sample: " + sample.replace("\n", " "))
                    self._probe()
                probes = self.history["val_probes"][-1] if len(self.history["val_probes"]) > n_probes else None
                stopped = self._notify("eval", step=self.step, val_loss=val, sample=sample, probes=probes,
                                       model=self.model) or stopped
            if stopped:
                self.log(f"stopped at step {self.step} (the model keeps what it learned)")
                break
            if self.step % cfg.save_every == 0 and self.step != cfg.max_steps and not out_of_time:
                self.save()
            if out_of_time:
                self.log(f"stopping after {time.perf_counter() - started:.0f} s (max_seconds={cfg.max_seconds})")
                break
        self.save()
        self._finished = True
        self._notify("end", step=self.step, stopped=stopped, model=self.model)
        return self.history

    def close(self) -> None:
        """Leave the process group (under torchrun); call it once ``fit`` has returned or raised.

        The order matters. After a finished run every process first waits for the others (rank 0
        is still sampling and saving when the others are done), then drops the DDP wrapper, which
        holds the process group, and only then destroys the group: so its communication threads
        are stopped here, while Python is fully alive. Left running until the interpreter exits,
        they can abort the process at shutdown ("terminate called without an active exception").
        """
        if not self.distributed:
            return
        import gc

        import torch.distributed as dist

        if not dist.is_initialized():
            return
        if self._finished:  # after an error another process may be gone: no barrier
            dist.barrier()
        if hasattr(self, "loss_module"):
            self.loss_module = _LossModule(self.model)  # the plain module, without DDP
        gc.collect()
        dist.destroy_process_group()
