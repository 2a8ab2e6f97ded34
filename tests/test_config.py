"""Configurations: the classic numbers, and invalid ones refused with the field named."""

import pytest

from gptbook import GPT2_CONFIGS, GPT_CONFIG_124M, GPT_CONFIG_TINY, GPTModel, get_config, validate_config


def test_classic_124m_configuration():
    assert GPT_CONFIG_124M == {
        "vocab_size": 50257, "context_length": 1024, "emb_dim": 768, "n_heads": 12,
        "n_layers": 12, "drop_rate": 0.1, "qkv_bias": False,
    }


def test_gpt2_sizes_have_qkv_bias_and_real_dimensions():
    dims = {name: (c["emb_dim"], c["n_layers"], c["n_heads"]) for name, c in GPT2_CONFIGS.items()}
    assert dims == {
        "gpt2-small (124M)": (768, 12, 12), "gpt2-medium (355M)": (1024, 24, 16),
        "gpt2-large (774M)": (1280, 36, 20), "gpt2-xl (1558M)": (1600, 48, 25),
    }
    assert all(c["qkv_bias"] for c in GPT2_CONFIGS.values())


def test_get_config_knows_hub_ids_and_returns_copies():
    assert get_config("gpt2-medium")["emb_dim"] == 1024
    cfg = get_config("tiny")
    cfg["emb_dim"] = 1
    assert GPT_CONFIG_TINY["emb_dim"] != 1
    with pytest.raises(ValueError, match="unknown configuration name"):
        get_config("gpt5")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"emb_dim": 770}, "emb_dim"),
        ({"n_heads": 0}, "n_heads"),
        ({"n_layers": -1}, "n_layers"),
        ({"vocab_size": 2.5}, "vocab_size"),
        ({"context_length": 0}, "context_length"),
        ({"drop_rate": 1.0}, "drop_rate"),
        ({"drop_rate": -0.1}, "drop_rate"),
        ({"qkv_bias": "yes"}, "qkv_bias"),
    ],
)
def test_invalid_configuration_names_the_field(change, field):
    with pytest.raises(ValueError, match=field):
        GPTModel({**GPT_CONFIG_124M, **change})


def test_missing_key_is_named():
    cfg = dict(GPT_CONFIG_124M)
    del cfg["n_heads"]
    with pytest.raises(ValueError, match="'n_heads'"):
        validate_config(cfg)


def test_optional_tie_weights_defaults_to_false():
    assert validate_config(GPT_CONFIG_124M)["tie_weights"] is False
