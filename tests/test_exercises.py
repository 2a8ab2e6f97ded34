"""Exercises that check themselves: a learner relies on the check to tell a right answer from a wrong
one, to name the common mistakes, and never to crash or hang on whatever they hand it."""

import html
import json
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gptbook
from gptbook import FeedForward, LayerNorm, MultiHeadAttention, TransformerBlock, hint, progress, solution
from gptbook.exercises import all_exercises

EXERCISES = all_exercises()
ALL = list(EXERCISES.values())
MISTAKES = [(ex.id, m) for ex in ALL for m in ex.mistakes if m.answer is not None]
WRONG = [(ex.id, w) for ex in ALL for w in ex.wrong_answers]
VARIANTS = [(ex.id, v) for ex in ALL for v in ex.variants]


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    """Progress goes to a temporary cache folder, never to the home folder."""
    monkeypatch.setenv("GPTBOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def text(result):
    return repr(result)


def check(exercise_id, *answer, time_limit=600.0):
    """The check as a learner runs it; a long time limit, so that a busy machine cannot fail a right answer
    (the garbage test below sets a short one on purpose)."""
    return gptbook.check(exercise_id, *answer, time_limit=time_limit)


def test_every_notebook_has_at_least_two_exercises():
    per_notebook = {f"{i:02d}": 0 for i in range(1, 11)}
    for ex in ALL:
        per_notebook[ex.notebook] += 1
    assert all(n >= 2 for n in per_notebook.values()), per_notebook


@pytest.mark.parametrize("ex", ALL, ids=lambda e: e.id)
def test_the_reference_passes(ex):
    result = check(ex.id, ex.reference)
    assert result.passed, text(result)
    assert text(result).startswith(f"✔ {ex.id}")


@pytest.mark.parametrize("ex", ALL, ids=lambda e: e.id)
def test_the_written_solution_passes(ex):
    scope = {"torch": torch, "nn": nn, "F": F, "math": math, "MultiHeadAttention": MultiHeadAttention,
             "FeedForward": FeedForward, "LayerNorm": LayerNorm, "TransformerBlock": TransformerBlock}
    exec(ex.solution, scope)
    result = check(ex.id, scope[ex.name])
    assert result.passed, text(result)


@pytest.mark.parametrize("exercise_id, mistake", MISTAKES, ids=lambda x: x if isinstance(x, str) else "")
def test_each_common_mistake_is_caught_and_named_with_its_hint(exercise_id, mistake):
    result = check(exercise_id, mistake.answer)
    assert not result.passed
    assert result.mistake is mistake, text(result)
    assert mistake.name in text(result) and mistake.hint in text(result)
    assert html.escape(mistake.name) in result._repr_html_()


def test_every_exercise_registers_wrong_answers_and_valid_variants():
    """Like bench/mutation_test.py for the library: every exercise names the wrong answers its check must
    fail (its common mistakes and other plausible ones) and valid answers written differently."""
    for ex in ALL:
        wrong = [m for m in ex.mistakes if m.answer is not None] + ex.wrong_answers
        assert len(wrong) >= 3, (ex.id, len(wrong))
        assert len(ex.variants) >= 2, (ex.id, len(ex.variants))
        names = {m.name for m in ex.mistakes}
        for w in ex.wrong_answers:
            assert w.mistake is None or w.mistake in names, (ex.id, w.label, w.mistake)
        for m in ex.mistakes:  # every named mistake can be produced by a registered wrong answer
            assert m.answer is not None or any(w.mistake == m.name for w in ex.wrong_answers), (ex.id, m.name)


@pytest.mark.parametrize("exercise_id, wrong", WRONG, ids=lambda x: x if isinstance(x, str) else x.label)
def test_each_registered_wrong_answer_fails_and_is_named(exercise_id, wrong):
    result = check(exercise_id, wrong.answer)
    assert not result.passed, text(result)
    assert result.status in ("wrong", "error"), text(result)
    if wrong.mistake is not None:
        assert result.mistake is not None and result.mistake.name == wrong.mistake, text(result)


@pytest.mark.parametrize("exercise_id, variant", VARIANTS, ids=lambda x: x if isinstance(x, str) else x.label)
def test_each_valid_variant_passes(exercise_id, variant):
    result = check(exercise_id, variant.answer)
    assert result.passed, text(result)


# Mistakes recognised by the error they raise: the registered wrong answers that make them, written out as a
# learner would.
RAISING = [(ex.id, w) for ex in ALL for w in ex.wrong_answers
           if any(m.error and m.name == w.mistake for m in ex.mistakes)]


def test_every_mistake_recognised_by_its_error_has_a_wrong_answer_that_raises_it():
    assert {(i, w.mistake) for i, w in RAISING} == {(ex.id, m.name) for ex in ALL for m in ex.mistakes if m.error}


@pytest.mark.parametrize("exercise_id, wrong", RAISING, ids=lambda x: x if isinstance(x, str) else x.label)
def test_mistakes_that_raise_are_named_and_the_error_is_shown(exercise_id, wrong):
    result = check(exercise_id, wrong.answer)
    assert not result.passed and result.mistake is not None and result.mistake.name == wrong.mistake, text(result)
    assert "your code raised" in text(result)


def test_a_wrong_answer_says_where_and_by_how_much():
    result = check("04.1", EXERCISES["04.1"].mistakes[0].answer)
    assert re.search(r"wrong values: \d+ of 48 differ; the largest difference is [\d.]+ at \[\d, \d, \d\] "
                     r"\(expected -?[\d.]+, got -?[\d.]+\)", text(result)), text(result)


def test_a_function_that_forgets_return_is_told_so_not_that_it_is_unanswered():
    def target_logit(p, vocab_size):
        c = math.log(p * (vocab_size - 1) / (1 - p))  # noqa: F841  (no return)

    class MyLN(LayerNorm):
        def forward(self, x):
            self.scale * (x - x.mean(-1, keepdim=True)) + self.shift

    for exercise_id, answer, what in [("08.2", target_logit, "target_logit"), ("05.1", MyLN, "MyLN.forward")]:
        result = check(exercise_id, answer)
        assert result.status == "wrong" and "not answered" not in text(result), text(result)
        assert f"{what} returned None: is the return statement missing?" in text(result)


def test_numbers_that_differ_are_shown_with_enough_digits_to_differ():
    for off in (1e-4, 3e-6, -2e-7):  # 10.82 and 10.82 at 4 digits
        result = check("08.2", lambda p, v: math.log(p * (v - 1) / (1 - p)) + off)
        expected, got = re.search(r"expected ([\d.]+), got ([\d.]+)", text(result)).groups()
        assert expected != got and expected.startswith("10.82"), text(result)


def test_a_pair_is_shown_whole():
    result = check("10.3", lambda model, score: tuple(reversed(EXERCISES["10.3"].reference(model, score))))
    assert re.search(r"expected \(\d, \d\), got \(\d, \d\)", text(result)), text(result)


def test_a_check_that_passes_says_which_properties_it_checked():
    assert "It also checked that the cache is used" in text(check("07.3", EXERCISES["07.3"].reference))


def test_the_check_restores_the_learners_random_state_and_threads():
    torch.manual_seed(7)
    threads = torch.get_num_threads()
    want = torch.rand(3)
    torch.manual_seed(7)
    assert check("06.1", EXERCISES["06.1"].reference).passed  # its training-mode cases seed dropout
    assert torch.equal(torch.rand(3), want) and torch.get_num_threads() == threads


@pytest.mark.parametrize("exercise_id", ["07.1", "07.3", "08.1"])
def test_a_wrong_answer_that_changes_the_models_weights_cannot_poison_a_later_check(exercise_id):
    """The cases hand learner code a model: every case must build its own, so a wrong answer that zeroes the
    weights it was given (a stray in-place update, an optimizer step) leaves the next check's models whole."""
    ex = EXERCISES[exercise_id]

    def vandal(model, *rest):
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
        return ex.reference(model, *rest)

    assert not gptbook.check(exercise_id, vandal).passed
    assert gptbook.check(exercise_id, ex.reference).passed


def test_a_wrong_shape_says_expected_and_got():
    result = check("01.1", lambda t, tok: torch.tensor(tok.encode(t, allowed_special={"<|endoftext|>"})))
    assert "wrong shape: expected (1, 4), got (4,)" in text(result)


def test_a_wrong_dtype_is_named():
    result = check("04.1", lambda q, k, v: torch.zeros(q.shape, dtype=torch.long))
    assert "wrong dtype: expected torch.float32, got torch.int64" in text(result)


def raises(*args, **kwargs):
    raise RuntimeError("my own bug")


def loops(*args, **kwargs):
    while True:
        try:
            pass
        except Exception:  # a learner's catch-all does not swallow the time limit
            pass


class RaisingModule(nn.Module):
    def __init__(self, *args, **kwargs):
        raise RuntimeError("my own bug")


class LoopingModule(nn.Module):
    def __init__(self, *args, **kwargs):
        while True:
            pass


def garbage_for(ex):
    if ex.kind == "class":
        return [None, "a string", RaisingModule, LoopingModule, RaisingModule.__new__(RaisingModule)]
    return [None, "a string", raises, loops, 42]


@pytest.mark.parametrize("ex", ALL, ids=lambda e: e.id)
def test_garbage_gets_a_message_never_a_traceback(ex):
    for answer in garbage_for(ex):
        result = check(ex.id, answer, time_limit=0.5)  # must not raise
        assert not result.passed
        out = text(result)
        assert out.startswith(("✘ ", "· ")) and "Traceback" not in out
        if answer is None:
            assert result.status == "not answered" and "not answered yet" in out
        elif answer in (raises, RaisingModule):
            assert "your code raised RuntimeError: my own bug" in out
        elif answer in (loops, LoopingModule):
            assert result.status == "timeout" and "still running after 0.5 s" in out
        else:
            assert result.status == "invalid" and "Expected " in out


def test_the_time_limit_leaves_no_tracer_behind():
    before = __import__("sys").gettrace()
    check("04.1", loops, time_limit=0.2)
    assert __import__("sys").gettrace() is before


def test_a_template_still_returning_none_is_not_answered_yet():
    def my_causal_attention(queries, keys, values):
        ...  # your code here

    class MyMHA(nn.Module):
        def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
            super().__init__()
            ref = MultiHeadAttention(d_in, d_out, context_length, dropout, num_heads, qkv_bias)
            self.W_query, self.W_key, self.W_value, self.out_proj = ref.W_query, ref.W_key, ref.W_value, ref.out_proj

        def forward(self, x):
            ...  # your code here

    for exercise_id, answer in [("04.1", my_causal_attention), ("04.2", MyMHA)]:
        result = check(exercise_id, answer)
        assert result.status == "not answered", text(result)
        assert text(result).splitlines()[0] == f"· {exercise_id} · {EXERCISES[exercise_id].title}: not answered yet"


def test_without_an_answer_the_name_is_looked_up_in_the_callers_scope():
    result = gptbook.check("04.1")
    assert result.status == "not answered" and "Nothing called my_causal_attention is defined yet" in text(result)
    my_causal_attention = EXERCISES["04.1"].reference  # noqa: F841  (found by name)
    assert gptbook.check("04.1").passed


def test_the_output_is_plain_text_and_html():
    result = check("02.2", None)
    assert "not answered yet" in repr(result)
    page = result._repr_html_()
    assert "<details><summary>Solution</summary>" in page and "math.ceil" in page


def test_hints_come_in_steps_and_end_with_the_solution():
    n = len(EXERCISES["05.2"].hints)
    shown = [repr(hint("05.2")) for _ in range(n + 1)]
    assert shown[0].startswith(f"Hint 1 of {n}") and shown[1].startswith(f"Hint 2 of {n}")
    assert shown[-1].startswith("Solution of 05.2") and "0.044715" in shown[-1]
    assert repr(hint("05.2", 1)) == shown[0]
    assert "0.044715" in repr(solution("05.2"))


def test_an_unknown_exercise_is_a_value_error_that_lists_the_ids():
    with pytest.raises(ValueError, match="there is no exercise '4.1'; did you mean '04.1'"):
        check("4.1", None)


def test_passes_are_kept_in_the_cache_folder_and_listed(cache_in_tmp):
    assert "Exercises passed: 0 of" in repr(progress())
    check("05.2", EXERCISES["05.2"].reference)
    check("04.1", EXERCISES["04.1"].mistakes[0].answer)  # a failure is not recorded
    assert (cache_in_tmp / "exercises.json").exists()
    listing = repr(progress())
    assert "Exercises passed: 1 of" in listing
    assert re.search(r"✔ 05\.2 ", listing) and re.search(r"· 04\.1 ", listing)
    assert "✔" in progress()._repr_html_()


def test_an_unwritable_cache_folder_does_not_spoil_the_check(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GPTBOOK_CACHE", str(blocker / "cache"))
    assert check("05.2", EXERCISES["05.2"].reference).passed


def test_check_is_importable_from_gptbook():
    from gptbook.exercises import check as the_check

    assert gptbook.check is the_check and "check" in gptbook.__all__


NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_of_a_notebook_ends_with_its_check_in_learner_state(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    checks = {}
    for cell in cells:
        text = "".join(cell["source"])
        for exercise_id in re.findall(r'^check\("(\d\d\.\d+)"', text, re.M):
            checks[exercise_id] = cell
    assert set(checks) == {ex.id for ex in ALL if ex.notebook == path.name[:2]}
    for exercise_id, cell in checks.items():
        shown = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in cell["outputs"])
        assert shown.startswith(f"· {exercise_id} · ") and "not answered yet" in shown, (exercise_id, shown)
