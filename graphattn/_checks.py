"""Argument checks (private): the ones shared across the package, then those of the attention
layer's constructor, inputs and attention logits.

Every check raises a ``TypeError`` or ``ValueError`` whose message names the argument.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ._runtime import tracing

if TYPE_CHECKING:
    from .engines.base import EdgeTerms

_INDEX_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def static_int(size: int | Tensor) -> int:
    """A size as a Python int. Under ``torch.jit.trace`` a module's tensor sizes are 0-dim
    tensors, which the trace records where they enter a computation; this reads one for the
    checks and bookkeeping that the trace does not record (the caller keeps the traced size
    for the computation), without the tracer's warning about it."""
    if isinstance(size, Tensor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return int(size)
    return size


def check_int(name: str, value: object, minimum: int | None = None) -> int:
    """``value`` as an int (bools rejected), at least ``minimum``.

    >>> check_int("radius", 2.5, 0)
    Traceback (most recent call last):
        ...
    TypeError: `radius` must be an int, got float
    """
    if isinstance(value, bool) or not isinstance(value, (int, torch.SymInt)):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return value


def check_positive_int(name: str, value: object) -> int:
    """``value`` as an int ``> 0``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"`{name}` must be > 0, got {value}")
    return value


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool, got {type(value).__name__}")
    return value


def check_probability(name: str, value: object) -> float:
    """A float in ``[0, 1)`` (a dropout probability)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a float, got {type(value).__name__}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1), got {value}")
    return float(value)


def check_sizes(name: str, sizes: object) -> list[int]:
    """A sequence (or 1-D integer tensor) of non-negative ints.

    >>> check_sizes("sizes", [2.7, 3])
    Traceback (most recent call last):
        ...
    TypeError: `sizes` must hold ints, got float
    """
    if isinstance(sizes, Tensor):
        if sizes.is_floating_point() or sizes.is_complex() or sizes.dtype == torch.bool:
            raise TypeError(f"`{name}` must hold integers, got dtype {sizes.dtype}")
        if sizes.dim() != 1:
            raise ValueError(f"`{name}` must be 1-D, got shape {tuple(sizes.shape)}")
        values = sizes.tolist()
    elif isinstance(sizes, Sequence) and not isinstance(sizes, str):
        values = list(sizes)
    else:
        raise TypeError(f"`{name}` must be a sequence of ints, got {type(sizes).__name__}")
    for n in values:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"`{name}` must hold ints, got {type(n).__name__}")
        if n < 0:
            raise ValueError(f"`{name}` must be >= 0, got {n}")
    return values


def check_index_tensor(name: str, value: object) -> Tensor:
    """``value`` as an integer tensor of a dtype PyG accepts, or a ``TypeError`` naming ``name``.

    >>> check_index_tensor("edge_type", torch.tensor([0.5]))
    Traceback (most recent call last):
        ...
    TypeError: `edge_type` must be an integer tensor, got dtype torch.float32
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}")
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"`{name}` must be an integer tensor, got dtype {value.dtype}")
    if value.dtype not in _INDEX_DTYPES:
        raise TypeError(
            f"`{name}` must be int64 or int32 (or int16, int8, uint8), got dtype {value.dtype}"
        )
    check_not_meta(name, value)
    return value


def check_not_meta(name: str, value: Tensor) -> None:
    """A ``ValueError`` naming ``name`` for a tensor on the ``meta`` device, which has shapes
    but no values to check or compute with.

    >>> check_not_meta("x", torch.empty(2, device="meta"))
    Traceback (most recent call last):
        ...
    ValueError: `x` is a meta tensor (a shape without values); graphattn needs real data
    """
    if value.device.type == "meta":
        raise ValueError(
            f"`{name}` is a meta tensor (a shape without values); graphattn needs real data"
        )


def check_same_device(name: str, value: Tensor, x: Tensor) -> None:
    """A ``ValueError`` naming ``name`` unless ``value`` is on the device of the features ``x``."""
    if value.device != x.device:
        raise ValueError(
            f"`{name}` is on {value.device} but `x` is on {x.device}; put them on the same device"
        )


def check_features(name: str, x: object, module: torch.nn.Module) -> Tensor:
    """``x`` as floating-point features in the dtype of ``module``'s parameters (any dtype
    under autocast), or a ``TypeError`` naming ``name`` before any compute.

    >>> check_features("x", torch.ones(2, 3, dtype=torch.long), torch.nn.Linear(3, 1))
    Traceback (most recent call last):
        ...
    TypeError: `x` must be a floating-point tensor, got dtype torch.int64
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {x.dtype}")
    param = next(module.parameters(), None)
    if (
        param is not None
        and x.dtype != param.dtype
        and not torch.is_autocast_enabled(x.device.type)
    ):
        raise TypeError(
            f"`{name}` is {x.dtype} but the parameters are {param.dtype}; convert one of them "
            f"(e.g. `module.to({x.dtype})`) or use autocast"
        )
    return x


