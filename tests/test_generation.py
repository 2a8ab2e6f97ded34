"""Generation: the cache gives the same tokens, sampling is reproducible, bad options are refused."""

import pytest
import torch

from conftest import MINI_CONFIG
from gptbook import GPTModel, filter_logits, generate, generate_stream, generate_text_simple, text_to_token_ids


def prompt(n=5, batch=1, seed=0):
    return torch.randint(0, 50257, (batch, n), generator=torch.Generator().manual_seed(seed))


def test_greedy_generate_equals_generate_text_simple(mini_model):
    idx = prompt()
    assert torch.equal(generate(mini_model, idx, 12), generate_text_simple(mini_model, idx, 12, context_size=32))


def test_seed_123_book_continuation_through_generate(model_124m, tokenizer):
    out = generate(model_124m, text_to_token_ids("Hello, I am", tokenizer), 10)
    assert out[0, 4:].tolist() == [27018, 24086, 47843, 30961, 42348, 7267, 49706, 43231, 47062, 34657]


@pytest.mark.parametrize("options", [{}, {"temperature": 1.3, "top_k": 50, "seed": 7}, {"temperature": 0.8, "top_p": 0.9, "seed": 3}])
def test_kv_cache_gives_exactly_the_uncached_tokens(mini_model, options):
    idx = prompt(batch=2)
    cached = generate(mini_model, idx, 20, use_cache=True, **options)
    uncached = generate(mini_model, idx, 20, use_cache=False, **options)
    assert torch.equal(cached, uncached)


def test_cache_and_no_cache_agree_past_the_context_window(mini_model):
    idx = prompt(n=28)  # 28 + 12 tokens > context_length 32: the window slides
    assert torch.equal(generate(mini_model, idx, 12), generate(mini_model, idx, 12, use_cache=False))
    assert torch.equal(generate(mini_model, idx, 12), generate_text_simple(mini_model, idx, 12, 32))


def test_prompt_longer_than_the_context_is_cropped_from_the_left(mini_model):
    idx = prompt(n=50)
    out = generate(mini_model, idx, 3)
    assert out.shape == (1, 53) and torch.equal(out[:, :50], idx)
    assert torch.equal(out, generate_text_simple(mini_model, idx, 3, 32))


def test_sampling_is_reproducible_under_a_seed_and_varies_across_seeds(mini_model):
    idx = prompt()
    a = generate(mini_model, idx, 15, temperature=1.5, seed=42)
    assert torch.equal(a, generate(mini_model, idx, 15, temperature=1.5, seed=42))
    assert torch.equal(a, generate(mini_model, idx, 15, temperature=1.5, generator=torch.Generator().manual_seed(42)))
    assert not torch.equal(a, generate(mini_model, idx, 15, temperature=1.5, seed=43))


def test_stream_yields_the_same_tokens_one_at_a_time(mini_model):
    idx = prompt(batch=2)
    pieces = list(generate_stream(mini_model, idx, 8, temperature=1.0, seed=1))
    assert len(pieces) == 8 and all(p.shape == (2, 1) for p in pieces)
    assert torch.equal(torch.cat([idx, *pieces], dim=1), generate(mini_model, idx, 8, temperature=1.0, seed=1))


@pytest.mark.parametrize("use_cache", [True, False])
def test_rows_that_hit_end_of_text_at_different_steps_match_each_row_alone(mini_model, use_cache):
    idx = prompt(batch=4, seed=5)
    free = generate(mini_model, idx, 12, use_cache=use_cache)[:, 5:]  # no end-of-text: (4, 12)
    eos = int(free[0, 2])  # row 0 produces it at step 3 at the latest
    stops = [next((i + 1 for i, t in enumerate(row.tolist()) if t == eos), None) for row in free]
    assert len(set(stops)) > 1 and None in stops, stops  # rows finish at different steps; one never does

    out = generate(mini_model, idx, 12, eos_id=eos, use_cache=use_cache)
    assert out.shape[1] == 5 + 12  # a row that never finishes keeps the batch going
    for row, stop in zip(range(4), stops):
        alone = generate(mini_model, idx[row:row + 1], 12, eos_id=eos, use_cache=use_cache)
        n = alone.shape[1]
        assert n == 5 + (stop or 12) and alone[0, -1].item() == (eos if stop else free[row, -1].item())
        assert torch.equal(out[row, :n], alone[0])  # the same tokens as the row generated alone ...
        assert (out[row, n:] == eos).all()  # ... then padding with eos_id


