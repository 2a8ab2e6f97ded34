"""Pictures: the attention heat maps show the model's own weights, readably; the HTML shows every token."""

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere: no window, no display needed

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from conftest import MINI_CONFIG  # noqa: E402
from gptbook import EOT_ID, text_to_token_ids, viz  # noqa: E402

TEXT = "The cat sat on the mat."


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_attention_weights_are_the_models_own(mini_model, tokenizer):
    tokens, weights = viz.attention_weights(mini_model, TEXT, tokenizer)
    ids = text_to_token_ids(TEXT, tokenizer)
    with torch.no_grad():
        _, expected = mini_model(ids, return_attention=True)
    assert "".join(tokens) == TEXT
    assert weights.shape == (MINI_CONFIG["n_layers"], MINI_CONFIG["n_heads"], len(tokens), len(tokens))
    assert torch.allclose(weights, torch.stack([a[0] for a in expected]))


def test_attention_rows_sum_to_one_and_the_future_is_zero(mini_model, tokenizer):
    _, weights = viz.attention_weights(mini_model, TEXT, tokenizer)
    assert torch.allclose(weights.sum(dim=-1), torch.ones(weights.shape[:-1]))
    T = weights.shape[-1]
    assert (weights[..., torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)] == 0).all()


def test_attention_weights_accept_ids_and_keep_the_model_mode(mini_model, tokenizer):
    ids = text_to_token_ids(TEXT, tokenizer)
    mini_model.train()  # dropout on: the weights must still be the deterministic eval-mode ones
    from_ids = viz.attention_weights(mini_model, ids, tokenizer)[1]
    assert mini_model.training
    mini_model.eval()
    assert torch.equal(from_ids, viz.attention_weights(mini_model, ids[0].tolist(), tokenizer)[1])
    assert torch.equal(from_ids, viz.attention_weights(mini_model, TEXT, tokenizer)[1])


def test_attention_text_longer_than_the_context_keeps_the_last_tokens(mini_model, tokenizer):
    ids = list(range(100, 140))  # 40 tokens, context 32
    tokens, weights = viz.attention_weights(mini_model, ids, tokenizer)
    assert tokens == viz.token_strings(ids[-32:], tokenizer)
    assert weights.shape[-1] == 32


def test_endoftext_is_one_token_in_the_attention(mini_model, tokenizer):
    tokens, _ = viz.attention_weights(mini_model, "Hi<|endoftext|>there", tokenizer)
    assert tokens == ["Hi", "<|endoftext|>", "there"]


def test_empty_text_is_refused_with_a_hint(mini_model, tokenizer):
    with pytest.raises(ValueError, match="empty"):
        viz.attention_weights(mini_model, "", tokenizer)


def test_token_labels_show_whitespace():
    assert viz.token_label(" the") == "·the"
    assert viz.token_label("\n") == "\\n"
    assert viz.token_label("\t") == "\\t"


def test_split_characters_show_as_bytes_not_garbage(tokenizer):
    ids = tokenizer.encode("🦙")
    assert len(ids) > 1  # the llama emoji takes several tokens...
    assert all("\\x" in t for t in viz.token_strings(ids, tokenizer))  # ...each a piece of its bytes


def test_heat_map_labels_both_axes_and_greys_out_the_future(mini_model, tokenizer):
    tokens, weights = viz.attention_weights(mini_model, " a b\nc", tokenizer)
    ax = viz.plot_attention(weights[0, 0], tokens, ax=Figure().subplots(), title="layer 0, head 0")
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [t.get_text() for t in ax.get_yticklabels()] == ["·a", "·b", "\\n", "c"]
    data = ax.images[0].get_array()
    assert data.mask[0, 1] and not data.mask[1, 0]  # query 0 can't see key 1: masked (drawn grey)
    assert ax.get_title() == "layer 0, head 0"
    assert len(ax.figure.axes) == 2  # the heat map and its colour bar


def test_small_heat_maps_print_their_values_large_ones_do_not(mini_model, tokenizer):
    tokens, weights = viz.attention_weights(mini_model, "one two three", tokenizer)
    ax = viz.plot_attention(weights[0, 0], tokens, ax=Figure().subplots())
    assert len(ax.texts) == 6  # 3 tokens: the 6 visible cells of the lower triangle
    assert ax.texts[0].get_text() == "1.00"  # the first token can only attend to itself
    tokens, weights = viz.attention_weights(mini_model, "one two three four five six seven eight nine", tokenizer)
    assert not viz.plot_attention(weights[0, 0], tokens, ax=Figure().subplots()).texts


