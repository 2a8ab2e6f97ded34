"""Checking one answer: run it on every case next to the reference, compare, test the exercise's properties,
and name the common mistake it behaves like."""

from __future__ import annotations

import re
from typing import Any, Optional

import torch

from .comparison import _type_name, compare
from .report import CheckResult
from .sandbox import _Budget, _call, _error_text
from .spec import Case, Exercise, Mistake


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
