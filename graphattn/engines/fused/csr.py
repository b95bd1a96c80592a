"""Edges grouped by target (or by source): the CSR views the fused kernels walk.

:func:`group_edges` is the custom op ``graphattn::group_edges`` (so that it also runs inside
``torch.compile``): on the CPU a stable counting sort in numba, O(E + N) with no temporaries
beyond its outputs (:func:`numba_group_edges`); on CUDA a stable sort by torch ops
(:func:`torch_group_edges`, registered by :mod:`.triton_ops`), so the edges never leave the
GPU. Indices are int32 (the engine declines graphs with 2**31 or more nodes or edges), offsets
int64.

:func:`csr_for` caches the views on the graph object they belong to (``EdgeList.cache``), so
an edge list (or pattern) reused across layers and steps is grouped once; a PyG ``EdgeIndex``
contributes its own cached CSC/CSR when the edge list came from one unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
from torch import Tensor

from ..._runtime import building_cache
from ...patterns import EdgeList
from ..base import cpu_only

__all__ = [
    "CSR",
    "MAX_INDEX",
    "csr_for",
    "group_edges",
    "numba_group_edges",
    "torch_group_edges",
]

MAX_INDEX = 2**31 - 1
"""Largest node or edge count the int32 indices of the fused engine hold."""


@dataclass(frozen=True)
class CSR:
    """Edges grouped by one endpoint.

    Attributes:
        ptr: int64 ``[N + 1]``: the edges of node ``i`` sit at positions ``ptr[i]:ptr[i+1]``.
        idx: int32 ``[E]``: the other endpoint of each grouped edge.
        eid: int32 ``[E]``: the original edge id of each grouped edge (stable: duplicates keep
            their order).
    """

    ptr: Tensor
    idx: Tensor
    eid: Tensor

    @property
    def num_edges(self) -> int:
        return self.idx.numel()

    def as_tuple(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.ptr, self.idx, self.eid


@cpu_only
@cache
def _kernel():
    from numba import njit

    @njit(cache=True)
    def group(keys, values, num_keys, num_values, ptr, out_values, out_eid):
        """Counting sort of edges by ``keys``; returns -1, or the first edge out of range."""
        num_edges = keys.shape[0]
        for x in range(num_keys + 1):
            ptr[x] = 0
        for e in range(num_edges):
            key = keys[e]
            val = values[e]
            if key < 0 or key >= num_keys or val < 0 or val >= num_values:
                return e
            ptr[key + 1] += 1
        for x in range(num_keys):
            ptr[x + 1] += ptr[x]
        for e in range(num_edges):  # ptr[key] runs from the start to the end of key's group
            key = keys[e]
            pos = ptr[key]
            out_values[pos] = values[e]
            out_eid[pos] = e
            ptr[key] = pos + 1
        for x in range(num_keys, 0, -1):  # shift the ends back into starts
            ptr[x] = ptr[x - 1]
        ptr[0] = 0
        return -1

    return group


@cpu_only
def numba_group_edges(
    keys: Tensor, values: Tensor, num_keys: int, num_values: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Group edges by ``keys`` (stable): ``(ptr int64 [num_keys + 1], values int32, eid int32)``.

    ``keys`` and ``values`` are the two endpoints ``[E]`` of every edge (any integer dtype);
    every key must be in ``[0, num_keys)`` and every value in ``[0, num_values)``.

    >>> ptr, idx, eid = group_edges(torch.tensor([1, 1, 0]), torch.tensor([0, 2, 1]), 3, 3)
    >>> ptr.tolist(), idx.tolist(), eid.tolist()
    ([0, 1, 3, 3], [1, 0, 2], [2, 0, 1])
    """
    num_edges = keys.numel()
    if max(num_edges, num_keys, num_values) > MAX_INDEX:
        raise ValueError(f"the fused engine holds at most {MAX_INDEX} nodes and edges")
    ptr = torch.empty(num_keys + 1, dtype=torch.long)
    out_values = torch.empty(num_edges, dtype=torch.int32)
    out_eid = torch.empty(num_edges, dtype=torch.int32)
    keys_np = keys.detach().contiguous().numpy()
    values_np = values.detach().contiguous().numpy()
    bad = _kernel()(
        keys_np, values_np, num_keys, num_values, ptr.numpy(), out_values.numpy(), out_eid.numpy()
    )
    if bad >= 0:
        _out_of_range(keys, values, bad, num_keys, num_values)
    return ptr, out_values, out_eid


