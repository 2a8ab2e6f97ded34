"""Comparing an answer's value with the reference's: a sentence that says what differs (a shape, values
and where, a dtype, a type), or None when they agree."""

from __future__ import annotations

import math
from typing import Any, Optional

import torch


def _fmt(x: float) -> str:
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    return f"{x:.4g}"


def _fmt_pair(expected: float, got: float) -> tuple:
    """Both numbers with the fewest digits (4 at least) that show they differ: never "expected 10.82, got 10.82"."""
    for digits in range(4, 18):
        e, g = f"{expected:.{digits}g}", f"{got:.{digits}g}"
        if e != g:
            return e, g
    return _fmt(expected), _fmt(got)


def _is_scalar(x: Any) -> bool:
    return isinstance(x, (int, float, bool)) or (isinstance(x, torch.Tensor) and x.numel() == 1)


def _type_name(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    return f"{type(x).__name__} {x!r}" if isinstance(x, (int, float, bool)) else f"a {type(x).__name__}"


def compare(expected: Any, got: Any, atol: float = 1e-5, rtol: float = 1e-4, where: str = "") -> Optional[str]:
    """None if ``got`` matches ``expected``, else one sentence saying what differs."""
    at = f" in {where}" if where else ""
    if isinstance(expected, torch.Tensor):
        if isinstance(got, (int, float)) and not isinstance(got, bool) and expected.dim() == 0:
            got = torch.tensor(got, dtype=expected.dtype)
        if not isinstance(got, torch.Tensor):
            return f"expected a tensor{at}, got {_type_name(got)}"
        if got.shape != expected.shape:
            return f"wrong shape{at}: expected {tuple(expected.shape)}, got {tuple(got.shape)}"
        if got.is_floating_point() != expected.is_floating_point():
            return f"wrong dtype{at}: expected {expected.dtype}, got {got.dtype}"
        if got.device != expected.device:
            return f"wrong device{at}: expected {expected.device}, got {got.device}"
        if not expected.is_floating_point():
            wrong = got != expected
            if not wrong.any():
                return None
            pos = tuple(int(i) for i in wrong.nonzero()[0])
            return (f"wrong values{at}: {int(wrong.sum())} of {expected.numel()} differ, the first at "
                    f"{list(pos)} (expected {expected[pos].item()}, got {got[pos].item()})")
        e, g = expected.detach().double(), got.detach().double()
        if torch.isnan(g).any() and not torch.isnan(e).any():
            return f"the result{at} contains NaN (not a number) in {int(torch.isnan(g).sum())} places"
        close = torch.isclose(g, e, atol=atol, rtol=rtol, equal_nan=True)
        if close.all():
            return None
        diff = (g - e).abs().nan_to_num(nan=float("inf"))
        diff[close] = 0
        pos = tuple(int(i) for i in (diff == diff.max()).nonzero()[0])
        want, have = _fmt_pair(e[pos].item(), g[pos].item())
        return (f"wrong values{at}: {int((~close).sum())} of {expected.numel()} differ; the largest difference is "
                f"{_fmt(diff.max().item())} at {list(pos)} (expected {want}, got {have})")
    if isinstance(expected, bool) or expected is None:
        return None if got == expected else f"expected {expected!r}{at}, got {_type_name(got)}"
    if isinstance(expected, int):
        if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.is_floating_point():
            got = int(got.item())
        if isinstance(got, float) and got.is_integer():
            got = int(got)
        if isinstance(got, bool) or not isinstance(got, int):
            return f"expected a whole number{at} ({expected:,}), got {_type_name(got)}"
        return None if got == expected else f"expected {expected:,}{at}, got {got:,}"
    if isinstance(expected, float):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"expected a number{at} ({_fmt(expected)}), got {_type_name(got)}"
        if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return None
        want, have = _fmt_pair(expected, float(got))
        return f"expected {want}{at}, got {have}"
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"expected a {type(expected).__name__} of {len(expected)} items{at}, got {_type_name(got)}"
        if len(got) != len(expected):
            return f"expected {len(expected)} items{at}, got {len(got)}"
        if isinstance(expected, tuple) and len(expected) <= 4 and all(map(_is_scalar, expected + tuple(got))):
            # a small tuple such as a (layer, head) pair is one answer: show it whole
            if any(compare(e, g, atol, rtol) for e, g in zip(expected, got)):
                shown = tuple(g.item() if isinstance(g, torch.Tensor) else g for g in got)
                return f"expected {expected!r}{at}, got {shown!r}"
            return None
        for i, (e, g) in enumerate(zip(expected, got)):
            problem = compare(e, g, atol, rtol, f"{where}[{i}]" if where else f"item {i}")
            if problem:
                return problem
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"expected a dict{at}, got {_type_name(got)}"
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        if missing:
            return f"missing keys{at}: {', '.join(map(str, missing[:4]))}" + (" ..." if len(missing) > 4 else "")
        if extra:
            return f"unexpected keys{at}: {', '.join(map(str, extra[:4]))}" + (" ..." if len(extra) > 4 else "")
        for k in expected:
            problem = compare(expected[k], got[k], atol, rtol, str(k))
            if problem:
                return problem
        return None
    return None if got == expected else f"expected {expected!r}{at}, got {got!r}"
