"""Looking inside a trained GPT: what each layer predicts, how surprised the model is, what each head does.

Four tools, each on the learner's own ``GPTModel`` (no Hugging Face model needed, nothing online):

    logit_lens(model, ids)            the top token after the embedding and after every block
    token_surprise(model, ids)        the loss of every actual next token, and the top-k candidates
    head_scores(model)                previous-token, first-token (sink) and induction score per head
    ablate(model, heads=[(1, 2)])     a context manager that switches heads or whole blocks off

Plus two pictures: ``plot_logit_lens`` and ``plot_head_scores``.

*Logit lens*: the residual stream after block ``i`` is sent through the final LayerNorm and the
output head, as if the model stopped there: at which layer does the right answer appear?

*Ablation* zeroes what a head (or a whole block) adds to the residual stream while the
``with`` block runs, through forward hooks that are removed afterwards: the weights are never
touched. Measuring what breaks (``gptbook.training.probes``) shows what a head *causes*, not only what
it attends to.

Taught in notebook 10 (inside the trained model).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ._shared import eval_mode
from .tokenizer import get_tokenizer

#: The head roles ``head_scores`` measures, in the order it returns them.
HEAD_ROLES = ("previous_token", "first_token", "induction")


def _as_ids(ids: Union[torch.Tensor, Sequence[int]]) -> torch.Tensor:
    """Token IDs as a (1, T) long tensor (accepts a list, a (T,) or a (1, T) tensor)."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids.unsqueeze(0)
    if ids.dim() != 2 or ids.shape[0] != 1 or ids.shape[1] == 0:
        raise ValueError(f"expected the token IDs of one text, shape (T,) or (1, T) with T >= 1, "
                         f"got shape {tuple(ids.shape)}")
    return ids


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# --------------------------------------------------------------------------------------------
# The logit lens
# --------------------------------------------------------------------------------------------

@dataclass
class LogitLens:
    """What ``logit_lens`` found for one text; layer 0 is the embedding, layer ``i`` the output of block ``i - 1``."""

    layer_names: list[str]  # "embedding", "block 0", ..., "block L-1" (the last one is the model's own output)
    tokens: list[str]  # the text's tokens
    top_ids: torch.Tensor  # (L + 1, T) the most likely next token after each layer, at each position
    top_probs: torch.Tensor  # (L + 1, T) its probability
    next_probs: torch.Tensor  # (L + 1, T - 1) the probability given to the token that really comes next

    def top_tokens(self, tokenizer=None) -> list[list[str]]:
        """The top token of every layer and position as text: ``[layer][position]``."""
        tokenizer = tokenizer if tokenizer is not None else get_tokenizer()
        return [[tokenizer.decode([int(i)]) for i in row] for row in self.top_ids]

    def first_layer_right(self, position: int) -> Optional[int]:
        """The first layer from which on the top token at ``position`` is the text's next token (None: never)."""
        if not 0 <= position < self.next_probs.shape[1]:
            raise ValueError(f"position must lie in [0, {self.next_probs.shape[1] - 1}] (a token that has a "
                             f"next token), got {position}")
        right = self.top_ids[:, position] == self._targets[position]  # (L + 1,)
        first = None
        for layer in range(len(right) - 1, -1, -1):  # from the top down: right at every layer above
            if not right[layer]:
                break
            first = layer
        return first

    _targets: Optional[torch.Tensor] = None  # (T - 1,) the next tokens, set by logit_lens


@torch.no_grad()
def logit_lens(model: nn.Module, ids: Union[torch.Tensor, Sequence[int]], tokenizer=None) -> LogitLens:
    """Read the residual stream after the embedding and after every block through the model's own head.

    Args:
        model: a ``GPTModel``.
        ids: the token IDs of one text, (T,) or (1, T), at most ``context_length`` long.

    The last layer's prediction is exactly the model's output. Runs in eval mode (no dropout);
    the model's mode is restored afterwards.
    """
    ids = _as_ids(ids).to(_device(model))
    if ids.shape[1] > model.cfg["context_length"]:
        raise ValueError(f"the text has {ids.shape[1]} tokens but the model sees at most "
                         f"{model.cfg['context_length']}: crop it first")
    tokenizer = tokenizer if tokenizer is not None else get_tokenizer()
    with eval_mode(model):
        streams: list[torch.Tensor] = []  # after the embeddings, then after every block: each (1, T, emb_dim)
        model.hidden_states(ids, residuals=streams)
        stacked = torch.cat(streams)  # (L + 1, T, emb_dim)
        probs = torch.softmax(model.out_head(model.final_norm(stacked)).float(), dim=-1)  # (L + 1, T, vocab)
    top_probs, top_ids = probs.max(dim=-1)  # (L + 1, T)
    targets = ids[0, 1:]  # (T - 1,)
    next_probs = probs[:, :-1].gather(2, targets.view(1, -1, 1).expand(len(probs), -1, 1)).squeeze(2)
    lens = LogitLens(
        layer_names=["embedding"] + [f"block {i}" for i in range(len(model.trf_blocks))],
        tokens=[tokenizer.decode([int(i)]) for i in ids[0]],
        top_ids=top_ids.cpu(), top_probs=top_probs.cpu(), next_probs=next_probs.cpu(),
    )
    lens._targets = targets.cpu()
    return lens


