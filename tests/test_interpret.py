"""Tools for looking inside a model: the logit lens, per-token surprise, head-role scores and ablation."""

import copy

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gptbook import GPTModel
from gptbook.interpret import (
    ablate, copy_losses, head_scores, logit_lens, plot_head_scores, plot_logit_lens, repeated_random_tokens,
    scores_from_attention, strongest_head, token_surprise,
)

matplotlib.use("Agg")

CFG = {"vocab_size": 50257, "context_length": 64, "emb_dim": 32, "n_heads": 4, "n_layers": 3,
       "drop_rate": 0.1, "qkv_bias": False, "tie_weights": True}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPTModel(CFG).train()  # in train mode: the tools must switch dropout off and restore the mode


IDS = torch.tensor([[50256, 464, 3797, 3332, 319, 262, 2603, 13, 383, 3797]])


def test_logit_lens_last_layer_is_the_models_own_prediction(model):
    lens = logit_lens(model, IDS)
    assert model.training
    model.eval()
    probs = torch.softmax(model(IDS)[0], dim=-1)  # (T, vocab)
    model.train()
    assert lens.layer_names == ["embedding", "block 0", "block 1", "block 2"]
    assert lens.top_ids.shape == (4, 10) and lens.next_probs.shape == (4, 9)
    assert torch.equal(lens.top_ids[-1], probs.argmax(-1))
    assert torch.allclose(lens.next_probs[-1], probs[:-1].gather(1, IDS[0, 1:, None])[:, 0], atol=1e-6)
    assert len(lens.top_tokens()) == 4 and len(lens.top_tokens()[0]) == 10


def test_first_layer_right_finds_where_the_answer_appears_and_stays(model):
    lens = logit_lens(model, IDS)
    lens.top_ids[:, 2] = torch.tensor([1, int(IDS[0, 3]), 2, int(IDS[0, 3])])  # right at 1, wrong at 2, right at 3
    assert lens.first_layer_right(2) == 3
    lens.top_ids[:, 2] = int(IDS[0, 3])
    assert lens.first_layer_right(2) == 0
    lens.top_ids[-1, 2] = 7
    assert lens.first_layer_right(2) is None
    with pytest.raises(ValueError, match="position"):
        lens.first_layer_right(9)  # the last token has no next token


def test_token_surprise_is_the_cross_entropy_of_each_next_token(model):
    surprise = token_surprise(model, IDS[0].tolist())
    model.eval()
    with torch.no_grad():
        expected = F.cross_entropy(model(IDS)[0, :-1], IDS[0, 1:], reduction="none")
    model.train()
    assert torch.allclose(surprise.losses, expected, atol=1e-5)
    top = surprise.top_k(3, k=4)
    assert len(top) == 4 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert top[0][1] == pytest.approx(float(surprise.probs[3].max()))


def test_ablating_a_head_is_zeroing_its_columns_of_the_output_projection_and_is_undone(model):
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        clean = model(IDS)
        with ablate(model, heads=[(1, 2), (1, 0)]):
            ablated = model(IDS)
        after = model(IDS)
    surgery = copy.deepcopy(model)
    hd = CFG["emb_dim"] // CFG["n_heads"]
    with torch.no_grad():
        for h in (2, 0):
            surgery.trf_blocks[1].att.out_proj.weight[:, h * hd:(h + 1) * hd] = 0.0
        expected = surgery(IDS)
    model.train()
    assert torch.allclose(ablated, expected, atol=1e-5)
    assert not torch.allclose(ablated, clean, atol=1e-3)
    assert torch.equal(after, clean), "after the with block the model computes exactly what it did before"
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_ablating_a_layer_skips_the_block_in_every_forward_path(model):
    model.eval()
    skipped = copy.deepcopy(model)
    skipped.trf_blocks[0] = nn.Identity()
    with torch.no_grad(), ablate(model, layers=[0]):
        plain = model(IDS)
        with_attention, weights = model(IDS, return_attention=True)
    with torch.no_grad():
        expected = skipped.final_norm(skipped.trf_blocks(skipped.tok_emb(IDS) + skipped.pos_emb(torch.arange(10))))
        expected = skipped.out_head(expected)
    model.train()
    assert torch.allclose(plain, expected, atol=1e-5) and torch.allclose(with_attention, expected, atol=1e-5)
    assert len(weights) == 3


