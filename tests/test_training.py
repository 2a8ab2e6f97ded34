"""Losses, the classic training loop, the schedule, reproducibility, the Trainer and its resuming."""

import math

import matplotlib
import pytest
import torch
import torch.nn.functional as F

from gptbook import GPT_CONFIG_TINY, GPTModel
from gptbook.training.corpus import load_corpus
from gptbook.data import create_dataloader_v1
from gptbook.training import (
    TokenWindows, TrainConfig, Trainer, autocast_context, calc_loss_batch, calc_loss_loader, choose_device,
    chunked_cross_entropy, evaluate_model, generate_and_print_sample, hidden_states, lr_at_step, make_optimizer,
    UnusedTokens, model_loss, perplexity, plot_losses, supports_fast_loss, train_model_simple,
)

matplotlib.use("Agg")

SMALL = {"vocab_size": 50257, "context_length": 32, "emb_dim": 32, "n_heads": 4, "n_layers": 2,
         "drop_rate": 0.0, "qkv_bias": False}
TEXT = load_corpus("val")[:6000]  # a few stories: about 1,500 tokens


def batch(b=2, t=16, seed=1):
    ids = torch.randint(0, 50257, (b, t + 1), generator=torch.Generator().manual_seed(seed))
    return ids[:, :-1], ids[:, 1:]


@pytest.mark.parametrize("cfg,init", [({**GPT_CONFIG_TINY, "tie_weights": False}, False), (GPT_CONFIG_TINY, True)],
                         ids=["untied-default-init", "tied-gpt2-init"])
def test_fresh_model_loss_is_near_log_vocab(cfg, init, tokenizer):
    """An untrained model should be about uniformly unsure: loss ~ ln(50257) = 10.82.

    (PyTorch's default initialisation of a *tied* model starts far higher; notebook 08 shows
    why and ``init_weights_gpt2``, which ``Trainer`` applies, fixes it.)
    """
    from gptbook.training import init_weights_gpt2

    torch.manual_seed(123)
    model = GPTModel(cfg).eval()
    if init:
        init_weights_gpt2(model)
    loader = create_dataloader_v1(TEXT, batch_size=2, max_length=64, stride=64, shuffle=False, tokenizer=tokenizer)
    loss = calc_loss_loader(loader, model, "cpu", num_batches=2)
    assert abs(loss - math.log(50257)) < 1.0, loss


# -- the loss: the fused (chunked) head + cross-entropy and the classic one -----------------------

@pytest.mark.parametrize("tied", [False, True])
def test_fast_loss_equals_classic_loss_and_gradients(tied):
    torch.manual_seed(0)
    model = GPTModel({**SMALL, "tie_weights": tied})
    x, y = batch()
    with torch.no_grad():
        assert torch.allclose(model.out_head(hidden_states(model, x)), model(x), atol=1e-5)
    classic = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    classic.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    fast = model_loss(model, x, y, fast=True)
    fast.backward()
    assert fast.item() == pytest.approx(classic.item(), abs=1e-5)
    for g, p in zip(grads, model.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-6, rtol=1e-4)


def test_chunked_cross_entropy_matches_for_any_chunk_size():
    h = torch.randn(37, 8, requires_grad=True)
    w = torch.randn(50, 8, requires_grad=True)
    t = torch.randint(0, 50, (37,))
    ref = F.cross_entropy(h @ w.T, t)
    for chunk in (1, 5, 37, 100):
        assert chunked_cross_entropy(h, w, t, chunk_size=chunk).item() == pytest.approx(ref.item(), rel=1e-6)
        with torch.no_grad():  # evaluation takes a path of its own (the loss alone), chunk by chunk too
            assert chunked_cross_entropy(h, w, t, chunk_size=chunk).item() == pytest.approx(ref.item(), rel=1e-6)
    with pytest.raises(ValueError):
        chunked_cross_entropy(h, w, t[:5])


def test_chunked_loss_gradients_scale_with_what_comes_after_the_loss():
    """A loss that is scaled (or summed with others) afterwards passes its factor into both gradients."""
    torch.manual_seed(0)
    h0, w0, t = torch.randn(9, 8), torch.randn(20, 8), torch.randint(0, 20, (9,))
    grads = []
    for fused in (True, False):
        h, w = h0.clone().requires_grad_(), w0.clone().requires_grad_()
        loss = chunked_cross_entropy(h, w, t, chunk_size=4) if fused else F.cross_entropy(h @ w.T, t)
        (3.0 * loss).backward()
        grads.append((h.grad, w.grad))
    (fh, fw), (rh, rw) = grads
    torch.testing.assert_close(fh, rh, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fw, rw, atol=1e-6, rtol=1e-5)