def plot_logit_lens(lens: LogitLens, tokenizer=None, ax=None, max_label: int = 8):
    """Heat map: one row per layer (embedding at the bottom), one column per position.

    Each cell shows the top next-token guess after that layer; its colour is the probability
    that layer gives to the token that really comes next (the last position has no next token).
    Returns the matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(max(6, 0.9 * len(lens.tokens)), 0.6 * len(lens.layer_names) + 1.4))
    L1, T = lens.top_ids.shape
    values = torch.full((L1, T), float("nan"))
    values[:, :T - 1] = lens.next_probs
    image = ax.imshow(values.numpy(), origin="lower", aspect="auto", cmap="Greens", vmin=0.0, vmax=1.0)
    for layer, row in enumerate(lens.top_tokens(tokenizer)):
        for pos, text in enumerate(row):
            label = repr(text)[1:-1][:max_label]
            dark = pos < T - 1 and float(values[layer, pos]) > 0.6
            ax.text(pos, layer, label, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_yticks(range(L1), lens.layer_names)
    ax.set_xticks(range(T), [repr(t)[1:-1][:max_label] for t in lens.tokens], rotation=60, ha="right", fontsize=8)
    ax.set_xlabel("input token (the guess in the cell is for the token after it)")
    ax.figure.colorbar(image, ax=ax, label="probability of the real next token", fraction=0.03)
    return ax


# --------------------------------------------------------------------------------------------
# How surprised is the model by each token?
# --------------------------------------------------------------------------------------------

@dataclass
class Surprise:
    """Per-position view of one text: ``losses[i]`` is the loss of token ``i + 1`` given tokens ``0..i``."""

    tokens: list[str]  # the text's tokens
    ids: list[int]
    losses: torch.Tensor  # (T - 1,) -log p(actual next token), in nats
    probs: torch.Tensor  # (T, vocab) the next-token distribution at every position

    def top_k(self, position: int, k: int = 5, tokenizer=None) -> list[tuple[str, float]]:
        """The ``k`` most likely next tokens after position ``position``: ``[(text, probability), ...]``."""
        if not 0 <= position < len(self.tokens):
            raise ValueError(f"position must lie in [0, {len(self.tokens) - 1}], got {position}")
        tokenizer = tokenizer if tokenizer is not None else get_tokenizer()
        values, indices = self.probs[position].topk(k)
        return [(tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, indices)]


@torch.no_grad()
def token_surprise(model: nn.Module, ids: Union[torch.Tensor, Sequence[int]], tokenizer=None) -> Surprise:
    """Run the model once over a text: the next-token distribution at every position and the loss of
    each token that really comes next (high loss = the model was surprised). Eval mode, mode restored."""
    ids = _as_ids(ids)
    context = model.cfg["context_length"]
    if ids.shape[1] > context:
        raise ValueError(f"the text has {ids.shape[1]} tokens but the model sees at most {context}: crop it first")
    tokenizer = tokenizer if tokenizer is not None else get_tokenizer()
    with eval_mode(model):
        logits = model(ids.to(_device(model)))[0].float().cpu()  # (T, vocab)
    probs = torch.softmax(logits, dim=-1)
    losses = F.cross_entropy(logits[:-1], ids[0, 1:], reduction="none")  # (T - 1,)
    return Surprise([tokenizer.decode([int(i)]) for i in ids[0]], ids[0].tolist(), losses, probs)


# --------------------------------------------------------------------------------------------
# Head roles
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def attention_pattern(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """The attention weights of every layer and head for a batch: (b, T) IDs -> (L, b, H, T, T)."""
    with eval_mode(model):
        _, weights = model(ids.to(_device(model)), return_attention=True)
    return torch.stack(weights).float().cpu()


def scores_from_attention(weights: torch.Tensor, period: Optional[int] = None) -> dict[str, torch.Tensor]:
    """Head-role scores from attention weights ``(L, b, H, T, T)``; each score is (L, H), in [0, 1].

    ``previous_token``: mean weight a token puts on the token just before it (positions >= 2).
    ``first_token``: mean weight on position 0, the "attention sink" (positions >= 2).
    ``induction`` (only with ``period``: the input is a sequence of ``period`` tokens after position 0,
    then the same tokens again): mean weight a token of the second copy puts on the token that
    *followed* its earlier occurrence, ``period - 1`` positions back.
    """
    L, b, H, T, _ = weights.shape
    pos = torch.arange(2, T)
    scores = {
        "previous_token": weights[..., pos, pos - 1].mean(dim=(1, 3)),
        "first_token": weights[..., pos, 0].mean(dim=(1, 3)),
    }
    if period is not None:
        if T < 2 * period + 1:
            raise ValueError(f"an induction score needs 1 + 2 x period = {2 * period + 1} positions, got {T}")
        second = torch.arange(period + 1, 2 * period + 1)  # the second copy
        scores["induction"] = weights[..., second, second - period + 1].mean(dim=(1, 3))
    return scores


def repeated_random_tokens(n_tokens: int = 40, batch: int = 8, seed: int = 0,
                           vocabulary: Optional[Sequence[int]] = None) -> torch.Tensor:
    """``batch`` sequences of ``<|endoftext|>`` + ``n_tokens`` random tokens + the same tokens again: (batch, 1 + 2n).

    The tokens are drawn (seeded, no token twice in one copy) from ``vocabulary``: by default every token
    of the bundled stories, so that the model has seen each of them, but never in this order. The same
    sequences as the ``induction`` probe's (``gptbook.training.probes.repeated_sequences``).
    """
    from .training.probes import repeated_sequences

    return repeated_sequences(batch, n_tokens, seed, vocabulary=vocabulary)


def corpus_vocabulary() -> list[int]:
    """The distinct token IDs of the bundled training stories (sorted; ``gptbook.training.probes.corpus_token_ids``)."""
    from .training.probes import corpus_token_ids

    return corpus_token_ids()


def head_scores(model: nn.Module, text_ids: Optional[torch.Tensor] = None, n_tokens: int = 40, batch: int = 8,
                seed: int = 0) -> dict[str, torch.Tensor]:
    """Score every head of ``model`` for the three roles of ``HEAD_ROLES``; each a (n_layers, n_heads) tensor.

    The previous-token and first-token scores are measured on ``text_ids`` ((b, T) token IDs of real
    text; default: the repeated random tokens) and the induction score on ``batch`` sequences of
    ``n_tokens`` random tokens repeated twice (``repeated_random_tokens``): a head whose weight at the
    second copy lands on the token after the first copy of the current token is an induction head.
    """
    if 2 * n_tokens + 1 > model.cfg["context_length"]:
        raise ValueError(f"2 x n_tokens + 1 = {2 * n_tokens + 1} exceeds the context length "
                         f"{model.cfg['context_length']}: use fewer tokens")
    repeated = repeated_random_tokens(n_tokens, batch, seed)
    scores = scores_from_attention(attention_pattern(model, repeated), period=n_tokens)
    if text_ids is not None:
        text_ids = torch.as_tensor(text_ids, dtype=torch.long)
        scores.update(scores_from_attention(attention_pattern(model, text_ids.view(-1, text_ids.shape[-1]))))
    return {role: scores[role] for role in HEAD_ROLES}


@torch.no_grad()
def copy_losses(model: nn.Module, n_tokens: int = 40, batch: int = 8, seed: int = 0) -> tuple[float, float]:
    """Mean loss on the first and on the second copy of repeated random tokens.

    A model that copies from its context (induction heads) predicts the second copy far better.
    """
    ids = repeated_random_tokens(n_tokens, batch, seed).to(_device(model))
    with eval_mode(model):
        logits = model(ids[:, :-1]).float()  # (b, 2n, vocab)
    losses = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten(), reduction="none").view(batch, -1)
    # predicting the first copy's tokens 2..n (the very first one has no context) / the second copy's
    return float(losses[:, 1:n_tokens].mean()), float(losses[:, n_tokens + 1:].mean())


def strongest_head(scores: torch.Tensor) -> tuple[int, int]:
    """(layer, head) of the largest entry of a (n_layers, n_heads) score grid."""
    layer, head = divmod(int(scores.argmax()), scores.shape[1])
    return layer, head


def plot_head_scores(scores: dict[str, torch.Tensor], fig=None):
    """One small grid per role (rows: layers, columns: heads), each score written in its cell. Returns the figure."""
    import matplotlib.pyplot as plt

    roles = list(scores)
    L, H = scores[roles[0]].shape
    if fig is None:
        fig = plt.figure(figsize=(3.2 * len(roles), 0.55 * L + 1.6), layout="constrained")
    axes = fig.subplots(1, len(roles), squeeze=False)[0]
    for ax, role in zip(axes, roles):
        grid = scores[role]
        ax.imshow(grid.numpy(), cmap="Purples", vmin=0.0, vmax=1.0)
        for layer in range(L):
            for head in range(H):
                value = float(grid[layer, head])
                ax.text(head, layer, f"{value:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if value > 0.6 else "black")
        ax.set_title(role.replace("_", "-"), fontsize=10)
        ax.set_xticks(range(H))
        ax.set_yticks(range(L))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
    return fig


# --------------------------------------------------------------------------------------------
# Ablation: switch heads or blocks off, for the length of a `with` block
# --------------------------------------------------------------------------------------------

def _check_heads(model: nn.Module, heads: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    n_layers, n_heads = model.cfg["n_layers"], model.cfg["n_heads"]
    by_layer: dict[int, list[int]] = {}
    for item in heads:
        try:
            layer, head = (int(v) for v in item)
        except (TypeError, ValueError):
            raise ValueError(f"heads must be (layer, head) pairs such as (1, 2), got {item!r}") from None
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            raise ValueError(f"head {(layer, head)} does not exist: layers 0..{n_layers - 1}, heads 0..{n_heads - 1}")
        by_layer.setdefault(layer, []).append(head)
    return by_layer


@contextlib.contextmanager
def ablate(model: nn.Module, heads: Iterable[tuple[int, int]] = (), layers: Iterable[int] = ()) -> Iterator[nn.Module]:
    """Switch attention heads or whole transformer blocks off while the ``with`` block runs.

    ``heads``: (layer, head) pairs; the head's output (its slice of the vector the attention's
    output projection reads) becomes zero, so it adds nothing to the residual stream.
    ``layers``: block indices; the block passes its input through unchanged (its attention and
    feed-forward both add nothing).

    ::

        with ablate(model, heads=[(2, 1)]):
            print(run_probes(model))      # the model without head 1 of layer 2
        # here the model is exactly as before: the hooks are removed, the weights were never changed

    Works with every forward path (training loss, generation, the KV cache).
    """
    by_layer = _check_heads(model, heads)
    layers = [int(i) for i in layers]
    for i in layers:
        if not 0 <= i < model.cfg["n_layers"]:
            raise ValueError(f"layer {i} does not exist: the model has layers 0..{model.cfg['n_layers'] - 1}")
    head_dim = model.cfg["emb_dim"] // model.cfg["n_heads"]
    handles = []

    def zero_heads(chosen: list[int]):
        def hook(_module, args):
            context = args[0].clone()  # (b, T, d_out): the heads' outputs side by side
            for h in chosen:
                context[..., h * head_dim:(h + 1) * head_dim] = 0.0
            return (context,) + tuple(args[1:])
        return hook

    def skip_block(_module, args, kwargs, output):
        x = args[0] if args else kwargs["x"]
        return (x, output[1]) if isinstance(output, tuple) else x

    try:
        for layer, chosen in by_layer.items():
            handles.append(model.trf_blocks[layer].att.out_proj.register_forward_pre_hook(zero_heads(chosen)))
        for layer in layers:
            handles.append(model.trf_blocks[layer].register_forward_hook(skip_block, with_kwargs=True))
        yield model
    finally:
        for handle in handles:
            handle.remove()


__all__ = [
    "HEAD_ROLES", "LogitLens", "Surprise", "ablate", "attention_pattern", "copy_losses", "corpus_vocabulary",
    "head_scores", "logit_lens", "name_copy_scores", "plot_head_scores", "plot_logit_lens", "repeated_random_tokens",
    "scores_from_attention", "strongest_head", "token_surprise",
]


@torch.no_grad()
def name_copy_scores(model: nn.Module, n_stories: int = 10) -> torch.Tensor:
    """For every head, (n_layers, n_heads): how much weight it puts, where a name must be copied
    (the ``name_copying`` probe sites of ``n_stories`` validation stories), on the earlier
    occurrences of that very name in the context -- the head that *fetches* the name."""
    from .training.probes import probe_sites

    token_lists, sites = probe_sites(n_stories)
    context = model.cfg["context_length"]
    totals = torch.zeros(model.cfg["n_layers"], model.cfg["n_heads"])
    n = 0
    for site in sites:
        if site.probe != "name_copying":
            continue
        start = max(0, site.position - context)
        window = token_lists[site.story][start:site.position]  # ends with the token that predicts the name
        earlier = [j for j, t in enumerate(window) if t == site.target]
        if not earlier:
            continue
        weights = attention_pattern(model, torch.tensor([window]))  # (L, 1, H, T, T)
        totals += weights[:, 0, :, -1, earlier].sum(dim=-1)  # (L, H)
        n += 1
    if n == 0:
        raise ValueError("no name-copying site with an earlier mention of the name: use more stories")
    return totals / n
