"""Running the learner's code under a time budget, with its errors caught (never raised).

The learner's code runs under a ``sys.settrace`` budget (``TIME_LIMIT`` seconds per check). Once it is spent,
the next Python line the learner's code executes raises an error the checker catches, so an endless loop ends
with a message instead of a hung kernel. gptbook's own code and PyTorch's are not traced line by line.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from .spec import Exercise

# not traced line by line: PyTorch's code and gptbook's own (the package folder, one level up from here)
_TRUSTED = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIME_LIMIT = 20.0  # seconds the learner's code may run per check (building the inputs does not count)


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
