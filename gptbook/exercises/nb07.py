"""Notebook 07's exercises (Generating text): references, cases, common mistakes, hints, solutions."""

from __future__ import annotations


import torch
import torch.nn.functional as F

from ..generation import filter_logits, generate_text_simple
from .spec import Answer, Case, Exercise, Mistake, Property
from ._common import _ids, _rand, _tiny_model

EXERCISES: list[Exercise] = []


def _ref_generate_greedy(model, idx, max_new_tokens, context_size):
    return generate_text_simple(model, idx, max_new_tokens, context_size)


def _greedy_variant(fault):
    def generate(model, idx, max_new_tokens, context_size):
        start = idx
        for _ in range(max_new_tokens):
            if fault == "no_crop":
                cond = idx
            elif fault == "crop_front":
                cond = idx[:, :context_size]
            elif fault == "model_context":
                cond = idx[:, -model.cfg["context_length"]:]
            else:
                cond = idx[:, -context_size:]
            with torch.no_grad():
                logits = model(cond)
            last = logits[:, 0, :] if fault == "first" else logits[:, -1, :]
            if fault == "dim0":
                nxt = torch.argmax(last, dim=0, keepdim=True)
            else:
                nxt = torch.argmax(last, dim=-1, keepdim=True)
            idx = torch.cat((idx, nxt), dim=1)
        return idx[:, start.shape[1]:] if fault == "only_new" else idx
    return generate


def _generation_cases():
    return [Case(label, lambda a=a: (_tiny_model(a[0]), *a[1:])) for label, a in [
        ("batch of 2, 3-token prompts, 5 new", (1, _ids(1, 100, 2, 3), 5, 8)),
        ("batch of 1", (1, _ids(2, 100, 1, 3), 5, 8)),
        ("one-token prompt", (1, _ids(3, 100, 2, 1), 4, 8)),
        ("a prompt longer than the context (10 > 8)", (2, _ids(4, 100, 2, 10), 3, 8)),
        ("another model seed", (3, _ids(5, 100, 3, 4), 6, 8)),
        ("context_size 4, shorter than the model's 8 (6-token prompts)", (1, _ids(6, 100, 2, 6), 4, 4)),
    ]]


def _greedy_preallocated(model, idx, max_new_tokens, context_size):
    b, n = idx.shape
    out = torch.empty(b, n + max_new_tokens, dtype=idx.dtype)
    out[:, :n] = idx
    with torch.no_grad():
        for i in range(n, n + max_new_tokens):
            probas = torch.softmax(model(out[:, max(0, i - context_size):i])[:, -1], dim=-1)
            out[:, i] = probas.argmax(dim=-1)
    return out


def _greedy_max(model, idx, max_new_tokens, context_size):
    for _ in range(max_new_tokens):
        logits = model(idx[:, -context_size:]).detach()[:, -1, :]
        idx = torch.cat([idx, logits.max(dim=-1).indices.unsqueeze(-1)], dim=-1)
    return idx


def _greedy_sampled(model, idx, max_new_tokens, context_size):
    gen = torch.Generator().manual_seed(0)
    for _ in range(max_new_tokens):
        with torch.no_grad():
            probas = torch.softmax(model(idx[:, -context_size:])[:, -1, :], dim=-1)
        idx = torch.cat((idx, torch.multinomial(probas, 1, generator=gen)), dim=1)
    return idx


