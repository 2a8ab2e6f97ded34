"""Pictures of what the model does: attention heat maps, next-token bars, coloured tokens.

- ``attention_weights``: run the model once and collect every layer's attention weights.
- ``plot_attention`` / ``plot_attention_heads``: heat maps of one head / of all heads of a layer.
- ``plot_next_token_probs``: the most likely next tokens as a bar chart.
- ``token_spans_html`` / ``top_tokens_html``: the same ideas as small HTML snippets (inline
  styles only: no JavaScript, no CDN), for ``IPython.display.HTML`` and the widgets.

Plotting functions draw on the ``ax`` (or ``fig``) you give them, or on a new pyplot figure, and
return it; they never call ``plt.show()`` (end the notebook cell with it). Token labels show a
space as ``·`` and a newline as ``\\n``, so " the" and "the" look different.

Taught in notebooks 01 (tokens), 04 (attention), 07 (generating text) and 08 (inside the model).
This module imports matplotlib, so ``import gptbook`` does not: ``from gptbook import viz``.
"""

from __future__ import annotations

import html
from typing import Any, Optional, Sequence, Union

import matplotlib
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from ..tokenizer import text_to_token_ids

ArrayLike = Union[torch.Tensor, np.ndarray]

#: Pastel backgrounds for neighbouring tokens (dark text stays readable on each, in light and dark themes).
TOKEN_COLOURS = ("#fde2a8", "#c7e6c1", "#bfdcf5", "#f7c6d9", "#dccdf2", "#c8ece9")
BAR_COLOUR = "#4c78a8"
CHOSEN_COLOUR = "#f58518"


# --------------------------------------------------------------------------------------------
# Helpers: readable tokens, percentages, new figures
# --------------------------------------------------------------------------------------------

def token_label(token: str) -> str:
    """Make whitespace visible: a space becomes ``·``, a newline ``\\n``, a tab ``\\t``."""
    return token.replace(" ", "·").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def token_strings(ids: Sequence[int], tokenizer: Any) -> list[str]:
    """The text of each token on its own.

    A token can hold part of a multi-byte character (an emoji is often split over two tokens);
    such bytes are shown as ``\\xf0``-style escapes instead of an unreadable "�".
    """
    if hasattr(tokenizer, "decode_single_token_bytes"):  # tiktoken
        return [tokenizer.decode_single_token_bytes(i).decode("utf-8", errors="backslashreplace") for i in ids]
    return [tokenizer.decode([i]) for i in ids]


def _encode(text: str, tokenizer: Any) -> list[int]:
    return text_to_token_ids(text, tokenizer)[0].tolist()  # allows <|endoftext|>, like the rest of gptbook


def _mpl_label(token: str) -> str:
    """``token_label``, with ``$`` escaped so matplotlib does not read "$...$" as a formula."""
    return token_label(token).replace("$", r"\$")


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


def _percent(p: float) -> str:
    """23.1% / 1.2% / 0.015%: small probabilities keep two significant digits."""
    return f"{p:.1%}" if p >= 0.001 or p == 0 else f"{p * 100:.2g}%"


def _new_figure(figsize: tuple[float, float]) -> Figure:
    import matplotlib.pyplot as plt  # only when the caller gives no ax/fig: the figure shows inline

    return plt.figure(figsize=figsize, layout="constrained")


# --------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------

