"""bf16 generation with prepacked oneDNN weights: same results, nothing about the model changes."""

import pytest
import torch

from gptbook import GPTModel, generate
from gptbook.prepack import prepacked_linears, prepacking_available

from conftest import MINI_CONFIG

needs_prepacking = pytest.mark.skipif(not prepacking_available(), reason="no oneDNN bf16 on this CPU/PyTorch")

QKV_BIAS_CONFIG = {**MINI_CONFIG, "qkv_bias": True}


def bf16_model(cfg=QKV_BIAS_CONFIG):
    torch.manual_seed(0)
    return GPTModel(cfg).eval().to(torch.bfloat16)


def ids(n=7, batch=2):
    return torch.randint(0, MINI_CONFIG["vocab_size"], (batch, n), generator=torch.Generator().manual_seed(1))


def patched(model):
    return [name for name, m in model.named_modules() if "forward" in vars(m)]


@needs_prepacking
@pytest.mark.parametrize("cfg", [MINI_CONFIG, QKV_BIAS_CONFIG], ids=["no qkv bias", "qkv bias"])
def test_prepacked_logits_equal_the_ordinary_bf16_logits_up_to_rounding(cfg):
    model = bf16_model(cfg)
    with torch.inference_mode():
        plain = model(ids()).float()
        with prepacked_linears(model):
            assert patched(model), "the bf16 model's layers should run prepacked inside the block"
            packed = model(ids()).float()
    assert packed.shape == plain.shape == (2, 7, MINI_CONFIG["vocab_size"])
    assert torch.allclose(packed, plain, atol=0.05 * plain.abs().max().item())


@needs_prepacking
def test_the_model_is_left_exactly_as_it_was():
    model = bf16_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.inference_mode(), prepacked_linears(model):
        model(ids())
    assert patched(model) == []
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


@needs_prepacking
def test_a_changed_weight_is_packed_again():
    model = bf16_model()
    with torch.inference_mode(), prepacked_linears(model):
        first = model(ids())
    with torch.no_grad():
        model.out_head.weight.mul_(2)  # in place, as an optimizer step would
    with torch.inference_mode():
        plain = model(ids())
        with prepacked_linears(model):
            again = model(ids())
    assert not torch.allclose(again.float(), first.float())
    assert torch.allclose(again.float(), plain.float(), atol=0.05 * plain.abs().max().item())


@needs_prepacking
def test_training_inside_the_block_takes_the_ordinary_path_with_gradients():
    model = bf16_model()
    with prepacked_linears(model):
        logits = model(ids())  # gradients are on here
    assert logits.requires_grad
    logits.float().sum().backward()
    assert model.trf_blocks[0].att.W_query.weight.grad is not None


def test_float32_models_are_not_touched(mini_model):
    with torch.inference_mode(), prepacked_linears(mini_model):
        assert patched(mini_model) == []
        mini_model(ids())


@needs_prepacking
def test_bf16_generation_matches_the_ordinary_bf16_path():
    """The packed kernels round differently, so compare the logits of what generate produced
    with an unpacked forward pass instead of demanding identical tokens from random weights."""
    model = bf16_model()
    out = generate(model, ids(4, batch=1), 8)
    assert patched(model) == []  # generate leaves the model as it found it
    with torch.inference_mode():
        plain = model(out[:, :-1]).float()  # the ordinary path on the very same tokens
    chosen = plain[0, 3:].gather(-1, out[0, 4:, None]).squeeze(-1)
    best = plain[0, 3:].max(-1).values
    assert torch.all(best - chosen <= 0.05 * plain.abs().max()), "each greedy token should be (nearly) the argmax"


@needs_prepacking
def test_packed_copies_can_be_released_and_are_rebuilt():
    from gptbook import prepack

    model = bf16_model()
    generate(model, ids(4, batch=1), 2)
    assert any(m in prepack._PACKED for m in model.modules())
    prepack.release_prepacked(model)
    assert not any(m in prepack._PACKED for m in model.modules())
    generate(model, ids(4, batch=1), 2)
    assert any(m in prepack._PACKED for m in model.modules())
