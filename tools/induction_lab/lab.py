"""The induction lab: train small GPTs on story / synthetic mixes and watch for an induction circuit.

    python tools/induction_lab/lab.py --name A                         # corpus v2 stories, 4 x 128
    python tools/induction_lab/lab.py --name L --layers 2 --synthetic 1 --echo 0.5 --T 64 --B 32

Every ``--eval`` steps it prints (and appends to ``runs/induction_lab/NAME.log``): the running loss,
induction accuracy on random corpus tokens shown twice (second copy / first copy, as
``gptbook.training.probes.induction_accuracy``), the best previous-token score (on a validation story) and
the best induction score of any head (``gptbook.interpret.head_scores``) with their layers, and the
four story probes measured on v2 validation stories. The weights are saved at every evaluation.

Rows of a batch are story windows, or with probability ``--synthetic`` a synthetic row
(``gptbook.training.copy_drills.drill_row``): repeated segments (8-32 distinct random corpus tokens, then the
same again) or, with probability ``--echo``, "X by X" triples (at " by" the next token is the token
before it: only a head that looks at the previous token predicts it). A research tool for issue 17, not a test: figures depend on the
CPU and its load; name both beside any figure you copy (README.md here).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from gptbook import GPTModel, get_config
from gptbook.training import probes as probes_module
from gptbook.training.copy_drills import drill_row
from gptbook.training.corpus import STORY_SEPARATOR, load_corpus
from gptbook.interpret import head_scores
from gptbook.tokenizer import EOT_ID, get_tokenizer
from gptbook.training import (UnusedTokens, init_weights_gpt2, lr_at_step, make_optimizer,
                              sinusoidal_positions)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--emb", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--T", type=int, default=256, help="tokens per row")
    ap.add_argument("--B", type=int, default=8, help="rows per batch")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--eval", type=int, default=100)
    ap.add_argument("--init", choices=("gpt2", "sinusoidal"), default="sinusoidal")
    ap.add_argument("--std", type=float, default=0.02, help="init standard deviation (GPT-2: 0.02; try 1/sqrt(emb))")
    ap.add_argument("--synthetic", type=float, default=0.0, help="share of synthetic rows")
    ap.add_argument("--echo", type=float, default=0.0, help="share of 'X by X' rows among the synthetic ones")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    out_dir = Path("runs/induction_lab")
    out_dir.mkdir(parents=True, exist_ok=True)
    log = (out_dir / f"{a.name}.log").open("w")

    def say(line: str) -> None:
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    train, val = load_corpus("train"), load_corpus("val")  # the bundled stories (v2 since 2026-12-05)
    tokenizer = get_tokenizer()
    ids = torch.tensor(tokenizer.encode(train, allowed_special={STORY_SEPARATOR}))
    vocabulary = sorted(set(ids.tolist()) - {EOT_ID})
    by = tokenizer.encode(" by")[0]
    drill_vocabulary = torch.tensor(vocabulary)
    first_val = [EOT_ID] + tokenizer.encode(val.split(STORY_SEPARATOR)[0])
    story = torch.tensor(first_val[:256]).unsqueeze(0)

    torch.manual_seed(123)
    cfg = get_config("tiny")
    cfg.update(emb_dim=a.emb, n_layers=a.layers, n_heads=a.heads, drop_rate=0.0)
    model = init_weights_gpt2(GPTModel(cfg), std=a.std)
    if a.init == "sinusoidal":
        with torch.no_grad():
            model.pos_emb.weight.copy_(sinusoidal_positions(cfg["context_length"], a.emb, std=a.std))
    unused = UnusedTokens(model, ids)
    optimizer = make_optimizer(model, lr=a.lr)
    n_windows = (len(ids) - 1) // a.T
    generator = torch.Generator().manual_seed(0)
    order, cursor = torch.randperm(n_windows, generator=generator), 0
    say(f"{vars(a)} | train tokens {len(ids):,}, distinct {len(vocabulary):,}")
    seconds, tokens, running = 0.0, 0, None
    for step in range(1, a.steps + 1):
        started = time.perf_counter()
        if cursor + a.B > n_windows:
            order, cursor = torch.randperm(n_windows, generator=generator), 0
        rows = [ids[s * a.T:s * a.T + a.T + 1] for s in order[cursor:cursor + a.B].tolist()]
        cursor += a.B
        rows = [drill_row(a.T + 1, drill_vocabulary, a.echo, by, generator)
                if float(torch.rand(1, generator=generator)) < a.synthetic else r for r in rows]
        batch = torch.stack(rows)
        for group in optimizer.param_groups:
            group["lr"] = lr_at_step(step - 1, a.lr, a.steps, a.warmup, a.lr / 10)
        loss = unused.loss(model, batch[:, :-1], batch[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        unused.clip_grad_norm_(model, 1.0)
        optimizer.step()
        unused.sync(model)
        seconds += time.perf_counter() - started
        tokens += batch[:, :-1].numel()
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        if step % a.eval == 0 or step == a.steps:
            model.eval()
            induction = probes_module.induction_accuracy(model)
            scores = head_scores(model, text_ids=story, n_tokens=40)
            found = probes_module.run_probes(model, n_stories=40)
            model.train()
            previous, heads = scores["previous_token"], scores["induction"]
            say(f"step {step} tokens {tokens / 1e6:.2f}M train {seconds:.0f}s loss {running:.3f} "
                f"induction {induction['second']:.2f}/{induction['first']:.2f} "
                f"prev {previous.max():.2f}@L{int(previous.argmax()) // a.heads} "
                f"ind-head {heads.max():.2f}@L{int(heads.argmax()) // a.heads} "
                + " ".join(f"{k} {v:.2f}" for k, v in found.items()))
            torch.save(model.state_dict(), out_dir / f"{a.name}.pt")


if __name__ == "__main__":
    main()
