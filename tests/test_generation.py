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


def test_stops_at_end_of_text_and_pads_finished_rows():
    torch.manual_seed(0)
    model = GPTModel(MINI_CONFIG).eval()
    with torch.no_grad():
        model.out_head.weight.zero_()
        model.out_head.weight[50256] = 1.0  # every position now prefers <|endoftext|> ... unless logits tie
        model.final_norm.shift.fill_(1.0)
    out = generate(model, prompt(batch=2), 10, eos_id=50256)
    assert out.shape == (2, 6) and out[:, -1].tolist() == [50256, 50256]


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


def test_bfloat16_model_generates(mini_model):
    out = generate(mini_model.to(torch.bfloat16), prompt(), 5)
    assert out.shape == (1, 10) and out.dtype == torch.long


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
