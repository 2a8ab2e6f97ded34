"""Exercises that check themselves: run the learner's answer, say what is right or wrong.

One call per exercise, in the notebook right under the learner's answer::

    from gptbook import check, hint, solution, progress

    check("04.1")                    # looks up the name the exercise asks for (here my_causal_attention)
    check("04.1", my_causal_attention)   # or hand the answer over yourself

``check`` runs the answer on several inputs (random ones and edge cases: batch 1, one token, the
full context, another seed) next to the course's reference and shows a ✔, or what is wrong: a
shape (expected vs got), values (where, by how much), a dtype, an exception from the learner's
code (shown, never raised), or nothing defined yet. When the wrong answer behaves exactly like a
known common mistake (scores not divided by √d_k, the mask applied after the softmax, ...), the
mistake is named with a hint. Hints come in steps: ``hint("04.1")`` shows the next one;
``solution("04.1")`` shows the solution. Passed exercises are remembered in the gptbook cache
folder (``$GPTBOOK_CACHE`` or ``~/.cache/gptbook``); ``progress()`` lists them.

The output is rich HTML where the frontend shows it (JupyterLab, Notebook 7, VS Code, Colab) and a
plain, deterministic text everywhere else. Everything runs offline, in the learner's own kernel.

Time limit: the learner's code runs under a ``sys.settrace`` budget (``TIME_LIMIT`` seconds per
check). Once it is spent, the next Python line the learner's code executes raises an error the
checker catches, so an endless loop ends with a message instead of a hung kernel. Unlike
``signal.alarm`` this works on Windows and outside the main thread; unlike a watchdog thread it
really stops the loop; unlike a subprocess it needs no pickling of notebook-defined functions.
(A single long call into PyTorch's C++ code is not interrupted; it ends on its own.)

Values are not all: an exercise's ``properties`` test what it teaches that a forward pass cannot show
(07.3: the cache is used; 08.1: the loss has the reference's gradients), and cases marked "train" run
a module in training mode with a fixed seed, so that dropout must sit where GPT-2 has it and be off in
evaluation mode. Like ``bench/mutation_test.py`` for the library, every exercise lists ``wrong_answers``
(besides its mistakes' own answers) that its check must fail, by name where one is given, and
``variants``, valid answers written differently, that it must pass; ``tests/test_exercises.py`` runs them.

The exercises themselves (references, cases, common mistakes, hints) live in ``exercise_set``
(notebooks 01-09) and ``interpret_exercises`` (notebook 10).
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import torch

_TRUSTED = (os.path.dirname(torch.__file__), os.path.dirname(__file__))  # not traced line by line
TIME_LIMIT = 20.0  # seconds the learner's code may run per check (building the inputs does not count)


# ----------------------------------------------------------------------------------------------
# What an exercise is
# ----------------------------------------------------------------------------------------------

@dataclass
class Case:
    """One input to run the answer on. ``args()`` builds fresh arguments every time it is called."""

    label: str
    args: Callable[[], tuple]
    note: Optional[str] = None  # what the case tests, shown when it fails


@dataclass
class Mistake:
    """A common mistake: a wrong answer that behaves like it, or a pattern in the error it raises."""

    name: str  # "the scores are not divided by √d_k"
    hint: str
    answer: Any = None  # a function or class with the mistake built in
    error: Optional[str] = None  # a regular expression matched against the learner's error message


@dataclass
class Property:
    """Something an answer must do beyond giving the reference's values on the cases: a cache is used,
    a loss has gradients that train, ... ``test(answer, run)`` returns None when the answer has the
    property, else what is wrong (a sentence), or (that sentence, the ``Mistake`` it shows). ``run(fn)``
    calls ``fn()`` (which calls the learner's code) under the check's time budget: an ``_Outcome``."""

    label: str  # "the key/value cache is used"
    test: Callable[[Any, Callable], Any]


@dataclass
class Answer:
    """A registered answer the tests run through ``check``: a wrong one (``mistake``: the name the check
    must report, or None when it need only fail) or a valid variant (it must pass)."""

    label: str  # "no cache at all: generate_text_simple"
    answer: Any
    mistake: Optional[str] = None


@dataclass
class Exercise:
    """An exercise: what to write, the reference, the cases, the common mistakes, hints, solution."""

    id: str
    title: str
    name: str  # the name the learner defines, looked up by check(id) without an answer
    expects: str  # what to write, in one line
    kind: str  # "function", "class" or "value"
    reference: Any
    cases: Callable[[], list]
    hints: list
    solution: str
    mistakes: list = field(default_factory=list)
    properties: list = field(default_factory=list)  # Property checks, run once the values are right
    wrong_answers: list = field(default_factory=list)  # Answer: wrong ones a learner writes (besides mistakes')
    variants: list = field(default_factory=list)  # Answer: valid answers written differently
    run: Optional[Callable[[Any, tuple], Any]] = None  # how to call an answer on a case's args
    atol: float = 1e-5
    rtol: float = 1e-4

    @property
    def notebook(self) -> str:
        return self.id.split(".")[0]


_EXERCISES: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the course's list (used by ``exercise_set`` and ``interpret_exercises``)."""
    _EXERCISES[exercise.id] = exercise
    return exercise


def exercises() -> dict[str, Exercise]:
    """All exercises of the course, by id ("04.1", ...), in notebook order."""
    from . import exercise_set, interpret_exercises  # noqa: F401  (register the exercises on first use)

    return dict(sorted(_EXERCISES.items(), key=lambda item: tuple(int(p) for p in item[0].split("."))))


def _get(exercise_id: Any) -> Exercise:
    known = exercises()
    if not isinstance(exercise_id, str) or exercise_id not in known:
        padded = exercise_id.zfill(4) if isinstance(exercise_id, str) else None
        guess = f"did you mean {padded!r}? " if padded in known else ""
        raise ValueError(
            f"there is no exercise {exercise_id!r}; {guess}the ids are notebook.number: {', '.join(known)}"
        )
    return known[exercise_id]


# ----------------------------------------------------------------------------------------------
# Running the learner's code: a time budget, errors caught
# ----------------------------------------------------------------------------------------------

class _OutOfTime(BaseException):
    """Raised inside the learner's code when the time budget is spent (BaseException: a bare
    ``except Exception`` in the learner's code cannot swallow it)."""


@dataclass
class _Outcome:
    value: Any = None
    error: Optional[BaseException] = None
    timed_out: bool = False


class _Budget:
    """Seconds the learner's code may still run in this check (only its own running time counts)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.remaining = seconds

    def run(self, fn: Callable[[], Any], traced: bool = True) -> _Outcome:
        if not traced:  # the course's own code (references, mistakes) needs no watching
            try:
                return _Outcome(value=fn())
            except Exception as err:
                return _Outcome(error=err)
        if self.remaining <= 0:
            return _Outcome(timed_out=True)
        start = time.monotonic()
        deadline = start + self.remaining

        def tracer(frame, event, arg):
            if time.monotonic() > deadline:
                raise _OutOfTime
            # Line by line only in the learner's code: PyTorch's and gptbook's own Python code is
            # left alone (much faster), though every call it makes is still watched.
            return None if frame.f_code.co_filename.startswith(_TRUSTED) else tracer

        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            return _Outcome(value=fn())
        except _OutOfTime:
            return _Outcome(timed_out=True)
        except Exception as err:  # the learner's error is reported, never raised
            return _Outcome(error=err)
        finally:
            sys.settrace(previous)
            self.remaining -= time.monotonic() - start


def _call(exercise: Exercise, answer: Any, args: tuple) -> Any:
    if exercise.run is not None:
        return exercise.run(answer, args)
    return answer(*args)


def _error_text(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", text)
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# ----------------------------------------------------------------------------------------------
# Comparing an answer with the reference
# ----------------------------------------------------------------------------------------------

def _fmt(x: float) -> str:
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    return f"{x:.4g}"


def _fmt_pair(expected: float, got: float) -> tuple:
    """Both numbers with the fewest digits (4 at least) that show they differ: never "expected 10.82, got 10.82"."""
    for digits in range(4, 18):
        e, g = f"{expected:.{digits}g}", f"{got:.{digits}g}"
        if e != g:
            return e, g
    return _fmt(expected), _fmt(got)


def _is_scalar(x: Any) -> bool:
    return isinstance(x, (int, float, bool)) or (isinstance(x, torch.Tensor) and x.numel() == 1)


def _type_name(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    return f"{type(x).__name__} {x!r}" if isinstance(x, (int, float, bool)) else f"a {type(x).__name__}"


def compare(expected: Any, got: Any, atol: float = 1e-5, rtol: float = 1e-4, where: str = "") -> Optional[str]:
    """None if ``got`` matches ``expected``, else one sentence saying what differs."""
    at = f" in {where}" if where else ""
    if isinstance(expected, torch.Tensor):
        if isinstance(got, (int, float)) and not isinstance(got, bool) and expected.dim() == 0:
            got = torch.tensor(got, dtype=expected.dtype)
        if not isinstance(got, torch.Tensor):
            return f"expected a tensor{at}, got {_type_name(got)}"
        if got.shape != expected.shape:
            return f"wrong shape{at}: expected {tuple(expected.shape)}, got {tuple(got.shape)}"
        if got.is_floating_point() != expected.is_floating_point():
            return f"wrong dtype{at}: expected {expected.dtype}, got {got.dtype}"
        if got.device != expected.device:
            return f"wrong device{at}: expected {expected.device}, got {got.device}"
        if not expected.is_floating_point():
            wrong = got != expected
            if not wrong.any():
                return None
            pos = tuple(int(i) for i in wrong.nonzero()[0])
            return (f"wrong values{at}: {int(wrong.sum())} of {expected.numel()} differ, the first at "
                    f"{list(pos)} (expected {expected[pos].item()}, got {got[pos].item()})")
        e, g = expected.detach().double(), got.detach().double()
        if torch.isnan(g).any() and not torch.isnan(e).any():
            return f"the result{at} contains NaN (not a number) in {int(torch.isnan(g).sum())} places"
        close = torch.isclose(g, e, atol=atol, rtol=rtol, equal_nan=True)
        if close.all():
            return None
        diff = (g - e).abs().nan_to_num(nan=float("inf"))
        diff[close] = 0
        pos = tuple(int(i) for i in (diff == diff.max()).nonzero()[0])
        want, have = _fmt_pair(e[pos].item(), g[pos].item())
        return (f"wrong values{at}: {int((~close).sum())} of {expected.numel()} differ; the largest difference is "
                f"{_fmt(diff.max().item())} at {list(pos)} (expected {want}, got {have})")
    if isinstance(expected, bool) or expected is None:
        return None if got == expected else f"expected {expected!r}{at}, got {_type_name(got)}"
    if isinstance(expected, int):
        if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.is_floating_point():
            got = int(got.item())
        if isinstance(got, float) and got.is_integer():
            got = int(got)
        if isinstance(got, bool) or not isinstance(got, int):
            return f"expected a whole number{at} ({expected:,}), got {_type_name(got)}"
        return None if got == expected else f"expected {expected:,}{at}, got {got:,}"
    if isinstance(expected, float):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"expected a number{at} ({_fmt(expected)}), got {_type_name(got)}"
        if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return None
        want, have = _fmt_pair(expected, float(got))
        return f"expected {want}{at}, got {have}"
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"expected a {type(expected).__name__} of {len(expected)} items{at}, got {_type_name(got)}"
        if len(got) != len(expected):
            return f"expected {len(expected)} items{at}, got {len(got)}"
        if isinstance(expected, tuple) and len(expected) <= 4 and all(map(_is_scalar, expected + tuple(got))):
            # a small tuple such as a (layer, head) pair is one answer: show it whole
            if any(compare(e, g, atol, rtol) for e, g in zip(expected, got)):
                shown = tuple(g.item() if isinstance(g, torch.Tensor) else g for g in got)
                return f"expected {expected!r}{at}, got {shown!r}"
            return None
        for i, (e, g) in enumerate(zip(expected, got)):
            problem = compare(e, g, atol, rtol, f"{where}[{i}]" if where else f"item {i}")
            if problem:
                return problem
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"expected a dict{at}, got {_type_name(got)}"
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        if missing:
            return f"missing keys{at}: {', '.join(map(str, missing[:4]))}" + (" ..." if len(missing) > 4 else "")
        if extra:
            return f"unexpected keys{at}: {', '.join(map(str, extra[:4]))}" + (" ..." if len(extra) > 4 else "")
        for k in expected:
            problem = compare(expected[k], got[k], atol, rtol, str(k))
            if problem:
                return problem
        return None
    return None if got == expected else f"expected {expected!r}{at}, got {got!r}"


# ----------------------------------------------------------------------------------------------
# The result of a check, shown as HTML or text
# ----------------------------------------------------------------------------------------------

@dataclass
class CheckResult:
    """What ``check`` found. Shown in the notebook; ``passed`` is True or False."""

    exercise: Exercise
    status: str  # "passed", "not answered", "wrong", "error", "timeout", "invalid"
    lines: list = field(default_factory=list)
    mistake: Optional[Mistake] = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __bool__(self) -> bool:
        return self.passed

    def _headline(self) -> str:
        ex = self.exercise
        return {
            "passed": f"✔ {ex.id} · {ex.title}: passed",
            "not answered": f"· {ex.id} · {ex.title}: not answered yet",
        }.get(self.status, f"✘ {ex.id} · {ex.title}: not right yet")

    def _help(self) -> list:
        if self.status in ("passed",):
            return []
        if self.status == "not answered":
            return [f"Stuck? hint({self.exercise.id!r}) gives a nudge; solution({self.exercise.id!r}) shows the solution."]
        out = []
        if self.mistake is not None:
            out.append(f"This looks like a common mistake: {self.mistake.name}.")
            out.append(f"Hint: {self.mistake.hint}")
        else:
            out.append(f"Hint: {self.exercise.hints[0]}")
        out.append(f"More help: hint({self.exercise.id!r}) · the solution: solution({self.exercise.id!r})")
        return out

    def __repr__(self) -> str:
        return "\n".join([self._headline()] + ["  " + line for line in self.lines + self._help()])

    def _repr_html_(self) -> str:
        ex = self.exercise
        color = {"passed": "#1a7f37", "not answered": "#6e7781"}.get(self.status, "#cf222e")
        esc = html.escape
        parts = [f'<div style="border-left:4px solid {color};padding:4px 10px;margin:4px 0">',
                 f'<b style="color:{color}">{esc(self._headline())}</b>']
        parts += [f"<div>{esc(line)}</div>" for line in self.lines]
        if self.status != "passed":
            if self.mistake is not None:
                parts.append(f"<div><b>This looks like a common mistake:</b> {esc(self.mistake.name)}.</div>")
                parts.append(f"<div><b>Hint:</b> {esc(self.mistake.hint)}</div>")
            elif self.status != "not answered":
                parts.append(f"<div><b>Hint:</b> {esc(ex.hints[0])}</div>")
            for i, more in enumerate(ex.hints[1:] if self.status != "not answered" else ex.hints, start=1):
                label = "A nudge" if self.status == "not answered" and i == 1 else "More help"
                parts.append(f"<details><summary>{label}</summary><div>{esc(more)}</div></details>")
            parts.append(f"<details><summary>Solution</summary><pre>{esc(ex.solution)}</pre></details>")
        parts.append("</div>")
        return "\n".join(parts)


def _not_answered(exercise: Exercise, why: str) -> CheckResult:
    return CheckResult(exercise, "not answered", [why])


def _validate(exercise: Exercise, answer: Any) -> Optional[CheckResult]:
    if answer is None or answer is Ellipsis:
        return _not_answered(exercise, f"Write {exercise.expects}, run its cell, then run this check again.")
    if exercise.kind == "function" and (not callable(answer) or isinstance(answer, type)):
        return CheckResult(exercise, "invalid", [f"Expected {exercise.expects}; got {_type_name(answer)}."])
    if exercise.kind == "class" and not (isinstance(answer, type) and issubclass(answer, torch.nn.Module)):
        got = "an instance of it" if isinstance(answer, torch.nn.Module) else _type_name(answer)
        return CheckResult(exercise, "invalid", [f"Expected {exercise.expects} (the class itself); got {got}."])
    return None


def _prepared(exercise: Exercise, case: Case) -> tuple:
    """A case's arguments, built outside the time budget (with the reference's weights, for classes)."""
    args = case.args()
    prepare = getattr(exercise.run, "prepare", None)
    return prepare(args) if prepare is not None else args


def _outcomes(exercise: Exercise, answer: Any, cases: list, budget: _Budget, traced: bool = True) -> list:
    outcomes = []
    for case in cases:
        args = _prepared(exercise, case)
        outcomes.append(budget.run(lambda: _call(exercise, answer, args), traced))
    return outcomes


_MISTAKE_OUTCOMES: dict = {}


def _behaves_like(exercise: Exercise, mistake: Mistake, cases: list, learner: list, budget: _Budget) -> bool:
    """Whether the learner's outcomes are the mistake's, case by case; the mistake (the course's own,
    deterministic code) runs only as far as the first difference, and its outcomes are kept."""
    if all(x.error is not None for x in learner):
        return False  # errors alone say too little to name a mistake
    for case, mine in zip(cases, learner):
        key = (exercise.id, mistake.name, case.label)
        if key not in _MISTAKE_OUTCOMES:
            _MISTAKE_OUTCOMES[key] = _outcomes(exercise, mistake.answer, [case], budget, traced=False)[0]
        if not _same_behaviour(exercise, [mine], [_MISTAKE_OUTCOMES[key]]):
            return False
    return True


def _same_behaviour(exercise: Exercise, a: list, b: list) -> bool:
    for x, y in zip(a, b):
        if x.timed_out or y.timed_out:
            return False
        if (x.error is None) != (y.error is None):
            return False
        if x.error is not None:
            if type(x.error) is not type(y.error):
                return False
        elif compare(y.value, x.value, exercise.atol, exercise.rtol) is not None:
            return False
    return True


def _evaluate(exercise: Exercise, answer: Any, budget: _Budget) -> CheckResult:
    invalid = _validate(exercise, answer)
    if invalid is not None:
        return invalid
    if exercise.kind == "value":
        expected = exercise.reference() if callable(exercise.reference) else exercise.reference
        problem = compare(expected, answer, exercise.atol, exercise.rtol)
        if problem is None:
            return CheckResult(exercise, "passed", ["Your answer is right."])
        for mistake in exercise.mistakes:
            wrong = mistake.answer() if callable(mistake.answer) else mistake.answer
            if compare(wrong, answer, exercise.atol, exercise.rtol) is None:
                return CheckResult(exercise, "wrong", [problem[0].upper() + problem[1:] + "."], mistake)
        return CheckResult(exercise, "wrong", [problem[0].upper() + problem[1:] + "."])

    cases = exercise.cases()
    learner = _outcomes(exercise, answer, cases, budget)
    lines, first_problem = [], None
    for case, out in zip(cases, learner):
        if out.timed_out:
            return CheckResult(exercise, "timeout", [
                f"Case {case.label!r}: your code was still running after {budget.seconds:g} s and was stopped. "
                "An endless loop? Check that every loop ends."])
        if out.error is not None:
            if isinstance(out.error, NotImplementedError):
                return _not_answered(exercise, f"Write {exercise.expects}, run its cell, then run this check again.")
            first_problem = first_problem or f"Case {case.label!r}: your code raised {_error_text(out.error)}"
            continue
        if out.value is None and cases and case is cases[0]:
            what = f"{answer.__name__}.forward" if exercise.kind == "class" else getattr(answer, "__name__", "it")
            if _is_stub(answer):
                return _not_answered(exercise, f"{what} returns None so far: replace the ... with your code, "
                                               "run the cell, then run this check again.")
            return CheckResult(exercise, "wrong", [
                f"Case {case.label!r}: {what} returned None: is the return statement missing?"])
        problem = compare(_reference_value(exercise, case), out.value, exercise.atol, exercise.rtol)
        if problem:
            first_problem = first_problem or f"Case {case.label!r}: {problem}."
    if first_problem is None:
        for prop in exercise.properties:
            found = prop.test(answer, budget.run)
            if budget.remaining <= 0:
                return CheckResult(exercise, "timeout", [
                    f"Checking that {prop.label}: your code was still running after {budget.seconds:g} s and was "
                    "stopped. An endless loop? Check that every loop ends."])
            if found:
                problem, mistake = found if isinstance(found, tuple) else (found, None)
                return CheckResult(exercise, "wrong", [
                    f"The values of all {len(cases)} cases are right, but not this: {prop.label}.", problem], mistake)
        checked = f" It also checked that {'; that '.join(p.label for p in exercise.properties)}." \
            if exercise.properties else ""
        return CheckResult(exercise, "passed", [f"All {len(cases)} cases agree with the reference: "
                                                f"{', '.join(c.label for c in cases)}.{checked}"])
    lines.append(first_problem)
    lines += [case.note for case, out in zip(cases, learner) if case.note and case.label in first_problem][:1]
    failed = sum(1 for case, out in zip(cases, learner)
                 if out.error is not None or compare(_reference_value(exercise, case), out.value,
                                                     exercise.atol, exercise.rtol))
    lines.append(f"{len(cases) - failed} of {len(cases)} cases right.")
    status = "error" if all(o.error is not None for o in learner) else "wrong"
    # A mistake that behaves exactly like the answer names it best (positions counted from 1 raise "index
    # out of range" only on the full context, like the token IDs used as positions do everywhere).
    for mistake in exercise.mistakes:
        if mistake.answer is not None and _behaves_like(exercise, mistake, cases, learner, budget):
            return CheckResult(exercise, status, lines, mistake)
    errors = [_error_text(o.error) for o in learner if o.error is not None]
    for mistake in exercise.mistakes:
        if mistake.error and any(re.search(mistake.error, e) for e in errors):
            return CheckResult(exercise, status, lines, mistake)
    return CheckResult(exercise, status, lines)


def _instructions(code) -> list:
    import dis

    return [(i.opname, i.argval) for i in dis.get_instructions(code) if i.opname not in ("RESUME", "NOP", "CACHE")]


def _stub_body():
    ...


def _is_stub(answer: Any) -> bool:
    """Whether the answer is still the notebook's template, a body of ``...`` (or ``pass``, or a docstring),
    rather than code that forgot to return."""
    fn = answer.__dict__.get("forward") if isinstance(answer, type) else answer
    code = getattr(fn, "__code__", None)
    return code is not None and _instructions(code) == _instructions(_stub_body.__code__)


_REFERENCE_CACHE: dict = {}


def _reference_value(exercise: Exercise, case: Case) -> Any:
    key = (exercise.id, case.label)
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[key] = _call(exercise, exercise.reference, _prepared(exercise, case))
    return _REFERENCE_CACHE[key]


# ----------------------------------------------------------------------------------------------
# Progress, kept in the cache folder
# ----------------------------------------------------------------------------------------------

def _progress_file() -> Path:
    folder = Path(os.environ.get("GPTBOOK_CACHE") or Path.home() / ".cache" / "gptbook").expanduser()
    return folder / "exercises.json"


def _load_progress() -> dict:
    try:
        data = json.loads(_progress_file().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _record_pass(exercise_id: str) -> None:
    data = _load_progress()
    if exercise_id in data:
        return
    data[exercise_id] = {"passed": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    path = _progress_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # a read-only home folder must not spoil the check


@dataclass
class Progress:
    """The exercises of the course, with the ones passed on this computer ticked."""

    passed: dict

    def _rows(self) -> list:
        return [(ex, self.passed.get(ex.id)) for ex in exercises().values()]

    def __repr__(self) -> str:
        rows = self._rows()
        lines = [f"Exercises passed: {sum(1 for _, p in rows if p)} of {len(rows)} (kept in {_progress_file()})"]
        for ex, p in rows:
            lines.append(f"  {'✔' if p else '·'} {ex.id}  {ex.title}" + (f"  ({p['passed']})" if p else ""))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = self._rows()
        body = "".join(
            f"<tr><td>{'✔' if p else '·'}</td><td>{ex.id}</td><td>{html.escape(ex.title)}</td>"
            f"<td>{html.escape(p['passed']) if p else ''}</td></tr>" for ex, p in rows)
        return (f"<b>Exercises passed: {sum(1 for _, p in rows if p)} of {len(rows)}</b>"
                f"<table>{body}</table>")


# ----------------------------------------------------------------------------------------------
# The public calls
# ----------------------------------------------------------------------------------------------

def check(exercise_id: str, *answer: Any, time_limit: Optional[float] = None) -> CheckResult:
    """Check your answer to exercise ``exercise_id`` ("04.1") and show what is right or wrong.

    Without ``answer`` the name the exercise asks for (e.g. ``my_causal_attention``) is looked up in
    the notebook. The answer runs on several inputs next to the reference, under a time limit
    (``TIME_LIMIT`` seconds unless ``time_limit`` is given); its errors are shown, never raised.
    A pass is remembered in the gptbook cache folder (see ``progress()``).
    """
    exercise = _get(exercise_id)
    if len(answer) > 1:
        raise ValueError(f"check({exercise_id!r}, answer) takes one answer, got {len(answer)}")
    if answer:
        value = answer[0]
    else:
        frame = sys._getframe(1)
        scope = {**frame.f_globals, **frame.f_locals}
        if exercise.name not in scope:
            return _not_answered(exercise, f"Nothing called {exercise.name} is defined yet: write {exercise.expects} "
                                           "in the cell above and run it.")
        value = scope[exercise.name]
    budget = _Budget(TIME_LIMIT if time_limit is None else time_limit)
    threads = torch.get_num_threads()
    # The cases' tensors are tiny: one thread is fastest, and many times faster than several on a busy machine.
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):  # the cases seed the generator: the learner's stream is kept
            result = _evaluate(exercise, value, budget)
    except Exception as err:  # the checker must never drop a traceback on the learner
        result = CheckResult(exercise, "error", [f"The check could not run your answer: {_error_text(err)}."])
    finally:
        torch.set_num_threads(threads)
    if result.passed:
        _record_pass(exercise.id)
    return result


class _Text:
    def __init__(self, text: str, html_text: str) -> None:
        self.text, self.html = text, html_text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return self.html


_HINTS_SHOWN: dict = {}


def hint(exercise_id: str, level: Optional[int] = None) -> _Text:
    """The next hint for an exercise (or hint number ``level``); the last step is the solution."""
    exercise = _get(exercise_id)
    steps = len(exercise.hints)
    if level is None:
        level = min(_HINTS_SHOWN.get(exercise_id, 0) + 1, steps + 1)
    if isinstance(level, bool) or not isinstance(level, int) or level < 1:
        raise ValueError(f"level must be a whole number from 1 to {steps}, got {level!r}")
    _HINTS_SHOWN[exercise_id] = max(_HINTS_SHOWN.get(exercise_id, 0), level)
    if level > steps:
        return solution(exercise_id)
    text = f"Hint {level} of {steps} for {exercise.id} · {exercise.title}: {exercise.hints[level - 1]}"
    more = (f" (more: hint({exercise_id!r}))" if level < steps else f" (the solution: solution({exercise_id!r}))")
    return _Text(text + more, f"<b>Hint {level} of {steps}</b> for {exercise.id}: {html.escape(exercise.hints[level - 1])}"
                              f"<br><i>{html.escape(more.strip())}</i>")


def solution(exercise_id: str) -> _Text:
    """The solution of an exercise, as code to read (and copy)."""
    exercise = _get(exercise_id)
    return _Text(f"Solution of {exercise.id} · {exercise.title}:\n{exercise.solution}",
                 f"<b>Solution of {exercise.id}</b><pre>{html.escape(exercise.solution)}</pre>")


def progress() -> Progress:
    """Which exercises you have passed on this computer, across all notebooks."""
    return Progress(_load_progress())
