"""Widgets, driven from Python as a learner drives them by hand: they update, explain problems, keep working."""

import matplotlib

matplotlib.use("Agg")

import ipywidgets as W  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from gptbook import EOT_ID, generate, text_to_token_ids, token_ids_to_text, viz  # noqa: E402
from gptbook.widgets import AttentionExplorer, GenerationWidget, TokenizerWidget  # noqa: E402

PNG_MAGIC = b"\x89PNG"


def classes(widget):
    return set(widget._dom_classes)


def picture(explorer):
    """The heat map's PNG bytes (ipywidgets keeps them as a memoryview)."""
    return bytes(explorer.image.value)


def record(widget, name="value"):
    """Every value the trait takes from now on, as the browser would receive them."""
    values = []
    widget.observe(lambda change: values.append(change["new"]), names=name)
    return values


# --- TokenizerWidget -------------------------------------------------------------------------

def test_tokenizer_widget_shows_tokens_ids_and_count_as_you_type(tokenizer):
    w = TokenizerWidget(tokenizer, text="")
    assert "0 characters → 0 tokens" in w.view.value
    w.input.value = "Hello, world!"  # what a keystroke does
    assert "13 characters → 4 tokens" in w.view.value
    assert all(f">{i}<" in w.view.value for i in tokenizer.encode("Hello, world!"))
    assert w.token_ids == tokenizer.encode("Hello, world!")
    assert w.input.continuous_update  # updates on every keystroke, not only on leaving the box


def test_tokenizer_widget_counts_endoftext_as_one_token(tokenizer):
    w = TokenizerWidget(tokenizer, text="a<|endoftext|>b")
    assert w.token_ids == [64, EOT_ID, 65]
    assert "3 tokens" in w.view.value and w.error.value == ""


def test_tokenizer_widget_is_a_displayable_box_with_css_hooks(tokenizer):
    w = TokenizerWidget(tokenizer)
    assert isinstance(w, W.VBox)
    assert "gptbook-token-input" in classes(w.input) and "gptbook-token-view" in classes(w.view)


# --- AttentionExplorer -----------------------------------------------------------------------

@pytest.fixture
def explorer(mini_model, tokenizer):
    return AttentionExplorer(mini_model, tokenizer, text="The cat sat on the mat.")


def test_explorer_starts_with_a_heat_map_of_its_text(explorer):
    assert picture(explorer).startswith(PNG_MAGIC)
    assert "".join(explorer.tokens) == "The cat sat on the mat."
    assert explorer.error.value == "" and explorer.note.value == ""


def test_changing_layer_or_head_changes_the_picture_without_rerunning_the_model(explorer):
    pictures = {picture(explorer)}
    explorer.head.value = 1
    pictures.add(picture(explorer))
    explorer.layer.value = 1
    pictures.add(picture(explorer))
    for choice in ("all", "average"):
        explorer.head.value = choice
        pictures.add(picture(explorer))
    assert len(pictures) == 5 and all(p.startswith(PNG_MAGIC) for p in pictures)
    assert explorer.n_computations == 1  # the attention was computed once, for the one text


def test_new_text_recomputes_the_attention(explorer):
    before = picture(explorer)
    explorer.text = "A dog ran."
    assert explorer.n_computations == 2
    assert "".join(explorer.tokens) == "A dog ran." and explorer.weights.shape[-1] == 4
    assert picture(explorer) != before


def test_empty_text_shows_an_error_then_the_next_text_works(explorer):
    explorer.text = ""
    assert "empty" in explorer.error.value
    assert explorer.image.layout.display == "none"  # no stale picture under the error
    explorer.head.value = 2  # still responsive, still explains
    assert "empty" in explorer.error.value
    explorer.text = "Back again."
    assert explorer.error.value == "" and explorer.image.layout.display == ""
    assert picture(explorer).startswith(PNG_MAGIC)


def test_text_longer_than_the_context_is_cropped_with_a_note(explorer):
    explorer.text = " word" * 40  # 40 tokens, context 32
    assert "40 tokens" in explorer.note.value and "last 32" in explorer.note.value
    assert len(explorer.tokens) == 32 and explorer.error.value == ""
    assert picture(explorer).startswith(PNG_MAGIC)
    explorer.text = "Short again."
    assert explorer.note.value == ""


def test_endoftext_is_allowed_in_the_explorer(explorer):
    explorer.text = "End.<|endoftext|>Start"
    assert "<|endoftext|>" in explorer.tokens and explorer.error.value == ""


def test_explorer_leaves_no_pyplot_figures_behind(explorer):
    explorer.head.value = "all"
    assert plt.get_fignums() == []


def test_explorer_css_hooks(explorer):
    assert "gptbook-layer" in classes(explorer.layer)
    assert "gptbook-head" in classes(explorer.head)
    assert "gptbook-heatmap" in classes(explorer.image)
    assert "gptbook-error" in classes(explorer.error)
    assert "gptbook-attention-input" in classes(explorer.input)


