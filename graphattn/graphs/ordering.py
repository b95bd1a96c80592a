"""Node orderings for locality: renumber a graph so that neighbours sit close in memory.

Sparse attention on the CPU is bound by reading the rows of each edge's endpoints; when
neighbours have nearby ids those rows share cache lines and pages. Random graphs have no such
structure, real ones (supply chains, meshes, citation graphs) do, and an ordering recovers it:

- ``"rcm"``: reverse Cuthill-McKee on the symmetrised graph (scipy), which narrows the
  adjacency matrix's bandwidth;
- ``"metis"``: METIS nested dissection (``pymetis``), which orders recursive graph separators
  last;
- ``"degree"``: by decreasing in-degree (hubs first), a cheap baseline.

:func:`locality_order` returns a :class:`NodeOrder` that renumbers node features and edges and
maps results back::

    order = locality_order(edge_index, num_nodes)
    out = model(order.nodes(x), order.edges(edge_index))   # in the new numbering
    out = order.restore(out)                                # back to the original one

Attention is permutation-equivariant, so ``restore`` gives exactly what the model computes on
the original numbering (up to floating-point summation order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._checks import check_index_tensor, check_int

__all__ = ["METHODS", "NodeOrder", "locality_order"]

#: The orderings :func:`locality_order` computes.
METHODS = ("rcm", "metis", "degree")


@dataclass(frozen=True)
class NodeOrder:
    """A renumbering of ``N`` nodes.

    Attributes:
        perm: int64 ``[N]``: the new node ``i`` is the old node ``perm[i]``.
        inverse: int64 ``[N]``: the old node ``j`` is the new node ``inverse[j]``.
    """

    perm: Tensor
    inverse: Tensor

    @property
    def num_nodes(self) -> int:
        return self.perm.numel()

    def nodes(self, x: Tensor) -> Tensor:
        """Per-node rows ``[N, ...]`` in the new order."""
        self._check_rows("x", x)
        return x[self.perm.to(x.device)]

    def edges(self, edge_index: Tensor) -> Tensor:
        """An ``[2, E]`` edge list in the new numbering (edge order unchanged)."""
        check_index_tensor("edge_index", edge_index)
        return self.inverse.to(edge_index.device)[edge_index.long()]

    def restore(self, y: Tensor) -> Tensor:
        """Per-node rows computed in the new order, back in the original order."""
        self._check_rows("y", y)
        return y[self.inverse.to(y.device)]

    def _check_rows(self, name: str, t: Tensor) -> None:
        if not isinstance(t, Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() == 0 or t.size(0) != self.num_nodes:
            raise ValueError(
                f"`{name}` must have {self.num_nodes} rows (one per node), got {list(t.shape)}"
            )


def _scipy_csr(edge_index: Tensor, num_nodes: int):
    from scipy import sparse

    src, dst = edge_index.cpu().numpy()
    data = np.ones(src.shape[0], dtype=np.int8)
    adj = sparse.coo_matrix((data, (dst, src)), shape=(num_nodes, num_nodes)).tocsr()
    return adj


def _rcm(edge_index: Tensor, num_nodes: int) -> np.ndarray:
    try:
        from scipy.sparse.csgraph import reverse_cuthill_mckee
    except ImportError as err:  # pragma: no cover - scipy is in the studies extra
        raise ImportError("method='rcm' needs scipy: pip install 'graphattn[studies]'") from err
    adj = _scipy_csr(edge_index, num_nodes)
    return np.asarray(reverse_cuthill_mckee((adj + adj.T).tocsr(), symmetric_mode=True))


def _metis(edge_index: Tensor, num_nodes: int) -> np.ndarray:
    try:
        import pymetis
    except ImportError as err:
        raise ImportError(
            "method='metis' needs pymetis and scipy: pip install 'graphattn[distributed]' "
            "'graphattn[studies]' (or use 'rcm', which needs scipy only)"
        ) from err
    adj = _scipy_csr(edge_index, num_nodes)
    sym = (adj + adj.T).tocsr()
    sym.setdiag(0)  # METIS takes no self-loops
    sym.eliminate_zeros()
    perm, _ = pymetis.nested_dissection(pymetis.CSRAdjacency(sym.indptr, sym.indices))
    return np.asarray(perm)


def locality_order(edge_index: Tensor, num_nodes: int, method: str = "rcm") -> NodeOrder:
    """An ordering of the nodes of ``edge_index`` that puts neighbours close together.

    Args:
        edge_index (Tensor): integer ``[2, E]`` (source, target) edges.
        num_nodes (int): number of nodes.
        method (str, optional): ``"rcm"``, ``"metis"`` or ``"degree"``.
            (default: :obj:`"rcm"`)

    >>> ring = torch.tensor([[0, 2, 4, 1, 3], [2, 4, 1, 3, 0]])  # 0 -> 2 -> 4 -> 1 -> 3 -> 0
    >>> order = locality_order(ring, 5)
    >>> new = order.edges(ring)
    >>> int((new[0] - new[1]).abs().max()) < int((ring[0] - ring[1]).abs().max())
    True
    >>> x = torch.arange(5.0).unsqueeze(1)
    >>> torch.equal(order.restore(order.nodes(x)), x)
    True
    """
    check_index_tensor("edge_index", edge_index)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"`edge_index` must have shape [2, E], got {list(edge_index.shape)}")
    check_int("num_nodes", num_nodes, 0)
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"`edge_index` refers to nodes outside [0, {num_nodes})")
    if method == "rcm":
        perm = torch.from_numpy(_rcm(edge_index, num_nodes).astype(np.int64))
    elif method == "metis":
        perm = torch.from_numpy(_metis(edge_index, num_nodes).astype(np.int64))
    else:
        degree = torch.bincount(edge_index[1].long().cpu(), minlength=num_nodes)
        perm = torch.argsort(degree, descending=True, stable=True)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(num_nodes)
    return NodeOrder(perm, inverse)
