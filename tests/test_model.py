"""The architecture: the classic numbers, causality, both attention paths, and clear errors."""

import pytest
import torch

from conftest import MINI_CONFIG
from gptbook import (
    GELU, GPT2_CONFIGS, GPT_CONFIG_124M, GPT_CONFIG_TINY, FeedForward, GPTModel, LayerNorm, MultiHeadAttention,
    TransformerBlock, count_parameters, generate_text_simple, get_tokenizer, parameter_breakdown,
    text_to_token_ids, token_ids_to_text,
)


def test_seed_123_continues_hello_i_am_as_the_book(model_124m, tokenizer):
    idx = text_to_token_ids("Hello, I am", tokenizer)
    out = generate_text_simple(model_124m, idx, max_new_tokens=6, context_size=1024)
    assert out[0, 4:].tolist() == [27018, 24086, 47843, 30961, 42348, 7267]
    assert token_ids_to_text(out, tokenizer) == "Hello, I am Featureiman Byeswickattribute argue"


def test_batch_of_two_texts_gives_logits_per_position(model_124m, tokenizer):
    batch = torch.cat([text_to_token_ids(t, tokenizer) for t in ("Every effort moves you", "Every day holds a")])
    assert batch.shape == (2, 4)
    with torch.no_grad():
        logits = model_124m(batch)
    assert logits.shape == (2, 4, 50257)


def test_module_and_state_dict_names_are_the_classic_ones(model_124m):
    names = list(model_124m.state_dict())
    assert names[:2] == ["tok_emb.weight", "pos_emb.weight"]
    assert names[-3:] == ["final_norm.scale", "final_norm.shift", "out_head.weight"]
    block = [n.removeprefix("trf_blocks.0.") for n in names if n.startswith("trf_blocks.0.")]
    assert block == [
        "att.W_query.weight", "att.W_key.weight", "att.W_value.weight", "att.out_proj.weight", "att.out_proj.bias",
        "ff.layers.0.weight", "ff.layers.0.bias", "ff.layers.2.weight", "ff.layers.2.bias",
        "norm1.scale", "norm1.shift", "norm2.scale", "norm2.shift",
    ]


def test_causal_mask_is_not_saved_in_checkpoints(model_124m):
    assert not any("mask" in name for name in model_124m.state_dict())


def test_parameter_count_is_163_million_and_matches_the_breakdown(model_124m):
    parts = parameter_breakdown(GPT_CONFIG_124M)
    assert count_parameters(model_124m) == parts["total"] == 163_009_536
    assert parts["token_embedding"] == 38_597_376 and parts["positional_embedding"] == 786_432
    assert parts["attention_per_block"] == 2_360_064 and parts["feed_forward_per_block"] == 4_722_432
    assert parts["norms_per_block"] == 3_072 and parts["per_block"] == 7_085_568
    assert parts["all_blocks"] == 85_026_816 and parts["final_norm"] == 1_536 and parts["output_head"] == 38_597_376
    assert parts["total_tied"] == 124_412_160
    assert parts["total_tied_with_qkv_bias"] == 124_439_808
    block = model_124m.trf_blocks[0]
    assert sum(p.numel() for p in block.att.parameters()) == parts["attention_per_block"]
    assert sum(p.numel() for p in block.ff.parameters()) == parts["feed_forward_per_block"]


def test_weight_tying_shares_one_matrix_and_counts_it_once():
    cfg = {**GPT2_CONFIGS["gpt2-small (124M)"], "context_length": 64, "n_layers": 1}
    model = GPTModel(cfg)
    assert model.out_head.weight is model.tok_emb.weight
    assert count_parameters(model) == parameter_breakdown(cfg)["trainable"]


@pytest.mark.parametrize("cfg", [MINI_CONFIG, {**MINI_CONFIG, "qkv_bias": True, "tie_weights": True}])
def test_breakdown_matches_real_models_of_other_sizes(cfg):
    assert count_parameters(GPTModel(cfg)) == parameter_breakdown(cfg)["trainable"]


def test_later_tokens_never_change_earlier_logits(mini_model):
    torch.manual_seed(1)
    a = torch.randint(0, 50257, (1, 12))
    b = a.clone()
    b[0, 7:] = torch.randint(0, 50257, (5,))
    with torch.no_grad():
        la, lb = mini_model(a), mini_model(b)
    assert torch.equal(la[:, :7], lb[:, :7])
    assert not torch.allclose(la[:, 7:], lb[:, 7:])


