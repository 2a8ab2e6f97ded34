"""Checkpoints: safetensors + JSON round trips, clean failures, no pickle, resuming."""

import json
import pickle

import pytest
import torch

from gptbook import GPTModel
from gptbook.loading.checkpoint import CheckpointError, load_checkpoint, load_checkpoint_metadata, save_checkpoint
from gptbook.training import make_optimizer, model_loss

TINY = {"vocab_size": 50257, "context_length": 16, "emb_dim": 32, "n_heads": 4, "n_layers": 2,
        "drop_rate": 0.0, "qkv_bias": False}


def trained_model(cfg, steps=2, seed=0):
    """A model and an AdamW optimizer that have taken a few steps (so the moments are not zero)."""
    torch.manual_seed(seed)
    model = GPTModel(cfg)
    optimizer = make_optimizer(model, lr=1e-3)
    x = torch.randint(0, 50257, (2, 16), generator=torch.Generator().manual_seed(1))
    for _ in range(steps):
        model_loss(model, x[:, :-1], x[:, 1:]).backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval(), optimizer


def params_of(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("tied", [False, True])
def test_round_trip_gives_identical_logits(tmp_path, tied):
    model, optimizer = trained_model({**TINY, "tie_weights": tied})
    save_checkpoint(tmp_path / "ckpt", model, optimizer, step=7, train_losses=[3.5, 2.25])
    x = torch.randint(0, 50257, (2, 10), generator=torch.Generator().manual_seed(2))

    rebuilt = load_checkpoint(tmp_path / "ckpt")  # built from the stored configuration
    assert rebuilt.cfg == model.cfg
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), model(x))
    if tied:
        assert rebuilt.out_head.weight is rebuilt.tok_emb.weight  # still one matrix after loading

    torch.manual_seed(5)
    other = GPTModel({**TINY, "tie_weights": tied}).eval()
    assert load_checkpoint(tmp_path / "ckpt", model=other) is other
    with torch.no_grad():
        assert torch.equal(other(x), model(x))
    meta = load_checkpoint_metadata(tmp_path / "ckpt")
    assert meta["step"] == 7 and meta["train_losses"] == [3.5, 2.25] and meta["config"]["emb_dim"] == 32


def test_tied_weight_stored_once(tmp_path):
    from safetensors.torch import load_file

    model, _ = trained_model({**TINY, "tie_weights": True})
    save_checkpoint(tmp_path, model)
    names = load_file(str(tmp_path / "model.safetensors")).keys()
    assert "tok_emb.weight" in names and "out_head.weight" not in names
    assert not any("mask" in name for name in names)


def test_optimizer_state_round_trip_continues_identically(tmp_path):
    model, optimizer = trained_model(TINY)
    save_checkpoint(tmp_path, model, optimizer)
    torch.manual_seed(9)
    model2 = GPTModel(TINY)
    optimizer2 = make_optimizer(model2, lr=1e-3)
    load_checkpoint(tmp_path, model=model2, optimizer=optimizer2)
    saved, loaded = optimizer.state_dict()["state"], optimizer2.state_dict()["state"]
    assert list(saved) == list(loaded)
    for a, b in zip(saved.values(), loaded.values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
        assert float(a["step"]) == float(b["step"])
    assert optimizer2.param_groups[0]["betas"] == optimizer.param_groups[0]["betas"]
    x = torch.randint(0, 50257, (2, 16), generator=torch.Generator().manual_seed(3))
    for m, opt in ((model, optimizer), (model2, optimizer2)):
        model_loss(m.train(), x[:, :-1], x[:, 1:]).backward()
        opt.step()
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


def test_mismatched_shapes_name_the_tensor_and_both_shapes(tmp_path):
    model, _ = trained_model(TINY)
    save_checkpoint(tmp_path, model)
    other = GPTModel({**TINY, "context_length": 24})
    before = params_of(other)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path, model=other)
    message = str(info.value)
    assert "pos_emb.weight" in message and "(16, 32)" in message and "(24, 32)" in message
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in before.items())


def test_mismatched_configuration_without_shape_change(tmp_path):
    model, _ = trained_model(TINY)
    save_checkpoint(tmp_path, model)
    with pytest.raises(CheckpointError, match="n_heads.*4.*2"):
        load_checkpoint(tmp_path, model=GPTModel({**TINY, "n_heads": 2}))
    with pytest.raises(CheckpointError, match="tie_weights"):
        load_checkpoint(tmp_path, model=GPTModel({**TINY, "tie_weights": True}))
    with pytest.raises(CheckpointError, match="qkv|bias"):
        load_checkpoint(tmp_path, model=GPTModel({**TINY, "qkv_bias": True}))


def test_optimizer_for_another_model_is_refused(tmp_path):
    model, optimizer = trained_model(TINY)
    save_checkpoint(tmp_path, model, optimizer)
    fresh = GPTModel(TINY)
    wrong = torch.optim.AdamW(fresh.parameters(), lr=1e-3)  # one group instead of two
    before = params_of(fresh)
    with pytest.raises(CheckpointError, match="parameter group"):
        load_checkpoint(tmp_path, model=fresh, optimizer=wrong)
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in before.items())  # weights untouched too
    assert not wrong.state
    save_checkpoint(tmp_path / "no_opt", model)
    with pytest.raises(CheckpointError, match="without optimizer"):
        load_checkpoint(tmp_path / "no_opt", model=fresh, optimizer=make_optimizer(fresh))