def attention_weights(
    model: nn.Module, text_or_ids: Union[str, torch.Tensor, Sequence[int]], tokenizer: Any
) -> tuple[list[str], torch.Tensor]:
    """Run ``model`` once on a text and return its tokens and every attention weight.

    Args:
        model: a ``GPTModel``; it runs in eval mode (no dropout) without gradients, and its
            mode is restored afterwards.
        text_or_ids: a string (``<|endoftext|>`` is allowed and becomes one token), or token
            IDs as a list, a 1-D tensor or a (1, n) tensor.
        tokenizer: the tokenizer, e.g. ``get_tokenizer()``.

    Returns:
        ``(tokens, weights)``: the text of each token, and a CPU float tensor of shape
        (n_layers, n_heads, T, T) where ``weights[layer, head, i, j]`` is how much token ``i``
        (the query) attends to token ``j`` (the key). Each row sums to 1; the future (j > i) is 0.

    Input longer than the model's context is cropped from the left (only the last
    ``context_length`` tokens are kept), as ``generate`` does; ``tokens`` shows what was used.
    The weights come from the model's own ``return_attention=True`` path (``interpret.attention_pattern``).
    """
    if isinstance(text_or_ids, str):
        ids = _encode(text_or_ids, tokenizer)
    else:
        ids = torch.as_tensor(text_or_ids, dtype=torch.long)
        if ids.dim() == 2 and ids.shape[0] == 1:
            ids = ids[0]  # a batch of one: (1, n) -> (n,)
        if ids.dim() != 1:
            raise ValueError(f"expected one sequence of token IDs, shape (n,) or (1, n), got {tuple(ids.shape)}")
        ids = ids.tolist()
    if not ids:
        raise ValueError("the text is empty: give at least one token to look at its attention")
    context = model.cfg["context_length"]
    ids = ids[-context:]

    from ..interpret import attention_pattern  # the one place the weights are collected

    with torch.no_grad():
        weights = attention_pattern(model, torch.tensor([ids]))[:, 0]  # (n_layers, n_heads, T, T), on the CPU
    return token_strings(ids, tokenizer), weights


def attention_figsize(num_tokens: int, n_heads: int = 1, ncols: Optional[int] = None) -> tuple[float, float]:
    """A figure size (inches) that keeps token labels readable: one heat map, or a grid of ``n_heads``."""
    if n_heads == 1:
        side = min(11.0, max(4.5, 2.5 + 0.22 * num_tokens))
        return side + 1.2, side
    ncols = ncols or min(4, n_heads)
    nrows = -(-n_heads // ncols)  # ceiling division
    cell = min(4.0, max(2.4, 1.5 + 0.08 * num_tokens))
    return cell * ncols + 1.2, cell * nrows + 1.6  # + room for the labels and titles


def plot_attention(
    weights: ArrayLike,
    tokens: Sequence[str],
    ax: Optional[Axes] = None,
    title: Optional[str] = None,
    *,
    annotate: Optional[bool] = None,
    vmax: Optional[float] = None,
    colorbar: bool = True,
) -> Axes:
    """Draw one head's attention weights (T, T) as a heat map and return the ``Axes``.

    Rows are the queries (the token that is looking), columns the keys (the tokens it looks
    at). The future, above the diagonal, is masked and drawn grey. With ``annotate`` (default:
    when T <= 8) each cell shows its weight. ``vmax`` fixes the top of the colour scale
    (default: the largest weight), so several heat maps can share one scale.
    """
    w = _to_numpy(weights)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"plot_attention expects one head's weights of shape (T, T), got {w.shape}; "
                         "pick a layer and a head first, e.g. weights[layer, head]")
    T = w.shape[0]
    if len(tokens) != T:
        raise ValueError(f"got {len(tokens)} tokens for a {T} x {T} attention matrix; they must match")
    if ax is None:
        ax = _new_figure(attention_figsize(T)).subplots()

    future = np.triu(np.ones((T, T), dtype=bool), k=1)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")  # masked cells: grey
    vmax = float(w[~future].max()) if vmax is None else vmax
    image = ax.imshow(np.ma.masked_array(w, mask=future), cmap=cmap, vmin=0.0, vmax=vmax or 1.0)

    step = max(1, int(np.ceil(T / 48)))  # past ~48 tokens, label every step-th one
    fontsize = 9 if T <= 16 else 7 if T <= 32 else 6
    labels = [_mpl_label(t) for t in tokens]
    ticks = list(range(0, T, step))
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=fontsize)
    ax.set_xlabel("key (token attended to)")
    ax.set_ylabel("query (token attending)")
    if title:
        ax.set_title(title)

    if annotate is None:
        annotate = T <= 8
    if annotate:
        for i in range(T):
            for j in range(i + 1):
                dark_cell = image.norm(w[i, j]) < 0.6  # viridis is dark at the low end
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if dark_cell else "black")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    return ax