EXERCISES.append(Exercise(
    id="07.1", title="Greedy generation", name="generate_greedy",
    expects="a function generate_greedy(model, idx, max_new_tokens, context_size) that returns idx with "
            "max_new_tokens greedy tokens appended, shape (b, n + max_new_tokens)",
    kind="function", reference=_ref_generate_greedy, cases=_generation_cases,
    hints=["Loop max_new_tokens times: crop to the last context_size tokens, run the model, take the most likely "
           "next token at the last position, append it.",
           "logits = model(idx[:, -context_size:])[:, -1, :] is (b, vocab_size); "
           "torch.argmax(logits, dim=-1, keepdim=True) is (b, 1); torch.cat((idx, next_id), dim=1)."],
    solution="def generate_greedy(model, idx, max_new_tokens, context_size):\n"
             "    for _ in range(max_new_tokens):\n"
             "        with torch.no_grad():\n"
             "            logits = model(idx[:, -context_size:])[:, -1, :]        # (b, vocab_size)\n"
             "        next_id = torch.argmax(logits, dim=-1, keepdim=True)       # (b, 1)\n"
             "        idx = torch.cat((idx, next_id), dim=1)\n"
             "    return idx",
    mistakes=[
        Mistake("argmax over the wrong dimension",
                "The vocabulary is the last dimension: torch.argmax(logits, dim=-1, keepdim=True).",
                answer=_greedy_variant("dim0")),
        Mistake("the first position's logits are used instead of the last",
                "Only the last position predicts the token after the prompt: logits[:, -1, :].",
                answer=_greedy_variant("first")),
        Mistake("the input is not cropped to the context",
                "The model reads at most context_size tokens: feed idx[:, -context_size:].",
                error=r"context_length is"),
        Mistake("only the new tokens are returned", "Return the prompt with the new tokens appended: torch.cat((idx, ...)).",
                answer=_greedy_variant("only_new")),
        Mistake("the front of the context is kept instead of the back",
                "Crop to the *last* context_size tokens, the newest ones: idx[:, -context_size:], not "
                "idx[:, :context_size].",
                answer=_greedy_variant("crop_front")),
        Mistake("the input is cropped to the model's context_length instead of context_size",
                "Use the context_size argument: idx[:, -context_size:] (it may be shorter than the model's).",
                answer=_greedy_variant("model_context")),
    ],
    wrong_answers=[
        Answer("no crop at all", lambda m, idx, k, c: _greedy_variant("no_crop")(m, idx, k, c),
               "the input is not cropped to the context"),
        Answer("sampling instead of the most likely token", _greedy_sampled),
        Answer("one token too few", lambda m, idx, k, c: generate_text_simple(m, idx, k - 1, c)),
    ],
    variants=[
        Answer("a preallocated output, probas.argmax", _greedy_preallocated),
        Answer("logits.max(-1).indices", _greedy_max),
        Answer("gptbook.generate_text_simple", generate_text_simple),
    ],
))


def _ref_next_token_probas(logits, temperature, top_k):
    kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
    logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.softmax(logits / temperature, dim=-1)


def _probas_variant(fault):
    def probas(logits, temperature, top_k):
        if fault == "after_softmax":
            p = torch.softmax(logits / temperature, dim=-1)
            kth = torch.topk(p, top_k, dim=-1).values[:, -1:]
            return p.masked_fill(p < kth, 0.0)
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        drop = logits <= kth if fault == "le" else logits < kth
        masked = logits.masked_fill(drop, 0.0 if fault == "zero" else float("-inf"))
        scaled = masked * temperature if fault == "times" else masked / temperature
        return torch.softmax(scaled, dim=0 if fault == "batch" else -1)
    return probas


def _probas_cases():
    return [Case(label, lambda a=a: (3 * _rand(a[0], a[1], 10), a[2], a[3])) for label, a in [
        ("batch of 2, temperature 1, top-3", (1, 2, 1.0, 3)),
        ("temperature 0.5, top-5", (2, 2, 0.5, 5)),
        ("temperature 2, top-5", (3, 2, 2.0, 5)),
        ("batch of 1, top-1", (4, 1, 1.5, 1)),
        ("top-k = the whole vocabulary", (5, 3, 0.8, 10)),
    ]]


def _probas_scatter(logits, temperature, top_k):
    top = torch.topk(logits / temperature, top_k, dim=-1)
    kept = torch.full_like(logits, float("-inf")).scatter(-1, top.indices, top.values)
    return F.softmax(kept, dim=1)


def _probas_sorted(logits, temperature, top_k):
    kth = logits.sort(dim=-1, descending=True).values[:, top_k - 1:top_k]
    return torch.softmax(torch.where(logits >= kth, logits / temperature, -torch.inf), dim=-1)