def test_fast_attention_equals_the_explicit_one(mini_model):
    x = torch.randint(0, 50257, (2, 20))
    with torch.no_grad():
        fast = mini_model(x)
        explicit, attentions = mini_model(x, return_attention=True)
    torch.testing.assert_close(fast, explicit, atol=1e-5, rtol=1e-5)
    assert len(attentions) == MINI_CONFIG["n_layers"]
    weights = attentions[0]
    assert weights.shape == (2, MINI_CONFIG["n_heads"], 20, 20)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, MINI_CONFIG["n_heads"], 20))
    assert torch.all(weights.triu(diagonal=1) == 0)  # no token looks at the future


def test_eval_mode_is_deterministic_and_train_mode_uses_dropout(mini_model):
    x = torch.randint(0, 50257, (1, 10))
    with torch.no_grad():
        assert torch.equal(mini_model(x), mini_model(x))
        mini_model.train()
        assert not torch.equal(mini_model(x), mini_model(x))


def test_too_many_tokens_raise_a_clear_error(mini_model):
    with pytest.raises(ValueError, match="context_length is 32"):
        mini_model(torch.zeros(1, 33, dtype=torch.long))


def test_empty_input_and_bad_ids_raise_clear_errors(mini_model):
    with pytest.raises(ValueError, match="empty"):
        mini_model(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 50256\]"):
        mini_model(torch.tensor([[50257]]))
    with pytest.raises(ValueError, match="unsqueeze"):
        mini_model(torch.zeros(5, dtype=torch.long))


def test_gelu_is_the_tanh_approximation():
    x = torch.linspace(-6, 6, 1001)
    torch.testing.assert_close(GELU()(x), GELU.formula(x))
    exact = torch.nn.functional.gelu(x)  # the erf form differs a little
    assert 0 < (GELU()(x) - exact).abs().max() < 1e-3


def test_layer_norm_gives_mean_0_variance_1_with_biased_variance():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8) * 3 + 2
    ln = LayerNorm(8)
    out = ln(x)
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 5), atol=1e-3, rtol=0)
    by_hand = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-5)
    torch.testing.assert_close(out, by_hand)


def test_feed_forward_expands_four_times_and_keeps_the_shape():
    ff = FeedForward(MINI_CONFIG)
    assert ff.layers[0].out_features == 4 * MINI_CONFIG["emb_dim"]
    assert ff(torch.randn(2, 3, MINI_CONFIG["emb_dim"])).shape == (2, 3, MINI_CONFIG["emb_dim"])


def test_block_keeps_the_shape_and_has_shortcuts():
    block = TransformerBlock(MINI_CONFIG).eval()
    x = torch.randn(2, 6, MINI_CONFIG["emb_dim"])
    assert block(x).shape == x.shape
    for p in block.parameters():
        torch.nn.init.zeros_(p)  # with every weight zero, the shortcuts pass x through unchanged
    torch.testing.assert_close(block(x), x)


def test_multi_head_attention_classic_signature():
    mha = MultiHeadAttention(d_in=3, d_out=4, context_length=6, dropout=0.0, num_heads=2)
    assert mha(torch.randn(2, 6, 3)).shape == (2, 6, 4)
    assert mha.W_query.bias is None and mha.W_key.bias is None and mha.W_value.bias is None  # the book's default
    assert MultiHeadAttention(3, 4, 6, 0.0, 2, qkv_bias=True).W_key.bias.shape == (4,)
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(d_in=3, d_out=5, context_length=6, dropout=0.0, num_heads=2)


def test_the_first_and_last_token_ids_are_valid_and_their_neighbours_are_not(mini_model):
    with torch.no_grad():
        assert mini_model(torch.tensor([[0, 50256]])).shape == (1, 2, 50257)
    for bad in (-1, 50257):
        with pytest.raises(ValueError, match=r"token IDs must lie in \[0, 50256\]"):
            mini_model(torch.tensor([[5, bad]]))


def test_layer_norm_uses_gpt2s_epsilon_where_it_matters():
    from gptbook.layers import LayerNorm

    norm = LayerNorm(4)
    x = torch.tensor([[1.0, 1.004, 0.996, 1.0]])  # variance 8e-6: comparable to eps
    centred = x - x.mean(-1, keepdim=True)
    expected = centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + 1e-5)  # biased variance, eps 1e-5
    torch.testing.assert_close(norm(x), expected, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(norm(x), centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + 2e-5), atol=1e-3)


# -- one forward pass: hidden states, then the head ----------------------------------------------

