"""Mini-batches of seed nodes with their exact L-hop in-neighbourhood, as PyG ``Data``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader.utils import filter_data

from .._checks import check_index_tensor, check_int
from .khop import HopSampler, HopSubgraph, _check_num_neighbors

__all__ = ["KHopLoader", "hop_batch"]


# Attributes that are per node whatever their size (PyG's names, and the economy's).
_NODE_KEYS = frozenset(
    {"x", "y", "pos", "batch", "n_id", "train_mask", "val_mask", "test_mask", "tier",
     "agent_size", "node_names"}
)  # fmt: skip


def _check_data(data: object) -> Data:
    if not isinstance(data, Data):
        raise TypeError(f"`data` must be a torch_geometric.data.Data, got {type(data).__name__}")
    if getattr(data, "edge_index", None) is None:
        raise ValueError("`data` has no `edge_index`")
    return data


def _check_edge_attrs(data: Data, edge_attrs: Sequence[str] | None) -> tuple[str, ...]:
    """The declared edge-level attributes, checked; a ``ValueError`` naming the attributes
    whose level PyG could only guess (``E == N`` and no "edge" in the name)."""
    if edge_attrs is None:
        names: tuple[str, ...] = ()
    elif isinstance(edge_attrs, str) or not isinstance(edge_attrs, Sequence):
        raise TypeError(
            f"`edge_attrs` must be a sequence of attribute names, got {type(edge_attrs).__name__}"
        )
    else:
        names = tuple(edge_attrs)
    num_edges = data.edge_index.size(1)
    for name in names:
        value = data[name] if isinstance(name, str) and name in data else None
        if not isinstance(value, Tensor):
            raise ValueError(f"`edge_attrs`: {name!r} is not a tensor attribute of `data`")
        dim = data.__cat_dim__(name, value)
        if value.dim() == 0 or value.size(dim) != num_edges:
            raise ValueError(
                f"`edge_attrs`: {name!r} has size {value.size(dim) if value.dim() else 0} along "
                f"its edge dimension, but `data` has {num_edges} edges"
            )
    if edge_attrs is not None or data.num_nodes != num_edges:
        return names  # declared, or the sizes tell node from edge attributes
    ambiguous = []
    for key, value in data.items():
        if key in names or key in _NODE_KEYS or "edge" in key or "node" in key:
            continue
        if isinstance(value, Tensor) and value.dim() > 0:
            dim = data.__cat_dim__(key, value)
            if isinstance(dim, int) and value.size(dim) == num_edges:
                ambiguous.append(key)
    if ambiguous:
        raise ValueError(
            f"`data` has as many nodes as edges ({num_edges}), so the level of {ambiguous} "
            "cannot be told from its size (PyG would take it as per node): pass "
            "`edge_attrs=[...]` naming the edge-level ones (an empty list if none is), or put "
            "'edge' in their names"
        )
    return names


def hop_batch(
    data: Data,
    seeds: Tensor,
    num_hops: int,
    num_neighbors: Sequence[int] | None = None,
    *,
    sampler: HopSampler | None = None,
    generator: torch.Generator | None = None,
    edge_attrs: Sequence[str] | None = None,
) -> Data:
    """``data`` restricted to the ``num_hops``-hop in-neighbourhood of ``seeds``.

    Every node-level attribute of ``data`` (``x``, ``y``, ...) is sliced to the subgraph's
    nodes and every edge-level one (``edge_attr``, ``edge_type``, ...) to its edges, as PyG's
    ``NeighborLoader`` does. The seeds come first; the batch also holds:

    - ``batch_size``: the number of seeds (their outputs are ``out[:batch_size]``);
    - ``seed_mask``: bool ``[S]``, ``True`` on the seeds;
    - ``n_id``, ``e_id``: global ids of the nodes and edges;
    - ``num_sampled_nodes``, ``num_sampled_edges``: per hop, for PyG's ``trim_to_layer``.

    Args:
        data (Data): the graph.
        seeds (Tensor): integer ``[B]`` distinct node ids.
        num_hops (int): the depth ``L`` of the model to serve.
        num_neighbors (sequence of int, optional): fan-out per hop (see
            :meth:`HopSampler.sample`); :obj:`None` is exact. (default: :obj:`None`)
        sampler (HopSampler, optional): reuse a sampler built on ``data.edge_index``.
        generator (torch.Generator, optional): the random source of the fan-out sampling.
        edge_attrs (sequence of str, optional): names of edge-level attributes. Needed only
            when ``data`` has as many nodes as edges, where PyG tells node from edge
            attributes by the word "edge" in the name: an attribute with neither that word
            nor a node name (``x``, ``y``, ``pos``, ...) is then an error unless listed here
            (or the list is given, empty, to say none is). (default: :obj:`None`)

    >>> edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    >>> data = Data(x=torch.arange(5.0).unsqueeze(1), edge_index=edge_index)
    >>> batch = hop_batch(data, torch.tensor([4, 1]), num_hops=1)
    >>> batch.x.squeeze(1).tolist(), batch.edge_index.tolist(), batch.batch_size
    ([4.0, 1.0, 0.0, 3.0], [[3, 2], [0, 1]], 2)
    """
    data = _check_data(data)
    declared = _check_edge_attrs(data, edge_attrs)
    if sampler is None:
        sampler = HopSampler(data.edge_index, data.num_nodes)
    elif not isinstance(sampler, HopSampler):
        raise TypeError(f"`sampler` must be a HopSampler, got {type(sampler).__name__}")
    elif sampler.num_nodes != data.num_nodes or sampler.num_edges != data.edge_index.size(1):
        raise ValueError(
            f"`sampler` was built for a graph with {sampler.num_nodes} nodes and "
            f"{sampler.num_edges} edges, `data` has {data.num_nodes} and "
            f"{data.edge_index.size(1)}"
        )
    elif not sampler.built_on(data.edge_index):
        raise ValueError(
            "`sampler` was built on other edges than `data.edge_index` (a graph of the same "
            "size, or edges changed since): build it on `data.edge_index`"
        )
    sub = sampler.sample(seeds, num_hops, num_neighbors, generator=generator)
    return _to_data(data, sub, declared)


def _to_data(data: Data, sub: HopSubgraph, edge_attrs: tuple[str, ...] = ()) -> Data:
    out = filter_data(data, sub.n_id, sub.edge_index[0], sub.edge_index[1], sub.e_id)
    for key in edge_attrs:  # declared edge-level: sliced by edge, whatever PyG guessed
        value = data[key]
        out[key] = value.index_select(data.__cat_dim__(key, value), sub.e_id.to(value.device))
    out.n_id = sub.n_id
    out.e_id = sub.e_id
    out.seed_mask = sub.seed_mask
    out.batch_size = sub.num_seeds
    out.num_sampled_nodes = sub.num_sampled_nodes
    out.num_sampled_edges = sub.num_sampled_edges
    return out


class KHopLoader(torch.utils.data.DataLoader):
    r"""Mini-batches of seed nodes, each with its exact ``num_hops``-hop in-neighbourhood.

    A ``torch.utils.data.DataLoader`` over the seed nodes (``batch_size``, ``shuffle``,
    ``drop_last``, ``num_workers``, ``generator`` work as usual) whose batches are
    :func:`hop_batch` subgraphs. For a model of ``num_hops`` message-passing layers whose node
    updates read only the node and its in-neighbours (every
    :class:`~graphattn.MultiHeadAttentionConv` stack, :class:`~graphattn.nn.GraphTransformer`'s
    node output without positional encodings), ``model(batch)[:batch.batch_size]`` equals the
    full-graph output on the seeds, and so do the gradients of a loss on them.

    The same contract as PyG's ``NeighborLoader(data, num_neighbors=[-1] * num_hops, ...)``,
    which needs ``pyg-lib`` or ``torch-sparse``; this one needs neither. With
    ``num_neighbors`` it samples a fan-out per hop instead (approximate).

    Args:
        data (Data): the graph, with node- and edge-level attributes.
        num_hops (int): the depth ``L`` of the model.
        num_neighbors (sequence of int, optional): fan-out per hop, ``-1`` for all;
            :obj:`None` is exact. (default: :obj:`None`)
        input_nodes (Tensor, optional): the seeds to iterate over: integer ids or a bool mask
            ``[N]``. (default: all nodes)
        edge_attrs (sequence of str, optional): edge-level attributes whose level their size
            cannot tell (see :func:`hop_batch`). (default: :obj:`None`)
        **kwargs: ``DataLoader`` arguments (``batch_size``, ``shuffle``, ...).

    >>> from graphattn.economy import economy_data
    >>> data = economy_data(200, seed=0)
    >>> loader = KHopLoader(data, num_hops=2, batch_size=64, shuffle=True)
    >>> batch = next(iter(loader))
    >>> batch.batch_size, bool(batch.seed_mask[:64].all()), batch.num_nodes >= 64
    (64, True, True)
    """

    def __init__(
        self,
        data: Data,
        num_hops: int,
        num_neighbors: Sequence[int] | None = None,
        *,
        input_nodes: Tensor | None = None,
        edge_attrs: Sequence[str] | None = None,
        **kwargs,
    ):
        self.data = _check_data(data)
        self.edge_attrs = _check_edge_attrs(data, edge_attrs)
        self.num_hops = check_int("num_hops", num_hops, 0)
        self.num_neighbors = None if num_neighbors is None else list(num_neighbors)
        _check_num_neighbors(num_neighbors, self.num_hops)
        self.hop_sampler = HopSampler(data.edge_index, data.num_nodes)
        seeds = _input_nodes(input_nodes, data.num_nodes)
        for key in ("collate_fn", "dataset"):
            if key in kwargs:
                raise TypeError(f"KHopLoader sets `{key}` itself")
        # a callable of its own, not a bound method: workers started with "spawn" pickle the
        # collate function, and a bound method would take the whole loader along
        collate = _HopCollate(
            self.data, self.hop_sampler, self.num_hops, self.num_neighbors, self.edge_attrs
        )
        super().__init__(seeds.tolist(), collate_fn=collate, **kwargs)

    def __repr__(self) -> str:
        fan = "" if self.num_neighbors is None else f", num_neighbors={self.num_neighbors}"
        return f"{type(self).__name__}(num_hops={self.num_hops}{fan}, batch_size={self.batch_size})"


class _HopCollate:
    """The batch of a list of seeds: what :class:`KHopLoader`'s workers run (picklable)."""

    def __init__(self, data, sampler, num_hops, num_neighbors, edge_attrs):
        self.data, self.sampler, self.edge_attrs = data, sampler, edge_attrs
        self.num_hops, self.num_neighbors = num_hops, num_neighbors

    def __call__(self, seeds: list[int]) -> Data:
        seeds_t = torch.tensor(seeds, dtype=torch.long)
        sub = self.sampler.sample(seeds_t, self.num_hops, self.num_neighbors)
        return _to_data(self.data, sub, self.edge_attrs)


def _input_nodes(input_nodes: Tensor | None, num_nodes: int) -> Tensor:
    if input_nodes is None:
        return torch.arange(num_nodes)
    if not isinstance(input_nodes, Tensor):
        raise TypeError(f"`input_nodes` must be a torch.Tensor, got {type(input_nodes).__name__}")
    if input_nodes.dtype == torch.bool:
        if input_nodes.shape != (num_nodes,):
            raise ValueError(
                f"a bool `input_nodes` must have shape [{num_nodes}], got {list(input_nodes.shape)}"
            )
        return input_nodes.nonzero().view(-1)
    check_index_tensor("input_nodes", input_nodes)
    if input_nodes.dim() != 1:
        raise ValueError(f"`input_nodes` must be 1-D, got shape {list(input_nodes.shape)}")
    if input_nodes.numel() > 0 and (
        int(input_nodes.min()) < 0 or int(input_nodes.max()) >= num_nodes
    ):
        raise ValueError(f"`input_nodes` must be node ids in [0, {num_nodes})")
    return input_nodes.long()
