"""The fast inference path of gptbook.prepack: the same results as the readable model, and nothing
about the model changes."""

import contextlib
import os
from unittest import mock

import pytest
import torch

from gptbook import GPTModel, TransformerBlock, generate
from gptbook.prepack import FP32_KERNELS, _onednn_linear_available, prepacked_linears, prepacking_available

from conftest import MINI_CONFIG

QKV_BIAS_CONFIG = {**MINI_CONFIG, "qkv_bias": True}


def require(available: bool, message: str) -> None:
    """Skip when a kernel is missing, except under CI, where a missing kernel is an error."""
    if available:
        return
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{message} (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(message)


def needs_kernel(kernel):
    if kernel == "onednn":
        require(_onednn_linear_available(), "no oneDNN linear kernels in this PyTorch")


def model_in(dtype, cfg=QKV_BIAS_CONFIG):
    """A small model in ``dtype`` (bf16 needs oneDNN's bf16 kernels: skipped, or failed under CI)."""
    if dtype == torch.bfloat16:
        if torch.backends.cpu.get_cpu_capability() in ("DEFAULT", "NO AVX", "AVX2"):  # oneDNN's bf16 needs AVX-512
            pytest.skip("this CPU has no AVX-512, so oneDNN has no bf16 kernels for it (a fact of the hardware)")
        require(prepacking_available(), "no oneDNN bf16 on this CPU/PyTorch")
    torch.manual_seed(0)
    return GPTModel(cfg).eval().to(dtype)


def ids(n=7, batch=2):
    return torch.randint(0, MINI_CONFIG["vocab_size"], (batch, n), generator=torch.Generator().manual_seed(1))


def patched(model):
    return [name for name, m in model.named_modules() if "forward" in vars(m)]


def plain_generate(model, prompt, n, **options):
    """generate without the fast path: the readable model's forward at every step."""
    with mock.patch("gptbook.generation.prepacked_linears", lambda model: contextlib.nullcontext(model)):
        return generate(model, prompt, n, **options)


def close_fp32(a, b):
    return torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


# --- float32: the path every learner's generate takes ------------------------------------------

@pytest.mark.parametrize("kernel", FP32_KERNELS)
@pytest.mark.parametrize("cfg", [MINI_CONFIG, QKV_BIAS_CONFIG], ids=["no qkv bias", "qkv bias"])
def test_fp32_fast_logits_equal_the_readable_model(cfg, kernel):
    needs_kernel(kernel)
    model = model_in(torch.float32, cfg)
    with torch.inference_mode():
        plain = model(ids())
        with prepacked_linears(model, fp32=kernel):
            assert patched(model), "the fp32 model should run the fast path inside the block"
            fast = model(ids())
    assert fast.shape == plain.shape == (2, 7, MINI_CONFIG["vocab_size"])
    assert close_fp32(fast, plain)


@pytest.mark.parametrize("kernel", FP32_KERNELS)
def test_fp32_fast_path_with_a_cache_equals_the_readable_model(kernel):
    """Prefill, several new tokens into a non-empty cache, then one: every case of the attention."""
    needs_kernel(kernel)
    model = model_in(torch.float32)
    tokens = ids(12)
    with torch.inference_mode():
        plain_cache, fast_cache = model.new_kv_cache(), model.new_kv_cache()
        with prepacked_linears(model, fp32=kernel):
            fast = [model(tokens[:, a:b], kv_cache=fast_cache) for a, b in ((0, 5), (5, 11), (11, 12))]
        plain = [model(tokens[:, a:b], kv_cache=plain_cache) for a, b in ((0, 5), (5, 11), (11, 12))]
        whole = model(tokens)
    for f, p in zip(fast, plain):
        assert close_fp32(f, p)
    assert close_fp32(torch.cat(fast, dim=1), whole)
    assert close_fp32(fast_cache.layers[1].keys[:, :, :12], plain_cache.layers[1].keys[:, :, :12])


def test_fp32_mkl_keeps_transposed_copies_of_the_wide_matrices_only():
    """What ``prepacked_bytes`` reports is what is kept: the fused query/key/value weights and bias, and
    the first feed-forward layer and the output head stored (in, out); nothing for the square or narrow ones."""
    from gptbook import prepack

    model = model_in(torch.float32)
    d, vocab, layers = model.cfg["emb_dim"], model.cfg["vocab_size"], model.cfg["n_layers"]
    with torch.inference_mode(), prepacked_linears(model, fp32="mkl"):
        model(ids())
    block = model.trf_blocks[0]
    assert prepack._PACKED[block.att][2].shape == (d, 3 * d)  # (in, out)
    assert prepack._PACKED[block.ff.layers[0]][2].shape == (d, 4 * d)
    assert prepack._PACKED[block.ff.layers[2]][2] is not None and block.ff.layers[2] in prepack._PACKED
    assert prepack._PACKED[block.ff.layers[2]][2].data_ptr() == block.ff.layers[2].weight.data_ptr()  # no copy
    assert prepack._PACKED[model.out_head][2].shape == (d, vocab)
    per_block = 4 * (3 * d * d + 3 * d) + 4 * (4 * d * d)
    assert prepack.prepacked_bytes(model) == layers * per_block + 4 * vocab * d


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no cache"])
def test_fp32_generate_chooses_the_same_greedy_tokens_as_the_readable_model(use_cache):
    model = model_in(torch.float32, {**QKV_BIAS_CONFIG, "context_length": 16})
    prompt = ids(5)
    fast = generate(model, prompt, 20, use_cache=use_cache)  # 25 tokens: past the context of 16
    assert patched(model) == []  # generate leaves the model as it found it
    assert torch.equal(fast, plain_generate(model, prompt, 20, use_cache=use_cache))


def test_fp32_sampling_draws_the_same_tokens_as_the_readable_model():
    model = model_in(torch.float32)
    options = dict(temperature=1.0, top_k=50, seed=7)
    assert torch.equal(generate(model, ids(4), 15, **options), plain_generate(model, ids(4), 15, **options))


# --- both dtypes: the model is left exactly as it was ------------------------------------------

DTYPES = [pytest.param(torch.float32, id="fp32"), pytest.param(torch.bfloat16, id="bf16")]


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_model_is_left_exactly_as_it_was(dtype):
    model = model_in(dtype)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    parameters = [(name, p, p.data_ptr()) for name, p in model.named_parameters()]
    with torch.inference_mode(), prepacked_linears(model):
        model(ids())
    assert patched(model) == []  # every module has its class's forward again
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert [(name, p, p.data_ptr()) for name, p in model.named_parameters()] == parameters


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_weight_changed_in_place_inside_the_block_is_used(dtype):
    """As an optimizer step or a learner's experiment would, between two calls in one block."""
    model = model_in(dtype)
    tolerance = 1e-4 if dtype == torch.float32 else 0.05
    with torch.inference_mode(), prepacked_linears(model):
        first = model(ids()).float()
        with torch.no_grad():
            model.trf_blocks[0].att.W_value.weight.mul_(3)  # fused with query and key
            model.trf_blocks[1].ff.layers[0].bias.add_(1)  # fused with GELU
            model.out_head.weight.mul_(2)
        changed = model(ids()).float()
    with torch.inference_mode():
        plain = model(ids()).float()  # the readable model with the changed weights
    assert not torch.allclose(changed, first, atol=0.1)
    assert torch.allclose(changed, plain, atol=tolerance * plain.abs().max().item())


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_inside_the_block_takes_the_ordinary_path_with_gradients(dtype):
    model = model_in(dtype).train()
    with prepacked_linears(model):
        logits = model(ids())  # gradients are on here
    assert logits.requires_grad
    logits.float().sum().backward()
    assert model.trf_blocks[0].att.W_query.weight.grad is not None


def test_another_thread_runs_the_ordinary_forward_while_a_generator_is_open():
    """A widget keeps a generator (and so the fast path) open in a background thread while the kernel uses the
    same model: the kernel's calls must take the readable path, and the generator keeps its own."""
    import threading

    from gptbook import generate_stream

    model = model_in(torch.float32)
    calls = []
    model.trf_blocks[0].att.register_forward_hook(lambda *_: calls.append(threading.get_ident()))
    stream = generate_stream(model, ids(4), max_new_tokens=5)
    next(stream)  # the fast path is now installed, owned by this thread
    assert calls == []  # the generator's own steps do not go through the readable attention
    other = {}

    def elsewhere():
        with torch.no_grad():
            other["logits"] = model(ids())
        other["thread"] = threading.get_ident()

    worker = threading.Thread(target=elsewhere)
    worker.start()
    worker.join()
    assert calls == [other["thread"]]  # the readable forward ran, in the other thread
    rest = list(stream)
    assert len(rest) == 4 and calls == [other["thread"]]  # the generator went on on its fast path
    assert patched(model) == []  # and every module has its own forward back
    with torch.no_grad():
        assert torch.equal(other["logits"], model(ids()))  # bit for bit the readable model's result


def test_attention_weights_inside_the_block_are_the_ordinary_ones():
    model = model_in(torch.float32)
    with torch.inference_mode():
        _, plain = model(ids(), return_attention=True)
        with prepacked_linears(model):
            _, fast = model(ids(), return_attention=True)
    assert all(torch.equal(f, p) for f, p in zip(fast, plain))


def test_a_learners_own_block_runs_its_own_forward():
    """A modified block (here: no shortcut around the feed-forward) must not be replaced by the
    fast path's copy of the original computation."""

    class NoShortcutBlock(TransformerBlock):
        def forward(self, x, kv_cache=None, return_attention=False):
            x = x + self.att(self.norm1(x), kv_cache=kv_cache)
            return self.ff(self.norm2(x))

    model = model_in(torch.float32)
    torch.manual_seed(1)
    model.trf_blocks[1] = NoShortcutBlock(model.cfg).eval()
    assert torch.equal(generate(model, ids(4), 6), plain_generate(model, ids(4), 6))


def test_a_learners_own_linear_layer_runs_its_own_forward():
    class HalvedLinear(torch.nn.Linear):  # e.g. an adapter a learner adds to the output head
        def forward(self, x):
            return super().forward(x) / 2

    model = model_in(torch.float32)
    head = HalvedLinear(MINI_CONFIG["emb_dim"], MINI_CONFIG["vocab_size"], bias=False)
    head.weight = model.out_head.weight
    model.out_head = head
    with torch.inference_mode():
        plain = model(ids())
        with prepacked_linears(model):
            fast = model(ids())
    assert close_fp32(fast, plain)


def test_unknown_fp32_kernel_is_refused():
    with pytest.raises(ValueError, match="onednn"):
        with prepacked_linears(model_in(torch.float32), fp32="fastest"):
            pass


# --- bf16 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [MINI_CONFIG, QKV_BIAS_CONFIG], ids=["no qkv bias", "qkv bias"])
def test_prepacked_bf16_logits_equal_the_ordinary_bf16_logits_up_to_rounding(cfg):
    model = model_in(torch.bfloat16, cfg)
    with torch.inference_mode():
        plain = model(ids()).float()
        with prepacked_linears(model):
            assert patched(model), "the bf16 model's layers should run prepacked inside the block"
            packed = model(ids()).float()
    assert packed.shape == plain.shape == (2, 7, MINI_CONFIG["vocab_size"])
    assert torch.allclose(packed, plain, atol=0.05 * plain.abs().max().item())


def test_a_changed_bf16_weight_is_packed_again_for_the_next_block():
    model = model_in(torch.bfloat16)
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


def test_bf16_generation_matches_the_ordinary_bf16_path():
    """The packed kernels round differently, so compare the logits of what generate produced
    with an unpacked forward pass instead of demanding identical tokens from random weights."""
    model = model_in(torch.bfloat16)
    out = generate(model, ids(4, batch=1), 8)
    assert patched(model) == []  # generate leaves the model as it found it
    with torch.inference_mode():
        plain = model(out[:, :-1]).float()  # the ordinary path on the very same tokens
    chosen = plain[0, 3:].gather(-1, out[0, 4:, None]).squeeze(-1)
    best = plain[0, 3:].max(-1).values
    assert torch.all(best - chosen <= 0.05 * plain.abs().max()), "each greedy token should be (nearly) the argmax"


@pytest.mark.parametrize("dtype", DTYPES)
def test_packed_copies_can_be_released_and_are_rebuilt(dtype):
    from gptbook import prepack

    model = model_in(dtype)
    generate(model, ids(4, batch=1), 2)
    assert prepack.prepacked_bytes(model) > 0  # at least the fused query/key/value weights
    prepack.release_prepacked(model)
    assert prepack.prepacked_bytes(model) == 0
    assert not any(m in prepack._PACKED for m in model.modules())
    generate(model, ids(4, batch=1), 2)
    assert prepack.prepacked_bytes(model) > 0
