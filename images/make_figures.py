#!/usr/bin/env python3
"""Regenerate every course diagram in ``images/`` as a hand-written SVG file.

Usage::

    python images/make_figures.py            # (re)write all figures next to this script
    python images/make_figures.py --check    # exit 1 if any figure on disk differs from a fresh one
    python images/make_figures.py --outdir /tmp/figs   # write somewhere else

Only the Python standard library is used and every number is formatted explicitly, so the
output is byte-for-byte identical on every machine and every run.  The SVGs use no external
fonts, scripts or links: they render offline, inside Jupyter and on GitHub.  Each one has a
white rounded background so it stays readable in dark mode, plus ``<title>``/``<desc>`` for
screen readers.

Colour code shared by all figures:
    blue   embeddings / token data        orange  attention
    green  feed-forward                   grey    LayerNorm, dropout, plumbing
    purple output head / logits           red     loss / training signal
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"
MONO = "DejaVu Sans Mono, Menlo, Consolas, Courier New, monospace"

TEXT = "#1e293b"  # main text
MUTED = "#475569"  # shapes, secondary text
LINE = "#475569"  # arrows
BORDER = "#cbd5e1"  # figure frame

# kind -> (fill, stroke)
PALETTE = {
    "embed": ("#dbeafe", "#3b82f6"),
    "data": ("#eff6ff", "#60a5fa"),
    "attn": ("#ffedd5", "#f97316"),
    "ff": ("#dcfce7", "#22c55e"),
    "norm": ("#f1f5f9", "#64748b"),
    "drop": ("#f8fafc", "#94a3b8"),
    "head": ("#ede9fe", "#8b5cf6"),
    "loss": ("#fee2e2", "#ef4444"),
    "io": ("#ffffff", "#475569"),
    "note": ("#fefce8", "#ca8a04"),
}

# accent colours for arrows (name -> hex); markers are emitted only for the ones a figure uses
ARROW_COLOURS = {
    "line": LINE,
    "blue": "#2563eb",
    "orange": "#ea580c",
    "green": "#16a34a",
    "purple": "#7c3aed",
    "red": "#dc2626",
    "grey": "#94a3b8",
}


def fmt(v: float) -> str:
    """Format a coordinate deterministically: at most two decimals, no trailing zeros."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# Rough advance widths (in em) of DejaVu Sans, the widest font of the stack.  Used only to size
# boxes and to warn about labels that would not fit; the browser does the real layout.
_NARROW = set("il.,:;'!|ïìíj()[]{}`")
_WIDE = set("mwMW@%")


def text_width(s: str, size: float, mono: bool = False, bold: bool = False) -> float:
    s = s.replace("^{", "").replace("}", "")
    if mono:
        return len(s) * 0.602 * size
    w = 0.0
    for ch in s:
        if ch in _NARROW:
            w += 0.32
        elif ch == " ":
            w += 0.32
        elif ch in _WIDE:
            w += 0.92
        elif ch.isupper():
            w += 0.70
        elif ch.isdigit():
            w += 0.64
        else:
            w += 0.61
    return w * size * (1.08 if bold else 1.0)


class Box:
    def __init__(self, x: float, y: float, w: float, h: float) -> None:
        self.x, self.y, self.w, self.h = x, y, w, h

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def top(self) -> float:
        return self.y

    @property
    def bottom(self) -> float:
        return self.y + self.h

    @property
    def left(self) -> float:
        return self.x

    @property
    def right(self) -> float:
        return self.x + self.w


class Svg:
    """A tiny SVG writer with just what the course diagrams need."""

    warnings: list[str] = []

    def __init__(self, name: str, width: int, height: int, title: str, desc: str) -> None:
        self.name = name
        self.width, self.height = width, height
        self.title, self.desc = title, desc
        self.parts: list[str] = []
        self.markers: set[str] = set()
        self.hatch = False
        self.prefix = name.replace("_", "-")

    # -- low level ---------------------------------------------------------------------------
    def add(self, s: str) -> None:
        self.parts.append(s)

    def marker_id(self, colour: str) -> str:
        self.markers.add(colour)
        return f"{self.prefix}-arrow-{colour}"

    def hatch_id(self) -> str:
        self.hatch = True
        return f"{self.prefix}-hatch"

    def warn(self, msg: str) -> None:
        Svg.warnings.append(f"{self.name}: {msg}")

    # -- shapes ------------------------------------------------------------------------------
    def rect(self, x, y, w, h, fill="#ffffff", stroke=LINE, rx=8, sw=1.5, dash=None, extra="") -> Box:
        d = f' stroke-dasharray="{dash}"' if dash else ""
        st = f' stroke="{stroke}" stroke-width="{fmt(sw)}"' if stroke else ""
        self.add(
            f'<rect x="{fmt(x)}" y="{fmt(y)}" width="{fmt(w)}" height="{fmt(h)}" rx="{fmt(rx)}" '
            f'fill="{fill}"{st}{d}{extra}/>'
        )
        return Box(x, y, w, h)

    def text(self, x, y, s, size=14, anchor="middle", weight=None, colour=TEXT, mono=False,
             italic=False, rotate=None, max_width=None) -> None:
        """Text whose *visual centre line* is at y.  ``^{...}`` makes a superscript."""
        if max_width is not None:
            tw = text_width(s, size, mono, bold=bool(weight))
            if tw > max_width:
                self.warn(f"text {s!r} ~{tw:.0f}px wider than {max_width:.0f}px")
        base = y + size * 0.35
        attrs = [f'x="{fmt(x)}"', f'y="{fmt(base)}"', f'font-size="{fmt(size)}"']
        if anchor != "start":
            attrs.append(f'text-anchor="{anchor}"')
        if weight:
            attrs.append(f'font-weight="{weight}"')
        if mono:
            attrs.append(f'font-family="{MONO}"')
        if italic:
            attrs.append('font-style="italic"')
        if colour != TEXT:
            attrs.append(f'fill="{colour}"')
        if rotate is not None:
            attrs.append(f'transform="rotate({fmt(rotate)} {fmt(x)} {fmt(y)})"')
        self.add(f"<text {' '.join(attrs)}>{self._rich(s, size)}</text>")

    @staticmethod
    def _rich(s: str, size: float) -> str:
        if "^{" not in s:
            return esc(s)
        out, rest, shift = [], s, fmt(size * 0.4)
        pending_down = False
        while rest:
            i = rest.find("^{")
            if i < 0:
                out.append(f'<tspan dy="{shift}">{esc(rest)}</tspan>' if pending_down else esc(rest))
                break
            head = rest[:i]
            if head:
                out.append(f'<tspan dy="{shift}">{esc(head)}</tspan>' if pending_down else esc(head))
                pending_down = False
            j = rest.index("}", i)
            dy = f"-{shift}" if not pending_down else "0"
            out.append(f'<tspan dy="{dy}" font-size="{fmt(max(11, size * 0.75))}">{esc(rest[i + 2:j])}</tspan>')
            pending_down = True
            rest = rest[j + 1:]
        return "".join(out)

    def line(self, x1, y1, x2, y2, colour="line", sw=1.6, dash=None, arrow=True) -> None:
        c = ARROW_COLOURS[colour]
        m = f' marker-end="url(#{self.marker_id(colour)})"' if arrow else ""
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(
            f'<line x1="{fmt(x1)}" y1="{fmt(y1)}" x2="{fmt(x2)}" y2="{fmt(y2)}" '
            f'stroke="{c}" stroke-width="{fmt(sw)}"{d}{m}/>'
        )

    def poly(self, pts, colour="line", sw=1.6, dash=None, arrow=True, radius=10) -> None:
        """A polyline through orthogonal points with rounded corners, optional arrowhead."""
        c = ARROW_COLOURS[colour]
        d = [f"M{fmt(pts[0][0])},{fmt(pts[0][1])}"]
        for k in range(1, len(pts) - 1):
            (x0, y0), (x1, y1), (x2, y2) = pts[k - 1], pts[k], pts[k + 1]
            r = min(radius, abs(x1 - x0) / 2 + abs(y1 - y0) / 2, abs(x2 - x1) / 2 + abs(y2 - y1) / 2)
            ax = x1 - r * _sign(x1 - x0)
            ay = y1 - r * _sign(y1 - y0)
            bx = x1 + r * _sign(x2 - x1)
            by = y1 + r * _sign(y2 - y1)
            d.append(f"L{fmt(ax)},{fmt(ay)} Q{fmt(x1)},{fmt(y1)} {fmt(bx)},{fmt(by)}")
        d.append(f"L{fmt(pts[-1][0])},{fmt(pts[-1][1])}")
        m = f' marker-end="url(#{self.marker_id(colour)})"' if arrow else ""
        ds = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<path d="{" ".join(d)}" fill="none" stroke="{c}" stroke-width="{fmt(sw)}"{ds}{m}/>')

    def plus(self, cx, cy, r=14, stroke=LINE) -> Box:
        self.add(f'<circle cx="{fmt(cx)}" cy="{fmt(cy)}" r="{fmt(r)}" fill="#ffffff" stroke="{stroke}" '
                 f'stroke-width="1.6"/>')
        a = r * 0.55
        self.add(f'<path d="M{fmt(cx - a)},{fmt(cy)} H{fmt(cx + a)} M{fmt(cx)},{fmt(cy - a)} V{fmt(cy + a)}" '
                 f'stroke="{stroke}" stroke-width="1.8"/>')
        return Box(cx - r, cy - r, 2 * r, 2 * r)

    def vdots(self, cx, cy, colour=MUTED, gap=5) -> None:
        for k in (-1, 0, 1):
            self.add(f'<circle cx="{fmt(cx)}" cy="{fmt(cy + k * gap)}" r="1.6" fill="{colour}"/>')

    def hdots(self, cx, cy, colour=MUTED, gap=5) -> None:
        for k in (-1, 0, 1):
            self.add(f'<circle cx="{fmt(cx + k * gap)}" cy="{fmt(cy)}" r="1.6" fill="{colour}"/>')

    # -- composite ---------------------------------------------------------------------------
    def box(self, x, y, w, h, kind, label, sub=None, size=15, sub_size=12.5, sub_mono=False,
            weight="600", dash=None, rx=9, label_mono=False) -> Box:
        fill, stroke = PALETTE[kind]
        if kind == "drop" and dash is None:
            dash = "5 3"
        b = self.rect(x, y, w, h, fill=fill, stroke=stroke, rx=rx, dash=dash)
        if sub:
            subs = sub.split("\n")
            gap = (size + sub_size) / 2 + 2
            step = sub_size + 4
            top = b.cy - (gap + step * (len(subs) - 1)) / 2
            self.text(b.cx, top, label, size=size, weight=weight, mono=label_mono, max_width=w - 10)
            for k, line in enumerate(subs):
                self.text(b.cx, top + gap + step * k, line, size=sub_size, colour=MUTED, mono=sub_mono,
                          max_width=w - 10)
        else:
            self.text(b.cx, b.cy, label, size=size, weight=weight, mono=label_mono, max_width=w - 10)
        return b

    def shape(self, x, y, s, anchor="start", size=13) -> None:
        self.text(x, y, s, size=size, anchor=anchor, mono=True, colour=MUTED)

    def heading(self, title: str, subtitle: str | None = None) -> None:
        self.text(24, 30, title, size=20, anchor="start", weight="700", max_width=self.width - 48)
        if subtitle:
            self.text(24, 55, subtitle, size=13.5, anchor="start", colour=MUTED, max_width=self.width - 48)

    def numbered(self, x, y, n, label, size=16) -> None:
        self.add(f'<circle cx="{fmt(x + 11)}" cy="{fmt(y)}" r="11" fill="{TEXT}"/>')
        self.text(x + 11, y, str(n), size=13, weight="700", colour="#ffffff")
        self.text(x + 30, y, label, size=size, anchor="start", weight="700", max_width=self.width - x - 54)

    # -- output ------------------------------------------------------------------------------
    def render(self) -> str:
        w, h = self.width, self.height
        defs = []
        for colour in sorted(self.markers):
            c = ARROW_COLOURS[colour]
            defs.append(
                f'<marker id="{self.prefix}-arrow-{colour}" viewBox="0 0 10 10" refX="9" refY="5" '
                f'markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
                f'<path d="M0,0.5 L10,5 L0,9.5 z" fill="{c}"/></marker>'
            )
        if self.hatch:
            defs.append(
                f'<pattern id="{self.prefix}-hatch" width="8" height="8" patternUnits="userSpaceOnUse" '
                f'patternTransform="rotate(45)"><rect width="8" height="8" fill="#f1f5f9"/>'
                f'<line x1="0" y1="0" x2="0" y2="8" stroke="#cbd5e1" stroke-width="3"/></pattern>'
            )
        head = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
            f'font-family="{FONT}" font-size="14" fill="{TEXT}" role="img" '
            f'aria-labelledby="{self.prefix}-title {self.prefix}-desc">',
            f'<title id="{self.prefix}-title">{esc(self.title)}</title>',
            f'<desc id="{self.prefix}-desc">{esc(self.desc)}</desc>',
        ]
        if defs:
            head.append("<defs>" + "".join(defs) + "</defs>")
        head.append(f'<rect x="0.5" y="0.5" width="{w - 1}" height="{h - 1}" rx="14" fill="#ffffff" '
                    f'stroke="{BORDER}"/>')
        return "\n".join(head + self.parts + ["</svg>"]) + "\n"


