"""``AttentionExplorer``: a text, a layer, a head -> the attention heat map (notebooks 04, 08)."""

from __future__ import annotations

from typing import Any, Optional, Union

import ipywidgets as W
import torch
from matplotlib.figure import Figure
from torch import nn

from ..tokenizer import get_tokenizer, text_to_token_ids
from . import plots
from .base import _message, _TextBox, _with_classes, figure_to_png


class AttentionExplorer(_TextBox):
    """Pick a layer and a head and see which earlier tokens each token attends to (notebooks 04, 08).

    The attention weights are computed once per text (``plots.attention_weights``, one forward
    pass) and cached, so switching layer or head only redraws the picture. The head picker also
    offers "all heads" (a grid) and "average" (the mean over the heads).

    Edit the text, then click outside the box (or press Tab) to update it. ``<|endoftext|>``
    is allowed and becomes one token. A text longer than the model's context is cropped from
    the left, as ``generate`` does, with a note saying so; an empty text shows an error.

    Args:
        model: a ``GPTModel`` (run in eval mode; its mode is restored afterwards).
        tokenizer: the tokenizer (default: ``get_tokenizer()``).
        text: the text to start with.
        layer, head: the picture to start with (``head`` may be "all" or "average").
        dpi: resolution of the heat map image.
    """

    def __init__(self, model: nn.Module, tokenizer: Any = None,
                 text: str = "The cat sat on the mat because it was tired.",
                 layer: int = 0, head: Union[int, str] = 0, dpi: int = 100) -> None:
        self.language_model = model
        self.tokenizer = tokenizer if tokenizer is not None else get_tokenizer()
        self.dpi = dpi
        n_layers, n_heads = model.cfg["n_layers"], model.cfg["n_heads"]

        self.input = _with_classes(
            W.Textarea(value=text, placeholder="Type some text…", continuous_update=False,
                       layout=W.Layout(width="100%", height="4em")),
            "gptbook-attention-input",
        )
        self.layer = _with_classes(
            W.Dropdown(options=[(str(i), i) for i in range(n_layers)], value=layer, description="layer",
                       layout=W.Layout(width="12em")),
            "gptbook-layer",
        )
        self.head = _with_classes(
            W.Dropdown(options=[("all heads", "all"), ("average", "average")] + [(str(h), h) for h in range(n_heads)],
                       value=head, description="head", layout=W.Layout(width="14em")),
            "gptbook-head",
        )
        # flex-start: shown at its own size, not stretched (and blurred) to the notebook's width
        self.image = _with_classes(W.Image(format="png", layout=W.Layout(align_self="flex-start")), "gptbook-heatmap")
        self._make_message_lines()
        hint = W.HTML('<small style="color:#666">Edit the text, then click outside the box to update.</small>')
        super().__init__([self.input, hint, W.HBox([self.layer, self.head]), self.error, self.note, self.image])

        self.tokens: list[str] = []  # the tokens of the cached text
        self.weights: Optional[torch.Tensor] = None  # their attention weights, (n_layers, n_heads, T, T)
        self.n_computations = 0  # how many forward passes the widget has run (tests check the cache)
        self._cached_text: Optional[str] = None
        self.input.observe(lambda _change: self.render(), names="value")
        self.layer.observe(lambda _change: self.render(), names="value")
        self.head.observe(lambda _change: self.render(), names="value")
        self.render()

    def _compute(self) -> None:
        """Run the model on the text, unless its weights are already cached."""
        text = self.input.value
        if text == self._cached_text:
            return
        self._cached_text, self.tokens, self.weights = None, [], None
        ids = text_to_token_ids(text, self.tokenizer)
        n_tokens = ids.shape[1]
        if n_tokens == 0:
            raise ValueError("The text is empty: type a few words to see how their tokens attend to each other.")
        context = self.language_model.cfg["context_length"]
        self.show_note(
            f"The text has {n_tokens} tokens but the model sees at most {context}: "
            f"showing the last {context}." if n_tokens > context else ""
        )
        self.tokens, self.weights = plots.attention_weights(self.language_model, ids, self.tokenizer)
        self._cached_text = text
        self.n_computations += 1

    def figure(self) -> Figure:
        """The heat map for the chosen layer and head, as an off-screen matplotlib ``Figure``."""
        self._compute()
        layer, head = self.layer.value, self.head.value
        weights = self.weights[layer]  # (n_heads, T, T)
        T = len(self.tokens)
        if head == "all":
            fig = Figure(figsize=plots.attention_figsize(T, len(weights)), layout="constrained")
            return plots.plot_attention_heads(weights, self.tokens, layer=layer, fig=fig)
        fig = Figure(figsize=plots.attention_figsize(T), layout="constrained")
        if head == "average":
            plots.plot_attention(weights.mean(dim=0), self.tokens, ax=fig.subplots(),
                               title=f"layer {layer}, average of {len(weights)} heads")
        else:
            plots.plot_attention(weights[head], self.tokens, ax=fig.subplots(), title=f"layer {layer}, head {head}")
        return fig

    def render(self) -> None:
        """Redraw the heat map (recomputing the attention only if the text changed)."""
        try:
            self.image.value = figure_to_png(self.figure(), dpi=self.dpi)
            self.image.layout.display = ""
            self.show_error()
        except Exception as exc:  # show it in the widget, keep the widget alive
            self.image.layout.display = "none"  # no stale picture under an error
            self.image.value = b""
            self.show_note()
            self.show_error(_message(exc))