# --- GenerationWidget ------------------------------------------------------------------------

@pytest.fixture
def gen(mini_model, tokenizer):
    return GenerationWidget(mini_model, tokenizer, prompt="Every effort moves you", max_new_tokens=8, token_delay=0)


def reference(model, tokenizer, prompt, n, **options):
    ids = text_to_token_ids(prompt, tokenizer)
    out = generate(model, ids, n, eos_id=EOT_ID, **options)
    return token_ids_to_text(out[0, ids.shape[1]:], tokenizer)


def test_greedy_widget_text_is_exactly_gptbook_generate(gen, mini_model, tokenizer):
    new_text = gen.generate()
    assert new_text == reference(mini_model, tokenizer, "Every effort moves you", 8)
    assert gen.text == "Every effort moves you" + new_text
    assert gen.status.value == "8 / 8 tokens · done"


def test_top_k_1_is_greedy_too(gen, mini_model, tokenizer):
    gen.temperature.value, gen.top_k.value = 1.5, 1
    assert gen.generate() == reference(mini_model, tokenizer, "Every effort moves you", 8)


def test_sampling_matches_generate_with_the_same_seed(gen, mini_model, tokenizer):
    gen.temperature.value, gen.top_p.value, gen.seed.value, gen.max_new_tokens.value = 1.0, 0.9, "7", 4
    expected = reference(mini_model, tokenizer, "Every effort moves you", 4, temperature=1.0, top_p=0.9, seed=7)
    assert gen.generate() == expected
    assert gen.generate() == expected  # same seed, same text, click after click


def test_the_text_streams_in_token_by_token(gen):
    shown = record(gen.output)
    statuses = record(gen.status)
    gen.generate()
    assert len(shown) == 1 + 8  # the prompt alone, then once per token
    new_parts = [s.split("<span", 1)[1] for s in shown]
    assert all(len(a) < len(b) for a, b in zip(new_parts, new_parts[1:]))  # the highlighted text grows
    assert statuses[:3] == ["0 / 8 tokens", "1 / 8 tokens", "2 / 8 tokens"]


def test_candidates_show_five_bars_and_the_chosen_token(gen):
    gen.generate()
    assert gen.candidates.value.count("%</span>") == 5
    assert viz.CHOSEN_COLOUR in gen.candidates.value  # greedy: the chosen token is the top bar


def test_prompt_and_new_text_are_shown_differently_and_safely(gen):
    gen.prompt.value = "<b>bold?</b>"
    gen.generate()
    assert "&lt;b&gt;bold?&lt;/b&gt;<span" in gen.output.value  # the prompt as typed, then the highlight
    assert "<b>" not in gen.output.value


def test_empty_prompt_explains_and_the_next_click_works(gen):
    gen.prompt.value = ""
    assert gen.generate() == ""
    assert "prompt is empty" in gen.error.value and "&lt;|endoftext|&gt;" in gen.error.value
    assert not gen.running and not gen.generate_button.disabled
    gen.prompt.value = "<|endoftext|>"  # the special token is a valid prompt
    assert len(gen.generate()) > 0 and gen.error.value == ""


def test_bad_seed_explains_and_the_next_click_works(gen):
    gen.seed.value = "abc"
    gen.generate()
    assert "seed must be a whole number" in gen.error.value
    gen.seed.value = " 42 "
    gen.generate()
    assert gen.error.value == "" and len(gen.token_ids) == 8


def test_long_prompt_is_cropped_with_a_note_and_still_generates(gen, mini_model, tokenizer):
    prompt = " word" * 40  # 40 tokens, context 32
    gen.prompt.value = prompt
    new_text = gen.generate()
    assert "40 tokens" in gen.note.value and "last 32" in gen.note.value
    assert new_text == reference(mini_model, tokenizer, prompt, 8)  # generate crops the same way
    gen.prompt.value = "Short."
    gen.generate()
    assert gen.note.value == ""


def test_stop_ends_the_generation_early(gen):
    gen.max_new_tokens.value = 20
    gen.token_delay = 0.001
    gen.status.observe(lambda change: gen.stop() if change["new"].startswith("3 /") else None, names="value")
    gen.generate()
    assert len(gen.token_ids) == 3 and gen.status.value == "3 / 20 tokens · stopped"
    gen.generate()  # the next click starts afresh (the stop request is forgotten)... and is stopped at 3 again
    assert len(gen.token_ids) == 3


def test_the_buttons_generate_in_the_background_and_stop(gen):
    gen.max_new_tokens.value = 200
    gen.token_delay = 0.05
    gen.generate_button.click()
    assert gen.wait(timeout=0.3) is False  # still running: the kernel is free meanwhile
    assert gen.generate_button.disabled and not gen.stop_button.disabled
    gen.stop_button.click()
    assert gen.wait(timeout=10)
    assert 0 < len(gen.token_ids) < 200 and gen.status.value.endswith("stopped")
    assert not gen.generate_button.disabled and gen.stop_button.disabled