def _sign(v: float) -> int:
    return (v > 0) - (v < 0)


# =============================================================================================
# 1. the whole model
# =============================================================================================
def fig_gpt_architecture() -> Svg:
    W, H = 820, 1080
    s = Svg("gpt_architecture", W, H,
            "GPT-2 model architecture with tensor shapes",
            "Bottom to top: the text 'Every effort moves you' is tokenized into token IDs of shape (b, T); "
            "a token embedding (b, T, 768) and a positional embedding (T, 768) are added and passed through "
            "dropout; then 12 transformer blocks (b, T, 768), a final LayerNorm and a linear output head "
            "768 to 50257 produce logits (b, T, 50257), from which the next token is chosen. "
            "GPT_CONFIG_124M: vocab_size 50257, context_length 1024, emb_dim 768, n_heads 12, n_layers 12.")
    s.heading("GPT-2 (124M): the whole model", "Data flows from the bottom to the top. b = batch size, "
              "T = number of tokens (here T = 4).")
    cx, bw = 445, 300
    bx = cx - bw / 2
    sx = bx + bw + 16  # shapes column

    # config panel (left)
    px, py, pw = 24, 92, 222
    rows = [("vocab_size", "50257"), ("context_length", "1024"), ("emb_dim", "768"), ("n_heads", "12"),
            ("n_layers", "12"), ("drop_rate", "0.1"), ("qkv_bias", "False")]
    s.rect(px, py, pw, 44 + 24 * len(rows), fill="#f8fafc", stroke=BORDER, rx=10)
    s.text(px + 14, py + 22, "GPT_CONFIG_124M", size=14, anchor="start", weight="700", mono=True)
    for k, (key, val) in enumerate(rows):
        yy = py + 50 + 24 * k
        s.text(px + 14, yy, key, size=13, anchor="start", mono=True, colour=MUTED)
        s.text(px + pw - 14, yy, val, size=13, anchor="end", mono=True, weight="700")

    # legend (left, lower)
    ly = 330
    s.text(px, ly, "Colour key", size=14, anchor="start", weight="700")
    for k, (kind, name) in enumerate([("embed", "embeddings / token data"), ("attn", "attention"),
                                      ("ff", "feed-forward"), ("norm", "LayerNorm / dropout"),
                                      ("head", "output head / logits")]):
        fill, stroke = PALETTE[kind]
        yy = ly + 26 + 26 * k
        s.rect(px, yy - 9, 26, 18, fill=fill, stroke=stroke, rx=4)
        s.text(px + 36, yy, name, size=13, anchor="start")

    # top-down placement
    y = 80
    nxt = s.box(bx, y, bw, 46, "head", "Next token", "argmax or sample from the last row", sub_size=12.5)
    y = nxt.bottom + 30
    logits = s.box(bx, y, bw, 46, "head", "Logits", "one score per vocabulary entry")
    s.shape(sx, logits.cy, "(b, T, 50257)")
    y = logits.bottom + 30
    headb = s.box(bx, y, bw, 50, "head", "Output head", "Linear 768 → 50257 (no bias)")
    s.shape(sx, headb.cy, "(b, T, 50257)")
    y = headb.bottom + 30
    fnorm = s.box(bx, y, bw, 40, "norm", "Final LayerNorm")
    s.shape(sx, fnorm.cy, "(b, T, 768)")
    y = fnorm.bottom + 30

    # transformer block container
    inner = [("plus", None), ("ff", "Feed forward  768 → 3072 → 768"), ("norm", "LayerNorm 2"),
             ("plus", None), ("attn", "Masked multi-head attention"), ("norm", "LayerNorm 1")]
    ih, ig = 26, 17
    top_pad, bot_pad = 40, 16
    ch = top_pad + len(inner) * ih + (len(inner) - 1) * ig + bot_pad
    cont = s.rect(bx - 20, y, bw + 40, ch, fill="#fffbf5", stroke="#f97316", rx=12, dash="6 4", sw=1.5)
    s.text(bx - 6, y + 18, "Transformer block", size=15, anchor="start", weight="700")
    s.text(cont.right - 12, y + 18, "× n_layers = 12", size=14, anchor="end", weight="700", colour="#c2410c")
    s.shape(sx + 20, cont.cy - 10, "(b, T, 768)")
    s.text(sx + 20, cont.cy + 12, "in and out", size=12, anchor="start", colour=MUTED)
    iw = 262
    ix = cx - iw / 2
    icx = ix + iw / 2
    yy = y + top_pad
    placed = []
    for kind, label in inner:
        if kind == "plus":
            placed.append(s.plus(icx, yy + ih / 2, r=11))
        else:
            placed.append(s.box(ix, yy, iw, ih, kind, label, size=13, weight="600", rx=6))
        yy += ih + ig
    for a, b in zip(placed[1:], placed[:-1]):
        s.line(icx, a.top, icx, b.bottom + 1)
    # shortcuts (from below LayerNorm -> into the plus)
    scx = ix - 26
    for plus_i, norm_i in ((0, 2), (3, 5)):
        p, nb = placed[plus_i], placed[norm_i]
        ys = nb.bottom + ig / 2
        s.poly([(icx, ys), (scx, ys), (scx, p.cy), (p.left, p.cy)], colour="grey", sw=1.4)
    for plus_i, norm_i in ((0, 2), (3, 5)):
        s.text(scx + 13, (placed[plus_i].bottom + placed[norm_i].bottom) / 2 + 4, "shortcut", size=11.5,
               colour=MUTED, rotate=-90)
        s.add(f'<circle cx="{fmt(icx)}" cy="{fmt(placed[norm_i].bottom + ig / 2)}" r="2.6" fill="{LINE}"/>')
    cont_bottom = cont.bottom
    y = cont_bottom + 30

    drop = s.box(bx, y, bw, 34, "drop", "Dropout", size=14)
    s.shape(sx, drop.cy, "(b, T, 768)")
    y = drop.bottom + 30
    plus = s.plus(cx, y + 14, r=14)
    s.shape(sx, plus.cy, "(b, T, 768)")
    s.text(sx, plus.cy + 18, "broadcast over b", size=12, anchor="start", colour=MUTED)
    y = plus.bottom + 34
    ew, eg = 172, 20
    tok = s.box(cx - eg / 2 - ew, y, ew, 52, "embed", "Token embedding", "Embedding(50257, 768)",
                size=14, sub_size=12)
    pos = s.box(cx + eg / 2, y, ew, 52, "embed", "Positional emb.", "Embedding(1024, 768)",
                size=14, sub_size=12)
    y = tok.bottom + 34
    ids = s.box(tok.x, y, ew, 46, "data", "Token IDs", "6109 3626 6100 345", size=14, sub_mono=True)
    posi = s.box(pos.x, y, ew, 46, "data", "Positions", "arange(T): 0 1 2 3", size=14, sub_mono=True,
                 sub_size=12)
    s.shape(ids.cx - 10, (tok.bottom + ids.top) / 2, "(b, T)", anchor="end")
    s.shape(posi.cx + 10, (pos.bottom + posi.top) / 2, "(T,)", anchor="start")
    y = ids.bottom + 36
    txt = s.box(tok.cx - 115, y, 230, 38, "io", "“Every effort moves you”", size=14, weight="400")
    s.height = int(txt.bottom + 22)
    s.text(tok.cx + 10, (ids.bottom + txt.top) / 2, "tokenizer", size=12, anchor="start", colour=MUTED)

    # arrows (upwards)
    s.line(txt.cx, txt.top, txt.cx, ids.bottom + 1)
    s.line(ids.cx, ids.top, ids.cx, tok.bottom + 1)
    s.line(posi.cx, posi.top, posi.cx, pos.bottom + 1)
    s.poly([(tok.cx, tok.top), (tok.cx, plus.cy), (plus.left - 1, plus.cy)], colour="blue")
    s.poly([(pos.cx, pos.top), (pos.cx, plus.cy), (plus.right + 1, plus.cy)], colour="blue")
    s.shape(tok.cx - 10, (tok.top + plus.cy) / 2 + 4, "(b, T, 768)", anchor="end")
    s.shape(pos.cx + 10, (pos.top + plus.cy) / 2 + 4, "(T, 768)", anchor="start")
    s.line(cx, plus.top, cx, drop.bottom + 1)
    s.line(cx, drop.top, cx, placed[-1].bottom + 1)
    s.line(cx, placed[0].top, cx, fnorm.bottom + 1)
    s.line(cx, fnorm.top, cx, headb.bottom + 1)
    s.line(cx, headb.top, cx, logits.bottom + 1, colour="purple")
    s.line(cx, logits.top, cx, nxt.bottom + 1, colour="purple")
    return s


