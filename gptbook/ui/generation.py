"""``GenerationWidget``: a prompt and the sampling knobs -> text, token by token, with Stop (notebook 07)."""

from __future__ import annotations

import html
import threading
from typing import Any, Optional

import ipywidgets as W
from torch import nn

from .._shared import eval_view
from ..generation import generate_stream
from ..tokenizer import EOT_ID, get_tokenizer, text_to_token_ids
from . import plots
from .base import _GptbookBox, _message, _with_classes

_NEW_TEXT_STYLE = "background:#fff1a8;color:#111;border-radius:2px"


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
        model: a ``GPTModel``, run in eval mode without switching its own mode (a model in training mode, or one
            a background run trains, is run through an eval-mode twin sharing its weights: ``gptbook._shared``).
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
        # No dropout while generating, and no train()/eval() switch either: this may run in the widget's thread
        # while the kernel (or a background training run) uses the model. eval_view gives the model itself when
        # it is in eval mode and nobody trains it, else an eval-mode twin sharing its weights (gptbook._shared).
        runner = eval_view(model)
        stream = generate_stream(
            runner, idx.to(next(model.parameters()).device), n_max,
            temperature=self.temperature.value,
            top_k=self.top_k.value or None,
            top_p=self.top_p.value if self.top_p.value < 1.0 else None,
            eos_id=self.eos_id, seed=seed, return_probs=True,
        )
        try:
            for token, probs in stream:
                token_id = int(token[0, 0])
                self.token_ids.append(token_id)
                self.new_text = tokenizer.decode(self.token_ids)  # whole, so split characters join up
                self.candidates.value = ("<small>Most likely next tokens at this step (orange: the one chosen)</small>"
                                         + plots.top_tokens_html(probs[0], tokenizer, top=5, chosen=token_id))
                self._show_progress(f"{len(self.token_ids)} / {n_max} tokens")
                if token_id == self.eos_id:
                    ending = "reached <|endoftext|>"
                elif len(self.token_ids) < n_max and self._stop_requested.wait(self.token_delay):
                    ending = "stopped"
                    break
        finally:
            stream.close()
        self._show_progress(f"{len(self.token_ids)} / {n_max} tokens · {ending}")

    def _show_progress(self, status: str) -> None:
        self.status.value = html.escape(status)
        self.output.value = (
            '<div style="white-space:pre-wrap;line-height:1.5;padding:6px 8px;border:1px solid #ccc;'
            f'border-radius:4px">{html.escape(self._prompt_text)}'
            f'<span style="{_NEW_TEXT_STYLE}">{html.escape(self.new_text)}</span></div>'
        )
