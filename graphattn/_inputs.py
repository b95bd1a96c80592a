"""The graph inputs PyG users have, turned into what engines take (private).

:func:`normalize_graph` accepts an integer ``edge_index`` tensor, a PyG ``EdgeIndex``, a
``torch.sparse`` COO/CSR/CSC adjacency ``adj_t``, a ``torch_sparse.SparseTensor`` (when
installed), a :class:`~graphattn.patterns.Pattern` or an :class:`~graphattn.patterns.EdgeList`,
applies the layer's ``flow`` and ``add_self_loops``, and returns a :class:`GraphInput`: the
graph as engines take it (always pointing source -> target) and how its edges map back to the
caller's (for ``edge_attr``, ``edge_type`` and returned weights).

Results are cached on the graph object when it is one that cannot change under us (a pattern,
an ``EdgeList``) or one that PyG users reuse on purpose (an ``EdgeIndex``, checked against
in-place changes); a plain tensor is normalised on every call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric import EdgeIndex
from torch_geometric.typing import SparseTensor

from ._checks import check_index_tensor
from .patterns import EdgeList, Pattern, building_cache

__all__ = ["FLOWS", "GraphInput", "check_flow", "normalize_graph", "self_loops"]

FLOWS = ("source_to_target", "target_to_source")


@dataclass(frozen=True)
class GraphInput:
    """A caller's graph, normalised.

    Attributes:
        graph: what engines take: a pattern, or an edge list pointing source -> target.
        num_input_edges: number of edges the caller gave (rows of ``edge_attr``), or -1 for a
            pattern (whose edges are counted by the pattern).
        num_loops: number of self-loops appended after the caller's edges (``add_self_loops``).
        mask: bool ``[E + num_loops]``, true for the caller's own self-loops, which the
            appended ones replace (they take no part), or :obj:`None`.
        flipped: the caller's ``edge_index`` points target -> source (``flow``).
    """

    graph: Pattern | EdgeList
    num_input_edges: int
    num_loops: int = 0
    mask: Tensor | None = None
    flipped: bool = False

    def caller_edge_index(self, device: torch.device) -> Tensor:
        """The edges in the caller's orientation (with added self-loops): what returned
        attention weights line up with."""
        graph = self.graph
        edge_index = graph.edge_index(device) if isinstance(graph, Pattern) else graph.edge_index
        return edge_index.flip(0) if self.flipped else edge_index


def self_loops(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """Append one self-loop per node after the edges, and mark the edges' own self-loops,
    which the appended ones replace: ``(edge_index [2, E + N], replaced [E + N] bool)``.

    Together with the mask this gives PyG's ``GATConv`` convention (existing self-loops
    removed, one per node added) without a shape that depends on the data, so it traces under
    ``torch.compile(fullgraph=True)``.

    >>> ei, replaced = self_loops(torch.tensor([[0, 1, 1], [1, 1, 0]]), 2)
    >>> ei.tolist(), replaced.tolist()
    ([[0, 1, 1, 0, 1], [1, 1, 0, 0, 1]], [False, True, False, False, False])
    """
    loops = torch.arange(num_nodes, device=edge_index.device)
    replaced = torch.cat(
        [
            edge_index[0] == edge_index[1],
            torch.zeros(num_nodes, dtype=torch.bool, device=loops.device),
        ]
    )
    return torch.cat([edge_index, torch.stack([loops, loops])], dim=1), replaced


def _sparse_to_edge_index(adj_t: Tensor) -> Tensor:
    """``[2, E]`` (source, target) of a ``torch.sparse`` ``adj_t`` (``adj_t[i, j]``: edge
    ``j -> i``); duplicate entries of an uncoalesced COO tensor stay separate edges."""
    layout = adj_t.layout
    if layout == torch.sparse_coo:
        target, source = adj_t._indices()
    elif layout == torch.sparse_csr:
        ptr, source = adj_t.crow_indices(), adj_t.col_indices()
        target = torch.repeat_interleave(
            torch.arange(ptr.numel() - 1, device=ptr.device), ptr.diff(), output_size=source.numel()
        )
    elif layout == torch.sparse_csc:
        ptr, target = adj_t.ccol_indices(), adj_t.row_indices()
        source = torch.repeat_interleave(
            torch.arange(ptr.numel() - 1, device=ptr.device), ptr.diff(), output_size=target.numel()
        )
    else:
        raise TypeError(
            f"`edge_index` as a sparse adjacency must be COO, CSR or CSC, got layout {layout}"
        )
    return torch.stack([source, target]).long()


def _check_values(edge_index: Tensor, num_src: int, num_dst: int, *, transposed: bool) -> None:
    """Range checks (skipped under ``torch.compile``: they need a device sync)."""
    if edge_index.numel() == 0 or torch.compiler.is_compiling():
        return
    src, dst = (edge_index[1], edge_index[0]) if transposed else (edge_index[0], edge_index[1])
    lo = int(edge_index.min())
    if lo < 0:
        raise ValueError(f"`edge_index` has a negative node index ({lo})")
    hi_src, hi_dst = int(src.max()), int(dst.max())
    if num_src == num_dst and max(hi_src, hi_dst) >= num_src:
        raise ValueError(
            f"`edge_index` refers to node {max(hi_src, hi_dst)} but `x` has only {num_src} nodes"
        )
    if hi_src >= num_src:
        raise ValueError(
            f"`edge_index` refers to source node {hi_src} but there are only {num_src} "
            "source nodes (rows of `x`, or of `x[0]` for a bipartite pair)"
        )
    if hi_dst >= num_dst:
        raise ValueError(
            f"`edge_index` refers to target node {hi_dst} but there are only {num_dst} "
            "target nodes (rows of `x`, or of `x[1]` for a bipartite pair)"
        )


def _as_edge_index(graph: object, num_src: int, num_dst: int, transposed: bool) -> Tensor:
    """An int64 ``[2, E]`` tensor in the caller's orientation from any edge-list input."""
    if isinstance(graph, EdgeIndex):
        sizes = graph.sparse_size()
        want = (num_dst, num_src) if transposed else (num_src, num_dst)
        for have, expected, side in zip(sizes, want, ("rows", "columns"), strict=True):
            if have is not None and have != expected:
                raise ValueError(
                    f"`edge_index` (an EdgeIndex) has {have} sparse {side} but the features "
                    f"give {expected}"
                )
        graph = graph.as_tensor()
    sparse = isinstance(graph, SparseTensor) or (
        isinstance(graph, Tensor) and graph.layout != torch.strided
    )
    if sparse and transposed:
        raise ValueError(
            "flow='target_to_source' is not defined for a sparse adjacency (as in PyG): "
            "`adj_t` always has targets as rows"
        )
    if isinstance(graph, SparseTensor):
        row, col, _ = graph.coo()
        if tuple(graph.sparse_sizes()) != (num_dst, num_src):
            raise ValueError(
                f"`edge_index` (a SparseTensor adj_t) must be [{num_dst}, {num_src}] "
                f"(targets x sources), got {list(graph.sparse_sizes())}"
            )
        return torch.stack([col, row])
    if not isinstance(graph, Tensor):
        raise TypeError(
            "`edge_index` must be an integer [2, E] tensor, a PyG EdgeIndex, a torch.sparse or "
            "SparseTensor adjacency, a graphattn Pattern or an EdgeList, "
            f"got {type(graph).__name__}"
        )
    if sparse:
        if graph.dim() != 2 or tuple(graph.shape) != (num_dst, num_src):
            raise ValueError(
                f"`edge_index` as a sparse adj_t must have shape [{num_dst}, {num_src}] "
                f"(targets x sources), got {list(graph.shape)}"
            )
        return _sparse_to_edge_index(graph)
    check_index_tensor("edge_index", graph)
    if graph.dim() != 2 or graph.size(0) != 2:
        raise ValueError(f"`edge_index` must have shape [2, E], got {list(graph.shape)}")
    _check_values(graph, num_src, num_dst, transposed=transposed)
    return graph if graph.dtype == torch.long else graph.long()