# =============================================================================================
# 2. one transformer block
# =============================================================================================
def fig_transformer_block() -> Svg:
    W, H = 880, 820
    s = Svg("transformer_block", W, H,
            "One pre-LayerNorm transformer block",
            "Bottom to top: input (b, T, 768) goes through LayerNorm 1, masked multi-head attention and "
            "dropout, then the input is added back through a shortcut; the result goes through LayerNorm 2, "
            "a feed-forward network (Linear 768 to 3072, GELU, Linear 3072 to 768) and dropout, and is "
            "added to its own input by a second shortcut. The output has the same shape (b, T, 768).")
    s.heading("One transformer block (pre-LayerNorm)",
              "Bottom to top. Every arrow carries a (b, T, 768) tensor except inside the feed-forward.")
    cx, bw = 340, 270
    bx = cx - bw / 2
    sx = bx + bw + 14
    ax = 590  # annotation column
    scx = bx - 48  # shortcut line x

    y = 84
    out = s.box(bx, y, bw, 38, "io", "Output", size=15)
    s.shape(sx, out.cy, "(b, T, 768)")
    y = out.bottom + 26
    p2 = s.plus(cx, y + 14)
    y = p2.bottom + 22
    d2 = s.box(bx, y, bw, 32, "drop", "Dropout", size=14)
    y = d2.bottom + 22
    # feed-forward container
    fh_pad_top, fh, fg = 34, 32, 28
    ffh = fh_pad_top + 3 * fh + 2 * fg + 14
    ff = s.rect(bx, y, bw, ffh, fill=PALETTE["ff"][0], stroke=PALETTE["ff"][1], rx=10)
    s.text(cx, y + 18, "Feed forward", size=15, weight="600")
    iw = bw - 50
    ix = cx - iw / 2
    yy = y + fh_pad_top
    l2 = s.box(ix, yy, iw, fh, "io", "Linear 3072 → 768", size=13.5, weight="400", rx=6)
    yy = l2.bottom + fg
    gelu = s.box(ix, yy, iw, fh, "io", "GELU", size=13.5, weight="400", rx=6)
    yy = gelu.bottom + fg
    l1 = s.box(ix, yy, iw, fh, "io", "Linear 768 → 3072", size=13.5, weight="400", rx=6)
    s.line(cx, l1.top, cx, gelu.bottom + 1, colour="green")
    s.line(cx, gelu.top, cx, l2.bottom + 1, colour="green")
    s.shape(cx + 8, (l1.top + gelu.bottom) / 2, "(b, T, 3072)", size=12)
    s.shape(cx + 8, (gelu.top + l2.bottom) / 2, "(b, T, 3072)", size=12)
    y = ff.bottom + 22
    n2 = s.box(bx, y, bw, 36, "norm", "LayerNorm 2", size=15)
    y = n2.bottom + 34
    p1 = s.plus(cx, y + 14)
    y = p1.bottom + 22
    d1 = s.box(bx, y, bw, 32, "drop", "Dropout", size=14)
    y = d1.bottom + 22
    att = s.box(bx, y, bw, 54, "attn", "Masked multi-head attention", "12 heads, causal mask", size=15)
    y = att.bottom + 22
    n1 = s.box(bx, y, bw, 36, "norm", "LayerNorm 1", size=15)
    y = n1.bottom + 34
    inp = s.box(bx, y, bw, 38, "io", "Input", size=15)
    s.height = int(inp.bottom + 24)
    s.shape(sx, inp.cy, "(b, T, 768)")
    s.shape(sx, att.cy, "(b, T, 768)")
    s.shape(sx, ff.cy, "(b, T, 768)")

    # main arrows
    chain = [inp, n1, att, d1, p1, n2, ff, d2, p2, out]
    for a, b in zip(chain, chain[1:]):
        colour = "line"
        s.line(cx, a.top, cx, b.bottom + 1, colour=colour)
    # shortcuts
    y_s1 = (inp.top + n1.bottom) / 2
    y_s2 = (p1.top + n2.bottom) / 2
    s.poly([(cx, y_s1), (scx, y_s1), (scx, p1.cy), (p1.left - 1, p1.cy)], colour="grey", sw=1.8)
    s.poly([(cx, y_s2), (scx, y_s2), (scx, p2.cy), (p2.left - 1, p2.cy)], colour="grey", sw=1.8)
    for k, (ya, yb) in enumerate(((y_s1, p1.cy), (y_s2, p2.cy))):
        s.text(scx - 12, (ya + yb) / 2, f"shortcut {k + 1}:  x + f(x)", size=12.5, colour=MUTED, rotate=-90)
    s.add(f'<circle cx="{fmt(cx)}" cy="{fmt(y_s1)}" r="3" fill="{LINE}"/>')
    s.add(f'<circle cx="{fmt(cx)}" cy="{fmt(y_s2)}" r="3" fill="{LINE}"/>')

    # annotations
    notes = [
        (p2.cy, ["Second shortcut: add the input of", "LayerNorm 2 back in."]),
        (ff.cy, ["Feed-forward: every token on its own,", "expand 4× (768 → 3072), GELU,", "project back to 768."]),
        (n2.cy - 8, ["LayerNorm: mean 0, variance 1 per", "token vector, then learnable scale", "and shift."]),
        (p1.cy + 16, ["First shortcut: add the block input", "back in; gradients flow straight",
                      "through deep stacks."]),
        (att.cy, ["Attention: each token mixes in", "information from itself and the", "tokens before it."]),
        (inp.cy - 8, ["Input and output have the same", "shape, so blocks can be stacked."]),
    ]
    for yc, lines in notes:
        y0 = yc - (len(lines) - 1) * 9
        for k, ln in enumerate(lines):
            s.text(ax, y0 + 18 * k, ln, size=13, anchor="start", colour=TEXT, max_width=W - ax - 14)
    return s


# =============================================================================================
# 3. multi-head attention, step by step
# =============================================================================================
def _mini_matrix(s: Svg, x, y, cell, values, label) -> None:
    """A small 4x4 matrix: values None = masked (hatched), str = text."""
    n = len(values)
    s.text(x + n * cell / 2, y - 12, label, size=12, colour=MUTED)
    for i in range(n):
        for j in range(n):
            v = values[i][j]
            cxx, cyy = x + j * cell, y + i * cell
            if j > i:
                s.rect(cxx, cyy, cell, cell, fill=f"url(#{s.hatch_id()})", stroke="#94a3b8", rx=0, sw=0.8)
            else:
                s.rect(cxx, cyy, cell, cell, fill="#ffedd5", stroke="#f97316", rx=0, sw=0.8)
            if v:
                s.text(cxx + cell / 2, cyy + cell / 2, v, size=11, colour=TEXT if j <= i else MUTED)