def test_forward_is_the_head_on_the_hidden_states(mini_model):
    ids = torch.randint(0, 50257, (2, 5), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        hidden = mini_model.hidden_states(ids)
        assert hidden.shape == (2, 5, mini_model.cfg["emb_dim"])
        torch.testing.assert_close(mini_model.out_head(hidden), mini_model(ids), rtol=0, atol=0)
        _, with_weights = mini_model.hidden_states(ids, return_attention=True)
    assert len(with_weights) == mini_model.cfg["n_layers"]


def test_the_residual_stream_is_collected_on_the_way(mini_model):
    """What the logit lens reads: the embeddings, then each block's output; the last one, normalised, is the
    hidden state the head reads."""
    ids = torch.randint(0, 50257, (1, 6), generator=torch.Generator().manual_seed(1))
    streams = []
    with torch.no_grad():
        hidden = mini_model.hidden_states(ids, residuals=streams)
        x = mini_model.tok_emb(ids) + mini_model.pos_emb(torch.arange(6))
        expected = [x]
        for block in mini_model.trf_blocks:
            x = block(x)
            expected.append(x)
    assert len(streams) == mini_model.cfg["n_layers"] + 1
    for got, want in zip(streams, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(mini_model.final_norm(streams[-1]), hidden, rtol=0, atol=0)


def test_the_layers_that_end_a_residual_branch_are_marked_by_module(mini_model):
    """GPT-2's scaled initialisation finds these by the mark, not by their names."""
    from gptbook.layers import is_residual_output

    marked = sorted(name for name, m in mini_model.named_modules() if is_residual_output(m))
    n = mini_model.cfg["n_layers"]
    assert marked == sorted([f"trf_blocks.{i}.att.out_proj" for i in range(n)]
                            + [f"trf_blocks.{i}.ff.layers.2" for i in range(n)])


def test_only_gptbooks_own_forward_lets_callers_run_the_head_on_some_positions(mini_model):
    """The chunked loss and the probes run ``out_head(hidden_states(...))`` on the positions they need only when
    that is what ``model(ids)`` computes; a model class of your own gets its ``forward`` called."""
    from gptbook.model import reads_out_head

    class OwnForward(GPTModel):
        def forward(self, in_idx, **kwargs):
            return super().forward(in_idx, **kwargs) * 2

    class OwnHiddenStates(GPTModel):
        def hidden_states(self, in_idx, **kwargs):
            return super().hidden_states(in_idx, **kwargs)

    assert reads_out_head(mini_model)
    assert not reads_out_head(OwnForward(mini_model.cfg)) and not reads_out_head(OwnHiddenStates(mini_model.cfg))
    with_bias = GPTModel(mini_model.cfg)
    with_bias.out_head = torch.nn.Linear(mini_model.cfg["emb_dim"], mini_model.cfg["vocab_size"], bias=True)
    assert not reads_out_head(with_bias) and not reads_out_head(torch.nn.Linear(2, 2))


# -- dropout drawn from a private generator ------------------------------------------------------

def test_dropout_of_rate_one_drops_everything_and_never_divides_by_zero():
    from gptbook.layers import dropout_noise

    x = torch.ones(3, 4)
    assert torch.equal(dropout_noise(x, 1.0, torch.Generator().manual_seed(0)), torch.zeros(3, 4))  # not 0 / 0
    half = dropout_noise(x, 0.5, torch.Generator().manual_seed(0))
    assert set(half.unique().tolist()) <= {0.0, 2.0}


def test_dropout_from_a_private_generator_equals_torchs_dropout_bit_for_bit():
    """Trainer's dropout (gptbook.layers.Dropout with a generator) draws the masks nn.Dropout and
    scaled_dot_product_attention draw from an equally seeded global generator: same losses, same gradients."""
    from gptbook.layers import use_dropout_generator

    torch.manual_seed(0)
    model = GPTModel({**GPT_CONFIG_TINY, "emb_dim": 32, "n_heads": 2, "n_layers": 2, "context_length": 16}).train()
    x = torch.randint(0, 1000, (2, 16))

    def loss_and_grads():
        model.zero_grad()
        loss = model(x).logsumexp(-1).mean()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    torch.manual_seed(99)
    global_loss, global_grads = loss_and_grads()
    generator = torch.Generator().manual_seed(99)
    assert use_dropout_generator(model, generator) == 1 + 2 * 2  # the embeddings; per block attention and shortcut
    state = torch.get_rng_state()
    private_loss, private_grads = loss_and_grads()
    assert torch.equal(torch.get_rng_state(), state), "the global generator was used"
    assert torch.equal(private_loss, global_loss)
    assert all(torch.equal(a, b) for a, b in zip(private_grads, global_grads))
    use_dropout_generator(model, None)
    with pytest.raises(TypeError, match="plain nn.Dropout"):
        use_dropout_generator(torch.nn.Sequential(torch.nn.Dropout(0.1)), generator)
    assert use_dropout_generator(torch.nn.Sequential(torch.nn.Dropout(0.0)), generator) == 0  # rate 0: nothing drawn
