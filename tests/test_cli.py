"""The command-line tools on a tiny configuration: train, resume, generate, and 2-process torchrun."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gptbook.checkpoint import load_checkpoint, load_checkpoint_metadata
from gptbook.generate_cli import main as generate_main
from gptbook.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
TINY_ARGS = ["--set", "emb_dim=32", "--set", "n_layers=2", "--set", "n_heads=2", "--set", "context_length=32",
             "--batch-size", "4", "--eval-batches", "2", "--log-every", "2", "--lr", "3e-3", "--warmup-steps", "2"]


def story_file(tmp_path):
    from gptbook.corpus import load_corpus

    path = tmp_path / "stories.txt"
    path.write_text(load_corpus("val")[:20000], encoding="utf-8")
    return path


def test_train_resume_and_generate_in_process(tmp_path, capsys):
    out = tmp_path / "run"
    data = story_file(tmp_path)
    assert train_main([*TINY_ARGS, "--data", str(data), "--out", str(out), "--steps", "4", "--eval-every", "2",
                       "--save-every", "2"]) == 0
    log = capsys.readouterr().out
    assert "step     2/4 | loss" in log and "val loss" in log and "saved checkpoint" in log and "done: step 4" in log
    assert load_checkpoint_metadata(out)["step"] == 4

    assert train_main([*TINY_ARGS, "--data", str(data), "--out", str(out), "--steps", "6", "--eval-every", "2",
                       "--resume"]) == 0
    log = capsys.readouterr().out
    assert "resumed from" in log and "at step 4" in log and "step     6/6" in log and "step     2/" not in log
    meta = load_checkpoint_metadata(out)
    assert meta["step"] == 6 and meta["history"]["steps"] == [1, 2, 3, 4, 5, 6]

    assert generate_main([str(out), "--prompt", "Once upon a time", "--max-new-tokens", "8", "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("Once upon a time") and len(first) > len("Once upon a time")
    assert generate_main([str(out), "--prompt", "Once upon a time", "--max-new-tokens", "8", "--seed", "1"]) == 0
    assert capsys.readouterr().out == first  # same seed, same text
    assert generate_main([str(out), "--prompt", "Once upon a time", "--max-new-tokens", "8",
                          "--temperature", "0", "--no-eos"]) == 0


def test_cli_errors_are_clear(tmp_path, capsys):
    bad = tmp_path / "latin.txt"
    bad.write_bytes("café ".encode("latin-1") * 100)
    assert train_main([*TINY_ARGS, "--data", str(bad), "--out", str(tmp_path / "x"), "--steps", "1"]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert generate_main([str(tmp_path / "nothing-here")]) == 2
    assert "cannot load" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_main(["--set", "n_layers"])


def test_generate_from_a_hugging_face_folder(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=50257, n_positions=32, n_embd=32,
                                                              n_layer=2, n_head=2))
    hf.save_pretrained(tmp_path / "hf")
    assert generate_main([str(tmp_path / "hf"), "--prompt", "Hello", "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.startswith("Hello")


def _env():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return env


def test_python_dash_m_entry_points(tmp_path):
    out = tmp_path / "run"
    data = story_file(tmp_path)
    run = subprocess.run([sys.executable, "-m", "gptbook.train", *TINY_ARGS, "--data", str(data), "--out", str(out),
                          "--steps", "2", "--eval-every", "2"], capture_output=True, text=True, env=_env(),
                         cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "done: step 2" in run.stdout
    gen = subprocess.run([sys.executable, "-m", "gptbook.generate", str(out), "--max-new-tokens", "3"],
                         capture_output=True, text=True, env=_env(), cwd=REPO, timeout=300)
    assert gen.returncode == 0, gen.stderr
    assert gen.stdout.startswith("Once upon a time")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes(tmp_path):
    """DistributedDataParallel on 2 CPU processes (gloo): the loss falls, rank 0 alone logs and saves."""
    out = tmp_path / "ddp"
    data = story_file(tmp_path)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           "-m", "gptbook.train", *TINY_ARGS, "--data", str(data), "--out", str(out), "--steps", "8",
           "--eval-every", "8", "--save-every", "100", "--lr", "5e-3",
           "--max-seconds", "1000"]  # exercises the time-budget agreement between processes (never reached)
    run = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=REPO, timeout=300)
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