def fig_attention_pipeline() -> Svg:
    W, H = 900, 1010
    s = Svg("attention_pipeline", W, H,
            "Causal multi-head attention, step by step",
            "The input x (b, T, d_in) is projected by W_query, W_key and W_value into Q, K and V (b, T, d_out), "
            "split into h heads (b, h, T, head_dim); attention scores Q times K transposed (b, h, T, T) are "
            "scaled by 1 over the square root of head_dim, masked with minus infinity above the diagonal, "
            "turned into weights by softmax and dropout, multiplied with V, the heads are concatenated "
            "back to (b, T, d_out) and passed through out_proj.")
    s.heading("Causal multi-head attention, step by step",
              "d_out = h × head_dim  (GPT-2 small: 768 = 12 × 64). Shapes on the right.")
    qx, kx, vx = 250, 470, 720
    bw = 190
    y = 84
    x = s.box(kx - 110, y, 220, 40, "io", "Input x", size=15)
    s.shape(x.right + 12, x.cy, "(b, T, d_in)")
    y = x.bottom + 34
    wq = s.box(qx - bw / 2, y, bw, 46, "attn", "W_query", "Linear d_in → d_out", size=14.5, label_mono=True)
    wk = s.box(kx - bw / 2, y, bw, 46, "attn", "W_key", "Linear d_in → d_out", size=14.5, label_mono=True)
    wv = s.box(vx - bw / 2, y, bw, 46, "attn", "W_value", "Linear d_in → d_out", size=14.5, label_mono=True)
    for b in (wq, wk, wv):
        s.poly([(x.cx, x.bottom), (x.cx, x.bottom + 14), (b.cx, x.bottom + 14), (b.cx, b.top - 1)], radius=6)
    y = wq.bottom + 28
    qs = [s.box(c - bw / 2, y, bw, 44, "io", n, "(b, T, d_out)", size=15, sub_mono=True)
          for c, n in ((qx, "Q = queries"), (kx, "K = keys"), (vx, "V = values"))]
    for a, b in zip((wq, wk, wv), qs):
        s.line(a.cx, a.bottom, a.cx, b.top - 1)
    y = qs[0].bottom + 28
    split = s.box(qx - bw / 2, y, vx + bw / 2 - (qx - bw / 2), 44, "norm", "Split into h heads",
                  ".view(b, T, h, head_dim).transpose(1, 2)", size=14.5, sub_mono=True, sub_size=12.5)
    for b in qs:
        s.line(b.cx, b.bottom, b.cx, split.top - 1)
    y = split.bottom + 28
    hs = [s.box(c - bw / 2, y, bw, 44, "io", n, "(b, h, T, head_dim)", size=15, sub_mono=True, sub_size=12)
          for c, n in ((qx, "Q per head"), (kx, "K per head"), (vx, "V per head"))]
    for b in hs:
        s.line(b.cx, split.bottom, b.cx, b.top - 1)

    # left stack
    scx, sw_ = 360, 290
    sx0 = scx - sw_ / 2
    shx = sx0 + sw_ + 14
    y = hs[0].bottom + 36
    scores = s.box(sx0, y, sw_, 44, "attn", "Scores = Q · K^{T}", "dot product of every query/key pair",
                   size=15, sub_size=12)
    s.shape(shx, scores.cy, "(b, h, T, T)")
    s.poly([(hs[0].cx, hs[0].bottom), (hs[0].cx, y - 14), (scx - 40, y - 14), (scx - 40, scores.top - 1)],
           radius=6)
    s.poly([(hs[1].cx, hs[1].bottom), (hs[1].cx, y - 14), (scx + 40, y - 14), (scx + 40, scores.top - 1)],
           radius=6)
    s.text(hs[1].cx + 8, hs[1].bottom + 12, "Kᵀ: transpose(2, 3)".replace("ᵀ", "^{T}"), size=12,
           anchor="start", colour=MUTED)
    y = scores.bottom + 24
    scale = s.box(sx0, y, sw_, 36, "attn", "Scale by 1 / √head_dim", size=14.5)
    y = scale.bottom + 24
    mask = s.box(sx0, y, sw_, 36, "attn", "Causal mask: −∞ above diagonal", size=14.5)
    y = mask.bottom + 24
    soft = s.box(sx0, y, sw_, 36, "attn", "Softmax over the keys", size=14.5)
    s.shape(shx, soft.cy, "(b, h, T, T)")
    y = soft.bottom + 24
    drop = s.box(sx0, y, sw_, 32, "drop", "Dropout on the weights", size=14)
    y = drop.bottom + 24
    ctx = s.box(sx0, y, sw_, 44, "attn", "Context = weights · V", "weighted sum of value vectors",
                size=15, sub_size=12)
    s.shape(shx, ctx.cy - 10, "(b, h, T, head_dim)", size=12.5)
    y = ctx.bottom + 24
    cat = s.box(sx0, y, sw_, 44, "norm", "Concatenate heads", ".transpose(1, 2).reshape(b, T, d_out)",
                size=14.5, sub_mono=True, sub_size=11.5)
    s.shape(shx, cat.cy, "(b, T, d_out)")
    y = cat.bottom + 24
    proj = s.box(sx0, y, sw_, 44, "attn", "out_proj", "Linear d_out → d_out", size=14.5, label_mono=True)
    y = proj.bottom + 24
    outb = s.box(sx0, y, sw_, 38, "io", "Output", size=15)
    s.shape(shx, outb.cy, "(b, T, d_out)")
    chain = [scores, scale, mask, soft, drop, ctx, cat, proj, outb]
    for a, b in zip(chain, chain[1:]):
        s.line(scx, a.bottom, scx, b.top - 1)
    # V joins the context step
    s.poly([(hs[2].cx, hs[2].bottom), (hs[2].cx, ctx.cy), (ctx.right + 1, ctx.cy)], colour="orange")

    # mini matrices, left of the stack, with dashed leaders to their steps
    cell = 24
    mx0 = 60
    m1y = mask.cy - 2 * cell
    _mini_matrix(s, mx0, m1y, cell, [["" if j <= i else "−∞" for j in range(4)] for i in range(4)],
                 "scores after the mask")
    w = [["1"], [".6", ".4"], [".3", ".4", ".3"], [".2", ".3", ".2", ".3"]]
    vals = [[w[i][j] if j <= i else "0" for j in range(4)] for i in range(4)]
    m2y = m1y + 4 * cell + 46
    _mini_matrix(s, mx0, m2y, cell, vals, "weights: rows sum to 1")
    s.line(mx0 + 4 * cell + 6, mask.cy, sx0 - 4, mask.cy, colour="grey", sw=1.2, dash="3 3", arrow=False)
    s.poly([(mx0 + 4 * cell + 6, m2y + 2 * cell), (sx0 - 30, m2y + 2 * cell), (sx0 - 30, soft.cy),
            (sx0 - 4, soft.cy)], colour="grey", sw=1.2, dash="3 3", arrow=False, radius=6)
    return s


# =============================================================================================
# 4. causal mask on a real sentence
# =============================================================================================
CAUSAL_WEIGHTS = [
    [100],
    [55, 45],
    [38, 30, 32],
    [27, 24, 23, 26],
    [21, 19, 18, 20, 22],
    [17, 16, 15, 17, 16, 19],
]


