"""Exact L-hop mini-batches: seed nodes with the in-neighbourhood an L-layer model reads.

- :class:`HopSampler`: the L-hop in-neighbourhood of seeds as a relabelled subgraph
  (:class:`HopSubgraph`), exact or with a fan-out per hop;
- :func:`hop_batch`: the same as a PyG ``Data`` with every node and edge attribute sliced;
- :class:`KHopLoader`: a ``DataLoader`` over seed nodes yielding those batches.

PyG's ``NeighborLoader`` gives the same batches where ``pyg-lib`` or ``torch-sparse`` is
installed (``num_neighbors=[-1] * L``); these need neither. See ``docs/distributed.md``.
"""

from .khop import HopSampler, HopSubgraph
from .loader import KHopLoader, hop_batch

__all__ = ["HopSampler", "HopSubgraph", "KHopLoader", "hop_batch"]
