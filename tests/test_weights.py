"""Loading GPT-2 weights in the Hugging Face format gives the reference implementation's logits."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import need
from gptbook import GPTModel, count_parameters, generate

transformers = need("transformers", reason="transformers is the test-only numerical reference")

SMALL_HF = dict(vocab_size=50257, n_positions=64, n_embd=64, n_layer=3, n_head=4)


@pytest.fixture(scope="module")
def hf_checkpoint(tmp_path_factory):
    """A small random GPT-2 built and saved by transformers: (the HF model, its folder)."""
    torch.manual_seed(0)
    hf_model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**SMALL_HF)).eval()
    with torch.no_grad():  # LayerNorms start at 1 / 0 and biases at 0: make every tensor distinct
        for param in hf_model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    folder = tmp_path_factory.mktemp("hf-gpt2")
    hf_model.save_pretrained(folder)
    return hf_model, folder


def test_logits_and_greedy_tokens_equal_transformers(hf_checkpoint):
    hf_model, folder = hf_checkpoint
    model = GPTModel.from_pretrained(folder)
    assert not model.training
    x = torch.randint(0, 50257, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(x), hf_model(x).logits, atol=1e-4, rtol=0)
    ours = generate(model, x[:1, :8], 30)
    theirs = hf_model.generate(x[:1, :8], max_new_tokens=30, do_sample=False, pad_token_id=50256)
    assert ours.tolist() == theirs.tolist()


def test_loaded_model_is_tied_and_counts_like_transformers(hf_checkpoint):
    hf_model, folder = hf_checkpoint
    model = GPTModel.from_pretrained(folder)
    assert model.out_head.weight is model.tok_emb.weight
    assert count_parameters(model) == sum(p.numel() for p in hf_model.parameters())


def test_a_loaded_model_has_the_causal_masks_of_a_new_one(hf_checkpoint):
    """Weights are loaded into an empty model whose masks are rebuilt: they must be exactly causal."""
    _, folder = hf_checkpoint
    model = GPTModel.from_pretrained(folder)
    n = SMALL_HF["n_positions"]
    for block in model.trf_blocks:
        assert torch.equal(block.att.mask, torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1))
    x = torch.randint(0, 50257, (1, 10), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():  # the explicit attention (which reads the mask) = the fused causal kernel
        explicit, _weights = model(x, return_attention=True)
        torch.testing.assert_close(explicit, model(x), atol=1e-5, rtol=0)



def test_loads_original_openai_names_without_transformer_prefix(hf_checkpoint, tmp_path):
    hf_model, folder = hf_checkpoint
    state = {k.removeprefix("transformer."): v for k, v in load_file(folder / "model.safetensors").items()}
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    x = torch.randint(0, 50257, (1, 10))
    with torch.no_grad():
        torch.testing.assert_close(GPTModel.from_pretrained(tmp_path)(x), hf_model(x).logits, atol=1e-4, rtol=0)


def test_bfloat16_loading(hf_checkpoint):
    _, folder = hf_checkpoint
    model = GPTModel.from_pretrained(folder, dtype=torch.bfloat16)
    assert model.tok_emb.weight.dtype == torch.bfloat16
    assert generate(model, torch.tensor([[1, 2, 3]]), 4).shape == (1, 7)


def test_wrong_shape_names_the_tensor(hf_checkpoint, tmp_path):
    _, folder = hf_checkpoint
    state = load_file(folder / "model.safetensors")
    key = next(k for k in state if k.endswith("h.1.mlp.c_fc.weight"))
    state[key] = torch.zeros(64, 100)
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(ValueError, match=r"trf_blocks\.1\.ff\.layers\.0\.weight.*\(100, 64\).*\(256, 64\)"):
        GPTModel.from_pretrained(tmp_path)


def test_missing_tensor_and_missing_files_are_explained(hf_checkpoint, tmp_path):
    _, folder = hf_checkpoint
    state = {k: v for k, v in load_file(folder / "model.safetensors").items() if "ln_f" not in k}
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(ValueError, match="ln_f.weight"):
        GPTModel.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="no model.safetensors"):
        GPTModel.from_pretrained(tmp_path)


def test_a_missing_tensor_is_named_in_tied_untied_and_learners_own_models():
    """Only a tied model's output head may be absent (it is the embedding); anything else missing is an error."""
    from conftest import MINI_CONFIG
    from gptbook.weights import load_state_dict_checked

    for tied in (True, False):
        torch.manual_seed(0)
        model = GPTModel({**MINI_CONFIG, "tie_weights": tied})
        state = model.state_dict()
        with pytest.raises(ValueError, match="lacks 1 tensor.*final_norm.scale"):
            load_state_dict_checked(model, {k: v for k, v in state.items() if k != "final_norm.scale"})
        without_head = {k: v for k, v in state.items() if k != "out_head.weight"}
        if tied:
            load_state_dict_checked(model, without_head)
        else:
            with pytest.raises(ValueError, match="out_head.weight"):
                load_state_dict_checked(model, without_head)

    class Own(torch.nn.Module):  # no cfg: nothing is taken to be tied
        def __init__(self):
            super().__init__()
            self.out_head = torch.nn.Linear(4, 4, bias=False)

    with pytest.raises(ValueError, match="out_head.weight"):
        load_state_dict_checked(Own(), {})


