"""Faster generation on a CPU: weights arranged once for the kernels, fewer kernel calls per token.

Generating one token at a time multiplies a single token vector by every weight matrix of the
model, so a step costs about as long as it takes to read all the weights from memory (~500 MB in
float32 for GPT-2 small), plus a fixed cost for each of the ~300 small operations of a step.
This module cuts both, for as long as a ``with prepacked_linears(model):`` block runs:

- **Prepacked weights.** oneDNN (the CPU kernel library inside PyTorch) can rearrange a weight
  once ("prepack") for the CPU's vector instructions, after which a step only streams it. For
  bfloat16 this is what makes bf16 pay off at all: plain ``F.linear`` on bf16 CPU tensors
  rearranges every weight on *every* call. For float32, packed oneDNN streams the weights faster
  than PyTorch's ordinary kernel (Intel's MKL) on AMD CPUs but not on Intel ones, so
  ``fp32_kernel`` picks one by the CPU's vendor. MKL in turn streams the "wide" matrices (more
  outputs than inputs: query/key/value, the first feed-forward layer, the output head) faster
  when they are stored transposed, as GPT-2's own checkpoints store them, so those get a
  transposed copy. Copies stay in memory while the model lives (bf16: half the size of the fp32
  weights; fp32: about 70 % of them with MKL, all of them with oneDNN on AMD);
  ``release_prepacked`` frees them.
- **Fused products.** The query, key and value projections read the same input, so their weights
  are stacked and applied in one call; the feed-forward network's GELU runs inside its first
  product.
- **A lean step.** Each transformer block runs as one function: layer norm, the fused products,
  the key/value cache and attention, without the module calls, dropouts and reshapes in between.

``gptbook.generate`` uses it by itself; learners never need to call it:

    with torch.inference_mode(), prepacked_linears(model):
        logits = model(ids)

The model's parameters, state dict and checkpoints stay exactly as they were, and every module
gets its own ``forward`` back when the block ends. Packed copies are kept (weakly tied to their
modules) and remade when a weight changes in place, even inside the block (changes made through
``p.data`` bypass PyTorch's version counters and go unseen: change the parameter itself, under
``torch.no_grad()``). The fast path belongs to the thread that opened the block: another thread that calls the
model meanwhile (the kernel, while a widget's generator is open in a background thread) runs the ordinary
``forward``, whatever the block does. Wherever the fast path does not apply (a GPU, gradients or dropout on,
attention weights requested, another dtype, modules of other classes, such as a learner's own
block) each module runs its ordinary ``forward``. Results equal the ordinary ones up to rounding
(another summation order): in float32 the greedy tokens are the same unless two logits tie to
within ~1e-6; in bf16 GELU is applied before rounding to bf16 instead of after.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ._shared import cpu_vendor
from .attention import LayerKVCache, MultiHeadAttention, fused_causal_attention
from .layers import GELU, FeedForward, LayerNorm
from .model import TransformerBlock

# module -> (versions of the tensors it was packed from, kernel, weight for the kernel, bias,
#            bytes of the copies made for it)
_PACKED: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()
_PATCHING = threading.Lock()  # one thread at a time installs or removes fast forwards

FP32_KERNELS = ("onednn", "mkl")


def _onednn_linear_available() -> bool:
    try:
        return (
            torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        )
    except (AttributeError, RuntimeError):
        return False


def prepacking_available() -> bool:
    """True when this PyTorch and CPU can run prepacked bf16 linear layers with oneDNN."""
    try:
        return _onednn_linear_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return False


@functools.lru_cache(maxsize=None)
def fp32_kernel() -> str:
    """The kernel float32 linear layers use inside ``prepacked_linears``: "onednn" or "mkl".

    The rule, from measurements of the single-row product (bench/RESULTS.md): on AMD CPUs with
    AVX2 or better, oneDNN with prepacked weights streams them up to ~1.4x faster than MKL (Intel's
    library, which does not use its best code paths there), so "onednn", at the price of a packed
    copy of the weights in memory while the model lives. On Intel CPUs MKL is as fast or faster
    and needs no copy, so "mkl" (PyTorch's ordinary ``F.linear``), as on every other CPU.
    """
    capability = torch.backends.cpu.get_cpu_capability()  # "AVX512", "AVX2", "DEFAULT", ...
    amd = cpu_vendor() == "AuthenticAMD" and capability.startswith("AVX")
    return "onednn" if amd and _onednn_linear_available() else "mkl"


def _versions(tensors: list[Optional[torch.Tensor]]) -> tuple:
    """Where each tensor lives and how often it was changed in place: a change means repack."""
    out = []
    for t in tensors:
        try:
            out.append((t.data_ptr(), t._version) if t is not None else None)
        except RuntimeError:  # inference tensors keep no version counter
            out.append((t.data_ptr(), None))
    return tuple(out)


def _nbytes(t: Optional[torch.Tensor]) -> int:
    return t.numel() * t.element_size() if t is not None else 0


def _transposed(layers: list[nn.Linear], kernel: str) -> bool:
    """Whether the MKL kernel keeps this weight as (in_features, out_features): for "wide" matrices
    (at least twice as many outputs as inputs: the fused query/key/value, the first feed-forward
    layer, the output head) MKL streams that layout ~15-30 % faster when multiplying one row
    (bench/RESULTS.md); for the others the layout makes no difference and no copy is made."""
    out_features = sum(m.out_features for m in layers)
    return kernel == "mkl" and layers[0].weight.dtype == torch.float32 and out_features >= 2 * layers[0].in_features


def _pack(owner: nn.Module, layers: list[nn.Linear], tensors: list, kernel: str) -> tuple:
    """``(weight, bias)`` for ``kernel``: the weights of ``layers`` stacked (out_features side by
    side), packed for oneDNN, or for MKL as they are or transposed (``_transposed``). Kept in
    ``_PACKED[owner]`` until a weight changes."""
    versions = _versions(tensors)
    entry = _PACKED.get(owner)
    if entry is None or entry[0] != versions or entry[1] != kernel:
        with torch.no_grad():
            has_bias = [m.bias is not None for m in layers]
            if any(has_bias) and not all(has_bias):
                raise RuntimeError("cannot pack layers where only some have a bias")
            if len(layers) == 1:  # no copy: the parameters themselves (detached: no module kept alive)
                weight = layers[0].weight.detach()
                bias = layers[0].bias.detach() if has_bias[0] else None
            else:
                weight = torch.cat([m.weight.detach() for m in layers])  # (sum of out_features, in_features)
                bias = torch.cat([m.bias.detach() for m in layers]) if all(has_bias) else None
            stacked, transposed = len(layers) > 1, _transposed(layers, kernel)
            size = (_nbytes(weight) if stacked or transposed or kernel == "onednn" else 0) + (_nbytes(bias) if stacked else 0)
            if kernel == "onednn":
                # batch_size=1: arrange the weight for multiplying one token vector at a time.
                weight = torch.ops.mkldnn._reorder_linear_weight(weight, 1)
            elif transposed:
                weight = weight.t().contiguous()  # (in_features, out_features), as GPT-2's Conv1D stores it
        entry = (versions, kernel, weight, bias, size)
        _PACKED[owner] = entry
    return entry[2], entry[3]


def _packed_linear(owner: nn.Module, layers: list[nn.Linear], kernel: str, gelu: bool = False) -> Callable:
    """A function rows (n, in_features) -> the layers' outputs side by side (n, sum of out_features),
    optionally through GELU; repacks first if a weight changed since the last call."""
    tensors = [t for m in layers for t in (m.weight, m.bias)]
    _pack(owner, layers, tensors, kernel)  # now, so that a refusal by oneDNN surfaces early
    if kernel == "onednn":
        linear_pointwise = torch.ops.mkldnn._linear_pointwise
        activation, algorithm = ("gelu", "tanh") if gelu else ("none", "")

        def apply(rows: torch.Tensor) -> torch.Tensor:
            weight, bias = _pack(owner, layers, tensors, kernel)
            return linear_pointwise(rows, weight, bias, activation, [], algorithm)
    else:
        transposed = _transposed(layers, kernel)

        def apply(rows: torch.Tensor) -> torch.Tensor:
            weight, bias = _pack(owner, layers, tensors, kernel)
            if transposed:  # weight: (in_features, out_features)
                out = torch.addmm(bias, rows, weight) if bias is not None else rows @ weight
            else:
                out = F.linear(rows, weight, bias)
            return F.gelu(out, approximate="tanh") if gelu else out

    return apply


def _fast(x: torch.Tensor, dtype: torch.dtype, owner: int) -> bool:
    """True when ``x`` can take the fast path: inference on a CPU, in the dtype the model was packed for, in the
    thread that opened the ``prepacked_linears`` block (``owner``)."""
    return (x.dtype == dtype and x.device.type == "cpu" and not torch.is_grad_enabled()
            and threading.get_ident() == owner)


def _linear_forward(layer: nn.Linear, kernel: str, dtype: torch.dtype, owner: int) -> Callable:
    packed = _packed_linear(layer, [layer], kernel)

    def forward(x: torch.Tensor) -> torch.Tensor:
        if not _fast(x, dtype, owner):
            return F.linear(x, layer.weight, layer.bias)
        out = packed(x.reshape(-1, x.shape[-1]))  # (b*T, out_features): the kernels want a matrix
        return out.view(*x.shape[:-1], out.shape[-1])

    return forward


def _is_plain_block(block: nn.Module) -> bool:
    """A block built from gptbook's own parts, whose forward the fast one may stand in for."""
    if type(block) is not TransformerBlock:
        return False
    att, ff_layers = block.att, block.ff.layers
    return (
        type(att) is MultiHeadAttention and type(block.ff) is FeedForward
        and type(block.norm1) is LayerNorm and type(block.norm2) is LayerNorm
        and len(ff_layers) == 3 and type(ff_layers[1]) is GELU
        and all(type(m) is nn.Linear for m in (ff_layers[0], ff_layers[2], att.out_proj,
                                                 att.W_query, att.W_key, att.W_value))
    )


def _block_forward(block: nn.Module, kernel: str, dtype: torch.dtype, owner: int) -> Callable:
    """``TransformerBlock.forward`` for inference in one function: the same computation with fused
    products and no module calls in between (the readable version is in model.py and attention.py)."""
    att, ff, norm1, norm2 = block.att, block.ff, block.norm1, block.norm2
    qkv = _packed_linear(att, [att.W_query, att.W_key, att.W_value], kernel)
    out_proj = _packed_linear(att.out_proj, [att.out_proj], kernel)
    up = _packed_linear(ff.layers[0], [ff.layers[0]], kernel, gelu=True)  # Linear + GELU in one call
    down = _packed_linear(ff.layers[2], [ff.layers[2]], kernel)
    heads, head_dim, d = att.num_heads, att.head_dim, att.d_out
    ordinary = type(block).forward

    def forward(x: torch.Tensor, kv_cache: Optional[LayerKVCache] = None, return_attention: bool = False):
        if return_attention or block.training or not _fast(x, dtype, owner):
            return ordinary(block, x, kv_cache=kv_cache, return_attention=return_attention)
        b, T, emb = x.shape
        h = F.layer_norm(x, (emb,), norm1.scale, norm1.shift, norm1.eps).view(b * T, emb)
        # (b*T, 3*d) -> (b, T, 3, heads, head_dim) -> three of (b, heads, T, head_dim)
        q, k, v = qkv(h).view(b, T, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)  # (b, heads, n_keys, head_dim)
        context = fused_causal_attention(q, k, v, att.mask)  # attention.py's fused path: (b, heads, T, head_dim)
        context = context.transpose(1, 2).reshape(b * T, d)  # merge the heads: (b*T, d)
        x = x + out_proj(context).view(b, T, emb)  # shortcut around attention
        h = F.layer_norm(x, (emb,), norm2.scale, norm2.shift, norm2.eps).view(b * T, emb)
        return x + down(up(h)).view(b, T, emb)  # shortcut around the feed-forward

    return forward


def _linears_dtype(model: nn.Module) -> Optional[torch.dtype]:
    """The dtype the fast path runs in for ``model``, or None where it does not apply."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    dtypes = {m.weight.dtype for m in linears}
    if not linears or len(dtypes) != 1 or any(m.weight.device.type != "cpu" for m in linears):
        return None
    dtype = dtypes.pop()
    if dtype == torch.bfloat16 and prepacking_available():
        return dtype
    return dtype if dtype == torch.float32 else None


@contextlib.contextmanager
def prepacked_linears(model: nn.Module, fp32: Optional[str] = None) -> Iterator[nn.Module]:
    """Within the block, ``model`` runs inference through the fast path described above.

    Applies to float32 models and (where ``prepacking_available()``) bf16 models on a CPU; does
    nothing for GPUs, other dtypes or mixed ones. ``fp32`` picks the float32 kernel ("onednn" or
    "mkl"; default: ``fp32_kernel()``), for benchmarks.
    """
    dtype = _linears_dtype(model) if isinstance(model, nn.Module) else None
    if dtype is None or any("forward" in vars(m) for m in model.modules()):
        yield model  # nothing to do (or already inside an outer prepacked_linears block)
        return
    if fp32 is not None and fp32 not in FP32_KERNELS:
        raise ValueError(f"fp32 must be one of {FP32_KERNELS} or None, got {fp32!r}")
    kernel = "onednn" if dtype == torch.bfloat16 else (fp32 or fp32_kernel())
    owner = threading.get_ident()
    patches: dict[nn.Module, Callable] = {}
    try:
        covered = set()  # linear layers inside blocks that run the fast block forward
        for module in model.modules():
            if _is_plain_block(module):
                patches[module] = _block_forward(module, kernel, dtype, owner)
                covered.update(m for m in module.modules() if isinstance(m, nn.Linear))
        for layer in model.modules():
            if type(layer) is nn.Linear and layer not in covered:  # not a learner's subclass
                patches[layer] = _linear_forward(layer, kernel, dtype, owner)
    except RuntimeError:  # oneDNN refused (an unusual build): run the model as it is
        yield model
        return
    with _PATCHING:
        if any("forward" in vars(m) for m in model.modules()):  # another thread got there first
            patches = {}
        for module, forward in patches.items():
            module.forward = forward  # an instance attribute shadows the class's forward
    try:
        yield model
    finally:
        with _PATCHING:
            for module, forward in patches.items():
                if vars(module).get("forward") is forward:  # only our own
                    del module.forward


def prepacked_bytes(model: nn.Module) -> int:
    """Bytes of memory the fast path keeps for ``model`` beyond its parameters (packed or fused
    copies of weights); ``release_prepacked(model)`` frees them."""
    return sum(_PACKED[m][4] for m in model.modules() if m in _PACKED)


def release_prepacked(model: Optional[nn.Module] = None) -> None:
    """Free the packed copies kept for ``model`` (or for every model, when None is given).

    They are rebuilt on the next ``generate``; they also go away with the model itself.
    """
    modules = list(_PACKED.keys()) if model is None else list(model.modules())
    for module in modules:
        _PACKED.pop(module, None)
