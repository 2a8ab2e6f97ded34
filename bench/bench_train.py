"""Training benchmark: quality within a 3-minute CPU budget, and throughput against a classic training step.

    python bench/bench_train.py                      # everything, prints a report
    python bench/bench_train.py --write-results      # ... and writes bench/RESULTS_TRAINING.md
    python bench/bench_train.py --skip-train         # throughput only (about a minute)
    python bench/bench_train.py --skip-throughput    # training run only

Part 1, corpus: size, distinct tokens and unigram entropy of the bundled corpus, i.e. the loss of the
best model that ignores context.

Part 2, training: ``gptbook train``'s Trainer trains the course's small configuration on the
bundled corpus for ``--steps`` optimizer steps (stopping early at ``--max-seconds``) in a fresh process,
which reports its wall time, validation loss and perplexity, peak memory (max RSS) and a sample.

Part 3, throughput: tokens/s of one training step (forward, loss, backward, AdamW) for
  - "classic": the model written the classic chapter-4 way (explicit attention with a mask and softmax,
    LayerNorm and GELU written out, no fused kernels), ``F.cross_entropy`` on the full logits;
  - "gptbook": ``GPTModel`` (fused attention) with ``gptbook.training.model_loss`` (chunked head + loss),
    as ``Trainer`` runs it (gradient clipping included);
  - "gptbook bf16": the same under bf16 autocast (to show whether it pays off on this CPU).
Both start from the same weights (checked: same loss) and see the same batches; the steps alternate
so that a busy machine slows all of them alike. The median over ``--reps`` steps is reported.

Nothing here is asserted: it prints what it measures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gptbook._shared import cpu_name  # noqa: E402
from gptbook.config import get_config  # noqa: E402


# ---------------------------------------------------------------------------------------------
# The classic reference model (as in the chapter-4 code): explicit attention, no fused kernels
# ---------------------------------------------------------------------------------------------

class ClassicMultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        self.d_out, self.num_heads, self.head_dim = d_out, num_heads, d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1),
                             persistent=False)

    def forward(self, x):
        b, num_tokens, d_in = x.shape
        keys, queries, values = self.W_key(x), self.W_query(x), self.W_value(x)
        keys = keys.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        queries = queries.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        values = values.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        attn_scores = queries @ keys.transpose(2, 3)
        mask_bool = self.mask.bool()[:num_tokens, :num_tokens]
        attn_scores.masked_fill_(mask_bool, -torch.inf)
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        attn_weights = self.dropout(attn_weights)
        context_vec = (attn_weights @ values).transpose(1, 2)
        context_vec = context_vec.contiguous().view(b, num_tokens, self.d_out)
        return self.out_proj(context_vec)


class ClassicLayerNorm(nn.Module):
    def __init__(self, emb_dim):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift


class ClassicGELU(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))))


class ClassicFeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]), ClassicGELU(),
                                    nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]))

    def forward(self, x):
        return self.layers(x)


class ClassicTransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.att = ClassicMultiHeadAttention(cfg["emb_dim"], cfg["emb_dim"], cfg["context_length"],
                                             cfg["drop_rate"], cfg["n_heads"], cfg["qkv_bias"])
        self.ff = ClassicFeedForward(cfg)
        self.norm1, self.norm2 = ClassicLayerNorm(cfg["emb_dim"]), ClassicLayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x):
        shortcut = x
        x = self.drop_shortcut(self.att(self.norm1(x)))
        x = x + shortcut
        shortcut = x
        x = self.drop_shortcut(self.ff(self.norm2(x)))
        return x + shortcut


class ClassicGPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[ClassicTransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = ClassicLayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)
        if cfg.get("tie_weights"):
            self.out_head.weight = self.tok_emb.weight  # same parameter count as the model compared

    def forward(self, in_idx):
        batch_size, seq_len = in_idx.shape
        x = self.tok_emb(in_idx) + self.pos_emb(torch.arange(seq_len, device=in_idx.device))
        x = self.drop_emb(x)
        x = self.trf_blocks(x)
        return self.out_head(self.final_norm(x))


def classic_calc_loss_batch(input_batch, target_batch, model, device):
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)
    return F.cross_entropy(logits.flatten(0, 1), target_batch.flatten())


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def model_config(args) -> dict:
    from gptbook.cli import parse_override

    return {**get_config(args.config), **dict(parse_override(item) for item in args.set)}


def machine_line() -> str:
    return (f"{cpu_name()}, {os.cpu_count()} logical CPUs, torch {torch.__version__} with {torch.get_num_threads()} "
            f"threads, Python {platform.python_version()}")


def load_average() -> float:
    """1-minute load average: other work on the machine (above ~0.5 on 2 cores it slows every figure)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