# ---- the attention layer's arguments ---------------------------------------------------------
FLOWS = ("source_to_target", "target_to_source")
#: The reductions GATConv's ``fill_value`` may name (PyG's ``add_self_loops``).
FILL_REDUCTIONS = ("add", "sum", "mean", "min", "max", "mul")


def check_flow(flow: object) -> str:
    """``flow`` as one of PyG's two directions, or a ``ValueError`` naming it."""
    if flow not in FLOWS:
        raise ValueError(f"`flow` must be one of {FLOWS}, got {flow!r}")
    return flow


def check_fill_value(fill_value: object) -> float | Tensor | str | None:
    """GATConv's ``fill_value`` (the edge features of added self-loops), checked: :obj:`None`
    (ones, as in PyG's ``add_self_loops``), a number, a tensor (one row, or a scalar), or
    the name of a reduction of each node's incoming edge features (:data:`FILL_REDUCTIONS`).
    """
    if fill_value is None or isinstance(fill_value, str) and fill_value in FILL_REDUCTIONS:
        return fill_value
    if isinstance(fill_value, str):
        raise ValueError(
            f"`fill_value` as a str must be one of {FILL_REDUCTIONS}, got {fill_value!r}"
        )
    if isinstance(fill_value, (int, float)) and not isinstance(fill_value, bool):
        return float(fill_value)
    if isinstance(fill_value, Tensor):
        if fill_value.is_complex() or fill_value.dtype == torch.bool:
            raise TypeError(f"`fill_value` as a tensor must be real, got dtype {fill_value.dtype}")
        if fill_value.dim() > 2 or (fill_value.dim() == 2 and fill_value.size(0) != 1):
            raise ValueError(
                "`fill_value` as a tensor must be a scalar or one row of edge features "
                f"([edge_dim] or [1, edge_dim]), got shape {list(fill_value.shape)}"
            )
        return fill_value
    raise TypeError(
        "`fill_value` must be a float, a tensor, None or one of "
        f"{FILL_REDUCTIONS}, got {type(fill_value).__name__}"
    )


def check_in_channels(in_channels: object) -> tuple[int, int]:
    """``(source, target)`` input sizes from an int or a pair; ``-1`` means lazy.

    >>> check_in_channels((3, -1))
    (3, -1)
    """
    if isinstance(in_channels, (tuple, list)):
        if len(in_channels) != 2:
            raise ValueError(f"`in_channels` as a pair must be (source, target), got {in_channels}")
        pair = tuple(in_channels)
    else:
        pair = (in_channels, in_channels)
    for value in pair:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"`in_channels` must be an int, -1 (lazy) or a pair of them, got {in_channels!r}"
            )
        if value <= 0 and value != -1:
            raise ValueError(f"`in_channels` must be > 0 or -1 (lazy), got {in_channels!r}")
    return pair  # type: ignore[return-value]


