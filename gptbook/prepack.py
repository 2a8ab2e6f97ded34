"""Faster bfloat16 generation on a CPU: hand the weights to oneDNN pre-arranged, and fuse a little.

Generating one token at a time multiplies a single token vector by every weight matrix of the
model, so a step costs about as long as it takes to read all the weights from memory, plus a
fixed cost per kernel call. In bfloat16 the weights take half the bytes of float32; but
``torch.nn.functional.linear`` on bf16 CPU tensors rearranges each weight for the CPU's bf16
dot-product instructions on *every* call, which eats the saving. oneDNN (the CPU kernel
library inside PyTorch) can do that rearranging once ("prepacking"), after which a step only
streams the packed weights. Two fusions save kernel calls on top:

- the query, key and value projections of an attention layer read the same input, so their
  three weight matrices are packed side by side and applied in one call;
- the feed-forward network's GELU runs inside its first matrix product.

``prepacked_linears(model)`` is a context manager that does all this for a bf16 model on a CPU
while the block runs, and changes nothing else:

    model = model.to(torch.bfloat16)
    with torch.inference_mode(), prepacked_linears(model):
        logits = model(ids)

``gptbook.generate`` uses it by itself; learners never need to call it. Packed copies are kept
(weakly tied to their modules) and remade when a weight changes; the model's parameters, state
dict and checkpoints stay exactly as they were. Wherever the packed kernels do not apply (float32
weights, a GPU, gradients needed, a PyTorch without oneDNN or a CPU without bf16 instructions)
each module runs its ordinary ``forward``. Results equal the ordinary bf16 ones up to rounding
(a different summation order; GELU applied before rounding to bf16 instead of after).
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .attention import MultiHeadAttention
from .layers import GELU, FeedForward

# module -> (versions of the tensors it was packed from, packed weight, bias)
_PACKED: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def prepacking_available() -> bool:
    """True when this PyTorch and CPU can run prepacked bf16 linear layers with oneDNN."""
    try:
        return (
            torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and hasattr(torch.ops.mkldnn, "_linear_pointwise")
            and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):
        return False


def _is_bf16_cpu(layers: list[nn.Linear]) -> bool:
    return all(m.weight.dtype == torch.bfloat16 and m.weight.device.type == "cpu" for m in layers)


def _versions(tensors: list[Optional[torch.Tensor]]) -> tuple:
    """Where each tensor lives and how often it was changed in place: a change means repack."""
    out = []
    for t in tensors:
        try:
            out.append((t.data_ptr(), t._version) if t is not None else None)
        except RuntimeError:  # inference tensors keep no version counter
            out.append((t.data_ptr(), None))
    return tuple(out)


def _pack(owner: nn.Module, layers: list[nn.Linear], tensors: list[Optional[torch.Tensor]]) -> tuple:
    """``(versions, packed weight, bias)``: the weights of ``layers`` stacked (out_features side by
    side) and packed for oneDNN; ``tensors`` are their weights and biases, whose versions say when
    the packed copy is out of date."""
    versions = _versions(tensors)
    entry = _PACKED.get(owner)
    if entry is None or entry[0] != versions:
        with torch.no_grad():
            weight = torch.cat([m.weight.detach() for m in layers])  # (sum of out_features, in_features)
            has_bias = [m.bias is not None for m in layers]
            if any(has_bias) and not all(has_bias):
                raise RuntimeError("cannot pack layers where only some have a bias")
            bias = torch.cat([m.bias.detach() for m in layers]) if all(has_bias) else None
            # batch_size=1: arrange the weight for multiplying one token vector at a time.
            packed = torch.ops.mkldnn._reorder_linear_weight(weight, 1)
        entry = (versions, packed, bias)
        _PACKED[owner] = entry
    return entry


def _packed_linear(owner: nn.Module, layers: list[nn.Linear], activation: str = "none"):
    """A function x -> layers' outputs side by side (optionally through GELU), for bf16 x."""
    tensors = [t for m in layers for t in (m.weight, m.bias)]
    versions, packed, bias = _pack(owner, layers, tensors)
    algorithm = "tanh" if activation == "gelu" else ""
    linear_pointwise = torch.ops.mkldnn._linear_pointwise

    def apply(x: torch.Tensor) -> Optional[torch.Tensor]:
        if x.dtype is not torch.bfloat16 or torch.is_grad_enabled() or _versions(tensors) != versions:
            return None  # the caller takes the ordinary path
        rows = x.reshape(-1, x.shape[-1])  # (b*T, in_features): oneDNN wants a matrix
        out = linear_pointwise(rows, packed, bias, activation, [], algorithm)
        return out.view(*x.shape[:-1], out.shape[-1])  # (b, T, out_features)

    return apply