# ---------------------------------------------------------------------------------------------
# Part 1: the corpus
# ---------------------------------------------------------------------------------------------

def corpus_report() -> dict:
    from collections import Counter

    from gptbook.training.corpus import STORY_SEPARATOR, corpus_stats, load_corpus
    from gptbook.tokenizer import get_tokenizer

    tok = get_tokenizer()
    stats = corpus_stats(tok)
    # The validation loss of the best context-free model fitted on the training split
    # (add-one smoothing over the tokens seen anywhere, so no probability is zero).
    train_ids = tok.encode(load_corpus("train"), allowed_special={STORY_SEPARATOR})
    val_ids = tok.encode(load_corpus("val"), allowed_special={STORY_SEPARATOR})
    counts = Counter(train_ids)
    vocab = set(train_ids) | set(val_ids)
    total = len(train_ids) + len(vocab)
    stats["unigram_val_loss"] = -sum(math.log((counts[t] + 1) / total) for t in val_ids) / len(val_ids)
    return stats


# ---------------------------------------------------------------------------------------------
# Part 2: a training run (in a fresh process, so that its peak memory is its own)
# ---------------------------------------------------------------------------------------------

def train_child(args) -> dict:
    from gptbook.generation import generate
    from gptbook.tokenizer import text_to_token_ids, token_ids_to_text
    from gptbook.training import TrainConfig, Trainer, perplexity

    started = time.perf_counter()
    config = TrainConfig(model=args.config, model_overrides=model_config(args), out_dir=args.out,
                         batch_size=args.batch_size, max_length=args.max_length, max_steps=args.steps, lr=args.lr,
                         min_lr=args.lr / 10, warmup_steps=args.warmup, eval_every=args.eval_every,
                         eval_batches=args.eval_batches, save_every=10**9, log_every=10, seed=args.seed,
                         device="cpu", autocast=False, max_seconds=args.max_seconds)
    trainer = Trainer(config, log=lambda m: print(m, file=sys.stderr, flush=True))
    history = trainer.fit()
    total = time.perf_counter() - started  # imports excluded; data, model, training, logging and saving included
    # The final validation loss over *all* validation windows (not just the eval_batches of the log),
    # in batches of 8 (a measurement after training, not part of its time).
    from gptbook.training import TokenWindows

    trainer.val_windows = TokenWindows(trainer.val_ids, trainer.max_length, 8, args.seed, shuffle=False)
    n_val = trainer.val_windows.batches_per_epoch
    trainer.config.eval_batches = n_val
    val = trainer.evaluate()
    model = trainer.model.eval()
    samples = []
    for prompt in args.prompts:
        idx = text_to_token_ids(prompt, trainer.tokenizer)
        out = generate(model, idx, 110, temperature=0.7, top_k=40, seed=args.seed, eos_id=50256)
        samples.append(token_ids_to_text(out[0], trainer.tokenizer))
    return {
        "steps": trainer.step,
        "tokens_seen": history["tokens_seen"][-1],
        "wall_s": total,
        "val_loss": val,
        "val_perplexity": perplexity(val),
        "val_tokens": n_val * 8 * trainer.max_length,
        "first_train_loss": history["train_losses"][0],
        "last_train_loss": history["train_losses"][-1],
        "val_curve": list(zip(history["val_steps"], history["val_losses"])),
        "peak_rss_mb": peak_rss_mb(),
        "samples": samples,
        "config": trainer.model.cfg,
        "params": sum(p.numel() for p in model.parameters()),
    }


# ---------------------------------------------------------------------------------------------
# Part 3: throughput, gptbook against the classic step
# ---------------------------------------------------------------------------------------------