def check_layer_options(
    out_channels: object,
    heads: object,
    dropout: object,
    bias: object,
    edge_dim: object,
    num_relations: object,
    add_self_loops: object,
    fill_value: object,
    root_weight: object,
    residual: object,
    beta: object,
    out_projection: object,
) -> tuple[float, float | Tensor | str | None, bool]:
    """The attention layer's constructor options, checked in the order of its signature:
    ``(dropout, fill_value, root_weight)`` normalised (``residual`` is GATConv's spelling of
    ``root_weight``)."""
    check_positive_int("out_channels", out_channels)
    check_positive_int("heads", heads)
    if out_channels % heads != 0:  # type: ignore[operator]
        raise ValueError(
            f"`heads` ({heads}) must divide `out_channels` ({out_channels}): "
            "out_channels is the total width, split across heads"
        )
    dropout = check_probability("dropout", dropout)
    check_bool("bias", bias)
    if edge_dim is not None and not (type(edge_dim) is int and edge_dim == -1):  # -1: lazy
        check_int("edge_dim", edge_dim)
        if edge_dim <= 0:  # type: ignore[operator]
            raise ValueError(f"`edge_dim` must be > 0 or -1 (lazy), got {edge_dim}")
    if num_relations is not None:
        check_positive_int("num_relations", num_relations)
    check_bool("add_self_loops", add_self_loops)
    fill_value = check_fill_value(fill_value)
    check_bool("root_weight", root_weight)
    root_weight = root_weight or check_bool("residual", residual)
    check_bool("beta", beta)
    check_bool("out_projection", out_projection)
    if beta and not root_weight:
        raise ValueError(
            "`beta=True` gates the skip connection: it needs `root_weight=True` "
            "(or GATConv's spelling, `residual=True`)"
        )
    return dropout, fill_value, bool(root_weight)  # type: ignore[return-value]


def check_mha(mha: object) -> None:
    """A :class:`torch.nn.MultiheadAttention` that a graph attention layer can copy."""
    if not isinstance(mha, torch.nn.MultiheadAttention):
        raise TypeError(f"`mha` must be a torch.nn.MultiheadAttention, got {type(mha).__name__}")
    if not mha._qkv_same_embed_dim:
        raise ValueError("`mha` must have kdim == vdim == embed_dim")
    if mha.bias_k is not None or mha.add_zero_attn:
        raise ValueError("`mha` with add_bias_kv or add_zero_attn has no graph equivalent")


def want_weights(return_attention: object, return_attention_weights: object) -> bool:
    """Whether a call returns attention weights: ``return_attention``, or PyG's spelling."""
    check_bool("return_attention", return_attention)
    if return_attention_weights is None:
        return return_attention  # type: ignore[return-value]
    check_bool("return_attention_weights", return_attention_weights)
    if return_attention and not return_attention_weights:
        raise ValueError("`return_attention=True` contradicts `return_attention_weights=False`")
    return bool(return_attention_weights) or bool(return_attention)


# ---- the attention layer's inputs ------------------------------------------------------------
def check_node_features(
    x: object, size: object, in_channels: object, module: torch.nn.Module
) -> tuple[Tensor, Tensor, bool]:
    """``(x_src, x_dst, homogeneous)`` from a layer's features ``x`` (a tensor, or a bipartite
    pair), after checking types, shapes against ``in_channels`` and ``size``, and dtypes and
    devices against the parameters of ``module``."""
    if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(t, Tensor) for t in x):
        x_src, x_dst = x
        homogeneous = False
    elif not isinstance(x, Tensor):
        raise TypeError(
            "`x` must be a torch.Tensor or an (x_src, x_dst) pair of tensors, "
            f"got {type(x).__name__}"
        )
    else:
        x_src = x_dst = x
        homogeneous = True
    in_src, in_dst = check_in_channels(in_channels)
    names = ("x", "x") if homogeneous else ("x[0]", "x[1]")
    for name, t, width in ((names[0], x_src, in_src), (names[1], x_dst, in_dst)):
        check_features(name, t, module)  # a floating tensor in the parameters' dtype
        check_not_meta(name, t)
        if t.dim() != 2 or (width != -1 and static_int(t.size(1)) != width):
            expected = "in_channels" if width == -1 else width
            raise ValueError(
                f"`{name}` must have shape [num_nodes, {expected}], got {list(t.shape)}"
            )
    if x_src.device != x_dst.device or x_src.dtype != x_dst.dtype:
        raise ValueError(
            "`x[0]` and `x[1]` must share device and dtype, got "
            f"{x_src.device}/{x_src.dtype} and {x_dst.device}/{x_dst.dtype}"
        )
    device = next(module.parameters()).device
    if x_dst.device != device:
        raise ValueError(f"`x` is on {x_dst.device} but the layer is on {device}")
    if size is not None:
        if (
            not isinstance(size, (tuple, list))
            or len(size) != 2
            or tuple(size) != (x_src.size(0), x_dst.size(0))
        ):
            raise ValueError(
                f"`size` must be (N_src, N_dst) = ({x_src.size(0)}, {x_dst.size(0)}) as "
                f"given by `x`, got {size!r}"
            )
    return x_src, x_dst, homogeneous


