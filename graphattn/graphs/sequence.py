"""Attention graphs over token sequences: full, causal, chunked and sliding-window.

Every builder takes one length or a list of lengths (a batch of sequences, zeros allowed) and
returns a PyG :class:`~torch_geometric.data.Data` that carries the structured pattern in
``data.pattern`` (pass it to :class:`~graphattn.MultiHeadAttentionConv` as ``edge_index``),
plus ``num_nodes``, ``ptr`` and ``batch``. ``materialize=True`` also stores the exact
``edge_index`` (sorted by target, then source), for code that needs an edge list.

>>> from graphattn.graphs import window
>>> data = window([3, 2], radius=1)
>>> data.pattern
WindowGraph(num_nodes=5, num_graphs=2, radius=1)
>>> data.pattern.edge_index().tolist()
[[0, 1, 0, 1, 2, 1, 2, 3, 4, 3, 4], [0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 4]]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch_geometric.data import Data

from ..patterns import CausalFullGraph, ChunkedGraph, FullGraph, Pattern, WindowGraph

__all__ = ["full", "causal", "chunked", "window", "pattern_data"]


def _sizes(lengths: int | Sequence[int], name: str = "lengths") -> list[int]:
    if isinstance(lengths, bool):
        raise TypeError(f"`{name}` must be an int or a sequence of ints, got bool")
    if isinstance(lengths, int):
        lengths = [lengths]
    elif isinstance(lengths, torch.Tensor):
        lengths = lengths.tolist()
    out = list(lengths)
    for n in out:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"`{name}` must hold ints, got {type(n).__name__}")
        if n < 0:
            raise ValueError(f"`{name}` must be >= 0, got {n}")
    return out


def pattern_data(pattern: Pattern, *, materialize: bool = False) -> Data:
    """Wrap a pattern into a PyG ``Data`` with ``pattern``, ``num_nodes``, ``ptr`` and ``batch``.

    Args:
        pattern (Pattern): the structured pattern.
        materialize (bool, optional): also store ``edge_index``. (default: :obj:`False`)
    """
    if not isinstance(pattern, Pattern):
        raise TypeError(f"`pattern` must be a graphattn Pattern, got {type(pattern).__name__}")
    data = Data(num_nodes=pattern.num_nodes)
    data.pattern = pattern
    data.ptr = pattern.ptr.clone()
    data.batch = pattern.batch()
    if materialize:
        data.edge_index = pattern.edge_index()
    return data


def full(lengths: int | Sequence[int], *, causal: bool = False, materialize: bool = False) -> Data:
    """Full attention within each sequence (``causal=True``: only to earlier tokens and itself).

    >>> full(3).pattern
    FullGraph(num_nodes=3, num_graphs=1)
    >>> full([2, 3], causal=True).pattern
    CausalFullGraph(num_nodes=5, num_graphs=2)
    """
    if not isinstance(causal, bool):
        raise TypeError(f"`causal` must be a bool, got {type(causal).__name__}")
    cls = CausalFullGraph if causal else FullGraph
    return pattern_data(cls.from_sizes(_sizes(lengths)), materialize=materialize)


def causal(lengths: int | Sequence[int], *, materialize: bool = False) -> Data:
    """Causal full attention: token ``i`` attends to tokens ``0..i`` of its sequence.

    Same as ``full(lengths, causal=True)``.
    """
    return full(lengths, causal=True, materialize=materialize)


def chunked(lengths: int | Sequence[int], chunk_size: int, *, materialize: bool = False) -> Data:
    """Attention only within consecutive chunks of ``chunk_size`` tokens of each sequence.

    >>> chunked(5, chunk_size=2).pattern.edge_index().tolist()
    [[0, 1, 0, 1, 2, 3, 2, 3, 4], [0, 0, 1, 1, 2, 2, 3, 3, 4]]
    """
    pattern = ChunkedGraph.from_sizes(_sizes(lengths), chunk_size=chunk_size)
    return pattern_data(pattern, materialize=materialize)


def window(
    lengths: int | Sequence[int],
    radius: int,
    *,
    causal: bool = False,
    materialize: bool = False,
) -> Data:
    """Sliding window: token ``i`` attends to every ``j`` with ``|i - j| <= radius``
    (``causal=True``: ``i - radius <= j <= i``), itself included.

    >>> window(4, radius=1, causal=True).pattern.edge_index().tolist()
    [[0, 0, 1, 1, 2, 2, 3], [0, 1, 1, 2, 2, 3, 3]]
    """
    pattern = WindowGraph.from_sizes(_sizes(lengths), radius=radius, causal=causal)
    return pattern_data(pattern, materialize=materialize)
