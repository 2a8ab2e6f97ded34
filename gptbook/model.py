"""The GPT model: embeddings, a stack of transformer blocks, a final norm and the output head.

    token IDs (b, T)
      -> token embedding (b, T, emb_dim) + positional embedding (T, emb_dim) -> dropout
      -> n_layers x TransformerBlock                                   (b, T, emb_dim)
      -> final LayerNorm                                               (b, T, emb_dim)
      -> output head (linear, no bias)                                 (b, T, vocab_size)

Taught in notebooks 05 (the transformer block) and 06 (the GPT model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

from .attention import KVCache, MultiHeadAttention
from .config import validate_config
from .layers import Dropout, FeedForward, LayerNorm


class TransformerBlock(nn.Module):
    """A pre-LayerNorm transformer block: two sub-layers, each wrapped in a shortcut connection.

        x = x + dropout(attention(norm1(x)))
        x = x + dropout(feed_forward(norm2(x)))
    """

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.att = MultiHeadAttention(
            d_in=cfg["emb_dim"],
            d_out=cfg["emb_dim"],
            context_length=cfg["context_length"],
            num_heads=cfg["n_heads"],
            dropout=cfg["drop_rate"],
            qkv_bias=cfg["qkv_bias"],
        )
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = Dropout(cfg["drop_rate"])

    def forward(self, x: torch.Tensor, kv_cache=None, return_attention: bool = False):
        """(b, T, emb_dim) -> (b, T, emb_dim); with ``return_attention`` also the weights."""
        attn = self.att(self.norm1(x), kv_cache=kv_cache, return_attention=return_attention)
        if return_attention:
            attn, weights = attn
        x = x + self.drop_shortcut(attn)  # shortcut around attention
        x = x + self.drop_shortcut(self.ff(self.norm2(x)))  # shortcut around the feed-forward
        return (x, weights) if return_attention else x


class GPTModel(nn.Module):
    """A GPT-2 style language model: token IDs in, next-token logits for every position out.

    Args:
        cfg: a configuration dict such as ``GPT_CONFIG_124M`` (checked by ``validate_config``).

    ``model.cfg`` keeps the checked configuration. With ``cfg["tie_weights"]`` the output head
    shares its weight with the token embedding (124,412,160 parameters instead of 163,009,536
    for the 124M configuration; OpenAI's GPT-2, which also has qkv biases, has 124,439,808).
    """

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        cfg = validate_config(cfg)
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)
        if cfg["tie_weights"]:
            self.out_head.weight = self.tok_emb.weight  # one matrix, used twice

    def forward(
        self,
        in_idx: torch.Tensor,
        kv_cache: Optional[KVCache] = None,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Compute logits of shape (b, T, vocab_size) for token IDs ``in_idx`` of shape (b, T).

        With ``kv_cache`` (from ``new_kv_cache``), ``in_idx`` holds only the tokens not seen yet.
        With ``return_attention=True`` also return a list with each layer's attention weights,
        each of shape (b, n_heads, T, T + tokens already cached).
        """
        x = self.hidden_states(in_idx, kv_cache=kv_cache, return_attention=return_attention)
        if return_attention:
            x, attentions = x
        logits = self.out_head(x)  # (b, T, vocab_size)
        return (logits, attentions) if return_attention else logits

    def hidden_states(
        self,
        in_idx: torch.Tensor,
        kv_cache: Optional[KVCache] = None,
        return_attention: bool = False,
        residuals: Optional[list[torch.Tensor]] = None,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """What the output head reads: the final-normalised hidden states, (b, T) IDs -> (b, T, emb_dim).

        ``forward`` is ``out_head(hidden_states(...))``; the chunked loss, the probes and the logit lens start
        from here too. ``kv_cache`` and ``return_attention`` work as in ``forward``. Give a list as ``residuals``
        to collect the residual stream on the way, each (b, T, emb_dim) before the final norm: after the
        embeddings, then after every block (the logit lens reads those through ``final_norm`` and ``out_head``).
        """
        if in_idx.dim() != 2:
            raise ValueError(
                f"GPTModel expects token IDs of shape (batch, num_tokens), got shape {tuple(in_idx.shape)}; "
                "for a single sequence use ids.unsqueeze(0)"
            )
        b, seq_len = in_idx.shape
        start = kv_cache.length if kv_cache is not None else 0
        if seq_len == 0:
            raise ValueError("GPTModel got an empty sequence (0 tokens); give it at least one token ID")
        if start + seq_len > self.cfg["context_length"]:
            raise ValueError(
                f"the input has {start + seq_len} tokens but the model's context_length is "
                f"{self.cfg['context_length']}; crop it to the last {self.cfg['context_length']} tokens, "
                f"e.g. idx[:, -{self.cfg['context_length']}:]"
            )
        tok_embeds = self._embed_tokens(in_idx)  # (b, T, emb_dim)
        pos_embeds = self.pos_emb(torch.arange(start, start + seq_len, device=in_idx.device))  # (T, emb_dim)
        x = self.drop_emb(tok_embeds + pos_embeds)  # broadcast over the batch: (b, T, emb_dim)
        if residuals is not None:
            residuals.append(x)

        attentions = []
        for i, block in enumerate(self.trf_blocks):
            layer_cache = kv_cache.layers[i] if kv_cache is not None else None
            x = block(x, kv_cache=layer_cache, return_attention=return_attention)
            if return_attention:
                x, weights = x
                attentions.append(weights)
            if residuals is not None:
                residuals.append(x)

        x = self.final_norm(x)  # (b, T, emb_dim)
        return (x, attentions) if return_attention else x

    def _embed_tokens(self, in_idx: torch.Tensor) -> torch.Tensor:
        """The token embeddings; an ID outside the vocabulary is a ValueError that says the allowed range.

        The range is checked only when the lookup fails (the CPU raises IndexError), never on every call:
        reading the IDs' minimum on the host would make a GPU wait for every forward pass.
        """
        try:
            return self.tok_emb(in_idx)
        except IndexError:
            lo, hi = int(in_idx.min()), int(in_idx.max())
            raise ValueError(f"token IDs must lie in [0, {self.cfg['vocab_size'] - 1}], got values from {lo} to {hi}") from None

    def new_kv_cache(self) -> KVCache:
        """An empty key/value cache for this model (room for ``context_length`` tokens)."""
        return KVCache(self.cfg["n_layers"], self.cfg["context_length"])

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: Union[str, Path],
        dtype: Optional[torch.dtype] = None,
        device: Union[str, torch.device, None] = None,
    ) -> "GPTModel":
        """Build a GPT-2 model and load OpenAI's weights in the Hugging Face format.

        ``name_or_path`` is a local folder holding ``config.json`` and ``model.safetensors``, or a
        model id such as ``"gpt2"`` or ``"gpt2-medium"`` (downloaded with ``huggingface_hub``,
        which needs a network the first time). The model comes back in eval mode.
        How the names map: ``gptbook.loading.hf_gpt2``.
        """
        from .loading.hf_gpt2 import read_hf_gpt2
        from .loading.state import load_state_dict_checked

        cfg, state = read_hf_gpt2(name_or_path)
        with torch.device("meta"):
            model = cls(cfg)  # no memory, no random initialisation: every weight is loaded below
        model = model.to_empty(device="cpu")
        for module in model.modules():  # to_empty leaves buffers empty too: rebuild the causal masks
            if isinstance(module, MultiHeadAttention):
                module.reset_mask()
        if cfg["tie_weights"]:
            model.out_head.weight = model.tok_emb.weight
        load_state_dict_checked(model, state)
        if dtype is not None or device is not None:
            model = model.to(device=device, dtype=dtype)
        return model.eval()


def reads_out_head(model: nn.Module) -> bool:
    """True when ``model(ids)`` is ``model.out_head(model.hidden_states(ids))``: a ``GPTModel`` with gptbook's own
    ``forward`` and ``hidden_states`` and a head without bias. Then a caller may run the head on the positions it
    needs only (the chunked loss, the probes); a model class of your own gets its ``forward`` called instead."""
    return (isinstance(model, GPTModel) and type(model).forward is GPTModel.forward
            and type(model).hidden_states is GPTModel.hidden_states
            and getattr(model.out_head, "bias", None) is None)