def test_the_model_keeps_its_training_mode(gen, mini_model):
    mini_model.train()
    gen.generate()
    assert mini_model.training


def test_generation_css_hooks(gen):
    for widget, name in [(gen.prompt, "gptbook-prompt"), (gen.generate_button, "gptbook-generate-button"),
                         (gen.stop_button, "gptbook-stop-button"), (gen.output, "gptbook-output"),
                         (gen.status, "gptbook-status"), (gen.error, "gptbook-error"),
                         (gen.candidates, "gptbook-candidates"), (gen.seed, "gptbook-seed")]:
        assert name in classes(widget)


def test_a_second_generate_press_while_generating_is_refused_and_the_first_finishes(gen, mini_model, monkeypatch):
    import threading

    from gptbook import GPTModel

    entered, release, calls = threading.Event(), threading.Event(), []

    def slow_forward(*args, **kwargs):  # holds the first generation inside the model until released
        calls.append(threading.current_thread().name)
        entered.set()
        assert release.wait(timeout=60)
        return GPTModel.forward(mini_model, *args, **kwargs)

    monkeypatch.setattr(mini_model, "forward", slow_forward)
    gen.generate_button.click()
    assert entered.wait(timeout=60) and gen.running
    gen.generate_button.click()  # a second press (the button is disabled in the page; a click still arrives here)
    assert gen.generate() == "" and "Already generating" in gen.error.value  # the synchronous call is refused too
    release.set()
    assert gen.wait(timeout=60)
    assert len(gen.token_ids) == 8 and len(calls) == 8 and len(set(calls)) == 1  # one generation, one thread
    assert gen.status.value == "8 / 8 tokens · done" and not gen.generate_button.disabled


def test_generating_never_switches_the_models_modes(tokenizer):
    """The Generate button's thread runs while the kernel may use the model: it neither turns dropout off under
    the kernel (eval) nor switches the modes back at its end over what the kernel set meanwhile, and it still
    generates without dropout."""
    import threading

    import torch

    from conftest import MINI_CONFIG
    from gptbook import GPTModel

    torch.manual_seed(0)
    model = GPTModel(MINI_CONFIG)  # in training mode, dropout 0.1: as a learner builds it
    entered, release = threading.Event(), threading.Event()

    def pause(module, args):  # holds the generation inside the model (on the thread's side) until released
        if not entered.is_set():
            entered.set()
            assert release.wait(timeout=60)

    handle = model.trf_blocks[0].register_forward_pre_hook(pause)
    gen = GenerationWidget(model, tokenizer, prompt="Every effort moves you", max_new_tokens=8, eos_id=None,
                           token_delay=0.0)
    gen.generate_button.click()
    try:
        assert entered.wait(timeout=60) and gen.running
        assert all(m.training for m in model.modules()), "the widget's thread switched the kernel's model to eval"
        model.eval()  # the kernel's own switch, while the widget generates
    finally:
        release.set()
    assert gen.wait(timeout=60)
    handle.remove()
    assert not any(m.training for m in model.modules()), "the widget's thread switched the modes back"
    ids = text_to_token_ids("Every effort moves you", tokenizer)
    assert gen.token_ids == generate(model, ids, 8)[0, ids.shape[1]:].tolist(), "the same text as without dropout"


def test_an_unexpected_error_from_the_model_is_shown_and_the_widget_keeps_working(gen, mini_model, monkeypatch):
    def broken_forward(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(mini_model, "forward", broken_forward)
    assert gen.generate() == ""
    assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied" in gen.error.value
    assert "press Generate again" in gen.status.value and not gen.generate_button.disabled and not gen.running
    monkeypatch.undo()
    assert gen.generate() and gen.error.value == ""


def test_reaching_end_of_text_is_the_status(gen, mini_model, tokenizer):
    ids = text_to_token_ids("Every effort moves you", tokenizer)
    first = int(generate(mini_model, ids, 1)[0, -1])
    gen.eos_id = first  # the greedy model's first token now ends the text
    gen.generate()
    assert gen.token_ids == [first]
    assert gen.status.value == "1 / 8 tokens · reached &lt;|endoftext|&gt;"


def test_tokenizer_widget_shows_an_error_and_keeps_working(tokenizer, monkeypatch):
    widget = TokenizerWidget(tokenizer, text="fine")
    real = viz.token_spans_html

    def fussy(text, tok):
        if "bad" in text:
            raise KeyError("no colour for this token")
        return real(text, tok)

    from gptbook.ui import plots  # where the widget's code finds it (gptbook.viz re-exports it)

    monkeypatch.setattr(plots, "token_spans_html", fussy)
    view = widget.view.value
    widget.text = "bad input"
    assert "KeyError" in widget.error.value and "no colour for this token" in widget.error.value
    assert widget.view.value == view  # the last good view stays
    widget.text = "good again"
    assert widget.error.value == "" and "good" in widget.view.value