@pytest.mark.parametrize("damage", ["truncate", "flip", "json", "missing"])
def test_damaged_files_fail_cleanly_and_leave_the_model_untouched(tmp_path, damage):
    model, optimizer = trained_model(TINY)
    save_checkpoint(tmp_path, model, optimizer)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    if damage == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        middle = len(data) // 2
        weights.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    elif damage == "json":
        (tmp_path / "checkpoint.json").write_text('{"format": "gptbook-checkpoint", "files": {')
    else:
        weights.unlink()
    torch.manual_seed(4)
    target = GPTModel(TINY)
    target_opt = make_optimizer(target)
    before = params_of(target)
    with pytest.raises(CheckpointError, match="truncated|corrupted|missing"):
        load_checkpoint(tmp_path, model=target, optimizer=target_opt)
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in before.items())
    assert not target_opt.state


def test_corrupted_optimizer_file_leaves_both_untouched(tmp_path):
    model, optimizer = trained_model(TINY)
    save_checkpoint(tmp_path, model, optimizer)
    opt_file = tmp_path / "optimizer.safetensors"
    opt_file.write_bytes(opt_file.read_bytes()[:-100])
    target = GPTModel(TINY)
    before = params_of(target)
    with pytest.raises(CheckpointError, match="optimizer.safetensors"):
        load_checkpoint(tmp_path, model=target, optimizer=make_optimizer(target))
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in before.items())


def test_loading_never_unpickles(tmp_path, monkeypatch):
    model, optimizer = trained_model(TINY)
    save_checkpoint(tmp_path, model, optimizer)

    def forbidden(*args, **kwargs):
        raise AssertionError("a checkpoint load must not unpickle")

    for name in ("load", "loads"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    fresh = GPTModel(TINY)
    load_checkpoint(tmp_path, model=fresh, optimizer=make_optimizer(fresh))
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.bin"))


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint.json"):
        load_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"n_embd": 8}))
    with pytest.raises(CheckpointError, match="from_pretrained"):
        load_checkpoint(tmp_path)


def test_save_errors(tmp_path):
    model, _ = trained_model(TINY, steps=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        save_checkpoint(tmp_path / "file", model)
    with pytest.raises(TypeError, match="plain data"):
        save_checkpoint(tmp_path / "c", model, note=object())
    with pytest.raises(TypeError, match="cfg"):
        save_checkpoint(tmp_path / "d", torch.nn.Linear(2, 2))


def test_saving_again_replaces_and_drops_stale_optimizer(tmp_path):
    model, optimizer = trained_model(TINY)
    save_checkpoint(tmp_path, model, optimizer, step=1)
    save_checkpoint(tmp_path, model, step=2)
    assert not (tmp_path / "optimizer.safetensors").exists()
    assert load_checkpoint_metadata(tmp_path)["step"] == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_each_parameter_groups_own_settings_come_back(tmp_path):
    model, optimizer = trained_model(TINY)
    decay, plain = optimizer.param_groups
    decay["lr"], decay["weight_decay"], plain["lr"], plain["betas"] = 3e-3, 0.2, 7e-4, (0.8, 0.9)
    save_checkpoint(tmp_path, model, optimizer)
    torch.manual_seed(9)
    model2 = GPTModel(TINY)
    optimizer2 = make_optimizer(model2, lr=1e-3, weight_decay=0.05)  # other settings in both groups
    load_checkpoint(tmp_path, model=model2, optimizer=optimizer2)
    for saved, loaded in zip(optimizer.param_groups, optimizer2.param_groups):
        for key in ("lr", "weight_decay", "betas", "eps"):
            assert loaded[key] == saved[key], key
    assert optimizer2.param_groups[0]["weight_decay"] == 0.2 and optimizer2.param_groups[1]["weight_decay"] == 0.0
    assert optimizer2.param_groups[1]["lr"] == 7e-4 and tuple(optimizer2.param_groups[1]["betas"]) == (0.8, 0.9)


def test_a_newer_format_version_is_refused_with_a_clear_message(tmp_path):
    from gptbook.loading.checkpoint import VERSION

    model, _ = trained_model(TINY, steps=0)
    save_checkpoint(tmp_path, model)
    meta_path = next(p for p in tmp_path.iterdir() if p.suffix == ".json")
    meta = json.loads(meta_path.read_text())
    meta["version"] = VERSION + 1
    meta_path.write_text(json.dumps(meta))
    for load in (load_checkpoint, load_checkpoint_metadata):
        with pytest.raises(CheckpointError, match=rf"newer gptbook \(format version {VERSION + 1}\).*upgrade gptbook"):
            load(tmp_path)


def test_bf16_models_round_trip_in_bf16(tmp_path):
    model, _ = trained_model(TINY)
    model = model.to(torch.bfloat16)
    save_checkpoint(tmp_path, model)
    rebuilt = load_checkpoint(tmp_path)
    assert {p.dtype for p in rebuilt.parameters()} == {torch.bfloat16}
    for (name, a), b in zip(model.state_dict().items(), rebuilt.state_dict().values()):
        assert torch.equal(a, b), name  # bit for bit
    x = torch.randint(0, 50257, (2, 10), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), model(x))
    fp32 = GPTModel(TINY)
    load_checkpoint(tmp_path, model=fp32)  # into an fp32 model: the bf16 values, widened exactly
    assert torch.equal(fp32.tok_emb.weight, model.tok_emb.weight.float())