def test_generation_stops_once_every_row_has_finished(mini_model):
    idx = prompt(batch=2, seed=5)
    free = generate(mini_model, idx, 12)[:, 5:]
    eos = int(free[0, 1])
    last = max(next(i + 1 for i, t in enumerate(row.tolist()) if t == eos) if eos in row else 99 for row in free)
    out = generate(mini_model, idx, 12, eos_id=eos)
    assert out.shape[1] == 5 + min(last, 12)


def test_top_k_and_top_p_keep_only_the_most_likely_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.8)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.81)).tolist() == [[False, False, False, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.1)).tolist() == [[False, True, True, True]]
    assert not torch.isinf(filter_logits(logits, top_p=1.0)).any()


def test_temperature_zero_is_greedy_even_with_top_k(mini_model):
    idx = prompt()
    assert torch.equal(generate(mini_model, idx, 6, temperature=0.0, top_k=5), generate(mini_model, idx, 6))


def test_bfloat16_model_generates_what_its_fp32_twin_mostly_agrees_with():
    torch.manual_seed(0)
    model = GPTModel({**MINI_CONFIG, "n_layers": 1}).eval()
    with torch.no_grad():  # a confident model, so that bf16 rounding rarely changes the argmax
        model.out_head.weight.mul_(8.0)
    idx = prompt(batch=3, seed=2)
    with torch.no_grad():
        ref_logits = model(idx)
        bf16 = model.to(torch.bfloat16)
        logits = bf16(idx)
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), ref_logits, atol=0.1 * ref_logits.abs().max().item(), rtol=0)
    agree = (logits.float().argmax(-1) == ref_logits.argmax(-1)).float().mean().item()
    assert agree > 0.8, agree
    out = generate(bf16, idx, 6)
    assert out.dtype == torch.long and out.shape == (3, 11) and torch.equal(out[:, :5], idx)
    assert torch.equal(out, generate(bf16, idx, 6, use_cache=False))  # the cache holds bf16 keys alike
    first = bf16(idx)[:, -1].float().argmax(-1)
    assert torch.equal(out[:, 5], first)  # the first new token is the bf16 model's own argmax


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"idx": torch.zeros(1, 0, dtype=torch.long)}, "prompt is empty"),
        ({"idx": torch.zeros(4, dtype=torch.long)}, "shape"),
        ({"max_new_tokens": -1}, "max_new_tokens"),
        ({"temperature": -0.5}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
    ],
)
def test_bad_options_raise_clear_errors(mini_model, kwargs, message):
    args = {"idx": prompt(), "max_new_tokens": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(mini_model, **args)


def test_zero_new_tokens_returns_the_prompt(mini_model):
    idx = prompt()
    assert torch.equal(generate(mini_model, idx, 0), idx)


def test_stream_can_hand_back_the_distribution_each_token_came_from(mini_model):
    idx = prompt()
    for token, probs in generate_stream(mini_model, idx, 4, top_k=3, return_probs=True):
        assert probs.shape == (1, 50257)
        torch.testing.assert_close(probs.sum(-1), torch.ones(1))
        assert (probs > 0).sum() == 3 and probs[0, token[0, 0]] == probs.max()  # greedy: the most likely


def test_top_level_generate_stays_the_function_after_the_command_line_is_imported():
    import gptbook
    import gptbook.cli  # noqa: F401

    assert gptbook.generate is generate and generate.__module__ == "gptbook.generation"


def test_a_context_size_beyond_the_models_is_capped_at_the_models_context(mini_model):
    """Asking for more context than the model has crops to the model's context (32) instead of failing."""
    idx = prompt(n=40)
    assert torch.equal(generate(mini_model, idx, 5, context_size=1000), generate(mini_model, idx, 5))
    assert torch.equal(generate(mini_model, idx, 5, context_size=1000),
                       generate_text_simple(mini_model, idx, 5, context_size=32))


def test_any_module_that_maps_ids_to_logits_can_generate(mini_model):
    """A learner's own model without a cache (no new_kv_cache, no cfg) works with the default options."""

    class Plain(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, ids):
            return self.inner(ids)

    idx = prompt(n=6)
    mine = generate(Plain(mini_model), idx, 6, context_size=32)
    assert torch.equal(mine, generate(mini_model, idx, 6))
    with pytest.raises(ValueError, match="context_size is required"):
        generate(Plain(mini_model), idx, 6)



# -- filter_logits -------------------------------------------------------------------------------

def kept(logits):
    return (~torch.isinf(logits)).tolist()


def test_top_p_on_batched_unsorted_rows_keeps_each_rows_own_nucleus():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3],   # nucleus 0.8: tokens 1 and 3
                          [0.3, 0.05, 0.5, 0.15],   # tokens 2 and 0
                          [0.15, 0.3, 0.05, 0.5]])  # tokens 3 and 1
    out = filter_logits(torch.log(probs), top_p=0.8)
    assert kept(out) == [[False, True, False, True], [True, False, True, False], [False, True, False, True]]
    torch.testing.assert_close(out[~torch.isinf(out)], torch.log(probs)[~torch.isinf(out)])  # kept ones unchanged
    out = filter_logits(torch.log(probs), top_k=3)
    assert kept(out) == [[False, True, True, True], [True, False, True, True], [True, True, False, True]]