#: The custom op ``graphattn::group_edges``: :func:`numba_group_edges` on the CPU,
#: :func:`torch_group_edges` on CUDA (registered by :mod:`.triton_ops`).
group_edges = torch.library.custom_op(
    "graphattn::group_edges", numba_group_edges, mutates_args=(), device_types="cpu"
)


def _out_of_range(keys: Tensor, values: Tensor, bad: int, num_keys: int, num_values: int):
    raise ValueError(
        f"edge {bad} ({int(values[bad])} -> {int(keys[bad])}) refers to a node outside "
        f"[0, {num_values}) x [0, {num_keys})"
    )


def torch_group_edges(
    keys: Tensor, values: Tensor, num_keys: int, num_values: int
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`group_edges` by torch ops on any device (the CUDA implementation): a stable sort
    of the keys and a histogram; one host synchronisation, for the range check.

    >>> ptr, idx, eid = torch_group_edges(torch.tensor([1, 1, 0]), torch.tensor([0, 2, 1]), 3, 3)
    >>> ptr.tolist(), idx.tolist(), eid.tolist()
    ([0, 1, 3, 3], [1, 0, 2], [2, 0, 1])
    """
    num_edges = keys.numel()
    if max(num_edges, num_keys, num_values) > MAX_INDEX:
        raise ValueError(f"the fused engine holds at most {MAX_INDEX} nodes and edges")
    keys, values = keys.detach().long(), values.detach().long()  # (E,), (E,)
    outside = (keys < 0) | (keys >= num_keys) | (values < 0) | (values >= num_values)
    if num_edges > 0 and bool(outside.any()):
        _out_of_range(keys, values, int(outside.nonzero()[0, 0]), num_keys, num_values)
    eid = torch.sort(keys, stable=True).indices  # (E,) int64
    ptr = keys.new_zeros(num_keys + 1)
    ptr[1:] = torch.bincount(keys, minlength=num_keys).cumsum(0)
    return ptr, values[eid].to(torch.int32), eid.to(torch.int32)


@group_edges.register_fake
def _(keys, values, num_keys, num_values):
    num_edges = keys.shape[0]
    return (
        keys.new_empty(num_keys + 1, dtype=torch.long),
        keys.new_empty(num_edges, dtype=torch.int32),
        keys.new_empty(num_edges, dtype=torch.int32),
    )


def _from_edge_index(origin, by_target: bool) -> CSR:
    """The CSR from a PyG ``EdgeIndex``'s own (cached) CSC or CSR."""
    (ptr, idx), perm = origin.get_csc() if by_target else origin.get_csr()
    num_edges = idx.numel()
    if perm is None:
        eid = torch.arange(num_edges, dtype=torch.int32, device=idx.device)
    else:
        eid = perm.to(torch.int32)
    out = (ptr.to(torch.long), idx.to(torch.int32).contiguous(), eid.contiguous())
    # PyG's own caches may hold inference tensors (made in inference mode): copy those
    return CSR(*(t.clone() if t.is_inference() else t for t in out))


def _build(edges: EdgeList, by_target: bool) -> CSR:
    origin = edges.cache.get("origin")
    if origin is not None and not torch.compiler.is_compiling():
        return _from_edge_index(origin, by_target)
    src, dst = edges.edge_index  # the op runs on the edges' device
    if by_target:
        out = torch.ops.graphattn.group_edges(dst, src, edges.num_dst, edges.num_src)
    else:
        out = torch.ops.graphattn.group_edges(src, dst, edges.num_src, edges.num_dst)
    return CSR(*out)


def csr_for(edges: EdgeList, by: str = "target") -> CSR:
    """The edges of ``edges`` grouped by ``"target"`` or ``"source"``, cached on ``edges``
    (not under ``torch.compile``, where it is rebuilt by the traced custom op).

    >>> edges = EdgeList(torch.tensor([[0, 2, 1], [1, 1, 0]]), 3)
    >>> csr = csr_for(edges)
    >>> csr.ptr.tolist(), csr.idx.tolist(), csr.eid.tolist()
    ([0, 1, 3, 3], [1, 0, 2], [2, 0, 1])
    >>> csr_for(edges) is csr
    True
    """
    if by not in ("target", "source"):
        raise ValueError(f"`by` must be 'target' or 'source', got {by!r}")
    if torch.compiler.is_compiling():
        return _build(edges, by == "target")
    key = ("fused_csr", by)
    csr = edges.cache.get(key)
    if csr is None:
        with building_cache():
            csr = edges.cache[key] = _build(edges, by == "target")
    return csr