EXERCISES.append(Exercise(
    id="07.2", title="Top-k and temperature", name="next_token_probas",
    expects="a function next_token_probas(logits, temperature, top_k) that takes logits (b, vocab_size) and "
            "returns the sampling probabilities (b, vocab_size)",
    kind="function", reference=_ref_next_token_probas, cases=_probas_cases,
    hints=["Keep the top_k largest logits, set the others to -inf, divide by the temperature, softmax.",
           "kth = torch.topk(logits, top_k, dim=-1).values[:, -1:] (b, 1); "
           "logits.masked_fill(logits < kth, float('-inf')); torch.softmax(logits / temperature, dim=-1)."],
    solution="def next_token_probas(logits, temperature, top_k):\n"
             "    kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]            # (b, 1)\n"
             "    logits = logits.masked_fill(logits < kth, float('-inf'))\n"
             "    return torch.softmax(logits / temperature, dim=-1)",
    mistakes=[
        Mistake("the logits are multiplied by the temperature", "Divide by it: a high temperature must flatten.",
                answer=_probas_variant("times")),
        Mistake("the filtered tokens get logit 0 instead of -inf",
                "exp(0) = 1 is not a probability of zero: use float('-inf').",
                answer=_probas_variant("zero")),
        Mistake("top-k is applied after the softmax, so the probabilities no longer sum to 1",
                "Filter the logits first (with -inf), then take the softmax.",
                answer=_probas_variant("after_softmax")),
        Mistake("<= instead of < drops the k-th largest logit too (k - 1 tokens are left, none for top-1)",
                "Drop only the logits *below* the k-th largest: logits < kth (ties with it stay).",
                answer=_probas_variant("le")),
        Mistake("the softmax runs over the batch instead of the vocabulary",
                "Each row is one sequence's distribution over the vocabulary: torch.softmax(..., dim=-1).",
                answer=_probas_variant("batch")),
    ],
    wrong_answers=[
        Answer("no top-k at all", lambda logits, t, k: torch.softmax(logits / t, dim=-1)),
        Answer("the k smallest logits kept", lambda logits, t, k: _ref_next_token_probas(-logits, t, k)),
        Answer("logits returned, not probabilities", lambda logits, t, k: filter_logits(logits, t, k)),
    ],
    variants=[
        Answer("topk values scattered into -inf", _probas_scatter),
        Answer("sort, torch.where and logits >= kth", _probas_sorted),
        Answer("gptbook.filter_logits and a softmax",
               lambda logits, t, k: torch.softmax(filter_logits(logits, t, k), -1)),
    ],
))


def _cached_generate(model, idx, max_new_tokens, pos_shift=0, mask_offset=True, one_by_one=False):
    """Greedy generation with a key/value cache written out by hand on gptbook's GPTModel; ``pos_shift``
    (None: no offset at all) and ``mask_offset`` build in mistakes. The prompt goes in at once (or, with
    ``one_by_one``, token by token), and the last new token goes through the model too."""
    cache = [([], []) for _ in model.trf_blocks]
    out = idx
    pending = [idx[:, i:i + 1] for i in range(idx.shape[1])] if one_by_one else [idx]
    with torch.no_grad():
        while pending:
            new = pending.pop(0)
            start = sum(k.shape[2] for k in cache[0][0])  # tokens seen so far
            t = new.shape[1]
            pos = torch.arange(t) if pos_shift is None else torch.arange(start + pos_shift, start + pos_shift + t)
            x = model.tok_emb(new) + model.pos_emb(pos)
            for block, (ks, vs) in zip(model.trf_blocks, cache):
                att = block.att
                h = block.norm1(x)
                b = h.shape[0]
                split = lambda z: z.view(b, t, att.num_heads, att.head_dim).transpose(1, 2)  # noqa: E731
                ks.append(split(att.W_key(h)))
                vs.append(split(att.W_value(h)))
                k, v = torch.cat(ks, dim=2), torch.cat(vs, dim=2)
                n = k.shape[2]
                mask = att.mask[n - t:n, :n] if mask_offset else att.mask[:t, :n]
                scores = (split(att.W_query(h)) @ k.transpose(2, 3)).masked_fill(mask, float("-inf"))
                ctx = (torch.softmax(scores / att.head_dim**0.5, dim=-1) @ v).transpose(1, 2).reshape(b, t, -1)
                x = x + att.out_proj(ctx)
                x = x + block.ff(block.norm2(x))
            if pending or out.shape[1] == idx.shape[1] + max_new_tokens:
                continue
            logits = model.out_head(model.final_norm(x))[:, -1, :]
            pending.append(torch.argmax(logits, dim=-1, keepdim=True))
            out = torch.cat((out, pending[0]), dim=1)
    return out


