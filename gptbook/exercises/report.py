"""What a check found, shown as rich HTML in a notebook and as plain, deterministic text elsewhere; and the
plain text/HTML pair that ``hint`` and ``solution`` return."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Optional

from .spec import Exercise, Mistake


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




class _Text:
    def __init__(self, text: str, html_text: str) -> None:
        self.text, self.html = text, html_text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return self.html
