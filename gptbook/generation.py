"""Turning the model's next-token logits into text, one token at a time.

- ``generate_text_simple``: the classic greedy loop (always take the most likely token).
- ``generate``: temperature, top-k and top-p sampling, an end-of-text stop, reproducible seeds
  and a key/value cache, so that only the newest token goes through the model at each step.
- ``generate_stream``: the same, yielding each token as soon as it is chosen (the live widget
  of notebook 07 is built on it).

Taught in notebook 07 (generating text).
"""

from __future__ import annotations

from typing import Iterator, Optional

import torch
from torch import nn

from .prepack import prepacked_linears


def generate_text_simple(model: nn.Module, idx: torch.Tensor, max_new_tokens: int, context_size: int) -> torch.Tensor:
    """Greedily append ``max_new_tokens`` tokens to ``idx`` (b, n); return (b, n + max_new_tokens).

    At each step the model sees at most the last ``context_size`` tokens.
    """
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]  # crop to the supported context
        with torch.no_grad():
            logits = model(idx_cond)  # (b, n_tokens, vocab_size)
        logits = logits[:, -1, :]  # only the last position predicts the next token: (b, vocab_size)
        probas = torch.softmax(logits, dim=-1)
        idx_next = torch.argmax(probas, dim=-1, keepdim=True)  # (b, 1)
        idx = torch.cat((idx, idx_next), dim=1)  # (b, n_tokens + 1)
    return idx


def _check_options(idx, max_new_tokens, temperature, top_k, top_p) -> None:
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
        shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(
            f"idx must be a tensor of token IDs of shape (batch, num_tokens), got {shape}; "
            "text_to_token_ids(text, tokenizer) gives the right shape"
        )
    if idx.shape[1] == 0:
        raise ValueError("the prompt is empty: give at least one token to continue from")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}")
    if temperature is None or temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy: always the most likely token), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must lie in (0, 1] (1 keeps every token), got {top_p!r}")