def check_edge_attr(
    edge_attr: object, edge_dim: int | None, width: int | None, num_edges: int, x: Tensor
) -> Tensor | None:
    """A layer's ``edge_attr`` checked against its ``edge_dim`` (``width``: the edge
    projections' input size, -1 until a lazy layer's first call) and the graph's
    ``num_edges``; ``[E]`` becomes ``[E, 1]`` where the width is 1."""
    if edge_dim is None:
        if edge_attr is not None:
            raise ValueError("`edge_attr` given, but the layer was built without `edge_dim`")
        return None
    if edge_attr is None:
        raise ValueError(f"the layer was built with edge_dim={edge_dim}; pass `edge_attr`")
    if not isinstance(edge_attr, Tensor) or not edge_attr.is_floating_point():
        raise TypeError("`edge_attr` must be a floating-point tensor")
    if edge_attr.dim() == 1 and width in (1, -1):
        edge_attr = edge_attr.unsqueeze(-1)  # (E,) -> (E, 1)
    if edge_attr.dim() != 2 or (
        static_int(edge_attr.size(0)) != num_edges
        or width not in (-1, static_int(edge_attr.size(1)))
    ):
        expected = "edge_dim" if width == -1 else width
        raise ValueError(
            f"`edge_attr` must have shape [{num_edges}, {expected}] "
            f"(one row per edge), got {list(edge_attr.shape)}"
        )
    check_same_device("edge_attr", edge_attr, x)
    if edge_attr.dtype != x.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"`edge_attr` is {edge_attr.dtype} but `x` is {x.dtype}; use one dtype")
    return edge_attr


def check_edge_type(
    edge_type: object, num_relations: int | None, num_edges: int, x: Tensor
) -> Tensor | None:
    """A layer's ``edge_type`` checked against its ``num_relations`` and the graph's
    ``num_edges``, as int64."""
    if num_relations is None:
        if edge_type is not None:
            raise ValueError("`edge_type` given, but the layer was built without `num_relations`")
        return None
    if edge_type is None:
        raise ValueError(
            f"the layer was built with num_relations={num_relations}; pass `edge_type`"
        )
    check_index_tensor("edge_type", edge_type)
    assert isinstance(edge_type, Tensor)
    if edge_type.dim() != 1 or static_int(edge_type.size(0)) != num_edges:
        raise ValueError(
            f"`edge_type` must have shape [{num_edges}] (one per edge), got {list(edge_type.shape)}"
        )
    check_same_device("edge_type", edge_type, x)
    if num_edges > 0 and not tracing():  # value checks need a sync
        lo, hi = int(edge_type.min()), int(edge_type.max())
        if lo < 0 or hi >= num_relations:
            raise ValueError(
                f"`edge_type` values must be in [0, {num_relations}), got range [{lo}, {hi}]"
            )
    return edge_type.long()


def check_head_mask(head_mask: object, heads: int, x: Tensor) -> Tensor | None:
    """A ``[heads]`` real or bool ``head_mask`` on the device of ``x``, or :obj:`None`."""
    if head_mask is None:
        return None
    if not isinstance(head_mask, Tensor):
        raise TypeError(f"`head_mask` must be a torch.Tensor, got {type(head_mask).__name__}")
    if head_mask.shape != (heads,):
        raise ValueError(
            f"`head_mask` must have shape [{heads}] (one factor per head), "
            f"got {list(head_mask.shape)}"
        )
    if head_mask.is_complex():
        raise TypeError("`head_mask` must be real or bool")
    check_same_device("head_mask", head_mask, x)
    return head_mask


# ---- the attention logits' range -------------------------------------------------------------
def _largest(*tensors: Tensor | None) -> float:
    """The sum of the largest absolute values of ``tensors`` (0 for none; NaN or inf if one is
    there)."""
    largest = 0.0
    for t in tensors:
        if t is not None and t.numel() > 0:
            t = t.detach()
            if t.is_contiguous():
                lo, hi = torch.aminmax(t)  # one pass (it copies a strided tensor first)
            else:
                lo, hi = t.amin(), t.amax()
            largest += max(-float(lo), float(hi))
    return largest


