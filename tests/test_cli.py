"""The command line (``gptbook train``, ``gptbook generate``) on a tiny configuration: it trains, resumes and
generates; ``--recipe course`` is the course model's recipe; every bad input ends in one line on stderr,
exit status 2 and nothing written."""

import os
import re
import subprocess
import sys
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import torch

import gptbook
from gptbook.loading.checkpoint import load_checkpoint_metadata
from gptbook.cli import build_parser, main, train_config_from_args
from gptbook.training.course_model import COURSE_RECIPE
from gptbook.training import TrainConfig
from conftest import need

REPO = Path(__file__).resolve().parents[1]
TINY_ARGS = ["--set", "emb_dim=32", "--set", "n_layers=2", "--set", "n_heads=2", "--set", "context_length=32",
             "--batch-size", "4", "--eval-batches", "2", "--log-every", "2", "--lr", "3e-3", "--warmup-steps", "2"]


def story_file(folder: Path) -> Path:
    from gptbook.training.corpus import load_corpus

    path = folder / "stories.txt"
    path.write_text(load_corpus("val")[:20000], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 2-step checkpoint of a tiny model (context 32), trained once for the tests below."""
    folder = tmp_path_factory.mktemp("tiny")
    out = folder / "run"
    assert main(["train", *TINY_ARGS, "--data", str(story_file(folder)), "--out", str(out), "--steps", "2",
                 "--eval-every", "2"]) == 0
    return out


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its size and modification time: what "nothing written" compares."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


# ---------------------------------------------------------------------------------------------
# What works
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow  # trains and resumes a model
def test_train_resume_and_generate_in_process(tmp_path, capsys):
    out = tmp_path / "run"
    data = story_file(tmp_path)
    assert main(["train", *TINY_ARGS, "--data", str(data), "--out", str(out), "--steps", "4", "--eval-every", "2",
                 "--save-every", "2"]) == 0
    log = capsys.readouterr().out
    assert "step     2/4 | loss" in log and "val loss" in log and "saved checkpoint" in log and "done: step 4" in log
    assert load_checkpoint_metadata(out)["step"] == 4

    assert main(["train", "--data", str(data), "--out", str(out), "--steps", "6", "--eval-every", "2",
                 "--batch-size", "4", "--resume"]) == 0
    log = capsys.readouterr().out
    assert "resumed from" in log and "at step 4" in log and "step     6/6" in log and "step     2/" not in log
    meta = load_checkpoint_metadata(out)
    assert meta["step"] == 6 and meta["history"]["steps"] == [1, 2, 3, 4, 5, 6]

    args = ["generate", str(out), "--prompt", "Once upon a time", "--max-new-tokens", "8", "--seed", "1"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.startswith("Once upon a time") and len(first) > len("Once upon a time")
    assert main(args) == 0
    assert capsys.readouterr().out == first  # same seed, same text
    assert main(["generate", str(out), "--max-new-tokens", "8", "--temperature", "0", "--no-eos"]) == 0


def test_recipe_course_builds_exactly_the_course_recipe(tmp_path):
    """`gptbook train --recipe course --out DIR` trains what Trainer(COURSE_RECIPE) trains, into DIR."""
    def config(*argv):
        return train_config_from_args(build_parser().parse_args(["train", *argv]))

    assert config("--recipe", "course") == COURSE_RECIPE
    assert config("--recipe", "course", "--out", "runs/course-model") == replace(COURSE_RECIPE, out_dir="runs/course-model")
    assert config("--recipe", "course", "--steps", "7", "--set", "n_layers=2") == replace(
        COURSE_RECIPE, max_steps=7, model_overrides={**COURSE_RECIPE.model_overrides, "n_layers": 2})
    assert config() == TrainConfig()  # without a recipe, every default is TrainConfig's


def test_each_option_sets_its_train_config_field():
    args = build_parser().parse_args([
        "train", "--config", "124M", "--set", "n_layers=2", "--set", "qkv_bias=true", "--data", "a.txt",
        "--out", "o", "--steps", "9", "--max-seconds", "60", "--batch-size", "3", "--max-length", "16",
        "--lr", "0.01", "--min-lr", "0.001", "--warmup-steps", "4", "--weight-decay", "0", "--grad-clip", "0",
        "--grad-accum", "2", "--eval-every", "5", "--eval-batches", "6", "--save-every", "7", "--log-every", "8",
        "--seed", "9", "--device", "cpu", "--bf16", "on", "--init", "default", "--prompt", "Hi", "--resume"])
    assert train_config_from_args(args) == TrainConfig(
        model="124M", model_overrides={"n_layers": 2, "qkv_bias": True}, data="a.txt", out_dir="o", max_steps=9,
        max_seconds=60.0, batch_size=3, max_length=16, lr=0.01, min_lr=0.001, warmup_steps=4, weight_decay=0.0,
        grad_clip=None, grad_accum_steps=2, eval_every=5, eval_batches=6, save_every=7, log_every=8, seed=9,
        device="cpu", autocast=True, init="default", sample_prompt="Hi", resume="o")


def test_a_prompt_longer_than_the_context_is_cut_with_a_note(tiny_run, capsys):
    prompt = "Once upon a time there was a little dog. " * 10  # ~100 tokens; the context is 32
    assert main(["generate", str(tiny_run), "--prompt", prompt, "--max-new-tokens", "3"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(prompt)
    assert "the model sees only its last 32" in captured.err and captured.err.count("\n") == 1


def test_generate_from_a_hugging_face_folder(tmp_path, capsys):
    transformers = need("transformers", reason="transformers is the test-only numerical reference")
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=50257, n_positions=32, n_embd=32,
                                                              n_layer=2, n_head=2))
    hf.save_pretrained(tmp_path / "hf")
    assert main(["generate", str(tmp_path / "hf"), "--prompt", "Hello", "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.startswith("Hello")


@pytest.mark.slow  # starts Python processes
def test_entry_points_gptbook_and_python_dash_m(tmp_path, tiny_run):
    """`python -m gptbook train`, `python -m gptbook generate` and the `gptbook` console script all run."""
    out = tmp_path / "run"
    data = story_file(tmp_path)
    run = subprocess.run([sys.executable, "-m", "gptbook", "train", *TINY_ARGS, "--data", str(data), "--out", str(out),
                          "--steps", "1", "--eval-every", "1"], capture_output=True, text=True, env=_env(),
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "done: step 1" in run.stdout and load_checkpoint_metadata(out)["step"] == 1
    gen = subprocess.run([sys.executable, "-m", "gptbook", "generate", str(tiny_run), "--max-new-tokens", "3"],
                         capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300)
    assert gen.returncode == 0, gen.stderr
    assert gen.stdout.startswith("Once upon a time") and gen.stderr == ""
    try:
        scripts = {ep.name: ep.value for ep in distribution("gptbook").entry_points if ep.group == "console_scripts"}
    except PackageNotFoundError:
        pytest.skip("gptbook is not installed (pip install -e .), so there is no console script to check")
    assert scripts == {"gptbook": "gptbook.cli:main"}
    script = Path(sys.executable).parent / ("gptbook.exe" if os.name == "nt" else "gptbook")
    if script.exists():  # installed into this environment (not only visible through a parent one)
        version = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=300)
        assert version.returncode == 0 and version.stdout.strip() == f"gptbook {gptbook.__version__}"


def test_no_module_shadows_a_name_of_the_package():
    """`gptbook.generate` is the function even after every module of the package has been imported."""
    import importlib

    modules = sorted(p.stem for p in Path(gptbook.__file__).parent.glob("*.py") if p.stem != "__main__")
    for name in modules:
        importlib.import_module(f"gptbook.{name}")
    assert not set(modules) & set(gptbook.__all__)
    for name in gptbook.__all__:
        assert not isinstance(getattr(gptbook, name), type(gptbook)), name
    assert callable(gptbook.generate) and gptbook.generate.__module__ == "gptbook.generation"


# ---------------------------------------------------------------------------------------------
# --help
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["train", "generate"])
def test_help_gives_each_option_one_line_and_its_default_once(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    options = text.split("options:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(options) >= (20 if command == "train" else 9)
    for line in options:
        assert re.match(r"  (-h, )?--\S+( \S+)?\s{2,}\S", line), f"an option without a description: {line!r}"
        assert line.count("(default:") <= 1, line
    assert "(default: None)" not in text and "(default: [])" not in text and "(default: ==SUPPRESS==)" not in text


# ---------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit status 2, nothing written
# ---------------------------------------------------------------------------------------------

BAD_TRAIN = [
    (["--set", "n_layer=2"], "'n_layer' is not a model configuration field; valid fields: vocab_size,"),
    (["--set", "n_layers"], "expected KEY=VALUE"),
    (["--set", "n_heads=3"], "must be divisible by 'n_heads'"),
    (["--set", "n_layers=two"], "must be a positive integer"),
    (["--config", "huge"], "unknown configuration name 'huge'"),
    (["--batch-size", "0"], "--batch-size: must be a whole number >= 1, got '0'"),
    (["--steps", "-3"], "--steps: must be a whole number >= 1"),
    (["--steps", "ten"], "--steps: must be a whole number >= 1, got 'ten'"),
    (["--lr", "-1"], "--lr: must be a number > 0"),
    (["--lr", "nan"], "--lr: must be a number > 0"),
    (["--grad-accum", "0"], "--grad-accum: must be a whole number >= 1"),
    (["--eval-every", "0"], "--eval-every: must be a whole number >= 1"),
    (["--max-length", "999"], "longer than the model's context_length (256)"),
    (["--bf16", "maybe"], "--bf16: must be auto, on or off"),
    (["--device", "cuda:99" if torch.cuda.is_available() else "cuda"], "--device cuda"),
    (["--device", "gpu"], "--device 'gpu' is not a device"),
    (["--data", "missing.txt"], "--data: no such file: 'missing.txt'"),
    (["--data", "."], "--data: '.' is a folder"),
    (["--resume", "runs/none"], "--resume: no such checkpoint folder: 'runs/none'"),
    (["--resume", "."], "is not a gptbook checkpoint"),
    (["--resume", ".", "--set", "n_layers=2"], "a resumed run keeps its checkpoint's configuration"),
    (["--recipe", "fast"], "invalid choice: 'fast'"),
]
if not torch.backends.mps.is_available():
    BAD_TRAIN.append((["--device", "mps"], "--device mps: Apple's MPS is not available here"))

BAD_GENERATE = [
    (["runs/nope"], "no such checkpoint folder: 'runs/nope'"),
    (["./nope"], "no such checkpoint folder: './nope'"),
    (["."], "'.' is a folder but holds no model"),
    (["notes.txt"], "'notes.txt' is a file, not a checkpoint folder"),
    (["{run}", "--prompt", ""], "--prompt is empty"),
    (["{run}", "--temperature", "-1"], "--temperature: must be a number >= 0"),
    (["{run}", "--top-p", "1.5"], "--top-p: must be a number above 0 and at most 1"),
    (["{run}", "--top-p", "0"], "--top-p: must be a number above 0 and at most 1"),
    (["{run}", "--top-k", "-5"], "--top-k: must be a whole number >= 0"),
    (["{run}", "--max-new-tokens", "-3"], "--max-new-tokens: must be a whole number >= 1"),
    (["{run}", "--max-new-tokens", "0"], "--max-new-tokens: must be a whole number >= 1"),
    (["{run}", "--seed", "-1"], "--seed: must be a whole number from 0"),
    (["{run}", "--device", "gpu"], "--device 'gpu' is not a device"),
    ([], "the following arguments are required: MODEL"),
]


def run_in_process(argv, capsys):
    """``main(argv)``'s exit status and stderr; argparse's own errors arrive as SystemExit."""
    try:
        status = main(argv)
    except SystemExit as stop:
        status = stop.code
    return status, capsys.readouterr().err


def assert_one_line_error(status, err, expected):
    assert status == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert "Traceback" not in err and expected in err, err


@pytest.mark.parametrize("argv, expected", BAD_TRAIN, ids=[" ".join(a) for a, _ in BAD_TRAIN])
def test_bad_train_input_is_one_line_and_writes_nothing(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stories.txt").write_text("Once upon a time. " * 50, encoding="utf-8")
    before = snapshot(tmp_path)
    status, err = run_in_process(["train", "--out", "out", "--steps", "1", *argv], capsys)
    assert_one_line_error(status, err, expected)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv, expected", BAD_GENERATE, ids=[" ".join(a) or "no-model" for a, _ in BAD_GENERATE])
def test_bad_generate_input_is_one_line_and_writes_nothing(argv, expected, tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a model", encoding="utf-8")
    before, run_before = snapshot(tmp_path), snapshot(tiny_run)
    status, err = run_in_process(["generate", *[str(tiny_run) if a == "{run}" else a for a in argv]], capsys)
    assert_one_line_error(status, err, expected)
    assert snapshot(tmp_path) == before and snapshot(tiny_run) == run_before


def test_a_text_that_is_not_utf8_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "latin.txt").write_bytes("café ".encode("latin-1") * 100)
    status, err = run_in_process(["train", *TINY_ARGS, "--data", "latin.txt", "--out", "out", "--steps", "1"], capsys)
    assert_one_line_error(status, err, "not UTF-8")
    assert not (tmp_path / "out").exists()


def test_an_existing_checkpoint_is_kept_unless_resume_or_overwrite(tmp_path, monkeypatch, capsys):
    """A second `train` into the same --out stops before touching the checkpoint already there."""
    monkeypatch.chdir(tmp_path)
    data = story_file(tmp_path)
    args = ["train", *TINY_ARGS, "--data", str(data), "--out", "run", "--eval-every", "2"]
    assert main([*args, "--steps", "2"]) == 0
    capsys.readouterr()
    before = snapshot(tmp_path / "run")
    status, err = run_in_process([*args, "--steps", "1"], capsys)
    assert_one_line_error(status, err, "'run' already holds a checkpoint (step 2): add --resume to continue it, "
                                       "--overwrite to replace it, or choose another --out")
    assert snapshot(tmp_path / "run") == before
    assert main([*args, "--steps", "1", "--overwrite"]) == 0
    assert load_checkpoint_metadata(tmp_path / "run")["step"] == 1


@pytest.mark.slow  # starts Python processes
def test_errors_through_the_real_command_have_no_traceback(tmp_path):
    """The same checks seen from a shell: exit status 2, one line on stderr, no traceback, nothing written."""
    cases = [
        (["train", "--set", "n_layer=2"], "valid fields:"),  # argparse's check
        (["train", "--device", "cuda:99" if torch.cuda.is_available() else "cuda"], "--device cuda"),  # gptbook's
        (["generate", "runs/nope"], "no such checkpoint folder"),
        (["generate", "gpt2", "--prompt", ""], "--prompt is empty"),
    ]
    for argv, expected in cases:
        run = subprocess.run([sys.executable, "-m", "gptbook", *argv], capture_output=True, text=True, env=_env(),
                             cwd=tmp_path, timeout=300)
        assert_one_line_error(run.returncode, run.stderr, expected)
        assert run.stdout == ""
    assert list(tmp_path.iterdir()) == []
