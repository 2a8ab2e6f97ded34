"""The course's exercises, by id: the registry collects the catalogues ``nb01`` ... ``nb10`` (one per notebook).

A catalogue is a module with a list ``EXERCISES``; it never imports the registry back. To add a notebook's
exercises, write its catalogue and name it in ``CATALOGUES``.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from .spec import Exercise

CATALOGUES = ("nb01", "nb02", "nb03", "nb04", "nb05", "nb06", "nb07", "nb08", "nb09", "nb10")


def _order(exercise_id: str) -> tuple:
    return tuple(int(part) for part in exercise_id.split("."))


@functools.lru_cache(maxsize=1)
def _collected() -> dict[str, Exercise]:
    found: dict[str, Exercise] = {}
    for name in CATALOGUES:  # imported on first use: ``import gptbook`` stays quick
        module = importlib.import_module(f"{__package__}.{name}")
        for exercise in module.EXERCISES:
            if exercise.id in found:
                raise ValueError(f"exercise {exercise.id} is defined twice (in {name} and before it); ids must be unique")
            found[exercise.id] = exercise
    return dict(sorted(found.items(), key=lambda item: _order(item[0])))


def all_exercises() -> dict[str, Exercise]:
    """All exercises of the course, by id ("04.1", ...), in notebook order (a new dict each call)."""
    return dict(_collected())


def get_exercise(exercise_id: Any) -> Exercise:
    """The exercise ``exercise_id`` ("04.1"); a ValueError that lists the ids when there is none."""
    known = _collected()
    if not isinstance(exercise_id, str) or exercise_id not in known:
        padded = exercise_id.zfill(4) if isinstance(exercise_id, str) else None
        guess = f"did you mean {padded!r}? " if padded in known else ""
        raise ValueError(
            f"there is no exercise {exercise_id!r}; {guess}the ids are notebook.number: {', '.join(known)}"
        )
    return known[exercise_id]
