"""The package's shape: imports run one way (no import cycles), and no module grows past what one sitting reads.

``tools/import_graph.py`` draws the graph (function-level imports count): it has no cycle, and the test fails on
the first arrow that closes one.
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import import_graph  # noqa: E402


MAX_LINES = 420
# Modules allowed over the limit: none since step 2 of issue 19 (training.py, dashboard.py and cli.py were split) and
# issue 17 (the story world moved out of corpus.py into stories.py).
KNOWN_LONG: set[str] = set()


def test_there_are_no_import_cycles():
    assert import_graph.cycles(import_graph.arrows()) == [], "an import cycle: make one side stop importing the other"


def test_catalogues_do_not_import_the_registry():
    graph = import_graph.arrows()
    for name, targets in graph.items():
        if name.startswith("gptbook.exercises.nb"):
            assert not targets & {"gptbook.exercises", "gptbook.exercises.registry", "gptbook.exercises.api"}, name


#: The modules a learner reads to see the GPT, at the top of the package.
CORE = ("tokenizer", "config", "data", "layers", "attention", "model", "params", "generation", "prepack", "_shared")
#: The other modules at the top: the package itself, and the doors the notebooks import the rooms' tools from.
DOORS = ("__init__", "__main__", "_version", "interpret", "viz", "weights", "widgets")


def test_the_top_of_the_package_is_the_core_and_its_doors():
    """A newcomer who opens ``gptbook/`` sees the core and a few doors; everything else lives in a room."""
    top = {p.stem for p in (ROOT / "gptbook").glob("*.py")}
    assert top == set(CORE) | set(DOORS), ("a new top-level module: put it in a room, or name it in CORE or DOORS "
                                           f"and in ARCHITECTURE.md: {sorted(top ^ (set(CORE) | set(DOORS)))}")


def test_the_core_imports_no_room():
    """tokenizer, config, data, layers, attention, model, params, generation, prepack import only each other (and
    the two loading modules ``from_pretrained`` needs, which import nothing but config)."""
    core = {f"gptbook.{m}" for m in CORE}
    allowed = core | {"gptbook.loading.hf_gpt2", "gptbook.loading.source", "gptbook.loading.state"}
    graph = import_graph.arrows()
    for name in core:
        assert graph[name] <= allowed, (name, graph[name] - allowed)


def test_no_module_is_longer_than_one_sitting():
    long = {str(p.relative_to(ROOT)) for p in (ROOT / "gptbook").rglob("*.py")
            if len(p.read_text(encoding="utf-8").splitlines()) > MAX_LINES}
    assert long <= KNOWN_LONG, f"split these modules (over {MAX_LINES} lines): {sorted(long - KNOWN_LONG)}"


def test_no_submodule_shadows_a_name_a_room_exports():
    """``gptbook.exercises.progress`` is the function even after every module of the room has been imported (a
    submodule named like an exported function would replace it on the package once imported)."""
    import importlib
    import types

    for package in ("gptbook.exercises", "gptbook.ui", "gptbook.loading", "gptbook.training", "gptbook.cli"):
        folder = ROOT / package.replace(".", "/")
        names = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
        for name in names:
            importlib.import_module(f"{package}.{name}")
        module = importlib.import_module(package)
        exported = set(getattr(module, "__all__", ()))
        assert not exported & set(names), package
        for name in exported:
            assert not isinstance(getattr(module, name), types.ModuleType), f"{package}.{name}"
    from gptbook.exercises import progress
    assert callable(progress) and progress.__module__ == "gptbook.exercises.api"


def test_the_names_the_notebooks_import_are_where_they_look():
    """``training.py``, ``dashboard.py`` and ``cli.py`` became packages (issue 19): every name the notebooks, the
    tools and the tests import from ``gptbook.training``, ``gptbook.widgets`` and ``gptbook.cli`` is there."""
    import gptbook.cli
    import gptbook.training
    import gptbook.ui.dashboard
    import gptbook.widgets

    training_names = """TokenWindows TrainConfig Trainer TrainingCallback UnusedTokens autocast_context
        bf16_autocast_supported calc_loss_batch calc_loss_loader choose_device chunked_cross_entropy eval_mode
        evaluate_model generate_and_print_sample hidden_states init_weights_gpt2 lr_at_step make_optimizer model_loss
        perplexity plot_losses sinusoidal_positions supports_fast_loss train_model_simple""".split()
    assert [n for n in training_names if not hasattr(gptbook.training, n)] == []
    assert [n for n in ("TrainingDashboard", "live_frontend", "reference_losses")
            if not hasattr(gptbook.ui.dashboard, n)] == []
    assert [n for n in ("main", "build_parser", "train_config_from_args", "parse_override", "resolve_device",
                        "load_model", "UsageError") if not hasattr(gptbook.cli, n)] == []
    assert gptbook.ui.dashboard.TrainingDashboard.__module__ == "gptbook.ui.dashboard"
    assert [n for n in ("AttentionExplorer", "GenerationWidget", "TokenProbabilityExplorer", "TokenizerWidget",
                        "TrainingDashboard") if not hasattr(gptbook.widgets, n)] == []
