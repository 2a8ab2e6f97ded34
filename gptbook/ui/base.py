"""What the widgets share: a VBox with an error line and a note line, a text box whose ``text`` property the
widgets expose, CSS classes for the browser tests, and matplotlib figures rendered to PNG off screen."""

from __future__ import annotations

import html
import io
import warnings

import ipywidgets as W
from matplotlib.figure import Figure


_ERROR_STYLE = "color:#c62828;font-weight:bold"
_NOTE_STYLE = "color:#9a6700"
_NEW_TEXT_STYLE = "background:#fff1a8;color:#111;border-radius:2px"


def figure_to_png(fig: Figure, dpi: int = 100, tight: bool = True) -> bytes:
    """Render a matplotlib ``Figure`` to PNG bytes (for an ``ipywidgets.Image``).

    Use a ``matplotlib.figure.Figure`` made directly, not through pyplot: it is drawn off
    screen and never shows up (or piles up) in the notebook. ``tight=True`` crops the margins,
    which costs a second rendering pass; a figure with a layout engine can do without.
    """
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # a token in a script the font lacks: a blank box is fine
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return buffer.getvalue()


def _with_classes(widget: W.Widget, *classes: str) -> W.Widget:
    for name in classes:
        widget.add_class(name)
    return widget


def _message(exc: Exception) -> str:
    """An exception as a sentence for the error line (our ValueErrors already are sentences)."""
    return str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"


class _GptbookBox(W.VBox):
    """A VBox with an error line (red) and a note line below it, shared by the widgets."""

    def _make_message_lines(self) -> None:
        self.error = _with_classes(W.HTML(), "gptbook-error")
        self.note = _with_classes(W.HTML(), "gptbook-note")

    def show_error(self, text: str = "") -> None:
        """Show ``text`` in the error line ("" clears it)."""
        self.error.value = f'<div style="{_ERROR_STYLE}">⚠ {html.escape(text)}</div>' if text else ""

    def show_note(self, text: str = "") -> None:
        """Show ``text`` in the note line ("" clears it)."""
        self.note.value = f'<div style="{_NOTE_STYLE}">{html.escape(text)}</div>' if text else ""


class _TextBox(_GptbookBox):
    """A widget whose text lives in ``self.input`` (a ``Textarea``): ``text`` reads it, setting it updates the view."""

    @property
    def text(self) -> str:
        """The text in the box (setting it updates the view)."""
        return self.input.value

    @text.setter
    def text(self, value: str) -> None:
        self.input.value = value
