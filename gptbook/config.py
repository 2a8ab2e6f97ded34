"""Model configurations: one plain dictionary describes a whole GPT.

The classic configuration of the 124-million-parameter GPT-2 is ``GPT_CONFIG_124M``::

    {"vocab_size": 50257,     # tokens in the GPT-2 byte-pair encoding
     "context_length": 1024,  # longest input the model accepts (positional embeddings)
     "emb_dim": 768,          # width of every token vector
     "n_heads": 12,           # attention heads per block
     "n_layers": 12,          # transformer blocks
     "drop_rate": 0.1,        # dropout probability
     "qkv_bias": False}       # bias in the query/key/value projections

One optional key is understood as well: ``"tie_weights"`` (default ``False``) makes the output
head share its weight matrix with the token embedding, as the original GPT-2 does.

Taught in notebooks 03 (embeddings) and 06 (the GPT model).
"""

from __future__ import annotations

from typing import Any

#: The classic 124M configuration (separate output head: 163,009,536 parameters).
GPT_CONFIG_124M: dict[str, Any] = {
    "vocab_size": 50257,
    "context_length": 1024,
    "emb_dim": 768,
    "n_heads": 12,
    "n_layers": 12,
    "drop_rate": 0.1,
    "qkv_bias": False,
}

_GPT2_BASE: dict[str, Any] = {
    "vocab_size": 50257,
    "context_length": 1024,
    "drop_rate": 0.0,
    "qkv_bias": True,
    "tie_weights": True,
}

#: The four released GPT-2 sizes, as OpenAI trained them (qkv bias on, output head tied).
GPT2_CONFIGS: dict[str, dict[str, Any]] = {
    "gpt2-small (124M)": {**_GPT2_BASE, "emb_dim": 768, "n_layers": 12, "n_heads": 12},
    "gpt2-medium (355M)": {**_GPT2_BASE, "emb_dim": 1024, "n_layers": 24, "n_heads": 16},
    "gpt2-large (774M)": {**_GPT2_BASE, "emb_dim": 1280, "n_layers": 36, "n_heads": 20},
    "gpt2-xl (1558M)": {**_GPT2_BASE, "emb_dim": 1600, "n_layers": 48, "n_heads": 25},
}

#: A small model sized for training on a laptop CPU in a few minutes (notebook 08).
GPT_CONFIG_TINY: dict[str, Any] = {
    "vocab_size": 50257,
    "context_length": 256,
    "emb_dim": 256,
    "n_heads": 4,
    "n_layers": 4,
    "drop_rate": 0.1,
    "qkv_bias": False,
    "tie_weights": True,
}

# Short names accepted by get_config (the Hugging Face model ids among them).
_ALIASES = {
    "124m": GPT_CONFIG_124M,
    "gpt_config_124m": GPT_CONFIG_124M,
    "tiny": GPT_CONFIG_TINY,
    "gpt2": GPT2_CONFIGS["gpt2-small (124M)"],
    "gpt2-small": GPT2_CONFIGS["gpt2-small (124M)"],
    "gpt2-medium": GPT2_CONFIGS["gpt2-medium (355M)"],
    "gpt2-large": GPT2_CONFIGS["gpt2-large (774M)"],
    "gpt2-xl": GPT2_CONFIGS["gpt2-xl (1558M)"],
}

REQUIRED_KEYS = ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers", "drop_rate", "qkv_bias")
OPTIONAL_KEYS = {"tie_weights": False}


def validate_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check a configuration and return a copy with the optional keys filled in.

    Raises ``ValueError`` naming the offending field: a missing key, a size that is not a positive
    integer, ``emb_dim`` not divisible by ``n_heads`` or ``drop_rate`` outside [0, 1).
    Unknown keys are kept (so that your own experiments can carry extra settings).
    """
    if not isinstance(cfg, dict):
        raise ValueError(f"a model configuration must be a dict such as GPT_CONFIG_124M, got {type(cfg).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in cfg]
    if missing:
        raise ValueError(
            f"configuration is missing the key(s) {', '.join(repr(k) for k in missing)}; "
            f"start from a copy of GPT_CONFIG_124M, e.g. {{**GPT_CONFIG_124M, 'n_layers': 6}}"
        )
    for key in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers"):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"configuration field {key!r} must be a positive integer, got {value!r}")
    if cfg["emb_dim"] % cfg["n_heads"] != 0:
        raise ValueError(
            f"configuration field 'emb_dim' ({cfg['emb_dim']}) must be divisible by 'n_heads' ({cfg['n_heads']}): "
            f"each head gets emb_dim / n_heads dimensions; try emb_dim={cfg['n_heads'] * max(1, round(cfg['emb_dim'] / cfg['n_heads']))}"
        )
    drop = cfg["drop_rate"]
    if isinstance(drop, bool) or not isinstance(drop, (int, float)) or not 0.0 <= drop < 1.0:
        raise ValueError(f"configuration field 'drop_rate' must be a number in [0, 1), got {drop!r}")
    for key in ("qkv_bias", *OPTIONAL_KEYS):
        if key in cfg and not isinstance(cfg[key], bool):
            raise ValueError(f"configuration field {key!r} must be True or False, got {cfg[key]!r}")
    return {**OPTIONAL_KEYS, **cfg}


def get_config(name: str) -> dict[str, Any]:
    """Return a copy of a named configuration.

    Accepts the keys of ``GPT2_CONFIGS`` (``"gpt2-small (124M)"``, …), the Hugging Face ids
    (``"gpt2"``, ``"gpt2-medium"``, ``"gpt2-large"``, ``"gpt2-xl"``), ``"124M"`` and ``"tiny"``.
    """
    if name in GPT2_CONFIGS:
        return dict(GPT2_CONFIGS[name])
    key = name.strip().lower()
    if key in _ALIASES:
        return dict(_ALIASES[key])
    known = sorted({*GPT2_CONFIGS, *_ALIASES})
    raise ValueError(f"unknown configuration name {name!r}; choose one of: {', '.join(known)}")
