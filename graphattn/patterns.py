"""Graph descriptions: structured patterns described by a rule, and plain edge lists.

A :class:`Pattern` describes the edges of one sequence (or grid) or a batch of them by a rule:
it knows its node count, the boundaries of the graphs in a batch (``ptr``) and its edge count
in closed form, materializes its exact ``edge_index`` on request (computed once), and lets an
engine that understands the rule skip edge lists entirely. :class:`EdgeList` is the
unstructured case: any edge list, bipartite ones included, with a cache that engines use for
the structures they derive from it (a CSR, for example).

Patterns are immutable values: equal patterns compare and hash equal, and their caches can
never go stale. Materialized edges follow PyG's ``source_to_target`` flow (``edge_index[0]`` is
the source ``j``, ``edge_index[1]`` the target ``i``) and are sorted by target, then source.
Attention weights returned for a pattern follow that order.

>>> WindowGraph.from_sizes([3, 2], radius=1)
WindowGraph(num_nodes=5, num_graphs=2, radius=1)
>>> WindowGraph.from_sizes([3, 2], radius=1) == WindowGraph(ptr=[0, 3, 5], radius=1)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch import Tensor

from ._checks import check_bool, check_index_tensor, check_int, check_sizes, static_int
from ._runtime import building_cache, tracing

__all__ = [
    "CausalFullGraph",
    "ChunkedGraph",
    "EdgeList",
    "FullGraph",
    "GridGraph",
    "Pattern",
    "WindowGraph",
]


def _as_ptr(num_nodes: int | None, ptr: Tensor | Sequence[int] | None) -> tuple[int, ...]:
    """Validate ``num_nodes`` / ``ptr`` and return ``ptr`` as a tuple of Python ints."""
    if ptr is None:
        if num_nodes is None:
            raise ValueError("give `num_nodes` or `ptr`")
        return (0, check_int("num_nodes", num_nodes, 0))
    if isinstance(ptr, Tensor):
        check_index_tensor("ptr", ptr)
        if ptr.dim() != 1:
            raise ValueError(f"`ptr` must be 1-D, got shape {tuple(ptr.shape)}")
        values = [int(p) for p in ptr.detach().cpu().tolist()]
    elif isinstance(ptr, Sequence) and not isinstance(ptr, str):
        values = list(ptr)
        for p in values:
            if isinstance(p, bool) or not isinstance(p, int):
                raise TypeError(f"`ptr` must hold ints, got {type(p).__name__}")
    else:
        raise TypeError(f"`ptr` must be a tensor or a sequence of ints, got {type(ptr).__name__}")
    if not values:
        raise ValueError("`ptr` must have at least one entry")
    if values[0] != 0:
        raise ValueError(f"`ptr` must start at 0, got {values[0]}")
    if any(b < a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError("`ptr` must be non-decreasing (cumulative graph sizes)")
    if num_nodes is not None and values[-1] != check_int("num_nodes", num_nodes, 0):
        raise ValueError(f"`ptr[-1]` ({values[-1]}) must equal `num_nodes` ({num_nodes})")
    return tuple(values)


class _Frozen:
    """Immutability and a per-instance cache for derived values (never part of the value)."""

    __slots__ = ("_cache",)

    def _init_cache(self) -> None:
        object.__setattr__(self, "_cache", {})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; build a new one instead")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _set(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @property
    def cache(self) -> dict:
        """Derived structures that engines keep with the graph (a CSR, a block plan, ...)."""
        return self._cache


class Pattern(_Frozen):
    """Base class of structured patterns over one sequence or a batch of sequences.

    Subclasses describe the edges inside one graph of ``n`` nodes with :meth:`local_edges`
    and count them with :meth:`local_num_edges`; the base class handles batching, offsets,
    materialization and value semantics (``==``, ``hash``).

    Args:
        num_nodes (int, optional): total number of nodes (one graph if ``ptr`` is not given).
        ptr (Tensor or sequence of int, optional): cumulative graph sizes ``[0, n_0, n_0 + n_1,
            ...]`` of a batch, as in PyG's ``Batch.ptr``. (default: :obj:`None`)
    """

    __slots__ = ("_ptr",)

    #: Whether ``j -> i`` is an edge exactly when ``i -> j`` is (so ``flow`` does not matter).
    symmetric: bool = True

    def __init__(self, num_nodes: int | None = None, ptr: Tensor | Sequence[int] | None = None):
        self._init_cache()
        self._set(_ptr=_as_ptr(num_nodes, ptr))

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A pattern is a value: torch.export takes it as a constant input (the exported
        # program holds for that pattern, as it holds the pattern's edges).
        pytree.register_constant(cls)

    # ---- construction helpers -------------------------------------------------------------
    @classmethod
    def from_sizes(cls, sizes: Sequence[int], **kwargs) -> Pattern:
        """A batch of graphs with the given node counts (zeros allowed)."""
        ptr = [0]
        for n in check_sizes("sizes", sizes):
            ptr.append(ptr[-1] + n)
        return cls(ptr=ptr, **kwargs)

    # ---- shape facts ----------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return self._ptr[-1]

    @property
    def num_graphs(self) -> int:
        return len(self._ptr) - 1

    @property
    def ptr(self) -> Tensor:
        """Cumulative graph sizes, int64 ``[B + 1]`` on the CPU (a new tensor each call)."""
        return torch.tensor(self._ptr, dtype=torch.long)

    @property
    def sizes(self) -> Tensor:
        """Node count of each graph, int64 ``[B]`` on the CPU."""
        ptr = self.ptr
        return ptr[1:] - ptr[:-1]

    def size_list(self) -> list[int]:
        """Node count of each graph, as Python ints."""
        p = self._ptr
        return [p[i + 1] - p[i] for i in range(len(p) - 1)]

    def batch(self, device: torch.device | str | None = None) -> Tensor:
        """The graph index of every node, int64 ``[N]`` (PyG's ``batch`` vector)."""
        return torch.repeat_interleave(
            torch.arange(self.num_graphs, device=device),
            self.sizes.to(device),
            output_size=self.num_nodes,
        )

    # ---- edges ----------------------------------------------------------------------------
    def local_edges(self, n: int) -> tuple[Tensor, Tensor]:
        """``(source, target)`` int64 index pairs of one graph with ``n`` nodes, sorted by
        target then source. Subclasses implement this."""
        raise NotImplementedError

    def local_num_edges(self, n: int) -> int:
        """Number of edges of one graph with ``n`` nodes (closed form). Subclasses implement
        this."""
        raise NotImplementedError

    @property
    def num_edges(self) -> int:
        """Number of edges, in closed form (no edge list is built)."""
        counts: dict[int, int] = {}
        total = 0
        for n in self.size_list():
            if n not in counts:
                counts[n] = self.local_num_edges(n) if n > 0 else 0
            total += counts[n]
        return total

    @torch.compiler.assume_constant_result
    def edge_index(self, device: torch.device | str | None = None) -> Tensor:
        """The exact ``[2, E]`` int64 edge list, computed once per device (a constant under
        ``torch.compile``)."""
        device = torch.device("cpu" if device is None else device)
        key = ("edge_index", device)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if device.type != "cpu":
            with building_cache():
                out = self.edge_index("cpu").to(device)
        else:
            with building_cache():
                out = self._materialize()
        self._cache[key] = out
        return out

    def _materialize(self) -> Tensor:
        parts, by_size = [], {}
        for offset, n in zip(self._ptr[:-1], self.size_list(), strict=True):
            if n == 0:
                continue
            local = by_size.get(n)
            if local is None:
                local = by_size[n] = torch.stack(self.local_edges(n))
            parts.append(local + offset)
        if parts:
            return torch.cat(parts, dim=1)
        return torch.empty(2, 0, dtype=torch.long)

    @torch.compiler.assume_constant_result
    def edge_list(self, device: torch.device | str | None = None) -> EdgeList:
        """The pattern as an :class:`EdgeList` (computed once per device; a constant under
        ``torch.compile``)."""
        device = torch.device("cpu" if device is None else device)
        key = ("edge_list", device)
        cached = self._cache.get(key)
        if cached is None:
            n = self.num_nodes
            cached = self._cache[key] = EdgeList(self.edge_index(device), n, n)
        return cached

    # ---- value semantics ------------------------------------------------------------------
    def _params(self) -> tuple[tuple[str, Any], ...]:
        """``(name, value)`` of the rule's parameters, for ``==``, ``hash``, ``repr`` and
        pickling (the constructor takes them as keywords, with ``ptr``)."""
        return ()

    def _key(self) -> tuple:
        return (type(self), self._ptr, self._params())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        extra = "".join(f", {name}={value!r}" for name, value in self._params())
        name = type(self).__name__
        return f"{name}(num_nodes={self.num_nodes}, num_graphs={self.num_graphs}{extra})"

    def __reduce__(self):
        return (_rebuild, (type(self), self._ptr, dict(self._params())))


def _rebuild(cls: type, ptr: tuple[int, ...], params: dict) -> Pattern:
    """Unpickle a pattern: every pattern's constructor takes ``ptr`` and its :meth:`_params`
    as keywords (a subclass whose constructor does not overrides ``__reduce__``)."""
    return cls(ptr=ptr, **params)


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
    >>> FullGraph.from_sizes([2, 3]).num_edges
    13
    """

    __slots__ = ()

    def local_edges(self, n: int) -> tuple[Tensor, Tensor]:
        ar = torch.arange(n)
        return ar.repeat(n), ar.repeat_interleave(n)

    def local_num_edges(self, n: int) -> int:
        return n * n


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

    __slots__ = ()
    symmetric = False

    def local_edges(self, n: int) -> tuple[Tensor, Tensor]:
        dst, src = torch.tril_indices(n, n)  # row-major: by target, then source
        return src, dst

    def local_num_edges(self, n: int) -> int:
        return n * (n + 1) // 2


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

    __slots__ = ("chunk_size",)

    def __init__(
        self,
        num_nodes: int | None = None,
        ptr: Tensor | Sequence[int] | None = None,
        *,
        chunk_size: int,
    ):
        chunk_size = check_int("chunk_size", chunk_size, 1)
        super().__init__(num_nodes, ptr)
        self._set(chunk_size=chunk_size)

    def local_edges(self, n: int) -> tuple[Tensor, Tensor]:
        c = self.chunk_size
        dst = torch.arange(n).repeat_interleave(min(c, n))  # (n * c,)
        start = (dst // c) * c
        src = start + torch.arange(min(c, n)).repeat(n)
        keep = src < n
        return src[keep], dst[keep]

    def local_num_edges(self, n: int) -> int:
        c = self.chunk_size
        return (n // c) * c * c + (n % c) ** 2

    def _params(self) -> tuple[tuple[str, Any], ...]:
        return (("chunk_size", self.chunk_size),)


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

    __slots__ = ("radius", "causal")

    def __init__(
        self,
        num_nodes: int | None = None,
        ptr: Tensor | Sequence[int] | None = None,
        *,
        radius: int,
        causal: bool = False,
    ):
        radius = check_int("radius", radius, 0)
        causal = check_bool("causal", causal)
        super().__init__(num_nodes, ptr)
        self._set(radius=radius, causal=causal)

    @property
    def symmetric(self) -> bool:  # type: ignore[override]
        return not self.causal

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

    def local_num_edges(self, n: int) -> int:
        reach = min(self.radius, n - 1)
        one_side = reach * n - reach * (reach + 1) // 2  # sum_{d=1}^{reach} (n - d)
        return n + one_side * (1 if self.causal else 2)

    def _params(self) -> tuple[tuple[str, Any], ...]:
        return (("radius", self.radius),) + ((("causal", True),) if self.causal else ())


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

    __slots__ = ("height", "width", "radius", "metric")

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
        height = check_int("height", height, 1)
        width = check_int("width", width, 1)
        radius = check_int("radius", radius, 0)
        if metric not in _METRICS:
            raise ValueError(f"`metric` must be one of {_METRICS}, got {metric!r}")
        size = height * width
        if ptr is None:
            count = 1 if num_graphs is None else check_int("num_graphs", num_graphs, 0)
            ptr = [g * size for g in range(count + 1)]
        elif num_graphs is not None:
            raise ValueError("give `num_graphs` or `ptr`, not both")
        super().__init__(None, ptr)
        self._set(height=height, width=width, radius=radius, metric=metric)
        bad = [n for n in self.size_list() if n not in (0, size)]
        if bad:
            raise ValueError(
                f"every graph of a GridGraph must have 0 or height * width = {size} nodes, "
                f"got sizes {self.size_list()}"
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
        dy, dx = self.offsets()
        ys, xs = torch.meshgrid(torch.arange(self.height), torch.arange(self.width), indexing="ij")
        ys, xs = ys.reshape(-1, 1), xs.reshape(-1, 1)  # (n, 1): targets in raster order
        sy, sx = ys + dy, xs + dx  # (n, K); raster order of offsets keeps sources sorted
        keep = (sy >= 0) & (sy < self.height) & (sx >= 0) & (sx < self.width)
        src = sy * self.width + sx
        dst = (ys * self.width + xs).expand_as(src)
        return src[keep], dst[keep]

    def local_num_edges(self, n: int) -> int:
        r, total = self.radius, 0
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if self.metric == "manhattan" and abs(dy) + abs(dx) > r:
                    continue
                total += max(0, self.height - abs(dy)) * max(0, self.width - abs(dx))
        return total

    def _params(self) -> tuple[tuple[str, Any], ...]:
        return (
            ("height", self.height),
            ("width", self.width),
            ("radius", self.radius),
            ("metric", self.metric),
        )


class EdgeList(_Frozen):
    """An arbitrary graph as an edge list, with a cache for what engines derive from it.

    Edges ``j -> i`` go from ``edge_index[0]`` (sources, ``num_src`` of them) to
    ``edge_index[1]`` (targets, ``num_dst`` of them); the two node sets differ in a bipartite
    graph. Duplicate edges count as often as they appear. Engines store what they derive
    from the edges (a CSR, for example) in :attr:`cache`, so an ``EdgeList`` reused across
    layers and steps builds it once: :class:`~graphattn.nn.GraphTransformer` wraps its
    ``edge_index`` into one per forward call for all of its layers.

    The edge list itself is not copied: do not modify ``edge_index`` in place while the
    ``EdgeList`` is in use.

    Args:
        edge_index (Tensor): integer ``[2, E]`` (source, target) pairs (kept as int64).
        num_src (int): number of source nodes.
        num_dst (int, optional): number of target nodes. (default: ``num_src``)

    >>> edges = EdgeList(torch.tensor([[0, 1, 2], [1, 0, 0]]), 3)
    >>> edges
    EdgeList(num_src=3, num_dst=3, num_edges=3)
    """

    __slots__ = ("edge_index", "num_src", "num_dst")

    def __init__(self, edge_index: Tensor, num_src: int, num_dst: int | None = None):
        check_index_tensor("edge_index", edge_index)
        if edge_index.dim() != 2 or static_int(edge_index.size(0)) != 2:
            raise ValueError(f"`edge_index` must have shape [2, E], got {list(edge_index.shape)}")
        num_src = check_int("num_src", num_src, 0)
        num_dst = num_src if num_dst is None else check_int("num_dst", num_dst, 0)
        if not tracing() and edge_index.numel():  # a value check: eager
            lo, hi_src, hi_dst = (
                int(edge_index.min()),
                int(edge_index[0].max()),
                int(edge_index[1].max()),
            )
            if lo < 0 or hi_src >= num_src or hi_dst >= num_dst:
                raise ValueError(
                    f"`edge_index` holds ids outside [0, {num_src}) x [0, {num_dst}): "
                    f"min {lo}, max source {hi_src}, max target {hi_dst}"
                )
        edge_index = edge_index.long()
        if not tracing() and edge_index.is_inference():
            # made in inference mode: a normal copy, which later training can save for its
            # backward
            with torch.inference_mode(False):
                edge_index = edge_index.clone()
        self._init_cache()
        self._set(edge_index=edge_index, num_src=num_src, num_dst=num_dst)

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    @property
    def device(self) -> torch.device:
        return self.edge_index.device

    def __repr__(self) -> str:
        return (
            f"EdgeList(num_src={self.num_src}, num_dst={self.num_dst}, num_edges={self.num_edges})"
        )