def throughput(args, batch_size: int) -> dict:
    from gptbook.model import GPTModel
    from gptbook.training import autocast_context, make_optimizer, model_loss

    cfg = model_config(args)
    T = args.max_length or cfg["context_length"]
    torch.manual_seed(args.seed)
    ours = GPTModel(cfg)
    classic = ClassicGPTModel(cfg)
    classic.load_state_dict(ours.state_dict())  # the same starting weights
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, cfg["vocab_size"], (batch_size, T + 1), generator=g) for _ in range(3)]

    # Check that both compute the same loss (dropout off), so that we compare equal work.
    ours.eval(), classic.eval()
    with torch.no_grad():
        x, y = batches[0][:, :-1], batches[0][:, 1:]
        diff = abs(model_loss(ours, x, y).item() - classic_calc_loss_batch(x, y, classic, "cpu").item())
    ours.train(), classic.train()

    opt_ours = make_optimizer(ours, lr=1e-4)
    opt_classic = torch.optim.AdamW(classic.parameters(), lr=1e-4, weight_decay=0.1)

    def step_classic(b):
        opt_classic.zero_grad()
        loss = classic_calc_loss_batch(b[:, :-1], b[:, 1:], classic, "cpu")
        loss.backward()
        opt_classic.step()

    def step_ours(b, bf16=False):
        with autocast_context("cpu", bf16):
            loss = model_loss(ours, b[:, :-1], b[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
        opt_ours.step()
        opt_ours.zero_grad(set_to_none=True)

    variants = {"classic": step_classic, "gptbook": step_ours}
    if not args.no_bf16:
        variants["gptbook bf16"] = lambda b: step_ours(b, bf16=True)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for rep in range(args.reps + 1):  # the first round warms up (allocations, kernels) and is not counted
        for name, step in variants.items():
            t0 = time.perf_counter()
            step(batches[rep % len(batches)])
            if rep > 0:
                times[name].append(time.perf_counter() - t0)
    tokens = batch_size * T
    result = {"batch_size": batch_size, "tokens_per_step": tokens, "loss_difference": diff, "reps": args.reps}
    for name, ts in times.items():
        result[name] = {"median_s": statistics.median(ts), "tokens_per_s": tokens / statistics.median(ts),
                        "all_s": ts}
    result["ratio"] = result["gptbook"]["tokens_per_s"] / result["classic"]["tokens_per_s"]
    return result


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def render(args, corpus, train, speeds) -> str:
    lines = ["# Training on the bundled corpus: results", "",
             f"Measured by `python bench/bench_train.py --write-results` on {datetime.date.today().isoformat()}.",
             f"Machine: {machine_line()}; 1-minute load average {args.load_start:.1f} at the start and "
             f"{load_average():.1f} at the end (other work on the machine slows every figure).", ""]
    if corpus:
        lines += ["## Corpus", "",
                  f"- Training split: {corpus['train_chars']:,} characters, {corpus['train_tokens']:,} GPT-2 tokens; "
                  f"validation split: {corpus['val_chars']:,} characters, {corpus['val_tokens']:,} tokens "
                  f"(different stories from the same generator).",
                  f"- Distinct tokens: {corpus['distinct_tokens']:,} of 50,257.",
                  f"- Unigram entropy (training split): **{corpus['unigram_entropy']:.3f} nats/token** "
                  f"(perplexity {math.exp(corpus['unigram_entropy']):.0f}); a context-free model fitted on the "
                  f"training split scores {corpus['unigram_val_loss']:.3f} on validation.", ""]
    if train:
        cfg = train["config"]
        lines += ["## A training run within the 3-minute budget", "",
                  f"Configuration: `{args.config}` ({', '.join(f'{k}={v}' for k, v in cfg.items())}), "
                  f"{train['params']:,} parameters; batch {args.batch_size} x {args.max_length or cfg['context_length']} "
                  f"tokens, AdamW peak lr {args.lr:g} with {args.warmup} warm-up steps and cosine decay to the end of "
                  f"a {args.max_seconds:.0f}-second budget (or {args.steps} steps), gradient clipping 1.0, "
                  f"seed {args.seed}, fp32 on the CPU.", "",
                  "| figure | value |", "|---|---|",
                  f"| optimizer steps | {train['steps']} |",
                  f"| tokens seen | {train['tokens_seen']:,} |",
                  f"| wall time: data and model set-up, training, evaluations, saving | {train['wall_s']:.0f} s |",
                  f"| training loss, first step -> last step | {train['first_train_loss']:.2f} -> {train['last_train_loss']:.2f} |",
                  f"| validation loss (all {train['val_tokens']:,} validation tokens) | **{train['val_loss']:.3f}** |",
                  f"| validation perplexity | {train['val_perplexity']:.2f} |"]
        if corpus:
            lines.append(f"| unigram entropy of the corpus, for comparison | {corpus['unigram_entropy']:.3f} |")
        lines += [f"| peak memory (max RSS of the training process) | {train['peak_rss_mb']:.0f} MB |", "",
                  "Validation loss during the run (step: loss): "
                  + ", ".join(f"{s}: {v:.2f}" for s, v in train["val_curve"]) + ".", "",
                  "Samples afterwards (temperature 0.7, top-k 40, seed fixed):", ""]
        for sample in train["samples"]:
            lines += ["```text", sample.strip(), "```", ""]
    if speeds:
        first = speeds[0]
        lines += ["## Training throughput", "",
                  f"One training step (forward + loss + backward + AdamW) of `{args.config}` on batches of "
                  f"{first['tokens_per_step'] // first['batch_size']}-token sequences, median of {first['reps']} steps, "
                  "the variants alternating. Both models start from the same weights; their losses agree to "
                  f"{max(s['loss_difference'] for s in speeds):.1e}.", "",
                  "| batch | step | seconds | tokens/s |", "|---|---|---|---|"]
        names = {"classic": "classic (explicit attention, full logits + `F.cross_entropy`, `AdamW`)",
                 "gptbook": "gptbook (`GPTModel` + `model_loss` + `make_optimizer`, as `Trainer` runs it)",
                 "gptbook bf16": "gptbook under bf16 autocast"}
        for speed in speeds:
            for key in ("classic", "gptbook", "gptbook bf16"):
                if key in speed:
                    lines.append(f"| {speed['batch_size']} | {names[key]} | {speed[key]['median_s']:.2f} | "
                                 f"{speed[key]['tokens_per_s']:,.0f} |")
        lines += ["", "gptbook / classic: " + ", ".join(
            f"**{s['ratio']:.2f}x** the tokens per second at batch {s['batch_size']}" for s in speeds) + ".", ""]
        with_bf16 = [s for s in speeds if "gptbook bf16" in s]
        if with_bf16:
            ratios = [s["gptbook bf16"]["tokens_per_s"] / s["gptbook"]["tokens_per_s"] for s in with_bf16]
            verdict = ("slower here, so `Trainer` leaves it off on CPUs (`--bf16 on` forces it)" if max(ratios) < 1
                       else "faster here: try `--bf16 on`")
            lines += ["bf16 autocast on this CPU runs at " + ", ".join(
                f"{r:.2f}x (batch {s['batch_size']})" for r, s in zip(ratios, with_bf16))
                + f" the fp32 speed: {verdict}.", ""]
    lines += ["The machine is shared and 2-core, so repeated runs vary by 10-30 %; rerun the script to see "
              "your own machine's figures.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="tiny")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--max-seconds", type=float, default=160.0,
                   help="time budget of the training loop (the cosine schedule ends there)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--eval-batches", type=int, default=4)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--reps", type=int, default=4, help="timed steps per variant in the throughput part")
    p.add_argument("--throughput-batch-sizes", type=int, nargs="*", default=[2, 8],
                   help="batch sizes of the throughput comparison (default: 2 and 8)")
    p.add_argument("--no-bf16", action="store_true", help="skip the bf16 autocast variant")
    p.add_argument("--prompts", nargs="*", default=["Once upon a time", "On Tuesday, it was rainy, so"])
    p.add_argument("--out", default=None, help="checkpoint folder of the run (default: a temporary folder)")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--write-results", action="store_true", help="write bench/RESULTS_TRAINING.md")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:  # the training run, in its own process
        with tempfile.TemporaryDirectory() as tmp:
            args.out = args.out or tmp
            print(json.dumps(train_child(args)))
        return 0

    args.load_start = load_average()
    print(f"machine: {machine_line()}, load average {args.load_start:.1f}")
    corpus = corpus_report()
    print(f"corpus: {corpus['train_tokens']:,} training tokens, {corpus['val_tokens']:,} validation tokens, "
          f"{corpus['distinct_tokens']} distinct; unigram entropy {corpus['unigram_entropy']:.3f} nats "
          f"(context-free validation loss {corpus['unigram_val_loss']:.3f})")

    train = None
    if not args.skip_train:
        child_argv = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write-results"]
        cmd = [sys.executable, str(Path(__file__).resolve()), *child_argv, "--child"]
        run = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)  # progress goes to stderr, live
        if run.returncode != 0:
            print("training run failed", file=sys.stderr)
            return run.returncode
        train = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"training: {train['steps']} steps, {train['tokens_seen']:,} tokens in {train['wall_s']:.0f} s | "
              f"validation loss {train['val_loss']:.3f} (perplexity {train['val_perplexity']:.2f}) vs unigram "
              f"entropy {corpus['unigram_entropy']:.3f} | peak memory {train['peak_rss_mb']:.0f} MB")
        for sample in train["samples"]:
            print("sample:", sample.replace("\n", " "))

    speeds = []
    if not args.skip_throughput:
        for batch_size in args.throughput_batch_sizes or [args.batch_size]:
            speed = throughput(args, batch_size)
            speeds.append(speed)
            for key in ("classic", "gptbook", "gptbook bf16"):
                if key in speed:
                    print(f"throughput batch {batch_size} {key:13s}: {speed[key]['tokens_per_s']:8,.0f} tokens/s "
                          f"(median step {speed[key]['median_s']:.2f} s)")
            print(f"gptbook / classic at batch {batch_size} = {speed['ratio']:.2f}x "
                  f"(loss difference at equal weights {speed['loss_difference']:.1e})")

    if args.write_results:
        path = REPO / "bench" / "RESULTS_TRAINING.md"
        path.write_text(render(args, corpus, train, speeds), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