def test_ties_top_k_keeps_every_tied_token_and_top_p_keeps_the_lower_ids():
    logits = torch.tensor([[1.0, 3.0, 2.0, 2.0, 0.0]])
    assert kept(filter_logits(logits, top_k=2)) == [[False, True, True, True, False]]
    flat = torch.zeros(2, 6)  # six equally likely tokens per row
    assert kept(filter_logits(flat, top_p=0.5)) == [[True, True, True, False, False, False]] * 2
    for _ in range(5):  # the same answer every time
        assert kept(filter_logits(torch.zeros(1, 1000), top_p=0.01)) == [[True] * 10 + [False] * 990]


def test_top_k_then_temperature_then_top_p_the_order_the_docstring_states():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.04, 0.01]])
    logits = torch.log(probs)
    out = filter_logits(logits, temperature=2.0, top_k=4, top_p=0.75)
    # top-k 4 drops token 4; temperature 2 flattens the rest to sqrt(p) / sum: 0.38, 0.29, 0.21, 0.11;
    # the tokens before token 2 cover 0.67 < 0.75, so it stays (top-p before the temperature would drop it).
    assert kept(out) == [[True, True, True, False, False]]
    torch.testing.assert_close(out[0, :3], logits[0, :3] / 2.0)
    assert kept(filter_logits(logits, temperature=1.0, top_k=4, top_p=0.75)) == [[True, True, False, False, False]]
    scaled = filter_logits(logits, temperature=0.5, top_k=2)
    torch.testing.assert_close(scaled[0, :2], logits[0, :2] / 0.5)  # temperature divides what stays


def test_sampling_draws_only_from_the_filtered_tokens(mini_model):
    idx = prompt(batch=3)
    for token, probs in generate_stream(mini_model, idx, 5, temperature=1.5, top_k=4, top_p=0.9, seed=0,
                                        return_probs=True):
        assert ((probs > 0).sum(-1) <= 4).all()
        assert (probs.gather(1, token) > 0).all()  # every token drawn had a non-zero probability


def test_top_k_of_one_makes_sampling_greedy(mini_model):
    """top_k=1 is the smallest allowed value: only the most likely token is left to draw."""
    idx = prompt(batch=2)
    sampled = generate(mini_model, idx, 10, temperature=1.5, top_k=1, seed=5)
    assert torch.equal(sampled, generate(mini_model, idx, 10))
    kept = filter_logits(torch.tensor([[0.5, 2.0, -1.0], [3.0, 1.0, 2.9]]), top_k=1)
    assert torch.isfinite(kept).tolist() == [[False, True, False], [True, False, False]]


