"""Time to skill: how long a course recipe trains before the model counts, and before it copies in context.

    python bench/bench_time_to_skill.py --recipe notebook  # notebook 08's run (a few minutes)
    python bench/bench_time_to_skill.py                    # the course model's recipe (about half an hour)
    python bench/bench_time_to_skill.py --max-steps 300    # ... only its first 300 steps
    python bench/bench_time_to_skill.py --shipped          # read the shipped course model's own run

For a recipe of ``gptbook.training.recipes`` it trains a fresh model with ``Trainer`` (in this process) and reads
its history: at every evaluation the probes (``gptbook.training.probes``, on held-out stories), in-context copying
(``induction``: ``gptbook.training.probes.induction_accuracy``) and the seconds of training so far. It prints, for each skill, the first
evaluation at which the skill was reached -- counting >= 90 %, induction >= 50 % -- with the tokens and
seconds it took (set-up excluded, evaluations included: what a learner waits), and the CPU it ran on.
Nothing is asserted: figures depend on the machine (name it beside every figure).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace

from gptbook.training.course_model import _machine, course_model_info
from gptbook.training.recipes import RECIPES

#: The skills timed, and the accuracy that counts as "has it".
GOALS = {"counting": 0.90, "induction": 0.50}


def time_to_skill(history: dict, tokens_per_step: int) -> dict[str, dict]:
    """For each skill of ``GOALS``: the first evaluation that reached it (step, tokens, seconds), or None."""
    seconds = history.get("val_seconds") or [None] * len(history["val_probes"])
    reached: dict[str, dict] = {}
    for skill, goal in GOALS.items():
        reached[skill] = None
        for probes, secs in zip(history["val_probes"], seconds):
            if probes.get(skill, 0.0) >= goal:
                reached[skill] = {"step": probes["step"], "tokens": probes["step"] * tokens_per_step,
                                  "seconds": secs, "accuracy": probes[skill]}
                break
    return reached


def report(name: str, reached: dict[str, dict], machine: str, last: dict) -> None:
    print(f"\nrecipe {name!r} on {machine}")
    print("| skill | goal | reached at step | tokens | seconds |")
    print("|---|---:|---:|---:|---:|")
    for skill, goal in GOALS.items():
        r = reached[skill]
        if r is None and skill not in last:
            print(f"| {skill} | {goal:.0%} | not measured in this run | | |")
        elif r is None:
            print(f"| {skill} | {goal:.0%} | not reached (last: {last[skill]:.0%}) | | |")
        else:
            secs = f"{r['seconds']:.0f}" if r["seconds"] is not None else "not recorded"
            print(f"| {skill} | {goal:.0%} | {r['step']:,} ({r['accuracy']:.0%}) | {r['tokens']:,} | {secs} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", choices=list(RECIPES), default="course")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (the schedule is kept)")
    parser.add_argument("--shipped", action="store_true", help="read the shipped course model's history instead")
    args = parser.parse_args()
    if args.shipped:
        info = course_model_info()
        recipe = info["recipe"]
        tokens_per_step = recipe["batch_size"] * recipe["max_length"] * recipe.get("grad_accum_steps", 1)
        history = info["history"]
        report("course (shipped run)", time_to_skill(history, tokens_per_step), info["machine"],
               history["val_probes"][-1])
        return
    from gptbook.training import Trainer

    def stop_early(event: str, **info) -> bool:  # --max-steps: stop there, with the recipe's schedule
        return args.max_steps is not None and event == "step" and info["step"] >= args.max_steps

    with tempfile.TemporaryDirectory() as out:
        config = replace(RECIPES[args.recipe], out_dir=out)
        trainer = Trainer(config, log=lambda message: None, callback=stop_early)
        history = trainer.fit()
    tokens_per_step = config.batch_size * trainer.max_length * config.grad_accum_steps
    print(f"{trainer.step} steps, {trainer.step * tokens_per_step:,} tokens, "
          f"{history['val_seconds'][-1]:.0f} s of training; final probes: {history['val_probes'][-1]}")
    report(args.recipe, time_to_skill(history, tokens_per_step), _machine(), history["val_probes"][-1])


if __name__ == "__main__":
    main()
