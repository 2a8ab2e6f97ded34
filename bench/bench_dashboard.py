"""How much does the live training dashboard slow training down? Goal: under 5 %.

Trains the same small run (tiny model, bundled corpus, ``Trainer``) with and without a live
``TrainingDashboard`` (drawing on: ``live=True``, redrawing as often as it allows itself), in
alternating order, and prints the wall time of each run, the slowdown, and the time the
dashboard spent drawing. The probes and samples run in both (they are part of the Trainer's
evaluations), so the difference is what the dashboard adds: recording, status updates and drawing.

    python bench/bench_dashboard.py [--steps 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from gptbook._shared import cpu_name  # noqa: E402
from gptbook.ui.dashboard import TrainingDashboard  # noqa: E402
from gptbook.training import TrainConfig, Trainer  # noqa: E402


def one_run(steps: int, with_dashboard: bool, folder: str, draw: bool = True) -> tuple[float, float, int]:
    config = TrainConfig(model="tiny", out_dir=folder, batch_size=4, max_length=128, max_steps=steps,
                         eval_every=max(steps // 3, 1), eval_batches=2, save_every=10_000, log_every=10_000,
                         probe_stories=5, sample_tokens=20, device="cpu", autocast=False)
    dashboard = TrainingDashboard(live=True, redraw_seconds=0.0) if with_dashboard else None
    if dashboard is not None and not draw:  # everything but the pictures: thread, recording, status line
        dashboard._draw = lambda: None
    trainer = Trainer(config, log=lambda message: None, dashboard=dashboard if dashboard else False)
    started = time.perf_counter()
    trainer.fit()
    if dashboard is not None:
        dashboard.wait()
        assert dashboard.exception is None, dashboard.exception
    wall = time.perf_counter() - started
    return wall, (dashboard.draw_seconds if dashboard else 0.0), (dashboard.n_draws if dashboard else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("GPTBOOK_DASHBOARD", "widget")
    print(f"CPU: {cpu_name()} | {torch.get_num_threads()} threads | torch {torch.__version__} | "
          f"Python {platform.python_version()} | load average {os.getloadavg()[0]:.1f}")
    plain, live, quiet, draws, n_draws = [], [], [], [], []
    kinds = {"plain": (False, True, plain), "live": (True, True, live), "no pictures": (True, False, quiet)}
    with tempfile.TemporaryDirectory() as tmp:
        one_run(3, True, tmp)  # warm-up: imports, the tokenizer, the corpus, matplotlib's fonts
        for r in range(args.repeats):
            order = list(kinds) if r % 2 == 0 else list(kinds)[::-1]  # interleave: the load changes over time
            for kind in order:
                with_dashboard, draw, walls = kinds[kind]
                wall, drawing, n = one_run(args.steps, with_dashboard, tmp, draw)
                walls.append(wall)
                if kind == "live":
                    draws.append(drawing)
                    n_draws.append(n)
    slowdown = [100 * (b / a - 1) for a, b in zip(plain, live)]
    quiet_slowdown = [100 * (b / a - 1) for a, b in zip(plain, quiet)]
    share = [100 * d / w for d, w in zip(draws, live)]
    print(f"{args.steps} steps, {args.repeats} rounds of three runs")
    print(f"  without dashboard:          {', '.join(f'{t:.1f}' for t in plain)} s")
    print(f"  with dashboard:             {', '.join(f'{t:.1f}' for t in live)} s  ({statistics.mean(n_draws):.0f} pictures per run)")
    print(f"  with dashboard, no picture: {', '.join(f'{t:.1f}' for t in quiet)} s  (background thread, recording, status line)")
    print(f"  slowdown per round: {', '.join(f'{s:+.1f}' for s in slowdown)} %  (median {statistics.median(slowdown):+.1f} %; "
          f"without the pictures: median {statistics.median(quiet_slowdown):+.1f} %)")
    print(f"  time spent drawing: {', '.join(f'{s:.1f}' for s in share)} % of the run (goal: the whole slowdown < 5 %)")
    sys.exit(0)


if __name__ == "__main__":
    main()