def fig_causal_mask() -> Svg:
    tokens = ["Your", "journey", "starts", "with", "one", "step"]
    for row in CAUSAL_WEIGHTS:
        assert sum(row) == 100, row
    W, H = 860, 590
    s = Svg("causal_mask", W, H,
            "Causal attention mask on 'Your journey starts with one step'",
            "A 6 by 6 grid of attention weights. Rows are query tokens, columns are key tokens. Cells above "
            "the diagonal are masked: their score is set to minus infinity, so after softmax the weight is 0. "
            "Cells on and below the diagonal hold example weights that sum to 1.00 in every row, "
            "for example row 2 is 0.55 and 0.45.")
    s.heading("Causal mask: a token may only look at itself and earlier tokens",
              "Attention weights after softmax (example numbers). Each row sums to 1.")
    cw, chh = 82, 48
    gx, gy = 200, 150
    n = len(tokens)
    # column headers
    s.text(gx + n * cw / 2, 88, "key token (attended to) →", size=14, weight="600", colour=MUTED)
    for j, t in enumerate(tokens):
        s.text(gx + j * cw + cw / 2, gy - 18, t, size=14, weight="600", max_width=cw - 4)
    s.text(70, gy + n * chh / 2, "query token (attending) →", size=14, weight="600", colour=MUTED, rotate=90)
    hatch = s.hatch_id()
    for i, t in enumerate(tokens):
        yy = gy + i * chh
        s.text(gx - 14, yy + chh / 2, t, size=14, weight="600", anchor="end")
        for j in range(n):
            xx = gx + j * cw
            if j > i:
                s.rect(xx, yy, cw, chh, fill=f"url(#{hatch})", stroke="#cbd5e1", rx=0, sw=1)
                s.text(xx + cw / 2, yy + chh / 2, "−∞ → 0", size=12, colour=MUTED)
            else:
                v = CAUSAL_WEIGHTS[i][j]
                # orange with opacity ~ weight
                op = 0.18 + 0.82 * (v / 100)
                s.rect(xx, yy, cw, chh, fill="#ffffff", stroke="#cbd5e1", rx=0, sw=1)
                s.add(f'<rect x="{fmt(xx + 0.5)}" y="{fmt(yy + 0.5)}" width="{fmt(cw - 1)}" '
                      f'height="{fmt(chh - 1)}" fill="#fb923c" fill-opacity="{fmt(op)}"/>')
                s.text(xx + cw / 2, yy + chh / 2, f"{v / 100:.2f}", size=14,
                       weight="700" if i == j else None, mono=True)
        # row sum
        s.text(gx + n * cw + 20, yy + chh / 2, "Σ = 1.00", size=13, anchor="start", mono=True, colour=MUTED)
    s.rect(gx, gy, n * cw, n * chh, fill="none", stroke="#64748b", rx=0, sw=1.5)
    # staircase border between the visible and the masked cells
    d = [f"M{fmt(gx + cw)},{fmt(gy)}"]
    for i in range(n - 1):
        d.append(f"V{fmt(gy + (i + 1) * chh)} H{fmt(gx + (i + 2) * cw)}")
    s.add(f'<path d="{" ".join(d)}" fill="none" stroke="#c2410c" stroke-width="2.4" stroke-linejoin="round"/>')

    # legend
    ly = gy + n * chh + 40
    s.rect(gx, ly - 12, 30, 24, fill=f"url(#{hatch})", stroke="#cbd5e1", rx=0, sw=1)
    s.text(gx + 42, ly, "masked (future) key: score set to −∞ before softmax, so its weight is exactly 0",
           size=13.5, anchor="start", max_width=W - gx - 60)
    s.rect(gx, ly + 22, 30, 24, fill="#fb923c", stroke="#cbd5e1", rx=0, sw=1, extra=' fill-opacity="0.6"')
    s.text(gx + 42, ly + 34, "visible key (earlier or same token): darker = larger weight",
           size=13.5, anchor="start", max_width=W - gx - 60)
    s.text(gx, ly + 72, "mask = torch.triu(torch.ones(T, T), diagonal=1)   # 1 above the diagonal",
           size=12.5, anchor="start", mono=True, colour=MUTED, max_width=W - gx - 10)
    s.text(gx, ly + 92, "scores.masked_fill_(mask.bool(), -torch.inf)     # then softmax",
           size=12.5, anchor="start", mono=True, colour=MUTED, max_width=W - gx - 10)
    return s


# =============================================================================================
# 5. tokenization
# =============================================================================================
def fig_tokenization() -> Svg:
    W, H = 900, 640
    s = Svg("tokenization", W, H,
            "From text to tokens to token IDs, and byte-pair encoding of an unknown word",
            "Top: the text 'Hello, I am' is split into the tokens 'Hello', ',', ' I', ' am' with the GPT-2 "
            "token IDs 15496, 11, 314, 716. Bottom: the word 'someunknownPlace' is not in the vocabulary, "
            "so byte-pair encoding splits it into the sub-word tokens 'some', 'unknown', 'Place' with IDs "
            "11246, 34680, 27271.")
    s.heading("Tokenization with the GPT-2 byte-pair encoding (tiktoken \"gpt2\")")

    # --- panel 1
    s.numbered(24, 82, 1, "Text → tokens → token IDs")
    lx = 40
    toks = ["Hello", ",", " I", " am"]
    ids = ["15496", "11", "314", "716"]
    widths = [110, 64, 72, 80]
    gap = 18
    x0 = 180
    total = sum(widths) + gap * (len(widths) - 1)
    ry = [118, 204, 286]
    s.text(lx, ry[0] + 18, "text", size=14, anchor="start", weight="600", colour=MUTED)
    s.text(lx, ry[1] + 18, "tokens", size=14, anchor="start", weight="600", colour=MUTED)
    s.text(lx, ry[2] + 18, "token IDs", size=14, anchor="start", weight="600", colour=MUTED)
    tb = s.box(x0, ry[0], total, 36, "io", "“Hello, I am”", size=16, weight="400")
    xx = x0
    for t, i, w in zip(toks, ids, widths):
        tk = s.box(xx, ry[1], w, 36, "embed", f"\"{t}\"", size=15, weight="400", label_mono=True)
        idb = s.box(xx, ry[2], w, 36, "data", i, size=15, weight="700", label_mono=True)
        s.line(tk.cx, tb.bottom, tk.cx, tk.top - 1)
        s.line(tk.cx, tk.bottom, tk.cx, idb.top - 1, colour="blue")
        xx += w + gap
    s.text(lx, ry[1] + 36, "(strings)", size=12, anchor="start", colour=MUTED)
    s.text(lx, ry[2] + 36, "(integers)", size=12, anchor="start", colour=MUTED)
    # code panel on the right
    cx0 = 592
    s.rect(cx0, 112, W - cx0 - 24, 214, fill="#f8fafc", stroke=BORDER, rx=10)
    code = [("tok = get_tokenizer()", MUTED), ("tok.encode(\"Hello, I am\")", TEXT),
            ("→ [15496, 11, 314, 716]", "#1d4ed8"), ("", TEXT), ("tok.decode([15496, 11, 314, 716])", TEXT),
            ("→ \"Hello, I am\"", "#1d4ed8")]
    for k, (ln, col) in enumerate(code):
        if ln:
            s.text(cx0 + 14, 136 + 24 * k, ln, size=12.5, anchor="start", mono=True, colour=col,
                   max_width=W - cx0 - 50)
    s.text(cx0 + 14, 136 + 24 * 6 + 4, "A space belongs to the token", size=13, anchor="start")
    s.text(cx0 + 14, 136 + 24 * 7 + 4, "that follows it: \" I\", \" am\".", size=13, anchor="start")

    # --- panel 2
    py = 360
    s.add(f'<line x1="24" y1="{py - 18}" x2="{W - 24}" y2="{py - 18}" stroke="{BORDER}" stroke-width="1"/>')
    s.numbered(24, py + 6, 2, "Byte-pair encoding (BPE) splits an unknown word into known sub-words")
    word = "someunknownPlace"
    pieces = [("some", "11246"), ("unknown", "34680"), ("Place", "27271")]
    cwid = 24
    wx = 180
    wy = py + 36
    s.text(lx, wy + 16, "word", size=14, anchor="start", weight="600", colour=MUTED)
    for k, ch in enumerate(word):
        s.rect(wx + k * cwid, wy, cwid, 32, fill="#ffffff", stroke="#94a3b8", rx=0, sw=1)
        s.text(wx + k * cwid + cwid / 2, wy + 16, ch, size=15, mono=True)
    s.text(wx + len(word) * cwid + 14, wy + 16, "not one entry in the vocabulary", size=12.5, anchor="start",
           colour=MUTED)
    ty = wy + 84
    iy = ty + 70
    s.text(lx, ty + 18, "sub-words", size=14, anchor="start", weight="600", colour=MUTED)
    s.text(lx, iy + 18, "token IDs", size=14, anchor="start", weight="600", colour=MUTED)
    start = 0
    for p, i in pieces:
        x1 = wx + start * cwid
        x2 = wx + (start + len(p)) * cwid
        # bracket under the letters
        s.add(f'<path d="M{fmt(x1 + 3)},{fmt(wy + 38)} v6 H{fmt(x2 - 3)} v-6" fill="none" stroke="#3b82f6" '
              f'stroke-width="1.6"/>')
        mid = (x1 + x2) / 2
        bwid = max(76, x2 - x1 - 6)
        tk = s.box(mid - bwid / 2, ty, bwid, 36, "embed", f"\"{p}\"", size=15, weight="400", label_mono=True)
        idb = s.box(mid - bwid / 2, iy, bwid, 36, "data", i, size=15, weight="700", label_mono=True)
        s.line(mid, wy + 44, mid, tk.top - 1, colour="blue")
        s.line(mid, tk.bottom, mid, idb.top - 1, colour="blue")
        start += len(p)
    nx = 592
    notes = ["BPE never fails: in the worst case a", "word falls apart into single bytes.",
             "", "Vocabulary: 256 byte tokens", "+ 50,000 learned merges", "+ <|endoftext|> (ID 50256)",
             "= 50,257 tokens.", "", "\" some\" with a leading space is", "another token (ID 617)."]
    for k, ln in enumerate(notes):
        if ln:
            s.text(nx + 14, ty - 42 + 19 * k, ln, size=13, anchor="start", max_width=W - nx - 30)
    return s


