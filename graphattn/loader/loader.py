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


def _check_data(data: object) -> Data:
    if not isinstance(data, Data):
        raise TypeError(f"`data` must be a torch_geometric.data.Data, got {type(data).__name__}")
    if getattr(data, "edge_index", None) is None:
        raise ValueError("`data` has no `edge_index`")
    return data


def hop_batch(
    data: Data,
    seeds: Tensor,
    num_hops: int,
    num_neighbors: Sequence[int] | None = None,
    *,
    sampler: HopSampler | None = None,
    generator: torch.Generator | None = None,
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

    >>> edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    >>> data = Data(x=torch.arange(5.0).unsqueeze(1), edge_index=edge_index)
    >>> batch = hop_batch(data, torch.tensor([4, 1]), num_hops=1)
    >>> batch.x.squeeze(1).tolist(), batch.edge_index.tolist(), batch.batch_size
    ([4.0, 1.0, 0.0, 3.0], [[3, 2], [0, 1]], 2)
    """
    data = _check_data(data)
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
    sub = sampler.sample(seeds, num_hops, num_neighbors, generator=generator)
    return _to_data(data, sub)


def _to_data(data: Data, sub: HopSubgraph) -> Data:
    out = filter_data(data, sub.n_id, sub.edge_index[0], sub.edge_index[1], sub.e_id)
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
        **kwargs,
    ):
        self.data = _check_data(data)
        self.num_hops = check_int("num_hops", num_hops, 0)
        self.num_neighbors = None if num_neighbors is None else list(num_neighbors)
        _check_num_neighbors(num_neighbors, self.num_hops)
        self.hop_sampler = HopSampler(data.edge_index, data.num_nodes)
        seeds = _input_nodes(input_nodes, data.num_nodes)
        for key in ("collate_fn", "dataset"):
            if key in kwargs:
                raise TypeError(f"KHopLoader sets `{key}` itself")
        super().__init__(seeds.tolist(), collate_fn=self._collate, **kwargs)

    def _collate(self, seeds: list[int]) -> Data:
        sub = self.hop_sampler.sample(
            torch.tensor(seeds, dtype=torch.long), self.num_hops, self.num_neighbors
        )
        return _to_data(self.data, sub)

    def __repr__(self) -> str:
        fan = "" if self.num_neighbors is None else f", num_neighbors={self.num_neighbors}"
        return f"{type(self).__name__}(num_hops={self.num_hops}{fan}, batch_size={self.batch_size})"


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