def filter_logits(
    logits: torch.Tensor, temperature: float = 1.0, top_k: Optional[int] = None, top_p: Optional[float] = None
) -> torch.Tensor:
    """Apply top-k, then temperature, then top-p to next-token logits (b, vocab_size).

    Tokens that are filtered out get ``-inf`` (probability 0 after the softmax). Top-p measures
    the probabilities *after* the temperature (a higher temperature flattens them, so the nucleus
    holds more tokens); top-k does not depend on the order. Tokens tied with the k-th largest
    logit all stay; among tied tokens at the edge of the nucleus the lower token IDs stay. A
    temperature of 0 is treated as 1 here; ``generate`` takes the argmax instead of sampling then.
    """
    if top_k is not None and top_k < logits.shape[-1]:
        kth_largest = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (b, 1)
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    if temperature > 0:
        logits = logits / temperature
    if top_p is not None and top_p < 1.0:
        sorted_logits, sorted_idx = torch.sort(logits, descending=True, stable=True, dim=-1)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        # Drop a token when the tokens *before* it already cover top_p (the first token always stays).
        drop_sorted = (cumulative - torch.softmax(sorted_logits, dim=-1)) >= top_p
        drop = drop_sorted.scatter(-1, sorted_idx, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


@torch.inference_mode()
def generate_stream(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    context_size: Optional[int] = None,
    temperature: float = 0.0,
    top_k: Optional[int] = None,
    eos_id: Optional[int] = None,
    *,
    top_p: Optional[float] = None,
    seed: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
    use_cache: bool = True,
    return_probs: bool = False,
) -> Iterator[torch.Tensor] | Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield the new tokens one at a time, each a LongTensor of shape (b, 1).

    Takes the same options as ``generate``. Stops early when every sequence in the batch has
    produced ``eos_id``; a sequence that finished first is padded with ``eos_id``.
    With ``return_probs=True`` each item is ``(token, probs)``, where ``probs`` (b, vocab_size)
    is the distribution the token was chosen from (after temperature, top-k and top-p).
    """
    _check_options(idx, max_new_tokens, temperature, top_k, top_p)
    model_context = model.cfg["context_length"] if hasattr(model, "cfg") else None
    context_size = context_size or model_context
    if context_size is None:
        raise ValueError("context_size is required for a model without a .cfg['context_length']")
    if model_context is not None:
        context_size = min(context_size, model_context)
    if generator is None and seed is not None:
        generator = torch.Generator(device=idx.device).manual_seed(seed)
    use_cache = use_cache and hasattr(model, "new_kv_cache")

    seq = idx
    finished = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
    cache = None
    with prepacked_linears(model):  # on a CPU: fused, prepacked products, one call per block (prepack.py)
        for _ in range(max_new_tokens):
            if use_cache and cache is not None and cache.length < seq.shape[1] <= context_size:
                logits = model(seq[:, cache.length:], kv_cache=cache)  # only the tokens not cached yet
            elif use_cache and seq.shape[1] <= context_size:
                cache = model.new_kv_cache()
                logits = model(seq, kv_cache=cache)  # the whole prompt once ("prefill")
            else:
                # Past the context (or no cache): recompute on the last context_size tokens, as
                # generate_text_simple does. Positions shift each step, so a cache can't be reused.
                cache = None
                logits = model(seq[:, -context_size:])
            logits = logits[:, -1, :].float()  # (b, vocab_size)

            logits = filter_logits(logits, temperature, top_k, top_p)
            if temperature == 0.0:
                idx_next = torch.argmax(logits, dim=-1, keepdim=True)  # greedy: (b, 1)
            else:
                probs = torch.softmax(logits, dim=-1)
                idx_next = torch.multinomial(probs, num_samples=1, generator=generator)  # (b, 1)

            if eos_id is not None:
                idx_next = idx_next.masked_fill(finished.unsqueeze(1), eos_id)
                finished |= idx_next.squeeze(1) == eos_id
            seq = torch.cat((seq, idx_next), dim=1)
            yield (idx_next, torch.softmax(logits, dim=-1)) if return_probs else idx_next
            if eos_id is not None and bool(finished.all()):
                return


def generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    context_size: Optional[int] = None,
    temperature: float = 0.0,
    top_k: Optional[int] = None,
    eos_id: Optional[int] = None,
    *,
    top_p: Optional[float] = None,
    seed: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Continue the prompt ``idx`` (b, n) by up to ``max_new_tokens`` tokens; return prompt + new tokens.

    Args:
        model: a ``GPTModel`` (any module mapping (b, T) IDs to (b, T, vocab) logits works with
            ``use_cache=False``). Put it in ``eval()`` mode for deterministic results.
        idx: the prompt's token IDs, shape (b, n), e.g. ``text_to_token_ids(text, tokenizer)``.
        max_new_tokens: how many tokens to add at most.
        context_size: how many of the last tokens the model sees (default: its context length).
            Longer prompts are cropped from the left.
        temperature: 0 = greedy (always the most likely token); > 0 samples, higher = more varied.
        top_k: sample only among the ``top_k`` most likely tokens.
        eos_id: stop once every sequence has produced this token (e.g. 50256, ``<|endoftext|>``).
        top_p: nucleus sampling: keep the smallest set of tokens whose probabilities sum to ``top_p``.
        seed: seed for a private random generator, so the same call gives the same text.
        generator: a ``torch.Generator`` to draw from instead of ``seed``.
        use_cache: keep keys/values of past tokens (same tokens, much faster).

    On a CPU, generation runs the model through a faster inference path (fused, prepacked matrix
    products; see ``gptbook.prepack``) that chooses the same tokens. For half the memory and more
    speed, pass a bf16 model (``model.to(torch.bfloat16)`` or
    ``GPTModel.from_pretrained(..., dtype=torch.bfloat16)``).
    """
    new_tokens = list(
        generate_stream(
            model, idx, max_new_tokens, context_size, temperature, top_k, eos_id,
            top_p=top_p, seed=seed, generator=generator, use_cache=use_cache,
        )
    )
    return torch.cat([idx, *new_tokens], dim=1)