def test_top_p_of_one_keeps_every_token_even_the_vanishingly_unlikely():
    """top_p=1 means no nucleus: even where the cumulative probability rounds to 1 early, nothing is dropped."""
    logits = torch.tensor([[100.0, 0.0, -100.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(filter_logits(logits, top_p=1.0), logits)
    assert torch.isinf(filter_logits(logits, top_p=0.999)).tolist()[0] == [False, True, True, True]


# -- the key/value cache -------------------------------------------------------------------------

def test_several_new_tokens_into_a_non_empty_cache_equal_the_full_forward(mini_model):
    ids = prompt(n=20, batch=2)
    with torch.no_grad():
        full, full_att = mini_model(ids, return_attention=True)
        cache = mini_model.new_kv_cache()
        first = mini_model(ids[:, :12], kv_cache=cache)
        more, att = mini_model(ids[:, 12:17], kv_cache=cache, return_attention=True)  # 5 tokens at once
        last = mini_model(ids[:, 17:], kv_cache=cache)
    assert cache.length == 20
    torch.testing.assert_close(first, full[:, :12], atol=1e-5, rtol=0)
    torch.testing.assert_close(more, full[:, 12:17], atol=1e-5, rtol=0)
    torch.testing.assert_close(last, full[:, 17:], atol=1e-5, rtol=0)
    for layer_att, layer_full in zip(att, full_att):
        assert layer_att.shape == (2, 4, 5, 17)  # (b, heads, new tokens, cached + new keys)
        torch.testing.assert_close(layer_att, layer_full[:, :, 12:17, :17], atol=1e-6, rtol=0)
        assert (layer_att[:, :, 0, 13:] == 0).all()  # the first new token does not see the later ones


def test_cache_with_a_context_size_smaller_than_the_models():
    torch.manual_seed(0)
    model = GPTModel(MINI_CONFIG).eval()
    idx = prompt(n=3, batch=2)
    for options in ({}, {"temperature": 1.0, "seed": 4}):
        cached = generate(model, idx, 14, context_size=8, use_cache=True, **options)
        assert torch.equal(cached, generate(model, idx, 14, context_size=8, use_cache=False, **options))
    assert torch.equal(generate(model, idx, 14, context_size=8), generate_text_simple(model, idx, 14, 8))
    assert not torch.equal(generate(model, idx, 14, context_size=8), generate(model, idx, 14))


def test_overflowing_the_cache_is_a_clear_error(mini_model):
    from gptbook.attention import LayerKVCache

    layer = LayerKVCache(capacity=4)
    layer.update(torch.zeros(1, 2, 3, 8), torch.zeros(1, 2, 3, 8))
    with pytest.raises(ValueError, match="at most 4 tokens"):
        layer.update(torch.zeros(1, 2, 2, 8), torch.zeros(1, 2, 2, 8))
    assert layer.length == 3  # nothing stored by the refused update
    cache = mini_model.new_kv_cache()
    with torch.no_grad():
        mini_model(prompt(n=30), kv_cache=cache)
        with pytest.raises(ValueError, match="context_length is 32"):
            mini_model(prompt(n=3), kv_cache=cache)


def test_a_one_block_model_generates_the_same_tokens_with_and_without_the_cache():
    """The cache's length comes from its only layer (a learner's n_layers=1 model must not fail)."""
    from gptbook.attention import KVCache

    torch.manual_seed(0)
    model = GPTModel({**MINI_CONFIG, "n_layers": 1}).eval()
    cache = model.new_kv_cache()
    assert cache.length == 0 and KVCache(n_layers=0, capacity=8).length == 0  # nothing seen yet
    model(prompt(n=4), kv_cache=cache)
    assert cache.length == 4
    idx = prompt(n=6)
    assert torch.equal(generate(model, idx, 8), generate(model, idx, 8, use_cache=False))
