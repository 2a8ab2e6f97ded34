"""Training on several processes (DistributedDataParallel, gloo, 2 CPU processes under torchrun).

Two launches of torchrun: the command line a learner types, and this file run as a worker script
that checks what DDP promises: the processes hold identical weights after every step (gradients
averaged, also with gradient accumulation through ``no_sync``), those weights are the ones a
single process gets from the whole global batch, the loss reported is the mean over processes,
and ``Trainer.close`` leaves no communication thread behind (threads that outlive the process
group die with the interpreter and can abort it at exit).
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # torchrun: two Python processes per test

REPO = Path(__file__).resolve().parents[1]
TINY_ARGS = ["--set", "emb_dim=32", "--set", "n_layers=2", "--set", "n_heads=2", "--set", "context_length=32",
             "--batch-size", "4", "--eval-batches", "2", "--log-every", "2", "--lr", "3e-3", "--warmup-steps", "2"]
#: How a learner starts training (after ``torchrun --nproc_per_node 2``): change it here only.
TRAIN_MODULE = ["-m", "gptbook", "train"]


def story_file(tmp_path):
    from gptbook.training.corpus import load_corpus

    path = tmp_path / "stories.txt"
    path.write_text(load_corpus("val")[:20000], encoding="utf-8")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args, nproc=2):
    """Run ``torchrun --nproc_per_node nproc ARGS`` on this machine's CPU; returns the CompletedProcess."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *args]
    try:  # generous: on a loaded 2-core machine two processes can be slow; a hang still ends the test
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace")[-3000:] + (exc.stderr or b"").decode(errors="replace")[-3000:]
        raise AssertionError(f"torchrun did not finish within {exc.timeout} s:\n{out}") from None


def test_torchrun_two_processes(tmp_path):
    """The command line under torchrun: the loss falls, rank 0 alone logs and saves, both exit cleanly."""
    from gptbook.loading.checkpoint import load_checkpoint, load_checkpoint_metadata

    out = tmp_path / "ddp"
    data = story_file(tmp_path)
    run = torchrun(*TRAIN_MODULE, *TINY_ARGS, "--data", str(data), "--out", str(out), "--steps", "8",
                   "--eval-every", "8", "--save-every", "100", "--lr", "5e-3",
                   "--max-seconds", "1000")  # exercises the time-budget agreement between processes (never reached)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "2 process(es)" in run.stdout
    assert run.stdout.count("done: step 8") == 1  # only rank 0 prints
    meta = load_checkpoint_metadata(out)
    losses = meta["history"]["train_losses"]
    assert meta["step"] == 8 and len(losses) == 8
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.5
    assert meta["history"]["tokens_seen"][-1] == 8 * 2 * 4 * 32  # steps x processes x batch x length
    model = load_checkpoint(out)
    assert model.cfg["emb_dim"] == 32
    assert not list(out.glob("*.tmp"))


def test_ddp_steps_average_gradients_and_losses(tmp_path):
    """Run this file as the worker of 2 processes; each check prints a line that must be there."""
    data = story_file(tmp_path)
    run = torchrun(__file__, str(data), str(tmp_path / "worker"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    steps = 3  # the worker's max_steps; the middle checks run after every step, on both processes
    for check, times in (("ranks differ in data", 2), ("identical weights", 2 * steps),
                         ("single-process reference", 2 * steps), ("reported loss is the mean", 2 * steps),
                         ("no threads left", 2)):
        assert run.stdout.count(f"ok: {check}") == times, (check, run.stdout[-3000:] + run.stderr[-3000:])


# ---------------------------------------------------------------------------------------------
# The worker (runs in each torchrun process)
# ---------------------------------------------------------------------------------------------

def _flat_params(model):
    import torch

    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _gather(tensor):
    """All processes' copies of ``tensor``, stacked: (world_size, *tensor.shape)."""
    import torch
    import torch.distributed as dist

    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor)
    return torch.stack(parts)


def _worker(data: str, out_dir: str) -> None:
    import copy

    import torch
    import torch.distributed as dist

    from gptbook.training import TrainConfig, Trainer, make_optimizer, model_loss

    config = TrainConfig(model_overrides={"emb_dim": 32, "n_layers": 2, "n_heads": 2, "context_length": 32,
                                          "drop_rate": 0.0},
                         data=data, out_dir=out_dir, batch_size=2, grad_accum_steps=2, max_steps=3,
                         lr=5e-3, warmup_steps=0, grad_clip=0.5, eval_every=3, eval_batches=1, save_every=100,
                         init="default")  # large initial logits: the two processes' losses differ clearly
    trainer = Trainer(config, log=lambda message: None)
    trainer._setup_device()
    trainer._build()
    trainer._load_data()
    rank, world = trainer.rank, trainer.world_size
    accum = config.grad_accum_steps

    def say(check):
        print(f"rank {rank} ok: {check}", flush=True)

    first = torch.stack([trainer.train_windows.batch(m)[0] for m in range(accum)])  # (accum, b, T)
    firsts = _gather(first)
    assert not torch.equal(firsts[0], firsts[1]), "both processes read the same batches"
    say("ranks differ in data")

    for _ in range(config.max_steps):
        step = trainer.step
        before = copy.deepcopy(trainer.model)
        batches = [trainer.train_windows.batch(step * accum + m) for m in range(accum)]
        with torch.no_grad():  # this process's losses, before the step (no dropout: the same numbers)
            local = sum(model_loss(before, x, y).item() for x, y in batches) / accum
        reported = trainer.train_step()

        weights = _gather(_flat_params(trainer.model))
        assert torch.equal(weights[0], weights[1]), "the processes hold different weights after a step"
        assert not torch.equal(weights[0], _flat_params(before)), "the step changed nothing"
        say("identical weights")

        # One process, the whole global batch: every process's micro-batches, gradients averaged.
        all_inputs = _gather(torch.stack([x for x, _ in batches]))  # (world, accum, b, T)
        all_targets = _gather(torch.stack([y for _, y in batches]))
        reference = copy.deepcopy(before).train()
        optimizer = make_optimizer(reference, lr=trainer.optimizer.param_groups[0]["lr"],
                                   weight_decay=config.weight_decay)
        if step > 0:  # the optimizer's moments so far, as the trainer had them before this step
            optimizer.load_state_dict(state_before)
            for group in optimizer.param_groups:
                group["lr"] = trainer.optimizer.param_groups[0]["lr"]
        for r in range(world):
            for m in range(accum):
                (model_loss(reference, all_inputs[r, m], all_targets[r, m]) / (accum * world)).backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), config.grad_clip)
        optimizer.step()
        torch.testing.assert_close(_flat_params(reference), weights[0], rtol=1e-4, atol=1e-6)
        say("single-process reference")
        state_before = copy.deepcopy(trainer.optimizer.state_dict())

        locals_ = _gather(torch.tensor([local], dtype=torch.float64))
        assert abs(locals_[0].item() - locals_[1].item()) > 1e-4, "the processes' losses should differ"
        assert abs(reported - locals_.mean().item()) < 1e-5, (reported, locals_.tolist())
        say("reported loss is the mean")

    trainer._finished = True  # as fit() leaves it
    trainer.close()
    left = sorted({Path(f"/proc/self/task/{t}/comm").read_text().strip() for t in os.listdir("/proc/self/task")}
                  - {"python", "python3", Path("/proc/self/comm").read_text().strip()})
    gloo = [name for name in left if "gloo" in name]
    assert not gloo and not dist.is_initialized(), f"threads still running after close(): {left}"
    say("no threads left")


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
