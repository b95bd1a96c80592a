"""Graph builders that return PyG ``Data``.

- sequences (full, causal, chunked, window) and image patch grids: each builder returns a
  ``Data`` carrying a structured pattern in ``data.pattern``;
  ``data.pattern.edge_index()`` materializes the exact edge list;
- supply-chain economies with several relation types (networkx ``MultiDiGraph`` <-> ``Data``).
"""

from .economy import (
    DEFAULT_TIERS,
    RELATION_NAMES,
    economy_arrays,
    economy_data,
    from_data,
    supply_chain_economy,
    to_data,
)
from .grid import grid, patchify
from .sequence import causal, chunked, full, pattern_data, window

__all__ = [
    "DEFAULT_TIERS",
    "RELATION_NAMES",
    "causal",
    "chunked",
    "economy_arrays",
    "economy_data",
    "from_data",
    "full",
    "grid",
    "patchify",
    "pattern_data",
    "supply_chain_economy",
    "to_data",
    "window",
]
