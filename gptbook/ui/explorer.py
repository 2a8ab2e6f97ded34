"""The token-probability explorer: type a text, see how surprised the model is by every token (notebook 10).

``TokenProbabilityExplorer(model)`` shows the text with each token coloured by the loss the model
had on it (white: expected, red: surprised; hover for the number), a slider to pick a position,
and for that position the top-k next tokens with their probabilities and the loss of the token
that really comes next. One forward pass per text (``gptbook.interpret.token_surprise``); moving
the slider only redraws. Plain ipywidgets and HTML: no JavaScript of our own, no CDN.

CSS classes for browser tests: ``gptbook-explorer-input``, ``gptbook-explorer-position``,
``gptbook-explorer-text``, ``gptbook-explorer-top``, ``gptbook-error``.
"""

from __future__ import annotations

import html
from typing import Any, Optional

import ipywidgets as W
from torch import nn

from ..interpret import Surprise, token_surprise
from ..tokenizer import get_tokenizer, text_to_token_ids
from .base import _message, _TextBox, _with_classes

#: Losses at or above this many nats get the reddest colour.
MAX_SURPRISE = 8.0


def surprise_color(loss: float) -> str:
    """A background colour for a token's loss: white (0 nats) to red (``MAX_SURPRISE`` nats or more)."""
    t = max(0.0, min(1.0, loss / MAX_SURPRISE))
    green_blue = round(255 * (1.0 - 0.75 * t))
    return f"rgb(255,{green_blue},{green_blue})"


def surprise_html(surprise: Surprise, selected: Optional[int] = None) -> str:
    """The text as coloured token boxes: token ``i + 1`` coloured by ``losses[i]``; ``selected`` outlined."""
    spans = []
    for i, token in enumerate(surprise.tokens):
        if i == 0:
            style, title = "background:#eee", "the first token: nothing before it to predict it from"
        else:
            loss = float(surprise.losses[i - 1])
            style, title = f"background:{surprise_color(loss)}", f"loss {loss:.2f} (p = {2.718281828 ** -loss:.1%})"
        if i == selected:
            style += ";outline:2px solid #1f5fbf"
        text = html.escape(token.replace("\n", "↵"))
        spans.append(f'<span title="{title}" style="{style};border-radius:2px;padding:0 1px;'
                     f'white-space:pre;color:#111">{text}</span>')
    return '<div style="line-height:1.9;font-family:monospace;font-size:13px">' + "".join(spans) + "</div>"


class TokenProbabilityExplorer(_TextBox):
    """Type a prompt, pick a position: the top-k next tokens there, and the surprise at every token.

    Args:
        model: a ``GPTModel`` (run in eval mode; its mode is restored afterwards).
        text: the text to start with.
        k: how many candidates to list.
        tokenizer: default ``get_tokenizer()``.
    """

    def __init__(self, model: nn.Module, text: str = "Once upon a time, there was a girl named Mia.",
                 k: int = 5, tokenizer: Any = None) -> None:
        self.language_model = model
        self.tokenizer = tokenizer if tokenizer is not None else get_tokenizer()
        self.k = k
        self.input = _with_classes(W.Textarea(value=text, continuous_update=False,
                                              layout=W.Layout(width="100%", height="4em")), "gptbook-explorer-input")
        self.position = _with_classes(W.IntSlider(value=0, min=0, max=0, description="position",
                                                  continuous_update=True, layout=W.Layout(width="60%")),
                                      "gptbook-explorer-position")
        self.text_view = _with_classes(W.HTML(), "gptbook-explorer-text")
        self.top_view = _with_classes(W.HTML(), "gptbook-explorer-top")
        self._make_message_lines()
        hint = W.HTML('<small style="color:#666">Colour = how surprised the model was by each token '
                      '(white: expected, red: a surprise; hover for the loss). Edit the text, then click outside.</small>')
        super().__init__([self.input, hint, self.error, self.note, self.text_view, self.position, self.top_view])
        self.surprise: Optional[Surprise] = None
        self.input.observe(lambda _change: self.update(), names="value")
        self.position.observe(lambda _change: self.show_position(), names="value")
        self.update()

    def update(self) -> None:
        """Run the model on the text (one forward pass) and redraw everything."""
        try:
            ids = text_to_token_ids(self.input.value, self.tokenizer)
            if ids.shape[1] == 0:
                raise ValueError("The text is empty: type a few words to see what the model expects after each.")
            context = self.language_model.cfg["context_length"]
            self.show_note(f"The text has {ids.shape[1]} tokens; showing the last {context} (the model's context)."
                           if ids.shape[1] > context else "")
            self.surprise = token_surprise(self.language_model, ids[:, -context:], self.tokenizer)
            n = len(self.surprise.tokens)
            old = self.position.value
            self.position.max = n - 1
            self.position.value = min(old, n - 1) if old else max(0, n - 2)
            self.show_error()
            self.show_position()
        except Exception as exc:  # keep the widget alive whatever was typed
            self.surprise = None
            self.text_view.value = self.top_view.value = ""
            self.show_error(_message(exc))

    def show_position(self) -> None:
        """Redraw the coloured text and the candidates for the chosen position."""
        if self.surprise is None:
            return
        s, pos = self.surprise, self.position.value
        self.text_view.value = surprise_html(s, selected=pos)
        rows = []
        actual = s.ids[pos + 1] if pos + 1 < len(s.ids) else None
        for token, p in s.top_k(pos, self.k, self.tokenizer):
            is_actual = actual is not None and token == self.tokenizer.decode([actual])
            bar = f'<div style="background:{"#ff9f1c" if is_actual else "#4c8bf5"};height:10px;width:{max(1, round(200 * p))}px"></div>'
            rows.append(f"<tr><td style='font-family:monospace;white-space:pre'>{html.escape(repr(token))}</td>"
                        f"<td>{bar}</td><td style='text-align:right'>{p:.1%}</td></tr>")
        after = html.escape(repr(s.tokens[pos]))
        if actual is not None:
            loss = float(s.losses[pos])
            footer = (f"The text really continues with {html.escape(repr(self.tokenizer.decode([actual])))}: "
                      f"probability {2.718281828 ** -loss:.1%}, loss {loss:.2f} (orange if among the top {self.k}).")
        else:
            footer = "This is the last token: the list is what the model would write next."
        self.top_view.value = (f"<div><b>After {after}</b> (position {pos}), the model expects:</div>"
                               f"<table>{''.join(rows)}</table><div style='font-size:12px'>{footer}</div>")


__all__ = ["TokenProbabilityExplorer", "surprise_color", "surprise_html"]