def test_ablation_is_undone_after_an_error_and_rejects_heads_that_do_not_exist(model):
    with pytest.raises(RuntimeError):
        with ablate(model, heads=[(0, 0)], layers=[2]):
            raise RuntimeError("boom")
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="does not exist"):
        with ablate(model, heads=[(3, 0)]):
            pass
    with pytest.raises(ValueError, match="does not exist"):
        with ablate(model, layers=[-1]):
            pass
    with pytest.raises(ValueError, match="pairs"):
        with ablate(model, heads=[5]):
            pass


def _pattern(T, key_of):
    """Attention weights (1 layer, 1 sequence, 1 head, T, T) with all weight on key_of(query)."""
    w = torch.zeros(1, 1, 1, T, T)
    for q in range(T):
        w[0, 0, 0, q, key_of(q)] = 1.0
    return w


def test_head_role_scores_are_one_for_the_pure_patterns():
    n = 5
    T = 2 * n + 1
    prev = scores_from_attention(_pattern(T, lambda q: max(q - 1, 0)), period=n)
    sink = scores_from_attention(_pattern(T, lambda q: 0), period=n)
    induction = scores_from_attention(_pattern(T, lambda q: q - n + 1 if q > n else q), period=n)
    assert prev["previous_token"].item() == 1.0 and prev["first_token"].item() == 0.0
    assert sink["first_token"].item() == 1.0 and sink["induction"].item() == 0.0
    assert induction["induction"].item() == 1.0 and induction["previous_token"].item() < 0.5


def test_repeated_random_tokens_repeat_and_are_seeded():
    ids = repeated_random_tokens(n_tokens=7, batch=3, seed=4)
    assert ids.shape == (3, 15) and (ids[:, 0] == 50256).all()
    assert torch.equal(ids[:, 1:8], ids[:, 8:])
    assert torch.equal(ids, repeated_random_tokens(n_tokens=7, batch=3, seed=4))
    assert not torch.equal(ids, repeated_random_tokens(n_tokens=7, batch=3, seed=5))


def test_head_scores_grid_and_pictures(model):
    scores = head_scores(model, n_tokens=10, batch=2)
    assert list(scores) == ["previous_token", "first_token", "induction"]
    assert all(s.shape == (3, 4) and ((s >= 0) & (s <= 1)).all() for s in scores.values())
    assert model.training
    layer, head = strongest_head(scores["induction"])
    assert scores["induction"][layer, head] == scores["induction"].max()
    with pytest.raises(ValueError, match="context length"):
        head_scores(model, n_tokens=40)
    first, second = copy_losses(model, n_tokens=10, batch=2)
    assert first > 0 and second > 0
    fig = plot_head_scores(scores)
    assert len(fig.axes) == 3
    ax = plot_logit_lens(logit_lens(model, IDS))
    assert len(ax.texts) == 4 * 10


def test_token_probability_explorer_shows_candidates_surprise_and_errors(model):
    from gptbook.ui.explorer import TokenProbabilityExplorer, surprise_color

    explorer = TokenProbabilityExplorer(model, text="Once upon a time, there was a cat.", k=3)
    n = len(explorer.surprise.tokens)
    assert explorer.position.max == n - 1 and explorer.position.value == n - 2
    assert explorer.text_view.value.count("<span") == n
    explorer.position.value = 2
    assert "(position 2)" in explorer.top_view.value and explorer.top_view.value.count("<tr>") == 3
    loss = float(explorer.surprise.losses[2])
    assert f"loss {loss:.2f}" in explorer.top_view.value  # the loss of the token that really comes next
    explorer.text = ""
    assert "empty" in explorer.error.value and explorer.top_view.value == ""
    explorer.text = "The dog"
    assert explorer.error.value == "" and explorer.position.max == 1
    assert surprise_color(0.0) == "rgb(255,255,255)" and surprise_color(100.0) == "rgb(255,64,64)"
    assert model.training