# =============================================================================================
# 6. sliding window data sampling
# =============================================================================================
def fig_sliding_window() -> Svg:
    # "I HAD always thought Jack Gisburn rather a cheap genius" with the GPT-2 tokenizer
    tokens = ["I", " H", "AD", " always", " thought", " Jack", " G", "is", "burn", " rather"]
    ids = [40, 367, 2885, 1464, 1807, 3619, 402, 271, 10899, 2138]
    W, H = 920, 730
    s = Svg("sliding_window", W, H,
            "Input and target windows cut from a token sequence",
            "A row of token IDs from 'I HAD always thought Jack Gisburn rather' is cut into input windows of "
            "max_length 4. The target window is the same window shifted one token to the right. With stride 4 "
            "the windows do not overlap; with stride 1 each window starts one token later and they overlap.")
    s.heading("Inputs and targets: sliding a window over the token IDs",
              "max_length = 4. The targets are the inputs shifted one position to the right.")
    cw, ch = 72, 30
    gx = 148
    n = len(ids)

    def col_x(j: int) -> float:
        return gx + j * cw

    # token row
    ty = 104
    s.text(24, ty + 8, "token IDs", size=14, anchor="start", weight="700")
    for j in range(n):
        s.text(col_x(j) + cw / 2, ty - 12, f"\"{tokens[j]}\"", size=11.5, mono=True, colour=MUTED,
               max_width=cw - 2)
        s.rect(col_x(j) + 2, ty, cw - 4, ch, fill=PALETTE["data"][0], stroke=PALETTE["data"][1], rx=5)
        s.text(col_x(j) + cw / 2, ty + ch / 2, str(ids[j]), size=13.5, mono=True, weight="700")
        s.text(col_x(j) + cw / 2, ty + ch + 12, str(j), size=11, colour=MUTED)
    s.text(col_x(n) + 6, ty + ch / 2, "…", size=16, anchor="start", colour=MUTED)

    def sample(y, start, label):
        s.text(24, y + ch / 2, label, size=13.5, anchor="start", weight="600")
        s.text(118, y + ch / 2, "x", size=14, anchor="middle", weight="700", colour="#1d4ed8", mono=True)
        s.text(118, y + ch + 6 + ch / 2, "y", size=14, anchor="middle", weight="700", colour="#15803d",
               mono=True)
        s.rect(col_x(start) + 1, y, 4 * cw - 2, ch, fill="#dbeafe", stroke="#3b82f6", rx=6)
        s.rect(col_x(start + 1) + 1, y + ch + 6, 4 * cw - 2, ch, fill="#dcfce7", stroke="#22c55e", rx=6)
        for j in range(4):
            s.text(col_x(start + j) + cw / 2, y + ch / 2, str(ids[start + j]), size=13.5, mono=True)
            s.text(col_x(start + 1 + j) + cw / 2, y + ch + 6 + ch / 2, str(ids[start + 1 + j]), size=13.5,
                   mono=True)
            if j < 3:
                xs = col_x(start + j) + cw
                s.add(f'<line x1="{fmt(xs)}" y1="{fmt(y + 6)}" x2="{fmt(xs)}" y2="{fmt(y + ch - 6)}" '
                      f'stroke="#93c5fd" stroke-width="1"/>')
                xs2 = col_x(start + 1 + j) + cw
                s.add(f'<line x1="{fmt(xs2)}" y1="{fmt(y + ch + 12)}" x2="{fmt(xs2)}" '
                      f'y2="{fmt(y + 2 * ch)}" stroke="#86efac" stroke-width="1"/>')

    # stride 4
    y = 176
    s.rect(16, y - 10, W - 32, 202, fill="#f8fafc", stroke=BORDER, rx=10)
    s.text(28, y + 12, "stride = 4  (= max_length): windows do not overlap, every token is used once",
           size=14.5, anchor="start", weight="700")
    sample(y + 38, 0, "sample 1")
    sample(y + 120, 4, "sample 2")
    # stride 1
    y = 398
    s.rect(16, y - 10, W - 32, 284, fill="#f8fafc", stroke=BORDER, rx=10)
    s.text(28, y + 12, "stride = 1: each window starts one token later, windows overlap",
           size=14.5, anchor="start", weight="700")
    sample(y + 38, 0, "sample 1")
    sample(y + 120, 1, "sample 2")
    sample(y + 202, 2, "sample 3")
    s.text(col_x(7) + 14, y + 202 + ch + 3, "…", size=18, anchor="start", colour=MUTED)
    # legend at the bottom
    ly = H - 34
    s.rect(24, ly - 12, 36, 24, fill="#dbeafe", stroke="#3b82f6", rx=5)
    s.text(70, ly, "x = input window (what the model reads)", size=13, anchor="start")
    s.rect(410, ly - 12, 36, 24, fill="#dcfce7", stroke="#22c55e", rx=5)
    s.text(456, ly, "y = target window: y[i] is the token after x[i]", size=13, anchor="start",
           max_width=W - 470)
    return s


# =============================================================================================
# 7. embeddings
# =============================================================================================
def _shade(i: int, j: int) -> str:
    """Deterministic pseudo-random blue tint for matrix cells."""
    v = (i * 7 + j * 13 + (i * j) % 5) % 6
    return ["#eff6ff", "#dbeafe", "#bfdbfe", "#93c5fd", "#dbeafe", "#bfdbfe"][v]


def fig_embeddings() -> Svg:
    W, H = 940, 600
    s = Svg("embeddings", W, H,
            "Token embedding lookup plus positional embedding",
            "The token ' effort' has ID 3626 and sits at position 1. Its ID selects row 3626 of the token "
            "embedding matrix (vocab_size 50257 by emb_dim 768); its position selects row 1 of the positional "
            "embedding matrix (context_length 1024 by emb_dim 768). The two 768-long rows are added to give "
            "the input embedding of that token. For a batch, token embeddings (b, T, 768) plus positional "
            "embeddings (T, 768) give (b, T, 768).")
    s.heading("Embeddings: look up a row, add the position's row",
              "Example: the token \" effort\" in \"Every effort moves you\" (ID 3626, position 1).")
    ncol = 9
    mx, cwid, rh = 330, 26, 24
    mw = ncol * cwid

    def matrix(y0, labels, hi, title, dims):
        s.text(mx + mw / 2, y0 - 30, title, size=14.5, weight="700")
        s.text(mx + mw / 2, y0 - 12, dims, size=12.5, colour=MUTED, mono=True)
        for r, lab in enumerate(labels):
            yy = y0 + r * rh
            if lab == "dots":
                s.vdots(mx - 22, yy + rh / 2)
                for j in range(ncol):
                    s.vdots(mx + j * cwid + cwid / 2, yy + rh / 2, colour="#93c5fd", gap=4.5)
                continue
            s.text(mx - 10, yy + rh / 2, lab, size=12.5, anchor="end", mono=True,
                   weight="700" if r == hi else None, colour=TEXT if r == hi else MUTED)
            for j in range(ncol):
                fill = _shade(r + int(lab) % 17, j)
                s.rect(mx + j * cwid, yy, cwid, rh, fill=fill, stroke="#ffffff", rx=0, sw=1)
        s.rect(mx, y0, mw, len(labels) * rh, fill="none", stroke="#3b82f6", rx=2, sw=1.2)
        s.rect(mx - 3, y0 + hi * rh - 1, mw + 6, rh + 2, fill="none", stroke="#1d4ed8", rx=4, sw=2.6)
        return y0 + hi * rh + rh / 2

    tok_labels = ["0", "1", "dots", "3625", "3626", "3627", "dots", "50256"]
    ty0 = 132
    tok_row_y = matrix(ty0, tok_labels, 4, "Token embedding matrix", "tok_emb: 50257 rows × 768")
    pos_labels = ["0", "1", "2", "dots", "1023"]
    py0 = 400
    pos_row_y = matrix(py0, pos_labels, 1, "Positional embedding matrix", "pos_emb: 1024 rows × 768")

    # left: token and its ID / position
    lw = 170
    tk = s.box(40, ty0 - 10, lw, 38, "io", "token \" effort\"", size=14, weight="600")
    idb = s.box(40, tok_row_y - 19, lw, 38, "data", "ID 3626", size=15, weight="700", label_mono=True)
    posb = s.box(40, pos_row_y - 19, lw, 38, "data", "position 1", size=15, weight="700", label_mono=True)
    s.line(tk.cx, tk.bottom, tk.cx, idb.top - 1)
    s.text(tk.cx + 8, (tk.bottom + idb.top) / 2, "tokenizer", size=12, anchor="start", colour=MUTED)
    s.line(idb.right, idb.cy, mx - 52, tok_row_y, colour="blue")
    s.line(posb.right, posb.cy, mx - 52, pos_row_y, colour="blue")
    s.text(posb.cx, posb.bottom + 16, "its index in the sequence", size=12, colour=MUTED)
    s.text(idb.cx, idb.bottom + 16, "selects a row", size=12, colour=MUTED)

    # right: the vector sum
    vx, vc = 652, 54
    vals_t = ["0.21", "−0.47", "0.03", "…", "0.88"]
    vals_p = ["−0.05", "0.12", "0.30", "…", "−0.14"]
    vals_s = ["0.16", "−0.35", "0.33", "…", "0.74"]

    def vector(y, vals, fill, stroke, label):
        s.text(vx, y - 14, label, size=13, anchor="start", weight="600")
        for k, v in enumerate(vals):
            s.rect(vx + k * vc, y, vc, 30, fill=fill, stroke=stroke, rx=0, sw=1)
            s.text(vx + k * vc + vc / 2, y + 15, v, size=12, mono=True)
        return Box(vx, y, vc * len(vals), 30)

    v1 = vector(tok_row_y - 15 + 40, vals_t, "#dbeafe", "#3b82f6", "row 3626 (768 numbers)")
    v2 = vector(v1.bottom + 56, vals_p, "#dbeafe", "#3b82f6", "row 1 of pos_emb (768)")
    s.text(vx - 16, (v1.bottom + v2.top) / 2 - 2, "+", size=22, weight="700")
    s.add(f'<line x1="{fmt(vx - 8)}" y1="{fmt(v2.bottom + 12)}" x2="{fmt(v2.right)}" y2="{fmt(v2.bottom + 12)}" '
          f'stroke="{TEXT}" stroke-width="1.6"/>')
    v3 = vector(v2.bottom + 44, vals_s, "#c7d2fe", "#6366f1", "input embedding (768)")
    s.text(vx - 16, v3.cy, "=", size=20, weight="700")
    s.poly([(mx + mw + 3, tok_row_y), (vx - 36, tok_row_y), (vx - 36, v1.cy), (vx - 1, v1.cy)],
           colour="blue", radius=8)
    s.poly([(mx + mw + 3, pos_row_y), (vx - 36, pos_row_y), (vx - 36, v2.cy), (vx - 1, v2.cy)],
           colour="blue", radius=8)
    s.text(v3.cx, v3.bottom + 18, "→ dropout → transformer blocks", size=12.5, colour=MUTED)

    # bottom: the batch version
    by = H - 42
    s.rect(24, by - 20, W - 48, 40, fill="#f8fafc", stroke=BORDER, rx=8)
    s.text(W / 2, by, "whole batch:  tok_emb(in_idx) (b, T, 768)  +  pos_emb(torch.arange(T)) (T, 768)"
           "  →  (b, T, 768)", size=13, mono=True, max_width=W - 60)
    return s