def _cache_reset_every_step(model, idx, max_new_tokens):
    for _ in range(max_new_tokens):
        idx = _cached_generate(model, idx, 1)
    return idx


def _ref_generate_cached(model, idx, max_new_tokens):
    cache = model.new_kv_cache()  # gptbook's own cache
    with torch.no_grad():
        logits = model(idx, kv_cache=cache)[:, -1, :]
        for _ in range(max_new_tokens):
            next_id = torch.argmax(logits, dim=-1, keepdim=True)
            idx = torch.cat((idx, next_id), dim=1)
            if idx.shape[1] < cache.capacity:
                logits = model(next_id, kv_cache=cache)[:, -1, :]
    return idx


def _cache_cases():
    return [Case(label, lambda a=a: (_tiny_model(a[0]), a[1], a[2])) for label, a in [
        ("batch of 2, 3-token prompts, 4 new", (1, _ids(11, 100, 2, 3), 4)),
        ("batch of 1", (1, _ids(12, 100, 1, 3), 4)),
        ("one-token prompt", (1, _ids(13, 100, 2, 1), 5)),
        ("up to the full context (8)", (2, _ids(14, 100, 2, 4), 4)),
        ("another model seed", (3, _ids(15, 100, 3, 2), 5)),
    ]]


_NO_CACHE = Mistake(
    "nothing is cached: the whole sequence goes through the model again at every step",
    "Run the prompt once and keep every layer's keys and values; after that feed only the newest token "
    "(b, 1) through the model, at position n (the number of tokens seen), and attend over the stored keys too.")


def _cache_is_used(answer, run):
    """The property of 07.3: each position goes through the model once, at its own position. Hooks on the
    first block's key projection (W_key) and on pos_emb record the rows and positions the answer computes."""
    model, idx, new = _tiny_model(1), _ids(16, 100, 2, 3), 4
    rows, positions = [], []
    hooks = [model.trf_blocks[0].att.W_key.register_forward_pre_hook(lambda m, a: rows.append(a[0].shape[-2])),
             model.pos_emb.register_forward_pre_hook(lambda m, a: positions.extend(a[0].flatten().tolist()))]
    try:
        outcome = run(lambda: answer(model, idx, new))
    finally:
        for hook in hooks:
            hook.remove()
    if outcome.error is not None or outcome.timed_out:
        return None  # reported by the cases already, or out of time (reported by the caller)
    n = idx.shape[1]
    if rows and sum(rows) > n + new:
        return (f"Generating {new} tokens after a {n}-token prompt, the first block computed keys for "
                f"{sum(rows)} positions ({' + '.join(map(str, rows))}); with a cache each position goes through "
                f"the model once: {n} for the prompt, then 1 per new token.", _NO_CACHE)
    if positions and positions != list(range(len(positions))):
        return (f"The positions looked up in pos_emb were {positions}: with a cache every token is looked up "
                f"once, at its own position 0, 1, 2, ...")
    return None