def test_corrupted_weights_file_fails_cleanly(hf_checkpoint, tmp_path):
    _, folder = hf_checkpoint
    data = (folder / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        GPTModel.from_pretrained(tmp_path)


def test_non_gpt2_config_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="GPT-2"):
        GPTModel.from_pretrained(tmp_path)


def test_unknown_model_id_offline_says_what_to_do():
    with pytest.raises(ValueError, match="local folder"):
        GPTModel.from_pretrained("gptbook-test/no-such-model")


@pytest.mark.parametrize("kind", ["relative path", "a file"])
def test_a_path_that_is_not_a_checkpoint_folder_is_not_looked_up_on_the_hub(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = "./runs/nope" if kind == "relative path" else "notes.txt"
    if kind == "a file":
        (tmp_path / name).write_text("not a checkpoint")
    with pytest.raises(ValueError, match="no such checkpoint folder|is a file, not a checkpoint folder"):
        GPTModel.from_pretrained(name)


def test_a_minimal_config_json_gets_gpt2s_defaults():
    """OpenAI's original config.json has no dropout or tying fields: GPT-2 means 0.1 dropout and a tied head."""
    from gptbook.weights import config_from_hf

    cfg = config_from_hf({"vocab_size": 50257, "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12})
    assert cfg == {"vocab_size": 50257, "context_length": 1024, "emb_dim": 768, "n_heads": 12, "n_layers": 12,
                   "drop_rate": 0.1, "qkv_bias": True, "tie_weights": True}
    untied = config_from_hf({**SMALL_HF, "tie_word_embeddings": False, "resid_pdrop": 0.0})
    assert untied["tie_weights"] is False and untied["drop_rate"] == 0.0


def test_an_untied_checkpoint_loads_its_own_output_head(tmp_path):
    """With tie_word_embeddings false the head is a matrix of its own (lm_head.weight), not the embedding."""
    torch.manual_seed(1)
    hf_model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**SMALL_HF, tie_word_embeddings=False)).eval()
    with torch.no_grad():
        for param in hf_model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    assert not torch.equal(hf_model.lm_head.weight, hf_model.transformer.wte.weight)
    hf_model.save_pretrained(tmp_path)
    model = GPTModel.from_pretrained(tmp_path)
    assert model.out_head.weight is not model.tok_emb.weight
    torch.testing.assert_close(model.out_head.weight, hf_model.lm_head.weight, atol=0, rtol=0)
    x = torch.randint(0, 50257, (1, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model(x), hf_model(x).logits, atol=1e-4, rtol=0)