def _build(
    graph: object,
    num_src: int,
    num_dst: int,
    device: torch.device,
    flow: str,
    add_self_loops: bool,
) -> GraphInput:
    transposed = flow == "target_to_source"
    tensor = graph.edge_index if isinstance(graph, EdgeList) else graph
    if isinstance(tensor, Tensor) and tensor.device != device:
        raise ValueError(
            f"`edge_index` is on {tensor.device} but `x` is on {device}; "
            "put them on the same device"
        )
    if isinstance(graph, Pattern):
        if num_src != num_dst:
            raise ValueError(
                "a pattern relates one node set to itself, but the features have "
                f"{num_src} source and {num_dst} target nodes"
            )
        if num_src != graph.num_nodes:
            raise ValueError(f"the pattern covers {graph.num_nodes} nodes but `x` has {num_src}")
        # every pattern already holds exactly one self-loop per node
        if not transposed or graph.symmetric:
            return GraphInput(graph, -1)
        edges = EdgeList(graph.edge_index().flip(0), num_src, num_dst)
        return GraphInput(edges, -1, flipped=True)
    if isinstance(graph, EdgeList):
        if transposed:
            raise ValueError(
                "an EdgeList always points source -> target; flow='target_to_source' applies "
                "to edge_index tensors only"
            )
        if (graph.num_src, graph.num_dst) != (num_src, num_dst):
            raise ValueError(
                f"the EdgeList has {graph.num_src} sources and {graph.num_dst} targets but the "
                f"features have {num_src} source and {num_dst} target nodes"
            )
        _check_values(graph.edge_index, num_src, num_dst, transposed=False)
        edge_index, origin = graph.edge_index.long(), None
    else:
        origin = graph if isinstance(graph, EdgeIndex) else None
        edge_index = _as_edge_index(graph, num_src, num_dst, transposed)
    num_input = edge_index.size(1)
    if transposed:
        edge_index = edge_index.flip(0)
    mask, num_loops = None, 0
    if add_self_loops:
        edge_index, mask = self_loops(edge_index, num_dst)
        num_loops, origin = num_dst, None
        if not torch.compiler.is_compiling() and not bool(mask.any()):
            mask = None  # no self-loop to replace
    if isinstance(graph, EdgeList) and not transposed and not add_self_loops:
        edges = graph
    else:
        edges = EdgeList(edge_index, num_src, num_dst)
    if (
        origin is not None
        and not transposed
        and origin.is_sorted
        and tuple(origin.sparse_size()) == (num_src, num_dst)  # its CSR/CSC cover every node
    ):
        edges.cache["origin"] = origin  # its own CSR/CSC caches serve the engines
    return GraphInput(edges, num_input, num_loops, mask, transposed)