def _linear_forward(layer: nn.Linear) -> Callable:
    packed = _packed_linear(layer, [layer])

    def forward(x: torch.Tensor) -> torch.Tensor:
        out = packed(x)
        return F.linear(x, layer.weight, layer.bias) if out is None else out

    return forward


def _feed_forward_forward(ff: FeedForward) -> Callable:
    first, _, second = ff.layers  # Linear, GELU, Linear
    up = _packed_linear(first, [first], activation="gelu")  # Linear + GELU in one call
    down = _packed_linear(second, [second])

    def forward(x: torch.Tensor) -> torch.Tensor:
        hidden = up(x)  # (b, T, 4*emb_dim)
        out = down(hidden) if hidden is not None else None
        return ff.layers(x) if out is None else out

    return forward


def _qkv_forwards(att: MultiHeadAttention) -> tuple[Callable, Callable, Callable]:
    """Forwards for W_query, W_key, W_value: the query call computes all three in one product
    and hands the keys and values to the next two calls, which receive the very same input."""
    layers = [att.W_query, att.W_key, att.W_value]
    qkv = _packed_linear(att, layers)
    d = att.d_out
    pending: dict[str, torch.Tensor] = {}

    def query(x: torch.Tensor) -> torch.Tensor:
        out = qkv(x)  # (b, T, 3*d_out)
        if out is None:
            pending.clear()
            return F.linear(x, att.W_query.weight, att.W_query.bias)
        pending.update(x=x, key=out[..., d:2 * d], value=out[..., 2 * d:])
        return out[..., :d]

    def projection(name: str, layer: nn.Linear) -> Callable:
        def forward(x: torch.Tensor) -> torch.Tensor:
            if pending.get("x") is x and name in pending:
                return pending.pop(name)
            return F.linear(x, layer.weight, layer.bias)
        return forward

    return query, projection("key", att.W_key), projection("value", att.W_value)


@contextlib.contextmanager
def prepacked_linears(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, the bf16 linear layers of ``model`` on a CPU use prepacked weights.

    Does nothing for float32 models, GPUs, or when ``prepacking_available()`` is False.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)] if isinstance(model, nn.Module) else []
    if not linears or not _is_bf16_cpu(linears) or not prepacking_available() \
            or any("forward" in vars(m) for m in model.modules()):
        yield model  # nothing to do (or already inside an outer prepacked_linears block)
        return
    patches: dict[nn.Module, Callable] = {}
    try:
        for module in model.modules():
            if isinstance(module, MultiHeadAttention):
                for layer, forward in zip((module.W_query, module.W_key, module.W_value), _qkv_forwards(module)):
                    patches[layer] = forward
            elif isinstance(module, FeedForward) and len(module.layers) == 3 \
                    and isinstance(module.layers[1], GELU):
                patches[module] = _feed_forward_forward(module)
        for layer in linears:
            if layer not in patches:
                patches[layer] = _linear_forward(layer)
    except RuntimeError:  # oneDNN refused (an unusual build): run the model as it is
        yield model
        return
    for module, forward in patches.items():
        module.forward = forward  # an instance attribute shadows the class's forward
    try:
        yield model
    finally:
        for module in patches:
            vars(module).pop("forward", None)


def release_prepacked(model: Optional[nn.Module] = None) -> None:
    """Free the packed copies kept for ``model`` (or for every model, when None is given).

    They are rebuilt on the next bf16 ``generate``; they also go away with the model itself.
    """
    modules = list(_PACKED.keys()) if model is None else list(model.modules())
    for module in modules:
        _PACKED.pop(module, None)
