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

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric import EdgeIndex
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import coalesce, scatter, to_torch_sparse_tensor

from ._checks import check_flow, check_index_tensor, static_int
from ._runtime import building_cache, tracing
from .patterns import EdgeList, Pattern

__all__ = [
    "GraphInput",
    "loop_edge_attr",
    "loop_nodes",
    "normalize_graph",
    "self_loops",
    "weights_in_input_form",
]


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
        [edge_index[0] == edge_index[1], torch.zeros_like(loops, dtype=torch.bool)]
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
    """Range checks (skipped when traced: they need a device sync)."""
    if tracing() or edge_index.numel() == 0:
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
    if graph.dim() != 2 or static_int(graph.size(0)) != 2:
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
    traced_dst = num_dst  # under torch.jit.trace a traced size: the self-loops follow it
    num_src, num_dst = static_int(num_src), static_int(num_dst)
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
    num_input = static_int(edge_index.size(1))
    if transposed:
        edge_index = edge_index.flip(0)
    mask, num_loops = None, 0
    if add_self_loops:
        edge_index, mask = self_loops(edge_index, traced_dst)
        num_loops, origin = num_dst, None
        if not tracing() and not bool(mask.any()):
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


def _check_not_faked(pattern: Pattern) -> None:
    """A ``ValueError`` for a pattern under ``torch.export``'s default (non-strict) mode, whose
    fake tensors would reach the structures cached on the pattern (its edges, block plans),
    which must be computed from its rule. ``strict=True`` (TorchDynamo) computes them for
    real, once, and records them as constants."""
    if torch.compiler.is_exporting() and type(torch.empty(0)) is not Tensor:  # faked
        raise ValueError(
            f"a {type(pattern).__name__} under torch.export's non-strict mode: its cached "
            "structures would be traced as fake tensors; export with "
            "`torch.export.export(..., strict=True)`, or pass the pattern's edges "
            "(`pattern.edge_index()`) as an edge_index tensor"
        )


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
    if isinstance(graph, Pattern):
        _check_not_faked(graph)
    args = (graph, num_src, num_dst, device, flow, add_self_loops)
    if tracing():
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


# ---- edge features of the appended self-loops (GATConv's `fill_value`) ----------------------
def loop_edge_attr(
    graph: GraphInput, edge_attr: Tensor, fill_value: float | Tensor | str | None
) -> Tensor:
    """The edge features ``[N, D]`` of the self-loops the layer appended to ``graph`` (one per
    target node), as PyG's ``add_self_loops`` gives them for GATConv's ``fill_value``: a
    constant row, or a reduction over each node's incoming edges; the caller's own
    self-loops, which the appended ones replace, are left out, as GATConv removes them first.

    ``edge_attr`` ``[E, D]`` holds the caller's edges. Sizes are read from tensors, not
    ints, so a graph recorded by ``torch.jit.trace`` holds for other graphs too.
    """
    edge_index = graph.graph.edge_index  # an EdgeList: patterns never get loops appended
    num_edges = edge_attr.size(0)
    loops = edge_index[1, num_edges:]  # (N,) the node of each appended loop
    if not isinstance(fill_value, str):
        if fill_value is None or isinstance(fill_value, float):
            row = edge_attr.new_full(
                (1, edge_attr.size(1)), 1.0 if fill_value is None else fill_value
            )
        else:
            row = fill_value.to(edge_attr.device, edge_attr.dtype).reshape(1, -1)
            if static_int(row.size(1)) not in (1, static_int(edge_attr.size(1))):
                raise ValueError(
                    f"`fill_value` has {row.size(1)} entries but the edge features have "
                    f"{edge_attr.size(1)} columns"
                )
        return row.expand(loops.size(0), edge_attr.size(1))
    target = edge_index[1, :num_edges]
    own = None if graph.mask is None else graph.mask[:num_edges]  # the caller's self-loops
    if own is None:
        return scatter(edge_attr, target, 0, loops.size(0), fill_value)
    # leave the caller's own self-loops out with the reduction's neutral value, and give
    # a node with no other incoming edge 0, as a scatter over no edges does
    neutral = {"min": math.inf, "max": -math.inf, "mul": 1.0}.get(fill_value, 0.0)
    kept = edge_attr.masked_fill(own.unsqueeze(-1), neutral)
    count = scatter((~own).to(edge_attr.dtype), target, 0, loops.size(0), "sum").unsqueeze(-1)
    if fill_value == "mean":
        return scatter(kept, target, 0, loops.size(0), "sum") / count.clamp_min(1)
    return scatter(kept, target, 0, loops.size(0), fill_value).masked_fill(count == 0, 0.0)


def loop_nodes(graph: GraphInput, num_edges: int | Tensor) -> Tensor:
    """The node ``[N]`` of every self-loop the layer appended after the caller's
    ``num_edges`` edges (its length read from a tensor, so that traces generalise)."""
    return graph.graph.edge_index[1, num_edges:]


# ---- returned attention weights in the caller's input form -------------------------------
def weights_in_input_form(
    graph: object, normalized: GraphInput, weights: Tensor, device: torch.device, pyg: bool
) -> tuple[Tensor, Tensor]:
    """``(edges, weights)`` for returned attention weights: without ``pyg``, the ``[2, E']``
    edges in the caller's orientation (the caller's own edges first, then the self-loops the
    layer appended); with ``pyg`` (PyG's spelling, ``return_attention_weights=True``), as
    PyG's attention layers return them for the input ``graph``:

    - an integer tensor (or a pattern, an ``EdgeList``): the ``[2, E']`` edges in the caller's
      orientation, the caller's own edges first, then the self-loops the layer appended;
    - a PyG ``EdgeIndex``: the same as an ``EdgeIndex`` (the caller's own object when no
      self-loops were appended, as ``TransformerConv`` returns it);
    - a ``torch.sparse`` ``adj_t``: as ``GATConv`` returns it, a sparse tensor of the same
      layout, ``[N_dst, N_src, H]``, whose values are the weights, with ``weights`` those
      values ``[nnz, H]`` in its storage order; coalesced, so the caller's own self-loops
      (weight 0) merge into the appended ones and the weights of duplicate entries add up.
    """
    edge_index = normalized.caller_edge_index(device)
    if not pyg:
        return edge_index, weights
    if isinstance(graph, EdgeIndex):
        if normalized.num_loops == 0:
            return graph, weights
        return EdgeIndex(edge_index, sparse_size=graph.sparse_size()), weights
    if not isinstance(graph, Tensor) or graph.layout == torch.strided:
        return edge_index, weights
    num_dst, num_src = graph.shape  # adj_t: targets x sources (flow is source_to_target)
    index = edge_index.flip(0)  # (target, source): rows and columns of adj_t
    by_row = graph.layout != torch.sparse_csc
    index, values = coalesce(index, weights, max(num_dst, num_src), sort_by_row=by_row)
    size = (num_dst, num_src, weights.size(1))
    if graph.layout == torch.sparse_coo:
        return torch.sparse_coo_tensor(index, values, size).coalesce(), values
    adj = to_torch_sparse_tensor(
        index, values, (num_dst, num_src), is_coalesced=True, layout=graph.layout
    )
    return adj, values