def test_dollar_signs_are_not_read_as_formulas(mini_model, tokenizer):
    tokens, weights = viz.attention_weights(mini_model, "$5 and $6", tokenizer)
    fig = Figure()
    viz.plot_attention(weights[0, 0], tokens, ax=fig.subplots())
    fig.canvas.draw()  # would raise if "$5 and $" were parsed as mathtext


def test_heads_grid_draws_every_head_on_one_scale(mini_model, tokenizer):
    tokens, weights = viz.attention_weights(mini_model, TEXT, tokenizer)
    fig = viz.plot_attention_heads(weights[1], tokens, layer=1, fig=Figure())
    heat_maps = [ax for ax in fig.axes if ax.images and ax.get_title().startswith("head")]
    assert [ax.get_title() for ax in heat_maps] == [f"head {h}" for h in range(MINI_CONFIG["n_heads"])]
    assert len({ax.images[0].get_clim() for ax in heat_maps}) == 1


def test_plot_attention_rejects_a_whole_layer_with_a_hint(mini_model, tokenizer):
    tokens, weights = viz.attention_weights(mini_model, TEXT, tokenizer)
    with pytest.raises(ValueError, match=r"weights\[layer, head\]"):
        viz.plot_attention(weights[0], tokens)


def test_without_an_ax_the_plots_use_pyplot_so_they_show_inline(mini_model, tokenizer):
    tokens, weights = viz.attention_weights(mini_model, TEXT, tokenizer)
    viz.plot_attention(weights[0, 0], tokens)
    assert len(plt.get_fignums()) == 1


def test_next_token_bars_are_sorted_and_highlight_the_chosen_token(tokenizer):
    probs = torch.zeros(50257)
    probs[[464, 262, 11]] = torch.tensor([0.5, 0.3, 0.2])  # "The", " the", ","
    ax = viz.plot_next_token_probs(probs, tokenizer, top=3, ax=Figure().subplots(), chosen=262)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["The", "·the", ","]
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == pytest.approx([0.5, 0.3, 0.2])
    colours = [bar.get_facecolor() for bar in ax.patches]
    assert colours[1] != colours[0] == colours[2]


def test_a_chosen_token_outside_the_top_still_gets_a_bar(tokenizer):
    probs = torch.softmax(torch.randn(50257, generator=torch.Generator().manual_seed(0)), dim=-1)
    least_likely = int(probs.argmin())
    ax = viz.plot_next_token_probs(probs.unsqueeze(0), tokenizer, top=5, ax=Figure().subplots(), chosen=least_likely)
    assert len(ax.patches) == 6


def test_token_html_shows_every_token_with_its_id_and_a_count(tokenizer):
    text = "Hello, world!"
    page = viz.token_spans_html(text, tokenizer)
    ids = tokenizer.encode(text)
    assert "13 characters → 4 tokens" in page
    for token_id in ids:
        assert f">{token_id}<" in page
    assert "·world" in page


def test_token_html_escapes_markup_and_keeps_endoftext(tokenizer):
    page = viz.token_spans_html("<b>hi</b><|endoftext|>", tokenizer)
    assert "<b>" not in page and "&lt;" in page  # shown as text, not made bold
    assert f">{EOT_ID}<" in page and "&lt;|endoftext|&gt;" in page
    assert "<script" not in page and "http" not in page  # nothing to run, nothing to download


def test_token_html_of_a_huge_text_stays_small(tokenizer):
    page = viz.token_spans_html(" word" * 5000, tokenizer, max_tokens=100)
    assert "5,000 tokens" in page and "more tokens" in page
    assert len(page) < 100 * 1000


def test_top_tokens_html_lists_the_five_best_with_percentages(tokenizer):
    ids = tokenizer.encode(" one two three four five six")
    probs = torch.zeros(50257)
    probs[ids] = torch.tensor([0.4, 0.2, 0.15, 0.12, 0.08, 0.05])
    page = viz.top_tokens_html(probs, tokenizer, top=5, chosen=ids[1])
    assert page.count("%</span>") == 5 and "40.0%" in page and "·five" in page and "·six" not in page
    assert page.count(viz.CHOSEN_COLOUR) == 1


def test_viz_does_not_touch_pyplot_when_given_axes(mini_model, tokenizer):
    tokens, weights = viz.attention_weights(mini_model, TEXT, tokenizer)
    viz.plot_attention(weights[0, 0], tokens, ax=Figure().subplots())
    viz.plot_attention_heads(weights[0], tokens, fig=Figure())
    viz.plot_next_token_probs(torch.softmax(torch.randn(50257), -1), tokenizer, ax=Figure().subplots())
    assert plt.get_fignums() == []
