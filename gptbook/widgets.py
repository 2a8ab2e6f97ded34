"""Interactive widgets for the notebooks: see tokens as you type, explore attention, watch generation.

- ``TokenizerWidget``: type text, see its tokens and their IDs.                 notebook 01
- ``AttentionExplorer``: a text, a layer, a head -> the attention heat map.     notebooks 04, 08
- ``GenerationWidget``: a prompt and the sampling knobs -> text, token by token. notebook 07

Each widget is an ``ipywidgets.VBox``: make it the last expression of a cell to show it. They
are plain ipywidgets plus matplotlib pictures sent as PNG images: no JavaScript of our own and no
CDN, so they work offline in JupyterLab 4, Notebook 7, VS Code and Colab. Everything can also
be driven from Python (set ``.text``, call ``.generate()``, read ``.output.value``), which the
tests do. Problems (an empty prompt, a bad seed) appear in the widget's red error line and the
widget keeps working; notes (a text cropped to the context) appear in a line below it.

The parts carry CSS classes for browser tests: ``gptbook-token-input``, ``gptbook-token-view``,
``gptbook-attention-input``, ``gptbook-layer``, ``gptbook-head``, ``gptbook-heatmap``,
``gptbook-prompt``, ``gptbook-temperature``, ``gptbook-top-k``, ``gptbook-top-p``,
``gptbook-max-new-tokens``, ``gptbook-seed``, ``gptbook-generate-button``,
``gptbook-stop-button``, ``gptbook-status``, ``gptbook-output``, ``gptbook-candidates``,
``gptbook-error``, ``gptbook-note``.
"""

from __future__ import annotations

import html
import io
import threading
import warnings
from typing import Any, Optional, Union

import ipywidgets as W
import torch
from matplotlib.figure import Figure
from torch import nn

from . import viz
from .generation import generate_stream
from .tokenizer import EOT_ID, get_tokenizer, text_to_token_ids

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


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------

class TokenizerWidget(_GptbookBox):
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
    def text(self) -> str:
        """The text in the box (setting it updates the view)."""
        return self.input.value

    @text.setter
    def text(self, value: str) -> None:
        self.input.value = value

    @property
    def token_ids(self) -> list[int]:
        """The token IDs of the current text."""
        return text_to_token_ids(self.input.value, self.tokenizer)[0].tolist()

    def update(self) -> None:
        """Redraw the tokens of the current text (called on every keystroke)."""
        try:
            self.view.value = viz.token_spans_html(self.input.value, self.tokenizer)
            self.show_error()
        except Exception as exc:  # keep the widget alive whatever was typed
            self.show_error(_message(exc))


# --------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------