def check_flow(flow: object) -> str:
    """``flow`` as one of PyG's two directions, or a ``ValueError`` naming it."""
    if flow not in FLOWS:
        raise ValueError(f"`flow` must be one of {FLOWS}, got {flow!r}")
    return flow


def _stamp(t: Tensor) -> tuple | None:
    """What must be unchanged for a result cached on ``t`` to stay valid: the versions of the
    wrapper and of the plain tensor it wraps (an ``EdgeIndex``'s ``_data``, which writes
    through ``as_tensor()`` or ``.numpy()`` bump), its storage and its shape. ``None`` for an
    inference tensor, which has no version counter: an in-place change would go unseen, so
    nothing is cached on it."""
    data = getattr(t, "_data", None)
    parts = [t] if not isinstance(data, Tensor) else [t, data]
    if any(p.is_inference() for p in parts):
        return None
    return (tuple(p._version for p in parts), t.data_ptr(), tuple(t.shape))


def normalize_graph(
    graph: object,
    num_src: int,
    num_dst: int,
    device: torch.device,
    *,
    flow: str,
    add_self_loops: bool,
) -> GraphInput:
    """Normalise any graph input for ``num_src`` source and ``num_dst`` target nodes.

    ``add_self_loops`` applies to edge lists only (patterns hold one self-loop per node);
    ``device`` is the features' device.
    """
    check_flow(flow)  # also here: `conv.flow` may be assigned after construction
    args = (graph, num_src, num_dst, device, flow, add_self_loops)
    if torch.compiler.is_compiling():
        return _build(*args)
    key = ("graph_input", num_src, num_dst, device, flow, add_self_loops)
    if isinstance(graph, (Pattern, EdgeList)):
        cached = graph.cache.get(key)
        if cached is None:
            with building_cache():
                cached = graph.cache[key] = _build(*args)
        return cached
    if isinstance(graph, EdgeIndex):
        store = graph.__dict__.setdefault("_graphattn_inputs", {})
        stamp = _stamp(graph)
        hit = store.get(key)
        if stamp is not None and hit is not None and hit[0] == stamp:
            return hit[1]
        with building_cache():
            out = _build(*args)
        if stamp is None or any(h[0] != stamp for h in store.values()):
            # changed in place (or unversioned): PyG's own CSR/CSC caches on it may be stale
            out.graph.cache.pop("origin", None)
        if stamp is not None:
            store[key] = (stamp, out)
        return out
    return _build(*args)
