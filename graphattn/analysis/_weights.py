"""Statistics of attention weights: entropy, relation shares, distance spanned (private).

Every function takes an :class:`~graphattn.AttentionOutput` (or an ``(edge_index, weights)``
pair) as a layer returns it with ``return_attention=True``: ``edge_index`` ``[2, E']``
(``edge_index[0]`` the source :math:`j`, ``edge_index[1]`` the target :math:`i`) and
``weights`` ``[E', H]``, which sum to 1 over the incoming edges of every target and head.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch_geometric.utils import scatter

from .._checks import check_bool, check_index_tensor, check_int, check_positive_int
from ..patterns import GridGraph, Pattern

__all__ = ["attention_distance", "attention_entropy", "attention_maps", "relation_shares"]

SELF_LOOPS = ("ignore", "separate")


def _unpack(att, name: str = "att") -> tuple[Tensor, Tensor]:
    """``(edge_index [2, E] int64, weights [E, H] float)`` from an AttentionOutput or a pair."""
    if not isinstance(att, tuple) or len(att) != 2:
        raise TypeError(
            f"`{name}` must be an AttentionOutput or an (edge_index, weights) pair, "
            f"got {type(att).__name__}"
        )
    edge_index, weights = att
    check_index_tensor(f"{name}.edge_index", edge_index)
    if not isinstance(weights, Tensor) or not weights.is_floating_point():
        raise TypeError(f"`{name}.weights` must be a floating-point tensor")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(
            f"`{name}.edge_index` must have shape [2, E], got {list(edge_index.shape)}"
        )
    if weights.dim() != 2 or weights.size(0) != edge_index.size(1):
        raise ValueError(
            f"`{name}.weights` must have shape [E, H] with E = {edge_index.size(1)} edges, "
            f"got {list(weights.shape)}"
        )
    if edge_index.device != weights.device:
        raise ValueError(f"`{name}.edge_index` and `{name}.weights` are on different devices")
    if edge_index.numel() > 0 and int(edge_index.min()) < 0:
        raise ValueError(f"`{name}.edge_index` has a negative node id ({int(edge_index.min())})")
    return edge_index.long(), weights


def _num_targets(edge_index: Tensor, num_nodes: int | None) -> int:
    seen = int(edge_index[1].max()) + 1 if edge_index.size(1) > 0 else 0
    if num_nodes is None:
        return seen
    check_int("num_nodes", num_nodes, 0)
    if num_nodes < seen:
        raise ValueError(
            f"`num_nodes` ({num_nodes}) is smaller than the largest target + 1 ({seen})"
        )
    return num_nodes


def _node_mean(per_node: Tensor, defined: Tensor) -> Tensor:
    """Mean over the nodes (rows) where the measure is defined (``defined`` ``[N, 1]``):
    ``[N, H] -> [H]``. A NaN on a defined node (from NaN weights) stays in the mean, so it
    shows; NaN for no defined node."""
    rows = defined.view(-1)
    if not bool(rows.any()):
        return per_node.new_full((per_node.size(1),), math.nan)
    return per_node[rows].mean(0)


def attention_entropy(
    att,
    num_nodes: int | None = None,
    *,
    normalize: bool = False,
    per_node: bool = False,
) -> Tensor:
    r"""Entropy of every head's attention distribution, in nats.

    For target node :math:`i` with in-degree :math:`d_i` and head :math:`h`:

    .. math::
        H_i^h = -\sum_{j \in \mathcal{N}(i)} \alpha_{ij}^h \log \alpha_{ij}^h
        \qquad (0 \log 0 = 0),

    between :math:`0` (all weight on one edge, a "sharp" head) and :math:`\log d_i` (uniform).
    With ``normalize=True`` it is divided by :math:`\log d_i`, so 1 means uniform on any
    degree. Duplicate edges count separately, as they do in the layer.

    Args:
        att (AttentionOutput or tuple): one layer's attention (or its
            ``(edge_index, weights)`` pair).
        num_nodes (int, optional): number of target nodes. (default: largest target + 1)
        normalize (bool, optional): divide by :math:`\log d_i`. (default: :obj:`False`)
        per_node (bool, optional): return ``[N, H]`` instead of the mean over nodes.
            (default: :obj:`False`)

    Returns:
        ``[H]``: the mean of :math:`H_i^h` over the target nodes where it is defined, or
        ``[N, H]`` with ``per_node=True``. It is undefined (NaN) for a node without in-edges
        and, normalised, for a node with one in-edge (:math:`0 / \log 1`); those nodes are
        left out of the mean, while NaN weights on other nodes make the mean NaN.

    >>> import torch
    >>> edge_index = torch.tensor([[0, 1, 2, 3, 0], [0, 0, 0, 0, 1]])  # degrees 4 and 1
    >>> weights = torch.tensor([[0.25, 1.0], [0.25, 0.0], [0.25, 0.0], [0.25, 0.0], [1.0, 1.0]])
    >>> attention_entropy((edge_index, weights), per_node=True)  # node 0: log 4 and 0
    tensor([[1.3863, 0.0000],
            [0.0000, 0.0000]])
    >>> attention_entropy((edge_index, weights), normalize=True)  # node 1 (d = 1) left out
    tensor([1., 0.])
    """
    edge_index, weights = _unpack(att)
    check_bool("normalize", normalize)
    check_bool("per_node", per_node)
    n = _num_targets(edge_index, num_nodes)
    dst = edge_index[1]
    terms = -torch.special.xlogy(weights, weights)  # (E, H)
    entropy = scatter(terms, dst, dim=0, dim_size=n, reduce="sum")  # (N, H)
    degree = torch.bincount(dst, minlength=n).to(weights.dtype).unsqueeze(1)  # (N, 1)
    defined = degree >= (2 if normalize else 1)  # (N, 1)
    if normalize:
        entropy = entropy / degree.log()
    entropy = entropy.masked_fill(~defined, math.nan)
    return entropy if per_node else _node_mean(entropy, defined)


def attention_maps(att, graph_size: int) -> Tensor:
    r"""Every head's attention as dense maps, for a batch of graphs of ``graph_size`` nodes each
    (graph ``b`` holds nodes ``b * graph_size`` to ``(b + 1) * graph_size - 1``, as in
    ``FullGraph.from_sizes([L] * B)``).

    ``maps[b, h, i, j]`` is :math:`\alpha_{ij}^h` of the edge ``j -> i`` of graph ``b`` (target
    ``i``, source ``j``, both numbered within the graph): row ``i`` is the distribution of query
    ``i`` over its keys. Pairs without an edge hold 0; duplicate edges add up, as they count in
    the layer. Any pattern works (full, window, chunked), as long as no edge joins two graphs.

    Args:
        att (AttentionOutput or tuple): one layer's attention (or its
            ``(edge_index, weights)`` pair).
        graph_size (int): nodes per graph :math:`L`; the batch holds (largest node id + 1)
            / :math:`L` graphs.

    Returns:
        ``[B, H, L, L]`` in the weights' dtype.

    >>> import torch
    >>> edge_index = torch.tensor([[0, 1, 1, 2, 3], [0, 0, 1, 2, 3]])  # two graphs of 2 nodes
    >>> weights = torch.tensor([[0.75], [0.25], [1.0], [1.0], [1.0]])
    >>> attention_maps((edge_index, weights), 2)[:, 0]
    tensor([[[0.7500, 0.2500],
             [0.0000, 1.0000]],
    <BLANKLINE>
            [[1.0000, 0.0000],
             [0.0000, 1.0000]]])
    """
    edge_index, weights = _unpack(att)
    check_positive_int("graph_size", graph_size)
    num_nodes = int(edge_index.max()) + 1 if edge_index.numel() > 0 else 0
    if num_nodes % graph_size:
        raise ValueError(
            f"`graph_size` ({graph_size}) must divide the number of nodes ({num_nodes}, the "
            "largest node id + 1): the batch holds graphs of graph_size nodes each"
        )
    src, dst = edge_index
    graph = dst // graph_size
    if bool((src // graph_size != graph).any()):
        raise ValueError(f"an edge joins two graphs of `graph_size` {graph_size} nodes")
    heads = weights.size(1)
    maps = weights.new_zeros(num_nodes // graph_size, graph_size, graph_size, heads)
    maps.index_put_((graph, dst % graph_size, src % graph_size), weights, accumulate=True)
    return maps.permute(0, 3, 1, 2)  # (B, H, L, L): query i in rows, key j in columns


def relation_shares(
    att,
    edge_type: Tensor,
    num_relations: int,
    *,
    self_loops: str = "ignore",
) -> Tensor:
    r"""Share of each head's attention mass that falls on each relation type: ``[H, K]``.

    .. math::
        s_{hr} = \frac{\sum_{(j \to i) \in E_r} \alpha_{ij}^h}
                      {\sum_{r'} \sum_{(j \to i) \in E_{r'}} \alpha_{ij}^h}

    Compare a row with the edges' own shares :math:`|E_r| / |E|`: a head that ignores types
    puts about that share on each.

    ``edge_type`` describes the caller's ``E`` edges, which are the first ``E`` entries of
    ``att`` when the input had no self-loops; the self-loops a layer appends after them
    (``add_self_loops=True``, the default) carry no type. ``self_loops="ignore"`` leaves
    their mass out, so every row sums to 1 over the ``K`` relations; ``"separate"`` returns
    ``[H, K + 1]`` whose last column is the share on those self-loops (rows sum to 1 over all
    ``K + 1``).

    Args:
        att (AttentionOutput or tuple): one layer's attention (or its
            ``(edge_index, weights)`` pair) over ``E' >= E`` edges.
        edge_type (Tensor): int ``[E]`` relation of each of the caller's edges.
        num_relations (int): number of relation types :math:`K`.
        self_loops (str, optional): ``"ignore"`` or ``"separate"``. (default: ``"ignore"``)

    A ``ValueError`` is raised when a self-loop lies among the first ``E`` entries while
    more follow: the layer then removed self-loops from the input, so ``edge_type`` no longer
    lines up with ``att``.

    >>> import torch
    >>> edge_index = torch.tensor([[1, 2, 0, 0, 1, 2], [0, 0, 1, 0, 1, 2]])  # 3 edges + 3 loops
    >>> weights = torch.tensor([[0.5], [0.3], [0.4], [0.2], [0.6], [1.0]])
    >>> relation_shares((edge_index, weights), torch.tensor([0, 1, 1]), 2)
    tensor([[0.4167, 0.5833]])
    >>> relation_shares((edge_index, weights), torch.tensor([0, 1, 1]), 2, self_loops="separate")
    tensor([[0.1667, 0.2333, 0.6000]])
    """
    edge_index, weights = _unpack(att)
    check_index_tensor("edge_type", edge_type)
    check_positive_int("num_relations", num_relations)
    if self_loops not in SELF_LOOPS:
        raise ValueError(f"`self_loops` must be one of {SELF_LOOPS}, got {self_loops!r}")
    if edge_type.dim() != 1:
        raise ValueError(f"`edge_type` must be 1-D [E], got shape {list(edge_type.shape)}")
    num_edges = edge_type.numel()
    if num_edges > weights.size(0):
        raise ValueError(
            f"`edge_type` has {num_edges} entries but `att` holds only {weights.size(0)} edges"
        )
    if num_edges > 0 and (int(edge_type.min()) < 0 or int(edge_type.max()) >= num_relations):
        raise ValueError(f"`edge_type` must lie in [0, {num_relations}), got values outside")
    if num_edges < weights.size(0):
        head = edge_index[:, :num_edges]
        if bool((head[0] == head[1]).any()):
            raise ValueError(
                "`att` has a self-loop among its first E edges and more edges after them: the "
                "layer removed the input's self-loops, so `edge_type` does not line up with "
                "`att`; remove self-loops before the forward call or pass `edge_type` for "
                "`att.edge_index`"
            )
    mass = weights.new_zeros(num_relations + 1, weights.size(1))  # (K + 1, H)
    mass[:num_relations].index_add_(0, edge_type.long().to(weights.device), weights[:num_edges])
    mass[num_relations] = weights[num_edges:].sum(0)
    if self_loops == "ignore":
        mass = mass[:num_relations]
    return (mass / mass.sum(0, keepdim=True)).t()  # (H, K) or (H, K + 1)


def _pattern_positions(pattern: Pattern) -> Tensor:
    batch = pattern.batch()
    local = torch.arange(pattern.num_nodes) - pattern.ptr[batch]  # index within its graph
    if isinstance(pattern, GridGraph):
        return torch.stack([local // pattern.width, local % pattern.width], dim=1)  # (N, 2)
    return local


def attention_distance(att, positions, *, per_node: bool = False) -> Tensor:
    r"""Mean distance spanned by each head's attention.

    .. math::
        D_i^h = \sum_{j \in \mathcal{N}(i)} \alpha_{ij}^h \, \lVert p_i - p_j \rVert_\infty

    with :math:`p` the node positions: :math:`|i - j|` on a sequence, the Chebyshev distance
    :math:`\max(|\Delta y|, |\Delta x|)` on a grid (and in any number of dimensions).

    Args:
        att (AttentionOutput or tuple): one layer's attention (or its
            ``(edge_index, weights)`` pair).
        positions (Tensor or Pattern): ``[N]`` or ``[N, D]`` positions of the nodes, or the
            pattern the attention ran on: sequence patterns give each node's index within its
            sequence, a :class:`~graphattn.GridGraph` its ``(row, col)``.
        per_node (bool, optional): return ``[N, H]`` (NaN for nodes without in-edges)
            instead of the mean over nodes with in-edges. (default: :obj:`False`)

    >>> import torch
    >>> from graphattn import FullGraph
    >>> g = FullGraph(3)  # uniform weights: node 0 spans (0+1+2)/3, node 1 (1+0+1)/3, ...
    >>> attention_distance((g.edge_index(), torch.full((9, 1), 1 / 3)), g, per_node=True)
    tensor([[1.0000],
            [0.6667],
            [1.0000]])
    """
    edge_index, weights = _unpack(att)
    check_bool("per_node", per_node)
    if isinstance(positions, Pattern):
        positions = _pattern_positions(positions)
    if not isinstance(positions, Tensor):
        raise TypeError(
            f"`positions` must be a tensor or a Pattern, got {type(positions).__name__}"
        )
    if positions.dim() not in (1, 2) or positions.is_complex():
        raise ValueError(
            f"`positions` must be real [N] or [N, D], got shape {list(positions.shape)}"
        )
    n = positions.size(0)
    if edge_index.numel() > 0 and int(edge_index.max()) >= n:
        raise ValueError(
            f"`att` refers to node {int(edge_index.max())} but `positions` covers {n} nodes"
        )
    pos = positions.to(weights.device, weights.dtype)
    if pos.dim() == 1:
        pos = pos.unsqueeze(1)  # (N, 1)
    dist = (pos[edge_index[0]] - pos[edge_index[1]]).abs().amax(1, keepdim=True)  # (E, 1)
    dst = edge_index[1]
    out = scatter(weights * dist, dst, dim=0, dim_size=n, reduce="sum")  # (N, H)
    defined = torch.bincount(dst, minlength=n).unsqueeze(1) >= 1
    out = out.masked_fill(~defined, math.nan)
    return out if per_node else _node_mean(out, defined)
