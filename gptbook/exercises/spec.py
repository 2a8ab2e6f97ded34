"""What an exercise is: the reference, the cases it is checked on, its common mistakes, the properties an
answer must have beyond its values, the wrong answers and valid variants the tests run through ``check``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional


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