# =============================================================================================
# 8. text generation loop
# =============================================================================================
def fig_generation_loop() -> Svg:
    W, H = 1000, 540
    s = Svg("generation_loop", W, H,
            "The text generation loop",
            "Prompt token IDs go through the model; the logits of the last position are divided by the "
            "temperature, optionally filtered with top-k or top-p, turned into probabilities with softmax; "
            "the next token ID is picked by argmax or by sampling, appended to the sequence, and the loop "
            "repeats. With a KV cache only the new token goes through the model after the first step.")
    s.heading("Generating text one token at a time",
              "generate(model, idx, max_new_tokens, temperature, top_k, top_p, eos_id)")
    bw, bh, gap = 166, 70, 28
    xs = [30 + k * (bw + gap) for k in range(5)]
    y1, y2 = 96, 296
    prompt = s.box(xs[0], y1, bw, bh, "data", "Prompt IDs", "“Every effort\nmoves you”", size=14.5,
                   sub_size=12)
    model = s.box(xs[1], y1, bw, bh, "attn", "GPTModel", "forward pass", size=15)
    logits = s.box(xs[2], y1, bw, bh, "head", "Logits", "one row per position", size=14.5, sub_size=12)
    last = s.box(xs[3], y1, bw, bh, "head", "Last position", "logits[:, -1, :]", size=14.5, sub_mono=True,
                 sub_size=12)
    temp = s.box(xs[4], y1, bw, bh, "head", "Temperature", "logits / temperature", size=14.5, sub_size=12)
    filt = s.box(xs[4], y2, bw, bh, "head", "Top-k / top-p", "keep the best,\nthe rest → −∞", size=14.5,
                 sub_size=12)
    soft = s.box(xs[3], y2, bw, bh, "head", "Softmax", "probabilities\nthat sum to 1", size=14.5, sub_size=12)
    pick = s.box(xs[2], y2, bw, bh, "data", "Pick next ID", "argmax (temperature 0)\nor sample", size=14.5,
                 sub_size=12)
    app = s.box(xs[1], y2, bw, bh, "data", "Append", "to the sequence", size=14.5, sub_size=12)
    outb = s.box(xs[0], y2, bw, bh, "io", "Decode to text", "at the end", size=14.5, sub_size=12)

    s.line(prompt.right, prompt.cy, model.left - 1, model.cy)
    s.line(model.right, model.cy, logits.left - 1, logits.cy)
    s.line(logits.right, logits.cy, last.left - 1, last.cy, colour="purple")
    s.line(last.right, last.cy, temp.left - 1, temp.cy, colour="purple")
    s.line(temp.cx, temp.bottom, filt.cx, filt.top - 1, colour="purple")
    s.line(filt.left, filt.cy, soft.right + 1, soft.cy, colour="purple")
    s.line(soft.left, soft.cy, pick.right + 1, pick.cy, colour="purple")
    s.line(pick.left, pick.cy, app.right + 1, app.cy)
    s.line(app.left, app.cy, outb.right + 1, outb.cy, dash="5 4")
    # shapes under the first row
    s.shape(prompt.cx, prompt.bottom + 16, "(1, n)", anchor="middle", size=12.5)
    s.shape(logits.cx, logits.bottom + 16, "(1, n, 50257)", anchor="middle", size=12.5)
    s.shape(last.cx, last.bottom + 16, "(1, 50257)", anchor="middle", size=12.5)
    s.shape(app.cx, app.bottom + 16, "(1, n + 1)", anchor="middle", size=12.5)
    s.text(temp.cx + 10, (temp.bottom + filt.top) / 2 - 10, "0 → greedy", size=12, anchor="start",
           colour=MUTED)
    s.text(temp.cx + 10, (temp.bottom + filt.top) / 2 + 8, "< 1 sharper", size=12, anchor="start", colour=MUTED)
    s.text(temp.cx + 10, (temp.bottom + filt.top) / 2 + 26, "> 1 flatter", size=12, anchor="start",
           colour=MUTED)
    # the loop
    s.line(app.cx, app.top, model.cx, model.bottom + 1, colour="orange", sw=2.4)
    ly = (model.bottom + app.top) / 2
    s.text(model.cx + 14, ly - 18, "repeat", size=15, anchor="start", weight="700", colour="#c2410c")
    s.text(model.cx + 14, ly + 2, "max_new_tokens times", size=12.5, anchor="start", colour="#c2410c")
    s.text(model.cx + 14, ly + 20, "or until eos_id", size=12.5, anchor="start", colour="#c2410c")
    s.text(model.cx - 14, ly - 18, "with the KV cache", size=12.5, anchor="end", colour="#1d4ed8")
    s.text(model.cx - 14, ly + 2, "only the new token", size=12.5, anchor="end", colour="#1d4ed8")
    s.text(model.cx - 14, ly + 20, "(1, 1) goes in", size=12.5, anchor="end", colour="#1d4ed8")

    # KV cache note
    ky = 420
    s.rect(30, ky, W - 60, 92, fill="#eff6ff", stroke="#3b82f6", rx=10)
    s.text(48, ky + 24, "KV cache (use_cache=True)", size=14.5, anchor="start", weight="700")
    s.text(48, ky + 50, "First pass (prefill): the whole prompt (1, n) goes through the model, and every layer "
           "stores its keys and values.", size=13.5, anchor="start", max_width=W - 100)
    s.text(48, ky + 72, "Every later pass: only the new token (1, 1) goes through the model; its query "
           "attends to the cached keys and values.", size=13.5, anchor="start", max_width=W - 100)
    return s


# =============================================================================================
# 9. training loop
# =============================================================================================
def fig_training_loop() -> Svg:
    W, H = 960, 600
    s = Svg("training_loop", W, H,
            "The training loop",
            "For every batch: inputs and targets (b, T) from the data loader go through the model to give "
            "logits (b, T, 50257); cross-entropy against the targets gives the loss; loss.backward() computes "
            "gradients; optimizer.step() updates the weights; optimizer.zero_grad() clears the gradients; then "
            "the next batch. Every eval_freq steps the model is evaluated on training and validation batches.")
    s.heading("Training loop", "for epoch in range(num_epochs):  for inputs, targets in train_loader:  …")
    bw, bh = 230, 74
    xs = [40, 365, 690]
    y1, y2 = 110, 290
    s.rect(20, 80, W - 40, 320, fill="#fafafa", stroke=BORDER, rx=14, dash="6 4")
    s.text(W - 36, 98, "one step per batch", size=12.5, anchor="end", colour=MUTED)

    def step_box(x, y, kind, n, label, sub, sub_mono=True, sub_size=12.5):
        b = s.box(x, y, bw, bh, kind, label, sub, size=15, sub_mono=sub_mono, sub_size=sub_size)
        s.add(f'<circle cx="{fmt(x + 2)}" cy="{fmt(y + 2)}" r="12" fill="{PALETTE[kind][1]}"/>')
        s.text(x + 2, y + 2, str(n), size=13, weight="700", colour="#ffffff")
        return b

    b1 = step_box(xs[0], y1, "data", 1, "Batch", "inputs, targets (b, T)")
    b2 = step_box(xs[1], y1, "attn", 2, "Forward pass", "logits = model(inputs)")
    b3 = step_box(xs[2], y1, "loss", 3, "Cross-entropy loss", "logits vs targets\n→ one number")
    b4 = step_box(xs[2], y2, "loss", 4, "Backward", "loss.backward()")
    b5 = step_box(xs[1], y2, "ff", 5, "Optimizer step", "optimizer.step()")
    b6 = step_box(xs[0], y2, "norm", 6, "Zero gradients", "optimizer.zero_grad()")
    s.line(b1.right, b1.cy, b2.left - 1, b2.cy)
    s.line(b2.right, b2.cy, b3.left - 1, b3.cy)
    s.line(b3.cx, b3.bottom, b4.cx, b4.top - 1, colour="red")
    s.line(b4.left, b4.cy, b5.right + 1, b5.cy, colour="red")
    s.line(b5.left, b5.cy, b6.right + 1, b6.cy)
    s.line(b6.cx, b6.top, b1.cx, b1.bottom + 1, colour="orange", sw=2)
    s.text(b1.cx + 10, (b1.bottom + b6.top) / 2, "next batch", size=13, anchor="start", weight="700",
           colour="#c2410c")
    # small annotations under the arrows
    s.text(b2.cx, b2.bottom + 18, "(b, T) → (b, T, 50257)", size=12, mono=True, colour=MUTED)
    s.text(b4.cx, b4.bottom + 18, "gradient for every weight", size=12, colour=MUTED)
    s.text(b5.cx, b5.bottom + 18, "AdamW nudges the weights", size=12, colour=MUTED)
    s.text(b6.cx, b6.bottom + 18, "clear before the next backward", size=12, colour=MUTED)

    # evaluation branch
    ey = 430
    ev = s.rect(190, ey, W - 380, 132, fill="#f5f3ff", stroke="#8b5cf6", rx=12, dash="6 4")
    s.text(ev.cx, ey + 22, "every eval_freq steps:  evaluate", size=15, weight="700")
    lines = ["model.eval() and torch.no_grad(): no dropout, no gradients",
             "train loss and validation loss on eval_iter batches",
             "print them, optionally generate a sample text, then model.train()"]
    for k, ln in enumerate(lines):
        s.text(ev.cx, ey + 50 + 24 * k, ln, size=13, max_width=ev.w - 20)
    s.poly([(b5.cx, b5.bottom + 30), (b5.cx, ey - 1)], colour="purple", dash="5 4")
    s.text(b5.cx + 10, (b5.bottom + 30 + ey) / 2, "global_step % eval_freq == 0", size=12, anchor="start",
           mono=True, colour="#6d28d9")
    return s


