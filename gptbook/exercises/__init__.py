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

Where things are in this package:

    api          check, hint, solution, progress (the public calls)
    spec         Exercise, Case, Mistake, Property, Answer: what an exercise is
    registry     all_exercises(), get_exercise(id): collects the catalogues
    nb01 … nb10  one catalogue per notebook: references, cases, common mistakes, hints, solutions
    sandbox      the time budget the learner's code runs under
    evaluation   one check: cases, comparison, properties, the mistake it looks like
    comparison   compare(expected, got): what differs, in a sentence
    report       CheckResult, shown as HTML or text
    passes       the passes kept in the cache folder (what progress() lists)

A new exercise goes into its notebook's catalogue (``EXERCISES.append(Exercise(...))``), with its wrong
answers and variants; ``tests/test_exercises.py`` picks it up by itself.
"""

from .api import check, hint, progress, solution
from .comparison import compare
from .registry import all_exercises, get_exercise
from .report import CheckResult
from .sandbox import TIME_LIMIT
from .spec import Answer, Case, Exercise, Mistake, Property

__all__ = [
    "TIME_LIMIT", "Answer", "Case", "CheckResult", "Exercise", "Mistake", "Property",
    "all_exercises", "check", "compare", "get_exercise", "hint", "progress", "solution",
]
