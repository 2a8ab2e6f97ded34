"""The exercises passed on this computer, kept in gptbook's cache folder (``exercises.json``)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .._shared import cache_dir
from .registry import all_exercises


def _progress_file() -> Path:
    return cache_dir() / "exercises.json"


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
        return [(ex, self.passed.get(ex.id)) for ex in all_exercises().values()]

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