# =============================================================================================
# 10. KV cache
# =============================================================================================
def fig_kv_cache() -> Svg:
    tokens = ["Every", " effort", " moves", " you", " forward", "."]
    W, H = 960, 684
    s = Svg("kv_cache", W, H,
            "Generation without and with a KV cache",
            "Three generation steps for the prompt 'Every effort moves you'. Without a cache every step feeds "
            "the whole sequence through the model and recomputes queries, keys and values for every token: "
            "4, then 5, then 6 tokens. With a cache the first step computes and stores the keys and values "
            "of the prompt; later steps compute q, k, v only for the one new token and read the past keys and "
            "values from the cache.")
    s.heading("KV cache: keep the keys and values of the past tokens",
              "Three generation steps for the prompt \"Every effort moves you\" (one layer shown; every layer "
              "does the same).")
    cw, ch = 92, 38
    gx = 138
    n = len(tokens)

    def panel(y0, title, cached: bool):
        s.rect(16, y0, W - 32, 258, fill="#fafafa", stroke=BORDER, rx=12)
        s.text(32, y0 + 22, title, size=16, anchor="start", weight="700")
        hy = y0 + 52
        for j, t in enumerate(tokens):
            s.text(gx + j * cw + cw / 2, hy, f"\"{t}\"", size=12.5, mono=True, colour=MUTED, max_width=cw)
        s.text(gx + n * cw + 26, hy, "model input", size=12.5, anchor="start", colour=MUTED)
        s.text(gx + n * cw + 120, hy, "predicts", size=12.5, anchor="start", colour=MUTED)
        total = 0
        for step in range(3):
            ry = y0 + 70 + step * (ch + 14)
            length = 4 + step
            s.text(32, ry + ch / 2, f"step {step + 1}", size=14, anchor="start", weight="600")
            for j in range(length):
                x = gx + j * cw + 3
                new = (not cached) or step == 0 or j == length - 1
                if new:
                    s.rect(x, ry, cw - 6, ch, fill="#ffedd5", stroke="#f97316", rx=6)
                    q = (not cached) or step == 0 or j == length - 1
                    s.text(x + (cw - 6) / 2, ry + ch / 2, "q  k  v" if q else "k  v", size=13.5, mono=True,
                           weight="700", colour="#9a3412")
                else:
                    s.rect(x, ry, cw - 6, ch, fill="#dbeafe", stroke="#3b82f6", rx=6, dash="4 3")
                    s.text(x + (cw - 6) / 2, ry + ch / 2, "k  v", size=13.5, mono=True, colour="#1e40af")
            work = length if (not cached or step == 0) else 1
            total += work
            s.text(gx + n * cw + 26, ry + ch / 2, f"{work} token{'s' if work > 1 else ''}", size=14,
                   anchor="start", weight="700", colour="#9a3412")
            nxt = tokens[length] if length < n else "…"
            s.text(gx + n * cw + 120, ry + ch / 2, f"→ \"{nxt}\"" if nxt != "…" else "→ next",
                   size=12.5, anchor="start", mono=True, colour=MUTED)
        s.text(gx + n * cw + 26, y0 + 70 + 3 * (ch + 14) + 12, f"total: {total}", size=14, anchor="start",
               weight="700")
        return y0 + 258

    end1 = panel(84, "Without cache: every step recomputes the whole sequence", cached=False)
    end2 = panel(end1 + 18, "With cache: past k, v are stored; only the new token is computed", cached=True)
    # legend
    ly = end2 + 30
    s.rect(24, ly - 13, 40, 26, fill="#ffedd5", stroke="#f97316", rx=6)
    s.text(74, ly, "computed in this step", size=13, anchor="start")
    s.rect(262, ly - 13, 40, 26, fill="#dbeafe", stroke="#3b82f6", rx=6, dash="4 3")
    s.text(312, ly, "read from the cache", size=13, anchor="start")
    s.text(490, ly, "The cache grows by one (k, v) pair per layer per step.", size=13, anchor="start",
           max_width=W - 510)
    return s


def fig_tokenizer_widget() -> Svg:
    """What notebook 01's TokenizerWidget shows (a static picture for readers without a kernel)."""
    text = "Type anything here: names like Akwirw, emoji 🙂, numbers 12345 or 1,000,000."
    tokens = [("Type", 6030), ("·anything", 1997), ("·here", 994), (":", 25), ("·names", 3891), ("·like", 588),
              ("·Ak", 9084), ("w", 86), ("ir", 343), ("w", 86), (",", 11), ("·emoji", 44805), ("·🙂", 32485),
              (",", 11), ("·numbers", 3146), ("·123", 17031), ("45", 2231), ("·or", 393), ("·1", 352), (",", 11),
              ("000", 830), (",", 11), ("000", 830), (".", 13)]
    colours = ["#fde2a8", "#c7e6c1", "#bfdcf5", "#f7c6d9", "#dccdf2", "#c8ece9"]  # viz.TOKEN_COLOURS
    W, H = 900, 300
    s = Svg("tokenizer_widget", W, H,
            "The tokenizer widget of notebook 01",
            f"A text box holding '{text}'; below it the line '75 characters → 24 tokens' and the text split "
            "into 24 coloured token boxes, each with its GPT-2 token ID underneath: "
            + ", ".join(f"{t.replace('·', ' ')!r} {i}" for t, i in tokens) + ".")
    s.heading("TokenizerWidget: type, and see the tokens as you type",
              "A picture of the widget in a running notebook (spaces shown as ·)")
    s.rect(30, 76, W - 60, 64, fill="#ffffff", stroke="#9ca3af", rx=2, sw=1)
    s.text(40, 96, text, size=14, anchor="start")
    s.text(30, 162, "75 characters → 24 tokens", size=13, anchor="start", colour=MUTED)
    x, y = 30.0, 180.0
    for n, (tok, tid) in enumerate(tokens):
        w = max(text_width(tok, 14, mono=True), text_width(str(tid), 10, mono=True)) + 8
        if x + w > W - 30:
            x, y = 30.0, y + 46
        s.rect(x, y, w, 40, fill=colours[n % len(colours)], stroke=None, rx=3)
        s.text(x + w / 2, y + 13, tok, size=14, mono=True)
        s.text(x + w / 2, y + 31, str(tid), size=10, mono=True, colour=MUTED)
        x += w + 3
    return s


FIGURES = {
    "gpt_architecture": fig_gpt_architecture,
    "transformer_block": fig_transformer_block,
    "attention_pipeline": fig_attention_pipeline,
    "causal_mask": fig_causal_mask,
    "tokenization": fig_tokenization,
    "sliding_window": fig_sliding_window,
    "embeddings": fig_embeddings,
    "generation_loop": fig_generation_loop,
    "training_loop": fig_training_loop,
    "kv_cache": fig_kv_cache,
    "tokenizer_widget": fig_tokenizer_widget,
}


def build_all() -> dict[str, str]:
    Svg.warnings = []
    return {f"{name}.svg": fn().render() for name, fn in FIGURES.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if a figure on disk is missing or differs from a fresh one")
    ap.add_argument("--outdir", type=Path, default=HERE, help="folder for the SVG files (default: images/)")
    ap.add_argument("--verbose", "-v", action="store_true", help="also print layout warnings")
    args = ap.parse_args(argv)
    figures = build_all()
    if args.verbose:
        for w in Svg.warnings:
            print("warning:", w, file=sys.stderr)
    if args.check:
        bad = []
        for fname, content in figures.items():
            path = args.outdir / fname
            if not path.exists() or path.read_bytes() != content.encode("utf-8"):
                bad.append(fname)
        if bad:
            print("out of date (run python images/make_figures.py): " + ", ".join(bad), file=sys.stderr)
            return 1
        print(f"all {len(figures)} figures are up to date")
        return 0
    args.outdir.mkdir(parents=True, exist_ok=True)
    for fname, content in figures.items():
        path = args.outdir / fname
        if not path.exists() or path.read_bytes() != content.encode("utf-8"):
            path.write_bytes(content.encode("utf-8"))
            print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
