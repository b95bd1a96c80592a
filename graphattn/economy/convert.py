"""Economies as networkx ``MultiDiGraph`` and back to PyG ``Data``.

networkx is an optional dependency (the ``economy`` extra); everything else in
:mod:`graphattn.economy` works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch_geometric.data import Data

from ._validate import check_edges
from .generate import EconomyArrays, _build_data, economy_arrays

if TYPE_CHECKING:
    import networkx

__all__ = ["from_data", "supply_chain_economy", "to_data"]


def _nx():
    try:
        import networkx
    except ImportError as err:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "networkx is needed for economies as graphs: pip install 'graphattn[economy]'"
        ) from err
    return networkx


def supply_chain_economy(num_agents: int, **kwargs) -> networkx.MultiDiGraph:
    """A seeded supply-chain economy as a networkx ``MultiDiGraph``.

    Nodes are ``0 .. N-1`` (numbered tier by tier) with attributes ``tier`` (int),
    ``tier_name`` and ``size``. Edges go supplier -> customer with key and attribute
    ``relation`` (the relation name) and ``weight`` (the input share). The graph attributes
    ``relations`` and ``tiers`` list the names in index order.

    Args:
        num_agents (int): number of agents.
        **kwargs: the options of :func:`economy_arrays` (``num_relations``, ``seed``, ...).

    >>> g = supply_chain_economy(40, num_relations=4, seed=1)
    >>> g.graph["relations"]
    ['goods', 'capital', 'labour', 'energy']
    """
    return _arrays_to_networkx(economy_arrays(num_agents, **kwargs))


def _arrays_to_networkx(a: EconomyArrays) -> networkx.MultiDiGraph:
    g = _nx().MultiDiGraph(relations=list(a.relation_names), tiers=list(a.tier_names))
    g.add_nodes_from(
        (i, {"tier": int(t), "tier_name": a.tier_names[t], "size": float(s)})
        for i, (t, s) in enumerate(zip(a.tier.tolist(), a.size.tolist(), strict=True))
    )
    names = a.relation_names
    g.add_edges_from(
        (u, v, names[r], {"relation": names[r], "weight": w})
        for u, v, r, w in zip(
            a.src.tolist(), a.dst.tolist(), a.rel.tolist(), a.weight.tolist(), strict=True
        )
    )
    return g


def to_data(graph: networkx.MultiDiGraph, *, dtype: torch.dtype = torch.float32) -> Data:
    """Convert an economy ``MultiDiGraph`` to a PyG ``Data``.

    Node ``i`` of the ``Data`` is the ``i``-th node of ``graph.nodes`` (insertion order); when
    the nodes are not exactly ``0 .. N-1`` in that order, their names are kept in
    ``data.node_names`` so that :func:`from_data` restores them. Edges are sorted by relation,
    customer, supplier.

    Args:
        graph: nodes with ``tier`` (int) and ``size`` (kept as ``data.agent_size``); edges
            with ``relation`` (a name listed
            in ``graph.graph["relations"]``) and ``weight``.
        dtype: floating dtype of ``x``, ``edge_weight`` and ``size``. (default: float32)

    Returns:
        ``Data`` with ``x`` ``[N, T + 1]`` (one-hot tier, log size), ``edge_index`` ``[2, E]``
        (row 0 = supplier, row 1 = customer), ``edge_type`` ``[E]``, ``edge_weight`` ``[E]``,
        ``tier`` ``[N]``, ``agent_size`` ``[N]``, and the lists ``tier_names``, ``relation_names``.
    """
    if not isinstance(graph, _nx().MultiDiGraph):
        raise TypeError(f"`graph` must be a networkx.MultiDiGraph, got {type(graph).__name__}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"`dtype` must be a floating torch.dtype, got {dtype}")
    relation_names = list(graph.graph.get("relations", []))
    tier_names = list(graph.graph.get("tiers", []))
    nodes = list(graph.nodes)
    index = {v: i for i, v in enumerate(nodes)}
    try:
        tier = np.array([graph.nodes[v]["tier"] for v in nodes], dtype=np.int64)
        size = np.array([graph.nodes[v].get("size", 1.0) for v in nodes], dtype=np.float64)
    except KeyError as err:
        raise ValueError("every node of `graph` needs a 'tier' attribute") from err
    if not tier_names:
        tier_names = [str(t) for t in range(int(tier.max(initial=-1)) + 1)]
    rel_index = {name: r for r, name in enumerate(relation_names)}
    src, dst, rel, weight = [], [], [], []
    for u, v, attrs in graph.edges(data=True):
        name = attrs.get("relation")
        if name not in rel_index:
            if "relations" in graph.graph:
                raise ValueError(
                    f"`graph` edge ({u}, {v}) has relation {name!r}, "
                    f"not one of graph.graph['relations'] = {relation_names}"
                )
            rel_index[name] = len(relation_names)
            relation_names.append(name)
        src.append(index[u])
        dst.append(index[v])
        rel.append(rel_index[name])
        weight.append(attrs.get("weight", 1.0))
    src_a, dst_a = np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)
    rel_a, weight_a = np.array(rel, dtype=np.int64), np.array(weight, dtype=np.float64)
    bad = ~(np.isfinite(weight_a) & (weight_a > 0))
    if bad.any():
        e = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"`graph` edge ({nodes[src[e]]}, {nodes[dst[e]]}) has weight {weight_a[e]}: edge "
            "weights are input shares, finite and positive"
        )
    order = np.lexsort((src_a, dst_a, rel_a))  # by relation, then customer, then supplier
    identity = nodes == list(range(len(nodes)))
    return _build_data(
        tier,
        size,
        src_a[order],
        dst_a[order],
        rel_a[order],
        weight_a[order],
        tier_names,
        relation_names,
        dtype=dtype,
        node_names=None if identity else nodes,
    )


def from_data(data: Data) -> networkx.MultiDiGraph:
    """Convert a ``Data`` made by :func:`to_data` or :func:`economy_data` back to networkx.

    Node ``i`` becomes ``data.node_names[i]`` if present, else ``i``. Weights and sizes come
    back as Python floats of the tensor's precision (exact for float64 tensors). Edges are
    keyed by their relation's name; every edge is kept, a repeated (supplier, customer,
    relation) one under a networkx integer key.
    """
    if not isinstance(data, Data):
        raise TypeError(f"`data` must be a torch_geometric.data.Data, got {type(data).__name__}")
    for name in ("edge_index", "edge_type", "tier"):
        if getattr(data, name, None) is None:
            raise ValueError(f"`data` has no `{name}`; build it with to_data or economy_data")
    n = int(data.num_nodes)
    relation_names = list(
        getattr(data, "relation_names", None)
        or [str(r) for r in range(int(data.edge_type.max(initial=-1)) + 1)]
    )
    tier_names = list(
        getattr(data, "tier_names", None)
        or [str(t) for t in range(int(data.tier.max(initial=-1)) + 1)]
    )
    check_edges(data, len(relation_names))
    tier = data.tier
    if list(tier.shape) != [n] or (
        n and not 0 <= int(tier.min()) <= int(tier.max()) < len(tier_names)
    ):
        raise ValueError(f"`data.tier` must hold one tier in [0, {len(tier_names)}) per agent")
    names = list(getattr(data, "node_names", None) or range(n))
    size = data.agent_size.tolist() if getattr(data, "agent_size", None) is not None else [1.0] * n
    weight = (
        data.edge_weight.tolist()
        if getattr(data, "edge_weight", None) is not None
        else [1.0] * data.edge_index.size(1)
    )
    g = _nx().MultiDiGraph(relations=relation_names, tiers=tier_names)
    g.add_nodes_from(
        (names[i], {"tier": int(t), "tier_name": tier_names[t], "size": float(s)})
        for i, (t, s) in enumerate(zip(data.tier.tolist(), size, strict=True))
    )
    src, dst = data.edge_index.tolist()
    for u, v, r, w in zip(src, dst, data.edge_type.tolist(), weight, strict=True):
        u, v, name = names[u], names[v], relation_names[r]
        # keyed by relation, as supply_chain_economy; a repeated (supplier, customer,
        # relation) edge gets a fresh integer key instead of overwriting the first
        key = name if not g.has_edge(u, v, key=name) else g.new_edge_key(u, v)
        g.add_edge(u, v, key=key, relation=name, weight=w)
    return g