def check_logit_range(
    q: Tensor,
    k: Tensor,
    terms: EdgeTerms | None,
    compute: torch.dtype,
    joint: Tensor | None = None,
    v: Tensor | None = None,
    x: tuple[Tensor, Tensor] | None = None,
) -> None:
    """A ``ValueError`` when finite inputs could give attention logits beyond the compute
    dtype's range, where every engine (the reference too) would return NaN.

    ``|<q_i, k_j + e_ij>| <= D max|q| (max|k| + max|e|)`` bounds every logit (one pass over
    ``q`` and ``k``); only when that bound is exceeded is the exact per-head Cauchy-Schwarz
    bound ``max_i |q_i^h| max_j |k_j^h + e^h|`` computed, in float64. Non-finite inputs are
    left to the engines (a NaN or inf reaches exactly the nodes that attend to it).

    ``joint``: the stacked projection ``[N, 3C]`` whose columns ``q`` and ``k`` are, if they
    are: its largest value bounds both maxima in one contiguous pass; only when that is not
    enough to pass (or is not finite) are ``q`` and ``k`` scanned apart.

    ``v``, ``x``: the values and the features ``(x_src, x_dst)``. A float16 projection (float16
    features, or float16 autocast) of finite features can overflow float16's range (65504) on
    its own; when ``q``, ``k`` or ``v`` are then not finite while the features are, that is
    the overflow, and a ``ValueError`` says so.
    """
    if q.numel() == 0 or k.numel() == 0:
        return
    limit = torch.finfo(compute).max  # 16-bit rows are computed in float32
    key_terms = () if terms is None else (terms.key, terms.rel_key)
    if joint is not None:
        both = _largest(joint)
        if math.isfinite(both) and both * (both + _largest(*key_terms)) * q.size(-1) < limit:
            return
    q_max, k_max = _largest(q), _largest(k, *key_terms)
    half = x is not None and v is not None and _float16_projection(x[1])
    if not (math.isfinite(q_max) and math.isfinite(k_max)):
        if half:
            _check_projection_overflow(q, k, v, x)  # type: ignore[arg-type]
        return  # non-finite values: their documented semantics, not an overflow
    if half and not math.isfinite(_largest(v)):  # v alone can overflow too
        _check_projection_overflow(q, k, v, x)  # type: ignore[arg-type]
    if q_max * k_max * q.size(-1) < limit:
        return
    q_norm = torch.linalg.vector_norm(q.detach().double(), dim=-1).amax(0)  # (H,)
    k_norm = torch.linalg.vector_norm(k.detach().double(), dim=-1).amax(0)
    for t in key_terms:
        if t is not None and t.numel() > 0:
            k_norm = k_norm + torch.linalg.vector_norm(t.detach().double(), dim=-1).amax(0)
    bound = float((q_norm * k_norm).max())
    if bound >= limit:
        raise ValueError(
            f"`x` gives attention logits up to about {bound:.3g}, beyond the range of "
            f"{compute} ({limit:.3g}), where the softmax would return NaN: normalise the "
            "features (a LayerNorm before the layer), or run the layer in float64 "
            "(`conv.double()`)"
        )


def _float16_projection(x: Tensor) -> bool:
    """Whether the projections of ``x`` run in float16 (float16 features, or autocast)."""
    device = x.device.type
    return x.dtype == torch.float16 or (
        torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.float16
    )


def _check_projection_overflow(q: Tensor, k: Tensor, v: Tensor, x: tuple[Tensor, Tensor]) -> None:
    """A ``ValueError`` when finite features have query/key/value projections that are not
    finite: a float16 projection overflowed (beyond 65504), and every row attending to them
    would be NaN. (Non-finite edge terms or features keep their documented semantics.)"""
    if all(bool(torch.isfinite(t.detach()).all()) for t in (q, k, v)):
        return  # the non-finite values come from the edge terms
    x_src, x_dst = x
    for t in (x_src,) if x_src is x_dst else (x_src, x_dst):
        if not bool(torch.isfinite(t.detach()).all()):
            return  # non-finite features: their documented semantics
    raise ValueError(
        "`x` is finite but its float16 query/key/value projections are not: they exceed the "
        f"range of float16 ({torch.finfo(torch.float16).max:.0f}); normalise the features (a "
        "LayerNorm before the layer), or run the layer in float32 or bfloat16"
    )
