"""Random regular expanders: sparse global shortcuts to lay over a graph's own edges.

An expander of fixed degree connects every node to a few random others, yet any node reaches
any other within about ``log n / log(degree - 1)`` hops, with ``degree * n`` edges instead of
the ``n^2`` of full attention. Exphormer (Shirzad et al., ICML 2023) lays such an overlay (with
virtual nodes) over a graph's own edges for sparse global attention; on Tree-NeighborsMatch
(``examples/neighbors_match.py``) it shortens the paths from the leaves to the root. Virtual
nodes themselves are PyG's :class:`~torch_geometric.transforms.VirtualNode` transform.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch_geometric.data import Data

from .._checks import check_int
from .sequence import _sizes

__all__ = ["expander"]


def expander(
    sizes: int | Sequence[int], degree: int = 4, *, generator: torch.Generator | None = None
) -> Data:
    """A random ``degree``-regular expander over the nodes of each graph of a batch.

    Every graph of ``n >= 2`` nodes gets the union of ``degree // 2`` random Hamiltonian
    cycles through its nodes, each edge in both directions: every node then has exactly
    ``degree`` incoming and ``degree`` outgoing edges and no self-loop. Random regular graphs
    of this kind are expanders with high probability (the second eigenvalue of the adjacency
    matrix near the Ramanujan bound ``2 sqrt(degree - 1)``, Friedman 2008), so the diameter
    grows like ``log n``. Two cycles can draw the same pair of nodes; the pair then appears
    twice (a multigraph, which :class:`~graphattn.MultiHeadAttentionConv` counts twice), as it
    does in the random-permutation construction of Exphormer; a graph of two nodes gets its one
    pair ``degree`` times. Graphs of 0 or 1 nodes get no edges.

    Lay it over a graph's own edges with ``torch.cat([edge_index, data.edge_index], dim=1)``
    (node ``k`` of graph ``g`` is node ``ptr[g] + k``, as in a PyG batch).

    Args:
        sizes (int or list of int): the node count of each graph (one int: one graph).
        degree (int, optional): the in- and out-degree of every node, even and ``>= 2``.
            (default: ``4``)
        generator (torch.Generator, optional): the random source (``None``: torch's global
            one). (default: :obj:`None`)

    Returns:
        A :class:`~torch_geometric.data.Data` with ``edge_index`` (``[2, degree * N]``, sorted
        by target, then source), ``num_nodes``, ``ptr`` and ``batch``.

    >>> data = expander([6, 3], degree=4, generator=torch.Generator().manual_seed(0))
    >>> data.edge_index.shape, data.num_nodes, data.ptr.tolist()
    (torch.Size([2, 36]), 9, [0, 6, 9])
    >>> torch.bincount(data.edge_index[1]).tolist()  # every node: 4 incoming edges
    [4, 4, 4, 4, 4, 4, 4, 4, 4]
    >>> bool((data.batch[data.edge_index[0]] == data.batch[data.edge_index[1]]).all())
    True
    """
    sizes = _sizes(sizes, "sizes")
    degree = check_int("degree", degree, 2)
    if degree % 2:
        raise ValueError(f"`degree` must be even (each random cycle adds 2), got {degree}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"`generator` must be a torch.Generator, got {type(generator).__name__}")
    counts = torch.tensor(sizes, dtype=torch.long)
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    batch = torch.repeat_interleave(torch.arange(len(sizes)), counts)
    num_nodes = int(ptr[-1])
    in_cycle = counts[batch] >= 2  # graphs of 0 or 1 nodes take no part
    sources, targets = [], []
    for _ in range(degree // 2):
        # One random permutation per graph at once: sort the nodes by graph, then by a
        # random key; each node is followed by the next one of its graph, the last by the
        # first (a Hamiltonian cycle through every graph).
        keys = batch.double() + torch.rand(num_nodes, generator=generator, dtype=torch.double)
        order = torch.argsort(keys)  # (N,): graph by graph, random order within each
        position = torch.arange(num_nodes)
        last = position == ptr[1:][batch] - 1  # the last position of each graph
        following = torch.where(last, ptr[:-1][batch], position + 1)
        src, dst = order[in_cycle], order[following][in_cycle]
        sources += [src, dst]
        targets += [dst, src]
    edge_index = torch.stack([torch.cat(sources), torch.cat(targets)])
    if edge_index.numel() == 0:
        edge_index = torch.empty(2, 0, dtype=torch.long)
    perm = torch.argsort(edge_index[1] * max(num_nodes, 1) + edge_index[0], stable=True)
    data = Data(edge_index=edge_index[:, perm], num_nodes=num_nodes)
    data.ptr, data.batch = ptr, batch
    return data
