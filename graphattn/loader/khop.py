r"""Exact L-hop in-neighbourhoods of seed nodes, as relabelled subgraphs.

With PyG's ``source_to_target`` flow a node :math:`i` reads from its in-neighbours
:math:`j \to i`. After :math:`L` message-passing layers (each node also reading itself, as the
attention layers do with their default self-loops) the output on :math:`i` is a function of
the nodes within :math:`L` upstream hops,

.. math::
    S_L(B) = \{ j : \text{there is a path } j \to \dots \to i \text{ of length} \le L,
    \ i \in B \},

and of the in-edges of the nodes at distance :math:`< L` from the seeds :math:`B`. The
subgraph built here holds exactly those nodes and edges, so the model's outputs (and the
gradients of any loss on them) on the seeds equal the full-graph ones. A node at distance
:math:`d` from the seeds has correct hidden states up to layer :math:`L - d` only: use the
outputs on the seeds, nothing else.

Layout (as PyG's ``NeighborLoader``, so that PyG's ``trim_to_layer`` applies): the seeds come
first, in the order given, then the nodes first reached at hop 1, hop 2, ... (each hop sorted
by global id); edges are grouped by the hop of their target (the seeds' in-edges first).

Optionally, ``num_neighbors`` keeps at most ``k`` in-edges per node and hop, drawn uniformly
without replacement (PyG's fan-out sampling): cheaper, but no longer exact.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from .._checks import check_index_tensor, check_int

__all__ = ["HopSampler", "HopSubgraph"]

_DENSE_RATIO = 16  # N-sized masks once the ids at hand are at least N / 16


class HopSubgraph(NamedTuple):
    """The L-hop in-neighbourhood of a set of seeds.

    Attributes:
        n_id: int64 ``[S]`` global ids of the subgraph's nodes; the seeds are ``n_id[:num_seeds]``.
        e_id: int64 ``[E_S]`` global ids (columns of the full ``edge_index``) of its edges.
        edge_index: int64 ``[2, E_S]`` the edges, relabelled to positions in ``n_id``.
        num_seeds: the number of seeds.
        num_sampled_nodes: nodes first reached at hop ``0`` (the seeds), ``1``, ..., ``L``.
        num_sampled_edges: edges into the nodes of hop ``0``, ``1``, ..., ``L - 1``.
    """

    n_id: Tensor
    e_id: Tensor
    edge_index: Tensor
    num_seeds: int
    num_sampled_nodes: list[int]
    num_sampled_edges: list[int]

    @property
    def seed_mask(self) -> Tensor:
        """bool ``[S]``: ``True`` on the seeds."""
        mask = torch.zeros(self.n_id.numel(), dtype=torch.bool, device=self.n_id.device)
        mask[: self.num_seeds] = True
        return mask


class HopSampler:
    r"""Builds L-hop in-neighbourhood subgraphs of a fixed graph.

    The incoming edges of every node are indexed once (a CSR sorted by target, ``O(E)``);
    each call then costs time in proportion to the neighbourhood it returns, not to the
    whole graph, and keeps no state between calls (safe in ``DataLoader`` workers).

    Args:
        edge_index (Tensor): integer ``[2, E]`` edges ``j -> i`` (source, target); duplicates
            and self-loops are kept as given.
        num_nodes (int, optional): number of nodes. (default: ``edge_index.max() + 1``)

    >>> edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])  # a path 0 -> 1 -> 2 -> 3 -> 4
    >>> sub = HopSampler(edge_index, 5).sample(torch.tensor([4]), num_hops=2)
    >>> sub.n_id.tolist(), sub.edge_index.tolist(), sub.e_id.tolist()
    ([4, 3, 2], [[1, 2], [0, 1]], [3, 2])
    """

    def __init__(self, edge_index: Tensor, num_nodes: int | None = None):
        check_index_tensor("edge_index", edge_index)
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"`edge_index` must have shape [2, E], got {list(edge_index.shape)}")
        edge_index = edge_index.long()
        if num_nodes is None:
            num_nodes = int(edge_index.max()) + 1 if edge_index.numel() > 0 else 0
        num_nodes = check_int("num_nodes", num_nodes, 0)
        if edge_index.numel() > 0:
            lo, hi = int(edge_index.min()), int(edge_index.max())
            if lo < 0 or hi >= num_nodes:
                raise ValueError(
                    f"`edge_index` holds node ids in [{lo}, {hi}], outside [0, {num_nodes})"
                )
        self.num_nodes = num_nodes
        self.num_edges = edge_index.size(1)
        self._source = weakref.ref(edge_index)  # what `built_on` recognises without a pass
        self._source_version = None if edge_index.is_inference() else edge_index._version
        src, dst = edge_index
        perm = torch.argsort(dst, stable=True)  # CSR of incoming edges: by target
        self._perm = perm  # (E,) edge id at CSR position
        self._col = src[perm]  # (E,) source at CSR position
        self._rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=edge_index.device)
        torch.cumsum(torch.bincount(dst, minlength=num_nodes), 0, out=self._rowptr[1:])

    def __getstate__(self) -> dict:  # a weak reference does not pickle (spawned workers)
        return {**self.__dict__, "_source": None, "_source_version": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._source = _dead_reference

    def built_on(self, edge_index: Tensor) -> bool:
        """Whether this sampler indexes exactly the edges ``edge_index`` (same order): the
        tensor it was built from, unchanged, or one equal to it (checked in one pass)."""
        if not isinstance(edge_index, Tensor):
            return False
        if (
            self._source() is edge_index
            and self._source_version is not None
            and not edge_index.is_inference()
            and edge_index._version == self._source_version
        ):
            return True
        if tuple(edge_index.shape) != (2, self.num_edges):
            return False
        ei = edge_index.to(self._col.device).long()
        dst = torch.repeat_interleave(
            torch.arange(self.num_nodes, device=self._col.device),
            self._rowptr.diff(),
            output_size=self.num_edges,
        )  # (E,) target at CSR position
        return torch.equal(ei[0, self._perm], self._col) and torch.equal(ei[1, self._perm], dst)

    def in_degree(self, nodes: Tensor) -> Tensor:
        """Number of in-edges of ``nodes`` (duplicates counted)."""
        return self._rowptr[nodes + 1] - self._rowptr[nodes]

    def sample(
        self,
        seeds: Tensor,
        num_hops: int,
        num_neighbors: Sequence[int] | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> HopSubgraph:
        """The ``num_hops``-hop in-neighbourhood of ``seeds``.

        Args:
            seeds (Tensor): integer ``[B]`` distinct node ids.
            num_hops (int): ``L >= 0``, the number of message-passing layers to serve.
            num_neighbors (sequence of int, optional): per hop (the seeds' in-edges first), the
                most in-edges kept per node, drawn uniformly without replacement; ``-1`` keeps
                all. :obj:`None` keeps all on every hop: the exact neighbourhood.
                (default: :obj:`None`)
            generator (torch.Generator, optional): the random source of the sampling.
        """
        num_hops = check_int("num_hops", num_hops, 0)
        fanout = _check_num_neighbors(num_neighbors, num_hops)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"`generator` must be a torch.Generator, got {type(generator).__name__}"
            )
        seeds = self._check_seeds(seeds)
        nodes = [seeds]  # the nodes first reached at each hop
        seen = seeds  # all of them, in one tensor
        pos, dst = [], []  # per hop: CSR positions of the edges into its nodes, their targets
        first = 0  # position in n_id of the current hop's first node
        for hop in range(num_hops):
            frontier = nodes[-1]
            if frontier.numel() == 0:
                break  # nothing new was reached: the remaining hops add nothing either
            p, target = self._in_edges(frontier, fanout[hop], generator)
            pos.append(p)
            dst.append(target + first)
            nodes.append(self._new_nodes(self._col[p], seen))
            seen = torch.cat([seen, nodes[-1]])
            first += frontier.numel()
        n_id = seen
        pos_all = torch.cat(pos) if pos else seeds.new_zeros(0)
        src = self._relabel(self._col[pos_all], n_id)
        edge_index = torch.stack([src, torch.cat(dst) if dst else seeds.new_zeros(0)])
        return HopSubgraph(
            n_id=n_id,
            e_id=self._perm[pos_all],
            edge_index=edge_index,
            num_seeds=seeds.numel(),
            num_sampled_nodes=[n.numel() for n in nodes] + [0] * (num_hops + 1 - len(nodes)),
            num_sampled_edges=[p.numel() for p in pos] + [0] * (num_hops - len(pos)),
        )

    # ---- helpers ----------------------------------------------------------------------------
    # Sets of node ids are handled two ways: with sorting and binary search, in time
    # O(k log k) for k ids, or with a mask / map over all N nodes, O(N + k). The second costs
    # less once k is a sizeable share of N (a rank's halo); the first keeps small batches on
    # a big graph from touching N-sized memory.
    def _dense(self, count: int) -> bool:
        return count * _DENSE_RATIO >= self.num_nodes

    def _new_nodes(self, reached: Tensor, seen: Tensor) -> Tensor:
        """The distinct ids in ``reached`` that are not in ``seen``, ascending."""
        if self._dense(reached.numel()):
            mark = torch.zeros(self.num_nodes, dtype=torch.bool, device=reached.device)
            mark[reached] = True
            mark[seen] = False
            return mark.nonzero().view(-1)
        reached = torch.unique(reached)  # sorted
        return reached[~_isin_sorted(reached, torch.sort(seen).values)]

    def _relabel(self, ids: Tensor, n_id: Tensor) -> Tensor:
        """The position in ``n_id`` of every id in ``ids`` (all of which are in ``n_id``)."""
        if self._dense(ids.numel()):
            where = torch.empty(self.num_nodes, dtype=torch.long, device=ids.device)
            where[n_id] = torch.arange(n_id.numel(), device=ids.device)
            return where[ids]
        order = torch.argsort(n_id)
        return order[torch.searchsorted(n_id[order], ids)]

    def _check_seeds(self, seeds: Tensor) -> Tensor:
        check_index_tensor("seeds", seeds)
        if seeds.dim() != 1:
            raise ValueError(f"`seeds` must be 1-D, got shape {list(seeds.shape)}")
        seeds = seeds.long().to(self._rowptr.device)
        if seeds.numel() > 0:
            lo, hi = int(seeds.min()), int(seeds.max())
            if lo < 0 or hi >= self.num_nodes:
                raise ValueError(
                    f"`seeds` must be node ids in [0, {self.num_nodes}), got range [{lo}, {hi}]"
                )
            if torch.unique(seeds).numel() != seeds.numel():
                raise ValueError("`seeds` must be distinct node ids; it holds duplicates")
        return seeds

    def _in_edges(
        self, nodes: Tensor, fanout: int, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """CSR positions of the in-edges of ``nodes`` (node by node), at most ``fanout`` per
        node, and the index in ``nodes`` of each edge's target."""
        start = self._rowptr[nodes]
        count = self._rowptr[nodes + 1] - start
        total = int(count.sum()) if count.numel() > 0 else 0
        group = torch.repeat_interleave(
            torch.arange(nodes.numel(), device=nodes.device), count, output_size=total
        )  # (total,) target of each edge, as an index into `nodes`
        offset = torch.cumsum(count, 0) - count  # where each node's edges begin
        rank = torch.arange(total, device=nodes.device) - offset[group]  # k-th in-edge of its node
        pos = start[group] + rank
        if fanout < 0 or total == 0 or int(count.max()) <= fanout:
            return pos, group
        # a uniform draw without replacement per node: order each node's edges by a random key
        key = group.double() + torch.rand(total, generator=generator, dtype=torch.float64)
        shuffled = torch.argsort(key)  # still grouped by node (keys of node g lie in [g, g + 1))
        keep = torch.sort(shuffled[rank < fanout]).values  # the first `fanout` of each node
        return pos[keep], group[keep]


def _dead_reference() -> None:
    return None


def _isin_sorted(values: Tensor, sorted_set: Tensor) -> Tensor:
    """``values`` in ``sorted_set`` (ascending), by binary search."""
    if sorted_set.numel() == 0:
        return torch.zeros_like(values, dtype=torch.bool)
    i = torch.searchsorted(sorted_set, values).clamp_max(sorted_set.numel() - 1)
    return sorted_set[i] == values


def _check_num_neighbors(num_neighbors: Sequence[int] | None, num_hops: int) -> list[int]:
    if num_neighbors is None:
        return [-1] * num_hops
    if isinstance(num_neighbors, (str, bytes)) or not isinstance(num_neighbors, Sequence):
        raise TypeError(
            f"`num_neighbors` must be a sequence of ints (one per hop), "
            f"got {type(num_neighbors).__name__}"
        )
    values = list(num_neighbors)
    if len(values) != num_hops:
        raise ValueError(
            f"`num_neighbors` must hold one int per hop ({num_hops}), got {len(values)}"
        )
    for k in values:
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"`num_neighbors` must hold ints, got {type(k).__name__}")
        if k < -1:
            raise ValueError(f"`num_neighbors` entries must be >= 0 or -1 (all), got {k}")
    return values
