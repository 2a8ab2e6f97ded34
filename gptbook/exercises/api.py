"""The public calls: ``check``, ``hint``, ``solution``, ``progress``."""

from __future__ import annotations

import html
import sys
from typing import Any, Optional

import torch

from . import sandbox
from .evaluation import _evaluate, _not_answered
from .passes import Progress, _load_progress, _record_pass
from .registry import get_exercise
from .report import CheckResult, _Text
from .sandbox import _Budget, _error_text


def check(exercise_id: str, *answer: Any, time_limit: Optional[float] = None) -> CheckResult:
    """Check your answer to exercise ``exercise_id`` ("04.1") and show what is right or wrong.

    Without ``answer`` the name the exercise asks for (e.g. ``my_causal_attention``) is looked up in
    the notebook. The answer runs on several inputs next to the reference, under a time limit
    (``TIME_LIMIT`` seconds unless ``time_limit`` is given); its errors are shown, never raised.
    A pass is remembered in the gptbook cache folder (see ``progress()``).
    """
    exercise = get_exercise(exercise_id)
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
    budget = _Budget(sandbox.TIME_LIMIT if time_limit is None else time_limit)
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





_HINTS_SHOWN: dict = {}  # exercise id -> the last hint shown


def hint(exercise_id: str, level: Optional[int] = None) -> _Text:
    """The next hint for an exercise (or hint number ``level``); the last step is the solution."""
    exercise = get_exercise(exercise_id)
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
    exercise = get_exercise(exercise_id)
    return _Text(f"Solution of {exercise.id} · {exercise.title}:\n{exercise.solution}",
                 f"<b>Solution of {exercise.id}</b><pre>{html.escape(exercise.solution)}</pre>")


def progress() -> Progress:
    """Which exercises you have passed on this computer, across all notebooks."""
    return Progress(_load_progress())