def test_own_model_classes_get_the_classic_loss():
    class MyGPT(GPTModel):
        def forward(self, in_idx, kv_cache=None, return_attention=False):
            return super().forward(in_idx) * 0.5  # a learner's change that the fast path must not skip

    torch.manual_seed(0)
    model = MyGPT(SMALL)
    assert not supports_fast_loss(model) and supports_fast_loss(GPTModel(SMALL))
    x, y = batch()
    expected = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    assert calc_loss_batch(x, y, model, "cpu").item() == pytest.approx(expected.item(), abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chunked_loss_and_gradients_across_chunks_equal_cross_entropy(dtype):
    torch.manual_seed(0)
    h0, w0 = torch.randn(1100, 16), torch.randn(300, 16) * 0.5
    t = torch.randint(0, 300, (1100,))
    tol = dict(atol=1e-6, rtol=1e-4) if dtype == torch.float32 else dict(atol=2e-3, rtol=2e-2)
    results = []
    for fused in (True, False):
        h, w = h0.clone().requires_grad_(), w0.clone().requires_grad_()
        with autocast_context("cpu", dtype == torch.bfloat16):
            loss = chunked_cross_entropy(h, w, t) if fused else F.cross_entropy(h @ w.T, t)  # 512 rows a chunk: 3
        loss.backward()
        results.append((loss.float(), h.grad, w.grad))
    (fused_loss, fh, fw), (ref_loss, rh, rw) = results
    assert fh.dtype == rh.dtype == torch.float32 and fw.dtype == torch.float32
    torch.testing.assert_close(fused_loss, ref_loss, **tol)
    torch.testing.assert_close(fh, rh, **tol)
    torch.testing.assert_close(fw, rw, **tol)


@pytest.mark.slow  # several chunks of the full 50,257-row head
@pytest.mark.parametrize("autocast", [False, True])
def test_model_loss_on_a_batch_of_several_chunks_equals_the_classic_loss(autocast):
    torch.manual_seed(0)
    model = GPTModel(SMALL)
    x, y = batch(b=40, t=32, seed=3)  # 1,280 positions: three chunks of the fused loss
    tol = dict(atol=1e-5, rtol=1e-4) if not autocast else dict(atol=5e-3, rtol=5e-2)
    grads = []
    for fast in (True, False):
        model.zero_grad()
        with autocast_context("cpu", autocast):
            loss = model_loss(model, x, y, fast=fast)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    assert grads[0][0] == pytest.approx(grads[1][0], abs=tol["atol"] * 10)
    for fast_grad, classic_grad in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(fast_grad, classic_grad, atol=tol["atol"] * max(1.0, classic_grad.abs().max().item()),
                                   rtol=tol["rtol"])


def test_chunked_loss_gradients_when_the_head_or_the_hidden_states_are_frozen():
    """Fine-tuning with a frozen output head (or embedding, when tied) still gets the hidden states' gradient,
    and the head's gradient comes without the hidden states needing one."""
    torch.manual_seed(0)
    h0, w0, t = torch.randn(40, 8), torch.randn(30, 8), torch.randint(0, 30, (40,))
    for frozen in ("weight", "hidden"):
        h = h0.clone().requires_grad_(frozen != "hidden")
        w = w0.clone().requires_grad_(frozen != "weight")
        chunked_cross_entropy(h, w, t, chunk_size=16).backward()
        rh, rw = h0.clone().requires_grad_(), w0.clone().requires_grad_()
        F.cross_entropy(rh @ rw.T, t).backward()
        if frozen == "weight":
            assert w.grad is None
            torch.testing.assert_close(h.grad, rh.grad, atol=1e-6, rtol=1e-5)
        else:
            assert h.grad is None
            torch.testing.assert_close(w.grad, rw.grad, atol=1e-6, rtol=1e-5)


def test_model_loss_uses_the_fused_loss_by_default_and_the_classic_one_when_told():
    """What makes Trainer's steps fast: fast=None picks the chunked loss for a GPTModel; fast=False never does."""
    from unittest import mock

    import gptbook.training as training
    from gptbook.training import loss  # the module whose model_loss calls it (a patch must go where the name is used)
    from conftest import MINI_CONFIG

    torch.manual_seed(0)
    model = GPTModel(MINI_CONFIG).eval()  # no dropout: both losses see the same model
    x, y = torch.randint(0, 50257, (2, 8)), torch.randint(0, 50257, (2, 8))
    with mock.patch.object(loss, "chunked_cross_entropy", wraps=training.chunked_cross_entropy) as fused:
        default = training.model_loss(model, x, y)
        assert fused.call_count == 1
        classic = training.model_loss(model, x, y, fast=False)
        assert fused.call_count == 1
        training.model_loss(model, x, y, fast=True)
        assert fused.call_count == 2
    torch.testing.assert_close(default, classic, atol=1e-5, rtol=1e-5)


# -- loaders, the chapter-style loop and its options ---------------------------------------------

def test_calc_loss_loader(tokenizer):
    torch.manual_seed(0)
    model = GPTModel(SMALL).eval()
    loader = create_dataloader_v1(TEXT, batch_size=2, max_length=16, stride=16, shuffle=False, tokenizer=tokenizer)
    batches = list(loader)[:3]
    expected = sum(calc_loss_batch(x, y, model, "cpu").item() for x, y in batches) / 3
    assert calc_loss_loader(loader, model, "cpu", num_batches=3) == pytest.approx(expected)
    assert math.isnan(calc_loss_loader([], model, "cpu"))
    assert perplexity(math.log(20.0)) == pytest.approx(20.0)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = GPTModel(SMALL)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    x, y = batch(b=4, t=16)
    first = calc_loss_batch(x, y, model, "cpu").item()
    for _ in range(8):
        optimizer.zero_grad()
        loss = calc_loss_batch(x, y, model, "cpu")
        loss.backward()
        optimizer.step()
    assert calc_loss_batch(x, y, model, "cpu").item() < first - 1.0


def _simple_run(tokenizer, seed=123, **kwargs):
    torch.manual_seed(seed)
    model = GPTModel({**SMALL, "drop_rate": 0.1})
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.1)
    train_loader = create_dataloader_v1(TEXT[:2000], batch_size=4, max_length=16, stride=16, tokenizer=tokenizer)
    val_loader = create_dataloader_v1(TEXT[2000:3000], batch_size=4, max_length=16, stride=16, shuffle=False,
                                      drop_last=False, tokenizer=tokenizer)
    result = train_model_simple(model, train_loader, val_loader, optimizer, "cpu", num_epochs=1, eval_freq=5,
                                eval_iter=2, start_context="Once upon a time", tokenizer=tokenizer,
                                progress=False, **kwargs)
    return model, train_loader, result


