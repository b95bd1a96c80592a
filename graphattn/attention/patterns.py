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

from .._checks import check_index_tensor

__all__ = [
    "Pattern",
    "FullGraph",
    "CausalFullGraph",
    "ChunkedGraph",
    "WindowGraph",
    "GridGraph",
]


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
        ptr = check_index_tensor("ptr", ptr).detach().to("cpu", torch.long)
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


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool, got {type(value).__name__}")
    return value


class CausalFullGraph(Pattern):
    """Every node attends to itself and to every earlier node of its graph (``j <= i``).

    The causal (autoregressive) variant of :class:`FullGraph`. It is deliberately *not* a
    subclass of :class:`FullGraph`, so that an engine written for full attention never takes it
    for one. The ``dense`` engine computes it with SDPA's ``is_causal``.

    >>> CausalFullGraph(3).edge_index().tolist()
    [[0, 0, 1, 0, 1, 2], [0, 1, 1, 2, 2, 2]]
    >>> CausalFullGraph.from_sizes([2, 0, 3])
    CausalFullGraph(num_nodes=5, num_graphs=3)
    """

    def local_edges(self, n: int) -> tuple[Tensor, Tensor]:
        dst, src = torch.tril_indices(n, n)  # row-major: by target, then source
        return src, dst


