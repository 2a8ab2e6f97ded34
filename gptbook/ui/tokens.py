"""``TokenizerWidget``: type text, see its tokens and their IDs (notebook 01)."""

from __future__ import annotations

from typing import Any

import ipywidgets as W

from ..tokenizer import get_tokenizer, text_to_token_ids
from . import plots
from .base import _message, _TextBox, _with_classes


class TokenizerWidget(_TextBox):
    """Type text and see, as you type, how GPT-2's tokenizer splits it (notebook 01).

    Each token is a coloured box with its ID below; a line counts characters and tokens.
    ``<|endoftext|>`` is recognised as the special token 50256.

    Args:
        tokenizer: the tokenizer (default: ``get_tokenizer()``, GPT-2's).
        text: the text to start with.
    """

    def __init__(self, tokenizer: Any = None,
                 text: str = "Tokens aren't words: unbelievable, ChatGPT and 1234567 break into pieces.") -> None:
        self.tokenizer = tokenizer if tokenizer is not None else get_tokenizer()
        self.input = _with_classes(
            W.Textarea(value=text, placeholder="Type some text…", continuous_update=True,
                       layout=W.Layout(width="100%", height="5em")),
            "gptbook-token-input",
        )
        self.view = _with_classes(W.HTML(), "gptbook-token-view")
        self._make_message_lines()
        super().__init__([self.input, self.error, self.view])
        self.input.observe(lambda _change: self.update(), names="value")
        self.update()

    @property
    def token_ids(self) -> list[int]:
        """The token IDs of the current text."""
        return text_to_token_ids(self.input.value, self.tokenizer)[0].tolist()

    def update(self) -> None:
        """Redraw the tokens of the current text (called on every keystroke)."""
        try:
            self.view.value = plots.token_spans_html(self.input.value, self.tokenizer)
            self.show_error()
        except Exception as exc:  # keep the widget alive whatever was typed
            self.show_error(_message(exc))