class AttentionExplorer(_GptbookBox):
    """Pick a layer and a head and see which earlier tokens each token attends to (notebooks 04, 08).

    The attention weights are computed once per text (``viz.attention_weights``, one forward
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

    @property
    def text(self) -> str:
        """The text whose attention is shown (setting it recomputes and redraws)."""
        return self.input.value

    @text.setter
    def text(self, value: str) -> None:
        self.input.value = value

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
        self.tokens, self.weights = viz.attention_weights(self.language_model, ids, self.tokenizer)
        self._cached_text = text
        self.n_computations += 1

    def figure(self) -> Figure:
        """The heat map for the chosen layer and head, as an off-screen matplotlib ``Figure``."""
        self._compute()
        layer, head = self.layer.value, self.head.value
        weights = self.weights[layer]  # (n_heads, T, T)
        T = len(self.tokens)
        if head == "all":
            fig = Figure(figsize=viz.attention_figsize(T, len(weights)), layout="constrained")
            return viz.plot_attention_heads(weights, self.tokens, layer=layer, fig=fig)
        fig = Figure(figsize=viz.attention_figsize(T), layout="constrained")
        if head == "average":
            viz.plot_attention(weights.mean(dim=0), self.tokens, ax=fig.subplots(),
                               title=f"layer {layer}, average of {len(weights)} heads")
        else:
            viz.plot_attention(weights[head], self.tokens, ax=fig.subplots(), title=f"layer {layer}, head {head}")
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


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------

class GenerationWidget(_GptbookBox):
    """Continue a prompt and watch the text appear token by token (notebook 07).

    Knobs: temperature (0 = greedy: always the most likely token), top-k (0 = off), top-p
    (1 = off), the number of new tokens, and a seed (empty: a new random draw each click; a
    number: the same text each click). Below the text, bars show the five most likely next
    tokens at the latest step (after temperature, top-k and top-p; orange: the one chosen).

    The Generate button runs in a background thread, so the Stop button works while tokens
    stream in; ``generate()`` does the same synchronously (for scripts and tests). Generation
    uses ``gptbook.generate_stream``, stopping at ``eos_id`` (``<|endoftext|>``; None: never).
    A prompt longer than the model's context is cropped from the left, as ``generate`` does,
    with a note; an empty prompt shows an error (type ``<|endoftext|>`` to start from nothing).

    Args:
        model: a ``GPTModel`` (run in eval mode; its mode is restored afterwards).
        tokenizer: the tokenizer (default: ``get_tokenizer()``).
        prompt: the prompt to start with.
        max_new_tokens, temperature, top_k, top_p, seed: the knobs' starting values.
        eos_id: stop once this token is generated (None: always generate ``max_new_tokens``).
        token_delay: seconds to pause after each token, so the streaming is visible.
    """

    def __init__(self, model: nn.Module, tokenizer: Any = None, prompt: str = "Every effort moves you", *,
                 max_new_tokens: int = 40, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
                 seed: Optional[int] = None, eos_id: Optional[int] = EOT_ID, token_delay: float = 0.02) -> None:
        self.language_model = model
        self.tokenizer = tokenizer if tokenizer is not None else get_tokenizer()
        self.eos_id = eos_id
        self.token_delay = token_delay

        style = {"description_width": "7em"}
        self.prompt = _with_classes(
            W.Textarea(value=prompt, placeholder="Type a prompt…", layout=W.Layout(width="100%", height="4em")),
            "gptbook-prompt",
        )
        self.temperature = _with_classes(
            W.FloatSlider(value=temperature, min=0.0, max=2.0, step=0.05, description="temperature",
                          readout_format=".2f", style=style), "gptbook-temperature")
        self.top_k = _with_classes(
            W.IntSlider(value=top_k, min=0, max=200, description="top-k", style=style), "gptbook-top-k")
        self.top_p = _with_classes(
            W.FloatSlider(value=top_p, min=0.05, max=1.0, step=0.05, description="top-p",
                          readout_format=".2f", style=style), "gptbook-top-p")
        self.max_new_tokens = _with_classes(
            W.IntSlider(value=max_new_tokens, min=1, max=max(200, max_new_tokens), description="new tokens",
                        style=style), "gptbook-max-new-tokens")
        self.seed = _with_classes(
            W.Text(value="" if seed is None else str(seed), placeholder="random", description="seed",
                   style=style, layout=W.Layout(width="16em")), "gptbook-seed")
        self.generate_button = _with_classes(
            W.Button(description="Generate", button_style="primary", icon="play"), "gptbook-generate-button")
        self.stop_button = _with_classes(
            W.Button(description="Stop", icon="stop", disabled=True), "gptbook-stop-button")
        self.status = _with_classes(W.HTML("Press Generate to continue the prompt."), "gptbook-status")
        self.output = _with_classes(W.HTML(layout=W.Layout(width="100%")), "gptbook-output")
        self.candidates = _with_classes(W.HTML(), "gptbook-candidates")
        self._make_message_lines()
        legend = W.HTML('<small style="color:#666">temperature 0 = greedy · top-k 0 = off · top-p 1 = off · '
                        'empty seed = a new random draw each time</small>')
        super().__init__([
            self.prompt,
            W.HBox([self.temperature, self.top_k]),
            W.HBox([self.top_p, self.max_new_tokens]),
            legend,
            W.HBox([self.seed, self.generate_button, self.stop_button, self.status]),
            self.error,
            self.note,
            self.output,
            self.candidates,
        ])

        self.token_ids: list[int] = []  # the new tokens of the latest generation
        self.new_text = ""  # their text
        self._prompt_text = ""  # the prompt they continue
        self._lock = threading.Lock()  # one generation at a time
        self._stop_requested = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.generate_button.on_click(self._on_generate_click)
        self.stop_button.on_click(lambda _button: self.stop())

    @property
    def text(self) -> str:
        """The prompt and the text generated from it (as shown)."""
        return self._prompt_text + self.new_text

    @property
    def running(self) -> bool:
        """Whether a generation is under way."""
        return self._lock.locked()

    def stop(self) -> None:
        """Ask a running generation to stop after the current token."""
        self._stop_requested.set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait for a generation started by the button to finish; True once it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _on_generate_click(self, _button: W.Button) -> None:
        if self._begin():
            # A thread keeps the kernel free to receive the Stop click while tokens stream in.
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def generate(self) -> str:
        """Generate from the current prompt and settings, updating the widget after each token.

        Runs synchronously and returns the new text. Any problem is shown in the error line.
        """
        if not self._begin():
            self.show_error("Already generating: wait for it to finish, or press Stop.")
            return self.new_text
        return self._run()

    def _begin(self) -> bool:
        """Claim the widget for one generation (False if one is running already)."""
        if not self._lock.acquire(blocking=False):
            return False
        self._stop_requested.clear()
        self.generate_button.disabled, self.stop_button.disabled = True, False
        return True

    def _run(self) -> str:
        """One generation, after ``_begin``; always hands the widget back, even on an error."""
        try:
            self.show_error()
            self.show_note()
            self._generate()
        except Exception as exc:  # show it in the widget, keep the widget alive
            self.show_error(_message(exc))
            self.status.value = "Fix the problem above, then press Generate again."
        finally:
            self.generate_button.disabled, self.stop_button.disabled = False, True
            self._lock.release()
        return self.new_text

    def _read_seed(self) -> Optional[int]:
        text = self.seed.value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"The seed must be a whole number such as 123 (or empty for a new random draw "
                             f"each time), got {text!r}.") from None

    def _generate(self) -> None:
        model, tokenizer = self.language_model, self.tokenizer
        prompt = self.prompt.value
        n_max = self.max_new_tokens.value
        self.token_ids, self.new_text, self._prompt_text = [], "", prompt  # forget the last text
        self.candidates.value = ""
        self._show_progress(f"0 / {n_max} tokens")

        idx = text_to_token_ids(prompt, tokenizer)
        if idx.shape[1] == 0:
            raise ValueError("The prompt is empty: type a few words for the model to continue "
                             "(or <|endoftext|> to let it start from nothing).")
        seed = self._read_seed()
        context = model.cfg["context_length"]
        if idx.shape[1] > context:
            self.show_note(f"The prompt has {idx.shape[1]} tokens but the model sees at most {context}: "
                           f"it continues from the last {context}.")

        ending = "done"
        was_training = model.training
        stream = generate_stream(
            model, idx.to(next(model.parameters()).device), n_max,
            temperature=self.temperature.value,
            top_k=self.top_k.value or None,
            top_p=self.top_p.value if self.top_p.value < 1.0 else None,
            eos_id=self.eos_id, seed=seed, return_probs=True,
        )
        try:
            model.eval()  # no dropout while generating
            for token, probs in stream:
                token_id = int(token[0, 0])
                self.token_ids.append(token_id)
                self.new_text = tokenizer.decode(self.token_ids)  # whole, so split characters join up
                self.candidates.value = ("<small>Most likely next tokens at this step (orange: the one chosen)</small>"
                                         + viz.top_tokens_html(probs[0], tokenizer, top=5, chosen=token_id))
                self._show_progress(f"{len(self.token_ids)} / {n_max} tokens")
                if token_id == self.eos_id:
                    ending = "reached <|endoftext|>"
                elif len(self.token_ids) < n_max and self._stop_requested.wait(self.token_delay):
                    ending = "stopped"
                    break
        finally:
            stream.close()
            model.train(was_training)
        self._show_progress(f"{len(self.token_ids)} / {n_max} tokens · {ending}")

    def _show_progress(self, status: str) -> None:
        self.status.value = html.escape(status)
        self.output.value = (
            '<div style="white-space:pre-wrap;line-height:1.5;padding:6px 8px;border:1px solid #ccc;'
            f'border-radius:4px">{html.escape(self._prompt_text)}'
            f'<span style="{_NEW_TEXT_STYLE}">{html.escape(self.new_text)}</span></div>'
        )


__all__ = ["AttentionExplorer", "GenerationWidget", "TokenizerWidget", "figure_to_png"]