def plot_attention_heads(
    weights: ArrayLike,
    tokens: Sequence[str],
    layer: Optional[int] = None,
    fig: Optional[Figure] = None,
    ncols: Optional[int] = None,
) -> Figure:
    """Draw every head of one layer (weights of shape (n_heads, T, T)) side by side.

    All heads share one colour scale, so a brighter cell means a larger weight in any head.
    Draws on ``fig`` if given (an empty figure, e.g. of size ``attention_figsize(T, n_heads)``),
    otherwise on a new pyplot figure.
    """
    w = _to_numpy(weights)
    if w.ndim != 3:
        raise ValueError(f"plot_attention_heads expects one layer's weights of shape (n_heads, T, T), "
                         f"got {w.shape}; pick a layer first, e.g. weights[layer]")
    n_heads, T = w.shape[0], w.shape[1]
    ncols = ncols or min(4, n_heads)
    nrows = -(-n_heads // ncols)  # ceiling division
    if fig is None:
        fig = _new_figure(attention_figsize(T, n_heads, ncols))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()

    vmax = float(np.max(w)) or 1.0
    for h, ax in enumerate(axes):
        if h >= n_heads:
            ax.set_visible(False)
            continue
        plot_attention(w[h], tokens, ax=ax, title=f"head {h}", annotate=False, vmax=vmax, colorbar=False)
        if h % ncols:  # only the first column keeps the query labels
            ax.set_yticklabels([])
            ax.set_ylabel("")
        if h < n_heads - ncols:  # only the lowest plot in each column keeps the key labels
            ax.set_xticklabels([])
            ax.set_xlabel("")
    fig.colorbar(axes[0].images[0], ax=list(axes[:n_heads]), shrink=0.8, label="attention weight")
    if layer is not None:
        fig.suptitle(f"layer {layer}: all {n_heads} heads")
    return fig


# --------------------------------------------------------------------------------------------
# Next-token probabilities
# --------------------------------------------------------------------------------------------

def top_tokens(probs: ArrayLike, tokenizer: Any, top: int = 10) -> list[tuple[int, str, float]]:
    """The ``top`` most likely tokens of a distribution (vocab,) or (1, vocab), best first.

    Returns ``(token_id, token_text, probability)`` triples.
    """
    p = torch.as_tensor(probs).detach().float().cpu()
    if p.dim() == 2 and p.shape[0] == 1:
        p = p[0]
    if p.dim() != 1:
        raise ValueError(f"expected probabilities of shape (vocab_size,) or (1, vocab_size), got {tuple(p.shape)}")
    values, ids = torch.topk(p, min(top, p.numel()))
    texts = token_strings(ids.tolist(), tokenizer)
    return [(i, t, v) for i, t, v in zip(ids.tolist(), texts, values.tolist())]


def _top_and_chosen(probs: ArrayLike, tokenizer: Any, top: int, chosen: Optional[int]) -> list[tuple[int, str, float]]:
    """``top_tokens``, plus the ``chosen`` token at the end when it is not among them."""
    rows = top_tokens(probs, tokenizer, top)
    if chosen is not None and chosen not in [i for i, _, _ in rows]:
        p = torch.as_tensor(probs).detach().float().cpu().reshape(-1)
        rows.append((chosen, token_strings([chosen], tokenizer)[0], float(p[chosen])))
    return rows


def plot_next_token_probs(
    probs: ArrayLike, tokenizer: Any, top: int = 10, ax: Optional[Axes] = None, chosen: Optional[int] = None
) -> Axes:
    """Bar chart of the ``top`` most likely next tokens, most likely at the top.

    ``probs`` is a distribution over the vocabulary, shape (vocab,) or (1, vocab), e.g.
    ``torch.softmax(logits[0, -1], dim=-1)``. The bar of token ID ``chosen`` is highlighted; if
    it is not among the top ones it is added as an extra bar at the bottom.
    """
    rows = _top_and_chosen(probs, tokenizer, top, chosen)
    if ax is None:
        ax = _new_figure((6.0, 0.8 + 0.32 * len(rows))).subplots()

    labels = [_mpl_label(t) for _, t, _ in rows]
    values = [v for _, _, v in rows]
    colours = [CHOSEN_COLOUR if i == chosen else BAR_COLOUR for i, _, _ in rows]
    bars = ax.barh(range(len(rows)), values, color=colours)
    ax.set_yticks(range(len(rows)), labels, fontsize=9)
    ax.invert_yaxis()  # most likely on top
    ax.bar_label(bars, [_percent(v) for v in values], padding=3, fontsize=8)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlim(0, max(values) * 1.2 if max(values) > 0 else 1.0)
    ax.set_xlabel("probability")
    ax.set_title(f"top {top} next tokens" + (" (orange: chosen)" if chosen is not None else ""))
    return ax


# --------------------------------------------------------------------------------------------
# HTML snippets
# --------------------------------------------------------------------------------------------

def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def token_spans_html(text: str, tokenizer: Any, *, summary: bool = True, max_tokens: Optional[int] = 2000) -> str:
    """HTML showing how ``text`` splits into tokens: each a coloured box with its ID below.

    Whitespace is made visible (``·`` for a space, ``\\n`` for a newline, which also starts a
    new row). With ``summary`` a first line counts them ("12 characters → 4 tokens"). At most
    ``max_tokens`` boxes are drawn (None: all), so pasting a book keeps the page responsive.
    ``<|endoftext|>`` is one token (ID 50256). Display it with ``IPython.display.HTML``.
    """
    ids = _encode(text, tokenizer)
    parts = []
    if summary:
        parts.append(f'<div style="margin-bottom:4px;color:#555;font-family:sans-serif;font-size:13px">'
                     f'{_plural(len(text), "character")} → {_plural(len(ids), "token")}</div>')
    shown = ids if max_tokens is None else ids[:max_tokens]
    boxes = []
    for n, (token_id, token) in enumerate(zip(shown, token_strings(shown, tokenizer))):
        boxes.append(
            f'<span title="token ID {token_id}" style="display:inline-flex;flex-direction:column;'
            f'align-items:center;background:{TOKEN_COLOURS[n % len(TOKEN_COLOURS)]};color:#111;'
            f'border-radius:3px;padding:1px 3px;margin:1px">'
            f'<span style="white-space:pre;font-family:monospace;font-size:14px">{html.escape(token_label(token))}</span>'
            f'<span style="font-family:monospace;font-size:10px;color:#444">{token_id}</span></span>'
        )
        if "\n" in token:
            boxes.append('<span style="flex-basis:100%;height:0"></span>')  # start a new row
    if len(shown) < len(ids):
        boxes.append(f'<span style="align-self:center;color:#777;padding:0 4px">… and '
                     f'{_plural(len(ids) - len(shown), "more token")}</span>')
    parts.append('<div style="display:flex;flex-wrap:wrap;align-items:flex-start;line-height:1.2">'
                 + "".join(boxes) + "</div>")
    return "<div>" + "".join(parts) + "</div>"


def top_tokens_html(probs: ArrayLike, tokenizer: Any, top: int = 5, chosen: Optional[int] = None) -> str:
    """The ``top`` most likely next tokens as small HTML bars with percentages.

    The row of token ID ``chosen`` is drawn in orange (and added at the end if it is not among
    the top ones). Used live by the generation widget.
    """
    rows = []
    for token_id, token, p in _top_and_chosen(probs, tokenizer, top, chosen):
        colour = CHOSEN_COLOUR if token_id == chosen else BAR_COLOUR
        label = html.escape(token_label(token))
        rows.append(
            '<div style="display:flex;align-items:center;gap:6px;height:18px">'
            f'<span style="width:11em;overflow:hidden;text-overflow:ellipsis;white-space:pre">{label}</span>'
            f'<span style="display:inline-block;height:11px;width:{max(1, round(160 * p))}px;background:{colour}"></span>'
            f'<span>{_percent(p)}</span></div>'
        )
    return '<div style="font-family:monospace;font-size:12px">' + "".join(rows) + "</div>"


__all__ = [
    "attention_figsize",
    "attention_weights",
    "plot_attention",
    "plot_attention_heads",
    "plot_next_token_probs",
    "token_label",
    "token_spans_html",
    "token_strings",
    "top_tokens",
    "top_tokens_html",
]
