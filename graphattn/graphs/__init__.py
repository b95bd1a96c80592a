"""Graph builders that return PyG ``Data``: sequences (full, causal, chunked, window), image
patch grids, and random regular expanders to lay over any graph.

The sequence and grid builders return a ``Data`` carrying a structured pattern in
``data.pattern``; ``data.pattern.edge_index()`` materializes the exact edge list.
:func:`expander` returns a random edge list in ``data.edge_index``. :func:`locality_order`
renumbers any graph for memory locality. Supply-chain economies live in
:mod:`graphattn.economy`.
"""

from .expander import expander
from .grid import edge_offsets, grid, patchify
from .ordering import NodeOrder, locality_order
from .sequence import causal, chunked, full, pattern_data, window

__all__ = [
    "NodeOrder",
    "causal",
    "chunked",
    "edge_offsets",
    "expander",
    "full",
    "grid",
    "locality_order",
    "patchify",
    "pattern_data",
    "window",
]
