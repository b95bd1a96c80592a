"""Structured attention patterns: graphs described by a rule instead of an edge list.

A pattern knows its node count and the boundaries of the graphs in a batch (``ptr``), can
materialize its exact ``edge_index`` on request, and lets an engine that understands the rule
skip edge lists entirely. Plain ``edge_index`` tensors always work too; structure only makes
attention faster.

Materialized edges follow PyG's ``source_to_target`` flow (``edge_index[0]`` is the source
``j``, ``edge_index[1]`` the target ``i``) and are sorted by target, then source. Attention
weights returned for a pattern follow that order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["Pattern", "FullGraph"]


def _as_ptr(num_nodes: int | None, ptr: Tensor | Sequence[int] | None) -> Tensor:
    if ptr is None:
        if num_nodes is None:
            raise ValueError("give `num_nodes` or `ptr`")
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, int):
            raise TypeError(f"`num_nodes` must be an int, got {type(num_nodes).__name__}")
        if num_nodes < 0:
            raise ValueError(f"`num_nodes` must be >= 0, got {num_nodes}")
        return torch.tensor([0, num_nodes], dtype=torch.long)
    if isinstance(ptr, Tensor):
        if ptr.is_floating_point() or ptr.is_complex() or ptr.dtype == torch.bool:
            raise TypeError(f"`ptr` must be an integer tensor, got dtype {ptr.dtype}")
        ptr = ptr.detach().to("cpu", torch.long)
    else:
        ptr = torch.as_tensor(list(ptr), dtype=torch.long)
    if ptr.dim() != 1 or ptr.numel() < 1:
        raise ValueError(f"`ptr` must be 1-D with at least one entry, got shape {tuple(ptr.shape)}")
    if int(ptr[0]) != 0:
        raise ValueError(f"`ptr` must start at 0, got {int(ptr[0])}")
    if ptr.numel() > 1 and bool((ptr[1:] < ptr[:-1]).any()):
        raise ValueError("`ptr` must be non-decreasing (cumulative graph sizes)")
    if num_nodes is not None and int(ptr[-1]) != num_nodes:
        raise ValueError(f"`ptr[-1]` ({int(ptr[-1])}) must equal `num_nodes` ({num_nodes})")
    return ptr


class Pattern:
    """Base class of structured patterns over one sequence or a batch of sequences.

    Subclasses describe the edges inside one graph of ``n`` nodes with :meth:`local_edges`;
    the base class handles batching, offsets and materialization.

    Args:
        num_nodes (int, optional): total number of nodes (one graph if ``ptr`` is not given).
        ptr (Tensor or sequence of int, optional): cumulative graph sizes ``[0, n_0, n_0 + n_1,
            ...]`` of a batch, as in PyG's ``Batch.ptr``. (default: :obj:`None`)
    """

    def __init__(self, num_nodes: int | None = None, ptr: Tensor | Sequence[int] | None = None):
        self.ptr = _as_ptr(num_nodes, ptr)
        self._edge_cache: dict[torch.device, Tensor] = {}

    # ---- construction helpers -------------------------------------------------------------
    @classmethod
    def from_sizes(cls, sizes: Sequence[int], **kwargs) -> Pattern:
        """A batch of graphs with the given node counts (zeros allowed)."""
        sizes_t = torch.as_tensor(list(sizes), dtype=torch.long)
        if sizes_t.dim() != 1 or bool((sizes_t < 0).any()):
            raise ValueError(f"`sizes` must be a list of non-negative ints, got {list(sizes)}")
        ptr = torch.zeros(sizes_t.numel() + 1, dtype=torch.long)
        ptr[1:] = torch.cumsum(sizes_t, 0)
        return cls(ptr=ptr, **kwargs)

    # ---- shape facts ----------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return int(self.ptr[-1])

    @property
    def num_graphs(self) -> int:
        return self.ptr.numel() - 1

    @property
    def sizes(self) -> Tensor:
        """Node count of each graph, int64 ``[B]`` on the CPU."""
        return self.ptr[1:] - self.ptr[:-1]

    def batch(self, device: torch.device | str | None = None) -> Tensor:
        """The graph index of every node, int64 ``[N]`` (PyG's ``batch`` vector)."""
        return torch.repeat_interleave(
            torch.arange(self.num_graphs, device=device), self.sizes.to(device)
        )

    # ---- edges ----------------------------------------------------------------------------
    def local_edges(self, n: int) -> tuple[Tensor, Tensor]:
        """``(source, target)`` int64 index pairs of one graph with ``n`` nodes, sorted by
        target then source. Subclasses implement this."""
        raise NotImplementedError

    def edge_index(self, device: torch.device | str | None = None) -> Tensor:
        """Materialize the exact ``[2, E]`` edge list (cached per device)."""
        device = torch.device(device) if device is not None else torch.device("cpu")
        cached = self._edge_cache.get(device)
        if cached is not None:
            return cached
        parts = []
        by_size: dict[int, Tensor] = {}
        for offset, n in zip(self.ptr[:-1].tolist(), self.sizes.tolist(), strict=True):
            if n == 0:
                continue
            local = by_size.get(n)
            if local is None:
                src, dst = self.local_edges(n)
                local = by_size[n] = torch.stack([src, dst])
            parts.append(local + offset)
        if parts:
            out = torch.cat(parts, dim=1).to(device)
        else:
            out = torch.empty(2, 0, dtype=torch.long, device=device)
        self._edge_cache[device] = out
        return out

    @property
    def num_edges(self) -> int:
        return int(self.edge_index().size(1))

    def _describe(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self._describe()
        extra = f", {extra}" if extra else ""
        name = type(self).__name__
        return f"{name}(num_nodes={self.num_nodes}, num_graphs={self.num_graphs}{extra})"

    def __eq__(self, other: object) -> bool:
        return (
            type(self) is type(other)
            and torch.equal(self.ptr, other.ptr)  # type: ignore[attr-defined]
            and self._describe() == other._describe()  # type: ignore[attr-defined]
        )

    __hash__ = None  # type: ignore[assignment]  # mutable cache; compare by value only


class FullGraph(Pattern):
    """Every node of each graph attends to every node of the same graph, itself included.

    One sequence: ``FullGraph(7)``. A batch of sequences of different lengths:
    ``FullGraph(ptr=batch.ptr)`` or ``FullGraph.from_sizes([1, 3, 7])``. The ``dense`` engine
    computes it with :func:`torch.nn.functional.scaled_dot_product_attention` without building
    the ``N x N`` edge list.

    >>> FullGraph.from_sizes([2, 3])
    FullGraph(num_nodes=5, num_graphs=2)
    >>> FullGraph(2).edge_index().tolist()
    [[0, 1, 0, 1], [0, 0, 1, 1]]
    """

    def local_edges(self, n: int) -> tuple[Tensor, Tensor]:
        ar = torch.arange(n)
        return ar.repeat(n), ar.repeat_interleave(n)