EXERCISES.append(Exercise(
    id="07.3", title="A key/value cache by hand", name="generate_with_cache",
    expects="a function generate_with_cache(model, idx, max_new_tokens) that generates greedily with your own "
            "key/value cache and returns (b, n + max_new_tokens) token IDs, the same as without a cache",
    kind="function", reference=_ref_generate_cached, cases=_cache_cases,
    properties=[Property("the cache is used: after the prompt, only the newest token goes through the model, at "
                         "its own position", _cache_is_used)],
    hints=["First run the whole prompt and store every layer's keys and values; then feed only the newest token, "
           "append its keys and values, and attend over all stored ones.",
           "Two offsets: the new token's position is the number of tokens seen so far (pos_emb(torch.arange(start, "
           "start + t))), and its row of the causal mask is mask[n - t:n, :n] where n counts the stored keys."],
    solution="def generate_with_cache(model, idx, max_new_tokens):\n"
             "    cache = [None] * len(model.trf_blocks)       "
             "# per block: (keys, values), each (b, heads, n, head_dim)\n"
             "    new = idx                                    # the whole prompt first, then one token at a time\n"
             "    with torch.no_grad():\n"
             "        for _ in range(max_new_tokens):\n"
             "            b, t = new.shape\n"
             "            start = idx.shape[1] - t             # tokens seen before the new ones\n"
             "            x = model.tok_emb(new) + model.pos_emb(torch.arange(start, start + t))\n"
             "            for i, block in enumerate(model.trf_blocks):\n"
             "                att, h = block.att, block.norm1(x)\n"
             "                split = lambda z: z.view(b, t, att.num_heads, att.head_dim).transpose(1, 2)\n"
             "                q, k, v = split(att.W_query(h)), split(att.W_key(h)), split(att.W_value(h))\n"
             "                if cache[i] is not None:         # append to the stored keys and values\n"
             "                    k = torch.cat([cache[i][0], k], dim=2)\n"
             "                    v = torch.cat([cache[i][1], v], dim=2)\n"
             "                cache[i] = (k, v)\n"
             "                n = k.shape[2]\n"
             "                scores = (q @ k.transpose(2, 3)).masked_fill(att.mask[n - t:n, :n], float('-inf'))\n"
             "                weights = torch.softmax(scores / att.head_dim**0.5, dim=-1)\n"
             "                x = x + att.out_proj((weights @ v).transpose(1, 2).reshape(b, t, -1))\n"
             "                x = x + block.ff(block.norm2(x))\n"
             "            logits = model.out_head(model.final_norm(x))[:, -1, :]\n"
             "            new = torch.argmax(logits, dim=-1, keepdim=True)   # (b, 1): all that goes in next\n"
             "            idx = torch.cat((idx, new), dim=1)\n"
             "    return idx",
    mistakes=[
        Mistake("the new token's position is not offset (it gets position 0 every time)",
                "The token after n cached ones sits at position n: pos_emb(torch.arange(n, n + t)).",
                answer=lambda m, i, k: _cached_generate(m, i, k, pos_shift=None)),
        Mistake("the new token's position is off by one",
                "Positions count from 0: after n cached tokens the new one sits at position n, "
                "torch.arange(n, n + t), not n + 1.",
                answer=lambda m, i, k: _cached_generate(m, i, k, pos_shift=1)),
        Mistake("the causal mask is not offset for the new query",
                "The new query is row n - 1 of the full mask, not row 0: mask[n - t:n, :n].",
                answer=lambda m, i, k: _cached_generate(m, i, k, mask_offset=False)),
        _NO_CACHE,
    ],
    wrong_answers=[
        Answer("no cache at all: generate_text_simple",
               lambda m, idx, k: generate_text_simple(m, idx, k, m.cfg["context_length"]), _NO_CACHE.name),
        Answer("a hand-written cache started afresh at every step", _cache_reset_every_step, _NO_CACHE.name),
        Answer("positions counted from 1", lambda m, i, k: _cached_generate(m, i, k, pos_shift=1),
               "the new token's position is off by one"),
    ],
    variants=[
        Answer("the prompt token by token, the last token through the model too",
               lambda m, i, k: _cached_generate(m, i, k, one_by_one=True)),
        Answer("gptbook's cache: model(ids, kv_cache=model.new_kv_cache())", _ref_generate_cached),
    ],
))