def test_train_model_simple_classic_results(tokenizer, capsys):
    model, loader, (train_losses, val_losses, tokens_seen) = _simple_run(tokenizer)
    steps = len(loader)
    assert len(train_losses) == len(val_losses) == len(tokens_seen) == math.ceil(steps / 5)
    assert tokens_seen[0] == 4 * 16 and tokens_seen == sorted(tokens_seen)
    assert train_losses[-1] < train_losses[0]
    out = capsys.readouterr().out
    assert "Ep 1 (Step 000000): Train loss" in out and "Val loss" in out
    assert "Once upon a time" in out  # the sample after the epoch
    assert model.training


def test_seeded_runs_are_reproducible(tokenizer):
    _, _, first = _simple_run(tokenizer, max_steps=1)
    _, _, second = _simple_run(tokenizer, max_steps=1)
    _, _, other = _simple_run(tokenizer, seed=7, max_steps=1)
    assert first == second
    assert first != other


class SpyAdamW(torch.optim.AdamW):
    """AdamW that records, at each step, the learning rate and the gradient norm it was given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lrs, self.grad_norms = [], []

    def step(self, closure=None):
        self.lrs.append(self.param_groups[0]["lr"])
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        self.grad_norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
        return super().step(closure)


def _spy_run(tokenizer, **kwargs):
    torch.manual_seed(123)
    model = GPTModel(SMALL)
    optimizer = SpyAdamW(model.parameters(), lr=2e-3, weight_decay=0.1)
    train_loader = create_dataloader_v1(TEXT, batch_size=4, max_length=16, stride=16, tokenizer=tokenizer)
    result = train_model_simple(model, train_loader, train_loader, optimizer, "cpu", num_epochs=1, eval_freq=100,
                                eval_iter=1, start_context="Once", tokenizer=tokenizer, progress=False, **kwargs)
    return optimizer, result


def test_train_model_simple_options(tokenizer):
    opt, (train_losses, _, tokens) = _spy_run(tokenizer, warmup_steps=2, cosine_decay=True, min_lr=1e-4,
                                              grad_clip=0.05, grad_accum_steps=2, max_steps=5)
    assert tokens[-1] == 2 * 4 * 16 * 1  # first evaluation after step 0 = two accumulated batches
    assert len(train_losses) == 1
    # warm-up over 2 steps, then half a cosine from 2e-3 down to min_lr at the last (5th) step
    assert opt.lrs == pytest.approx([lr_at_step(s, 2e-3, 5, 2, 1e-4) for s in range(5)])
    assert opt.lrs[:2] == pytest.approx([1e-3, 2e-3]) and opt.lrs[-1] > 1e-4
    assert opt.grad_norms == pytest.approx([0.05] * 5, rel=1e-4)  # clipped (an untrained model's norm is larger)


def test_warm_up_alone_then_constant_and_no_clipping_by_default(tokenizer):
    opt, _ = _spy_run(tokenizer, warmup_steps=4, max_steps=6)
    assert opt.lrs == pytest.approx([5e-4, 1e-3, 1.5e-3, 2e-3, 2e-3, 2e-3])
    assert max(opt.grad_norms) > 0.5  # nothing clipped them
    opt, _ = _spy_run(tokenizer, max_steps=3)
    assert opt.lrs == [2e-3] * 3  # no schedule unless asked


def test_gradient_accumulation_equals_a_bigger_batch():
    x, y = batch(b=4, t=16)
    results = []
    for accum in (1, 2):
        torch.manual_seed(0)
        model = GPTModel(SMALL)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = [(x, y)] if accum == 1 else [(x[:2], y[:2]), (x[2:], y[2:])]
        train_model_simple(model, loader, loader, optimizer, "cpu", num_epochs=1, eval_freq=100, eval_iter=1,
                           start_context="Hi", tokenizer=__import__("gptbook").get_tokenizer(),
                           grad_accum_steps=accum, progress=False)
        results.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-6)


def test_lr_schedule():
    lrs = [lr_at_step(s, 1.0, total_steps=100, warmup_steps=10, min_lr=0.1) for s in range(120)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # never rises after the warm-up
    assert lrs[55] == pytest.approx(0.55)  # half-way down the cosine
    assert lrs[100] == lrs[119] == pytest.approx(0.1)


def test_device_and_autocast_helpers(monkeypatch):
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device("cuda:1") == torch.device("cuda", 1)  # an explicit choice is taken as it is
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device("auto") == choose_device(None) == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert choose_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert choose_device("auto") == torch.device("cpu")
    x = torch.randn(2, 2)
    with autocast_context("cpu", False):
        assert (x @ x).dtype == torch.float32
    with autocast_context("cpu", True):
        assert (x @ x).dtype == torch.bfloat16


def test_make_optimizer_skips_decay_for_biases_and_norms():
    model = GPTModel({**SMALL, "tie_weights": True})
    opt = make_optimizer(model, weight_decay=0.1)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() == 1 for p in plain["params"])
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == sum(p.numel() for p in model.parameters())


def test_plot_losses():
    fig = plot_losses([0, 1, 2], [0, 100, 200], [5.0, 4.0, 3.0], [5.5, 4.5, 3.5], xlabel="Steps")
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel() == "Steps" and fig.axes[1].get_xlabel() == "Tokens seen"
    matplotlib.pyplot.close(fig)


def test_generate_and_print_sample(tokenizer, capsys):
    torch.manual_seed(0)
    model = GPTModel(SMALL)
    text = generate_and_print_sample(model, tokenizer, "cpu", "Hello\nworld", max_new_tokens=3)
    assert text.startswith("Hello\nworld") and "Hello world" in capsys.readouterr().out
    assert model.training
    tr, va = evaluate_model(model, [batch()], [batch(seed=2), batch(seed=3)], "cpu", eval_iter=1)
    model.eval()
    with torch.no_grad():
        assert tr == pytest.approx(calc_loss_batch(*batch(), model, "cpu").item(), abs=1e-6)
        assert va == pytest.approx(calc_loss_batch(*batch(seed=2), model, "cpu").item(), abs=1e-6)


def test_token_windows_shard_and_resume_order():
    ids = torch.arange(1000)
    one = TokenWindows(ids, 10, 4, seed=1)
    assert one.n_windows == 99 and one.batches_per_epoch == 24
    x, y = one.batch(0)
    assert torch.equal(x + 1, y) and x.shape == (4, 10) and int(x[0, 0]) % 10 == 0
    again = TokenWindows(ids, 10, 4, seed=1)  # a new reader (a resumed run) finds any batch again
    assert torch.equal(one.batch(30)[0], again.batch(30)[0]) and torch.equal(one.batch(3)[1], again.batch(3)[1])
    order = torch.randperm(99, generator=torch.Generator().manual_seed(1 + 1))  # batch 30 = epoch 1, batch 6
    assert one.batch(30)[0][:, 0].tolist() == (order[24:28] * 10).tolist()
    assert not torch.equal(one.batch(0)[0], one.batch(24)[0])  # each epoch has its own order
    ranks = [TokenWindows(ids, 10, 4, seed=1, rank=r, world_size=2) for r in range(2)]
    starts = [set(r.batch(i)[0][:, 0].tolist()) for r in ranks for i in range(r.batches_per_epoch)]
    assert len(set().union(*starts)) == sum(len(s) for s in starts)  # the shards never overlap in an epoch
    with pytest.raises(ValueError, match="not enough for one batch"):
        TokenWindows(ids[:30], 10, 4, seed=1)


def trainer_config(tmp_path, **kwargs):
    data = tmp_path.parent / "stories.txt"
    data.write_text(load_corpus("val")[:30000], encoding="utf-8")
    base = dict(model="tiny", data=str(data), model_overrides={"emb_dim": 32, "n_layers": 2, "n_heads": 2, "context_length": 32},
                out_dir=str(tmp_path / "run"), batch_size=4, max_steps=6, eval_every=3, eval_batches=2,
                save_every=3, log_every=3, lr=3e-3, warmup_steps=2, sample_tokens=5)
    base.update(kwargs)
    return TrainConfig(**base)


def test_trainer_resume_continues_exactly(tmp_path):
    straight = Trainer(trainer_config(tmp_path / "a"), log=lambda m: None).fit()
    Trainer(trainer_config(tmp_path / "b", max_steps=3), log=lambda m: None).fit()
    messages = []
    resumed_trainer = Trainer(trainer_config(tmp_path / "b", resume=str(tmp_path / "b" / "run")), log=messages.append)
    resumed = resumed_trainer.fit()
    assert any("resumed" in m and "step 3" in m for m in messages)
    assert resumed["steps"] == [1, 2, 3, 4, 5, 6]
    assert resumed["train_losses"] == pytest.approx(straight["train_losses"], abs=1e-5)
    assert resumed["val_losses"] == pytest.approx(straight["val_losses"], abs=1e-5)
    assert straight["train_losses"][-1] < straight["train_losses"][0]


def test_trainer_with_copy_drills_trains_on_them_and_resumes_exactly(tmp_path):
    drilled = dict(copy_drills=0.5)
    straight = Trainer(trainer_config(tmp_path / "a", **drilled), log=lambda m: None).fit()
    plain = Trainer(trainer_config(tmp_path / "p"), log=lambda m: None).fit()
    assert straight["train_losses"] != pytest.approx(plain["train_losses"], abs=1e-4)  # drills were trained on
    Trainer(trainer_config(tmp_path / "b", max_steps=3, **drilled), log=lambda m: None).fit()
    resumed = Trainer(trainer_config(tmp_path / "b", resume=str(tmp_path / "b" / "run"), **drilled),
                      log=lambda m: None).fit()
    assert resumed["train_losses"] == pytest.approx(straight["train_losses"], abs=1e-5)


def test_gpt2_initialisation_starts_near_log_vocab(tokenizer):
    from gptbook.training import init_weights_gpt2

    torch.manual_seed(123)
    model = init_weights_gpt2(GPTModel(GPT_CONFIG_TINY)).eval()
    assert model.out_head.weight is model.tok_emb.weight
    assert float(model.tok_emb.weight.detach().std()) == pytest.approx(0.02, rel=0.05)
    assert float(model.trf_blocks[0].att.out_proj.weight.detach().std()) == pytest.approx(0.02 / math.sqrt(8), rel=0.1)
    loader = create_dataloader_v1(TEXT, batch_size=2, max_length=64, stride=64, shuffle=False, tokenizer=tokenizer)
    assert abs(calc_loss_loader(loader, model, "cpu", num_batches=2) - math.log(50257)) < 0.5


def test_sinusoidal_positions_turn_by_the_same_angle_from_one_position_to_the_next():
    from gptbook.training import sinusoidal_positions

    table = sinusoidal_positions(64, 32)
    assert table.shape == (64, 32)
    assert float(table.std()) == pytest.approx(0.02, rel=0.2)  # as small as GPT-2's random start
    pairs = torch.view_as_complex(table.view(64, 16, 2).flip(-1).contiguous())  # cos + i sin per frequency
    turn = pairs[1:] / pairs[:-1]  # (63, 16): the same rotation between any two neighbours
    assert torch.allclose(turn, turn[:1].expand_as(turn), atol=1e-4)


def test_trainer_sinusoidal_init_starts_from_the_sinusoids(tmp_path):
    from gptbook.training import sinusoidal_positions

    trainer = Trainer(trainer_config(tmp_path, init="sinusoidal", max_steps=1), log=lambda m: None)
    trainer._setup_device()
    trainer._build()
    assert torch.equal(trainer.model.pos_emb.weight.detach(), sinusoidal_positions(32, 32))


def test_trainer_init_std_scales_the_start(tmp_path):
    from gptbook.training import sinusoidal_positions

    trainer = Trainer(trainer_config(tmp_path, init="sinusoidal", init_std=0.1, max_steps=1), log=lambda m: None)
    trainer._setup_device()
    trainer._build()
    assert torch.equal(trainer.model.pos_emb.weight.detach(), sinusoidal_positions(32, 32, std=0.1))
    assert float(trainer.model.tok_emb.weight.detach().std()) == pytest.approx(0.1, rel=0.05)


def test_trainer_stops_at_the_time_budget_and_saves(tmp_path):
    from gptbook.loading.checkpoint import load_checkpoint_metadata

    trainer = Trainer(trainer_config(tmp_path, max_steps=50, max_seconds=0.0), log=lambda m: None)
    history = trainer.fit()
    assert history["steps"] == [1] and len(history["val_losses"]) == 1
    assert trainer.planned_steps() == trainer.step + 1  # the cosine is fitted to the budget: it ends now
    assert load_checkpoint_metadata(tmp_path / "run")["step"] == 1


@pytest.mark.parametrize("setting, expected", [
    ({"batch_size": 0}, "TrainConfig.batch_size must be a whole number >= 1, got 0"),
    ({"max_steps": 2.5}, "TrainConfig.max_steps must be a whole number >= 1"),
    ({"lr": -1e-3}, "TrainConfig.lr must be a number > 0"),
    ({"lr": float("nan")}, "TrainConfig.lr must be a number > 0"),
    ({"grad_clip": 0}, "or None (no clipping)"),
    ({"eval_every": 0}, "TrainConfig.eval_every must be a whole number >= 1"),
    ({"max_length": 0}, "TrainConfig.max_length must be None"),
    ({"val_fraction": 1.0}, "TrainConfig.val_fraction must be a number between 0 and 1"),
    ({"init": "xavier"}, "TrainConfig.init must be 'gpt2'"),
    ({"probe_stories": 0}, "to run no probes, set probes=False"),
    ({"init_std": 0.0}, "init_std must be a standard deviation above 0"),
    ({"merge_unused": "yes"}, "TrainConfig.merge_unused must be True"),
])
def test_train_config_refuses_a_setting_that_cannot_work(setting, expected):
    """A batch size of 0 fails when the config is made, with the field named, not as a ZeroDivisionError later."""
    with pytest.raises(ValueError) as error:
        TrainConfig(**setting)
    assert expected in str(error.value)


# -- the head rows of unused tokens, trained as one -----------------------------------------------

def _text_batch(vocab_used=300, b=2, t=16):
    ids = torch.randint(0, vocab_used, (b, t + 1), generator=torch.Generator().manual_seed(5))
    return ids[:, :-1], ids[:, 1:]


@pytest.mark.parametrize("tied", [True, False])
def test_unused_tokens_loss_and_gradients_equal_the_full_softmax(tied):
    from gptbook.training import init_weights_gpt2

    torch.manual_seed(0)
    model = init_weights_gpt2(GPTModel({**SMALL, "tie_weights": tied}))
    inputs, targets = _text_batch()
    unused = UnusedTokens(model, torch.cat([inputs, targets], 1))
    weight = model.out_head.weight
    assert len(unused.used) + unused.n_unused == 50257
    assert torch.equal(weight[unused.unused], weight[unused.shared].expand(unused.n_unused, -1))  # made equal
    compact = unused.loss(model, inputs, targets)
    compact.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    full = model_loss(model, inputs, targets, fast=False)
    full.backward()
    assert compact.item() == pytest.approx(full.item(), rel=1e-5)
    for name, param in model.named_parameters():
        if param is weight:  # each unused row's own gradient is the shared row's
            torch.testing.assert_close(grads[name][unused.used], param.grad[unused.used], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(grads[name][unused.shared].expand(unused.n_unused, -1),
                                       param.grad[unused.unused], rtol=1e-4, atol=1e-7)
        else:
            torch.testing.assert_close(grads[name], param.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_unused_tokens_count_in_the_loss_of_a_text_that_has_them():
    torch.manual_seed(0)
    model = GPTModel(SMALL)
    inputs, targets = _text_batch()
    unused = UnusedTokens(model, inputs)
    targets = targets.clone()
    targets[0, :3] = 40000  # a token the training text never used, as in a validation text
    with torch.no_grad():
        assert unused.loss(model, inputs, targets).item() == pytest.approx(
            model_loss(model, inputs, targets, fast=False).item(), rel=1e-5)


@pytest.mark.parametrize("tied", [True, False])
def test_training_with_merged_unused_rows_is_training_with_the_full_softmax(tied):
    """Three steps with clipping: the same weights as full training from equal unused rows.

    (SGD with momentum rather than AdamW: Adam divides by the gradient's size, so where a gradient is
    zero up to rounding it turns rounding differences into whole steps.)"""
    from gptbook.training import init_weights_gpt2

    torch.manual_seed(0)
    merged = init_weights_gpt2(GPTModel({**SMALL, "tie_weights": tied}))
    inputs, targets = _text_batch()
    unused = UnusedTokens(merged, torch.cat([inputs, targets], 1))
    full = GPTModel({**SMALL, "tie_weights": tied})
    full.load_state_dict(merged.state_dict())
    opt_merged, opt_full = (torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (merged, full))
    for _ in range(3):
        unused.loss(merged, inputs, targets).backward()
        norm_merged = unused.clip_grad_norm_(merged, 0.5)
        opt_merged.step(); opt_merged.zero_grad(); unused.sync(merged)
        model_loss(full, inputs, targets, fast=False).backward()
        norm_full = torch.nn.utils.clip_grad_norm_(full.parameters(), 0.5)
        opt_full.step(); opt_full.zero_grad()
        assert norm_merged == pytest.approx(float(norm_full), rel=1e-3)  # up to float rounding
    for (name, a), b in zip(merged.state_dict().items(), full.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-4), name


def test_trainer_with_merge_unused_trains_and_evaluates_the_full_model(tmp_path):
    trainer = Trainer(trainer_config(tmp_path, merge_unused=True), log=lambda m: None)
    history = trainer.fit()
    assert history["train_losses"][-1] < history["train_losses"][0]
    weight, unused = trainer.model.out_head.weight, trainer.unused_tokens
    assert torch.equal(weight[unused.unused], weight[unused.shared].expand(unused.n_unused, -1))  # kept equal
    with torch.no_grad():
        trainer.model.eval()
        full = [float(model_loss(trainer.model, *trainer.val_windows.batch(i), fast=False)) for i in range(2)]
    assert history["val_losses"][-1] == pytest.approx(sum(full) / 2, rel=1e-5)