class ChunkedGraph(Pattern):
    """Attention only within consecutive chunks of ``chunk_size`` nodes of each graph.

    Node ``i`` attends to every ``j`` with ``i // chunk_size == j // chunk_size`` (positions
    counted from the start of its graph); the last chunk of a graph may be shorter.

    Args:
        num_nodes (int, optional): number of nodes of one sequence.
        ptr (Tensor or sequence of int, optional): cumulative sizes of a batch of sequences.
        chunk_size (int): nodes per chunk, ``>= 1``.

    >>> ChunkedGraph(5, chunk_size=2)
    ChunkedGraph(num_nodes=5, num_graphs=1, chunk_size=2)
    >>> ChunkedGraph(3, chunk_size=2).edge_index().tolist()
    [[0, 1, 0, 1, 2], [0, 0, 1, 1, 2]]
    """

    def __init__(
        self,
        num_nodes: int | None = None,
        ptr: Tensor | Sequence[int] | None = None,
        *,
        chunk_size: int,
    ):
        super().__init__(num_nodes, ptr)
        self.chunk_size = _check_int("chunk_size", chunk_size, 1)

    def local_edges(self, n: int) -> tuple[Tensor, Tensor]:
        c = self.chunk_size
        dst = torch.arange(n).repeat_interleave(min(c, n))  # (n * c,)
        start = (dst // c) * c
        src = start + torch.arange(min(c, n)).repeat(n)
        keep = src < n
        return src[keep], dst[keep]

    def _describe(self) -> str:
        return f"chunk_size={self.chunk_size}"


class WindowGraph(Pattern):
    """Sliding-window attention: node ``i`` attends to every ``j`` of its graph with
    ``|i - j| <= radius`` (itself included); with ``causal=True`` only to
    ``i - radius <= j <= i``.

    Args:
        num_nodes (int, optional): number of nodes of one sequence.
        ptr (Tensor or sequence of int, optional): cumulative sizes of a batch of sequences.
        radius (int): window radius, ``>= 0`` (``0`` leaves only self-loops).
        causal (bool, optional): attend only to the past. (default: :obj:`False`)

    >>> WindowGraph(3, radius=1).edge_index().tolist()
    [[0, 1, 0, 1, 2, 1, 2], [0, 0, 1, 1, 1, 2, 2]]
    >>> WindowGraph.from_sizes([4, 2], radius=2, causal=True)
    WindowGraph(num_nodes=6, num_graphs=2, radius=2, causal=True)
    """

    def __init__(
        self,
        num_nodes: int | None = None,
        ptr: Tensor | Sequence[int] | None = None,
        *,
        radius: int,
        causal: bool = False,
    ):
        super().__init__(num_nodes, ptr)
        self.radius = _check_int("radius", radius, 0)
        self.causal = _check_bool("causal", causal)

    @property
    def left(self) -> int:
        """How far back a node looks."""
        return self.radius

    @property
    def right(self) -> int:
        """How far ahead a node looks."""
        return 0 if self.causal else self.radius

    def local_edges(self, n: int) -> tuple[Tensor, Tensor]:
        offsets = torch.arange(-self.left, self.right + 1)  # ascending, so sources are sorted
        dst = torch.arange(n).unsqueeze(1).expand(n, offsets.numel())  # (n, w)
        src = dst + offsets  # (n, w)
        keep = (src >= 0) & (src < n)
        return src[keep], dst[keep]

    def _describe(self) -> str:
        return f"radius={self.radius}" + (", causal=True" if self.causal else "")


_METRICS = ("chebyshev", "manhattan")


class GridGraph(Pattern):
    """Neighbourhoods on ``height x width`` grids of nodes numbered in raster order
    (node ``y * width + x``).

    Node ``(y, x)`` attends to every ``(y', x')`` of its grid within distance ``radius``, itself
    included: ``max(|dy|, |dx|) <= radius`` for ``metric="chebyshev"`` (a square window;
    radius 1 is the 8-neighbourhood) or ``|dy| + |dx| <= radius`` for ``"manhattan"``
    (radius 1 is the 4-neighbourhood). A batch holds ``num_graphs`` grids of the same shape.

    Args:
        height (int): grid rows, ``>= 1``.
        width (int): grid columns, ``>= 1``.
        radius (int, optional): neighbourhood radius, ``>= 0``. (default: :obj:`1`)
        metric (str, optional): ``"chebyshev"`` or ``"manhattan"``.
            (default: :obj:`"chebyshev"`)
        num_graphs (int, optional): number of grids in the batch. (default: :obj:`1`)
        ptr (Tensor or sequence of int, optional): cumulative sizes instead of
            ``num_graphs``; every size must be ``0`` or ``height * width``.

    >>> g = GridGraph(2, 2, radius=1, metric="manhattan")
    >>> g
    GridGraph(num_nodes=4, num_graphs=1, height=2, width=2, radius=1, metric='manhattan')
    >>> g.edge_index().tolist()
    [[0, 1, 2, 0, 1, 3, 0, 2, 3, 1, 2, 3], [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]]
    """

    def __init__(
        self,
        height: int,
        width: int,
        *,
        radius: int = 1,
        metric: str = "chebyshev",
        num_graphs: int | None = None,
        ptr: Tensor | Sequence[int] | None = None,
    ):
        self.height = _check_int("height", height, 1)
        self.width = _check_int("width", width, 1)
        self.radius = _check_int("radius", radius, 0)
        if metric not in _METRICS:
            raise ValueError(f"`metric` must be one of {_METRICS}, got {metric!r}")
        self.metric = metric
        size = self.height * self.width
        if ptr is None:
            count = 1 if num_graphs is None else _check_int("num_graphs", num_graphs, 0)
            ptr = torch.arange(count + 1, dtype=torch.long) * size
        elif num_graphs is not None:
            raise ValueError("give `num_graphs` or `ptr`, not both")
        super().__init__(None, ptr)
        bad = (self.sizes != 0) & (self.sizes != size)
        if bool(bad.any()):
            raise ValueError(
                f"every graph of a GridGraph must have 0 or height * width = {size} nodes, "
                f"got sizes {self.sizes.tolist()}"
            )

    def offsets(self) -> tuple[Tensor, Tensor]:
        """The ``(dy, dx)`` neighbourhood offsets in raster order, int64 ``[K]`` each."""
        r = self.radius
        dy, dx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
        dy, dx = dy.flatten(), dx.flatten()
        if self.metric == "manhattan":
            keep = dy.abs() + dx.abs() <= r
            dy, dx = dy[keep], dx[keep]
        return dy, dx

    def local_edges(self, n: int) -> tuple[Tensor, Tensor]:
        if n != self.height * self.width:  # pragma: no cover - guarded in __init__
            raise ValueError(f"a {self.height}x{self.width} grid has no {n}-node graph")
        dy, dx = self.offsets()
        ys, xs = torch.meshgrid(torch.arange(self.height), torch.arange(self.width), indexing="ij")
        ys, xs = ys.reshape(-1, 1), xs.reshape(-1, 1)  # (n, 1): targets in raster order
        sy, sx = ys + dy, xs + dx  # (n, K); raster order of offsets keeps sources sorted
        keep = (sy >= 0) & (sy < self.height) & (sx >= 0) & (sx < self.width)
        src = sy * self.width + sx
        dst = (ys * self.width + xs).expand_as(src)
        return src[keep], dst[keep]

    def _describe(self) -> str:
        return (
            f"height={self.height}, width={self.width}, radius={self.radius}, "
            f"metric={self.metric!r}"
        )
