r"""Node partitions, each rank's exact L-hop halo, and the replication they cost.

A partition assigns every node to one rank, which *owns* it: computes its output and its
loss. An :math:`L`-layer model's output on a node reads its :math:`L`-hop in-neighbourhood,
so each rank also holds the *halo*: the nodes outside its part within :math:`L` upstream hops
of it (and the edges into every node within :math:`L - 1` hops, see
:mod:`graphattn.loader`). The halo is replicated work: the **replication factor**

.. math::
    \rho_\text{nodes} = \frac{1}{N} \sum_r |\text{owned}_r \cup \text{halo}_r|, \qquad
    \rho_\text{edges} = \frac{1}{E} \sum_r |E_r|

is 1 for a single rank (all nodes, all edges) and grows with the number of parts, the depth
and the edges the partition cuts. METIS (``pymetis``, the ``distributed`` extra) minimises the
cut edges of the undirected graph under a node balance; a random partition is the baseline
and the fallback where ``pymetis`` is missing.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import remove_self_loops, to_undirected

from .._checks import check_index_tensor, check_int, check_positive_int
from ..loader import HopSampler, hop_batch

__all__ = [
    "PARTITION_METHODS",
    "ReplicationFactor",
    "partition_nodes",
    "rank_subgraph",
    "replication_factor",
]

#: How :func:`partition_nodes` may split a graph.
PARTITION_METHODS = ("metis", "random")


def _check_parts(parts: object, num_nodes: int) -> Tensor:
    check_index_tensor("parts", parts)
    if parts.shape != (num_nodes,):
        raise ValueError(
            f"`parts` must have shape [{num_nodes}] (one part per node), got {list(parts.shape)}"
        )
    if num_nodes > 0 and int(parts.min()) < 0:
        raise ValueError(f"`parts` must be >= 0, got {int(parts.min())}")
    return parts.long()


def _check_edge_index(edge_index: object, num_nodes: int) -> Tensor:
    check_index_tensor("edge_index", edge_index)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"`edge_index` must have shape [2, E], got {list(edge_index.shape)}")
    if edge_index.numel() > 0 and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"`edge_index` holds node ids outside [0, {num_nodes})")
    return edge_index.long()


def partition_nodes(
    edge_index: Tensor,
    num_nodes: int,
    num_parts: int,
    *,
    method: str = "metis",
    seed: int = 0,
) -> Tensor:
    """Assign every node to one of ``num_parts`` parts.

    Args:
        edge_index (Tensor): integer ``[2, E]`` edges (their direction is ignored).
        num_nodes (int): number of nodes.
        num_parts (int): number of parts (ranks).
        method (str, optional): ``"metis"`` (``pymetis``: few cut edges, balanced node
            counts; falls back to ``"random"`` with a warning when ``pymetis`` is not
            installed) or ``"random"`` (a seeded random assignment with equal part sizes, up
            to one node). (default: :obj:`"metis"`)
        seed (int, optional): the seed of either method. (default: :obj:`0`)

    Returns:
        int64 ``[N]`` the part of every node.

    >>> edge_index = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 0, 4, 5]])  # two triangles-ish
    >>> parts = partition_nodes(edge_index, 6, 2, method="random", seed=0)
    >>> torch.bincount(parts).tolist()
    [3, 3]
    """
    num_nodes = check_int("num_nodes", num_nodes, 0)
    num_parts = check_positive_int("num_parts", num_parts)
    edge_index = _check_edge_index(edge_index, num_nodes)
    if method not in PARTITION_METHODS:
        raise ValueError(f"`method` must be one of {PARTITION_METHODS}, got {method!r}")
    check_int("seed", seed, 0)
    if 0 < num_nodes < num_parts:
        raise ValueError(
            f"`num_parts` ({num_parts}) exceeds the {num_nodes} nodes: a part would be empty"
        )
    if num_parts == 1 or num_nodes == 0:
        return torch.zeros(num_nodes, dtype=torch.long)
    if method == "metis":
        try:
            import pymetis
        except ImportError:
            warnings.warn(
                "pymetis is not installed (pip install 'graphattn[distributed]'): using a "
                "random partition instead of METIS; expect a larger halo",
                stacklevel=2,
            )
            method = "random"
    if method == "random":
        perm = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(seed))
        parts = torch.empty(num_nodes, dtype=torch.long)
        parts[perm] = torch.arange(num_nodes) % num_parts
        return parts
    # METIS wants a symmetric adjacency without self-loops, as CSR (adj_starts, adjacent)
    undirected = to_undirected(remove_self_loops(edge_index.cpu())[0], num_nodes=num_nodes)
    idx = pymetis.zero_copy_dtype()  # METIS's integer type: no copy inside pymetis
    starts = np.zeros(num_nodes + 1, dtype=idx)
    np.cumsum(np.bincount(undirected[0].numpy(), minlength=num_nodes), out=starts[1:])
    adjacent = undirected[1].numpy().astype(idx)  # to_undirected sorts by source
    del undirected
    _, membership = pymetis.part_graph(
        num_parts,
        pymetis.CSRAdjacency(starts, adjacent),
        options=pymetis.Options(seed=seed),
    )
    return torch.as_tensor(np.asarray(membership), dtype=torch.long)


def rank_subgraph(
    data: Data,
    parts: Tensor,
    rank: int,
    num_hops: int,
    *,
    edge_attrs: Sequence[str] | None = None,
) -> Data:
    """The nodes ``rank`` owns plus their exact ``num_hops``-hop halo, as a PyG ``Data``.

    The owned nodes come first (``batch_size`` of them, in increasing global id); the batch
    is :func:`graphattn.loader.hop_batch` of the owned nodes, with every node and edge
    attribute sliced and ``n_id`` / ``e_id`` the global ids. A ``num_hops``-layer model's
    outputs on ``out[:batch_size]`` equal the full graph's on those nodes.

    Args:
        data (Data): the whole graph.
        parts (Tensor): int ``[N]`` the part of every node (:func:`partition_nodes`).
        rank (int): the part to build.
        num_hops (int): the depth ``L`` of the model.
        edge_attrs (sequence of str, optional): edge-level attributes whose level their size
            cannot tell (see :func:`graphattn.loader.hop_batch`). (default: :obj:`None`)

    >>> edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])  # a directed 4-cycle
    >>> data = Data(x=torch.arange(4.0).unsqueeze(1), edge_index=edge_index)
    >>> local = rank_subgraph(data, torch.tensor([0, 0, 1, 1]), rank=1, num_hops=1)
    >>> local.n_id.tolist(), local.batch_size
    ([2, 3, 1], 2)
    """
    if not isinstance(data, Data):
        raise TypeError(f"`data` must be a torch_geometric.data.Data, got {type(data).__name__}")
    parts = _check_parts(parts, data.num_nodes)
    rank = check_int("rank", rank, 0)
    num_parts = int(parts.max()) + 1 if parts.numel() else 0
    if rank >= max(num_parts, 1):
        raise ValueError(f"`rank` {rank} owns no node: `parts` holds parts 0..{num_parts - 1}")
    owned = (parts == rank).nonzero().view(-1)
    return hop_batch(data, owned, num_hops, edge_attrs=edge_attrs)


class ReplicationFactor(NamedTuple):
    """How much of the graph all ranks hold together, relative to the graph (1 = none
    replicated); see the module docstring."""

    nodes: float
    edges: float


def replication_factor(
    edge_index: Tensor, parts: Tensor, num_hops: int, num_nodes: int | None = None
) -> ReplicationFactor:
    """Nodes and edges held by all ranks together (owned + halo), over the graph's.

    >>> edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])  # a directed 4-cycle
    >>> replication_factor(edge_index, torch.tensor([0, 0, 1, 1]), num_hops=1)
    ReplicationFactor(nodes=1.5, edges=1.0)
    """
    num_nodes = int(parts.numel()) if num_nodes is None else check_int("num_nodes", num_nodes, 0)
    edge_index = _check_edge_index(edge_index, num_nodes)
    parts = _check_parts(parts, num_nodes)
    num_hops = check_int("num_hops", num_hops, 0)
    sampler = HopSampler(edge_index, num_nodes)
    nodes = edges = 0
    for rank in range(int(parts.max()) + 1 if num_nodes > 0 else 0):
        sub = sampler.sample((parts == rank).nonzero().view(-1), num_hops)
        nodes += sub.n_id.numel()
        edges += sub.e_id.numel()
    num_edges = edge_index.size(1)
    return ReplicationFactor(
        nodes / num_nodes if num_nodes else 1.0, edges / num_edges if num_edges else 1.0
    )
