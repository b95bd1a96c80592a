"""Graph builders that return PyG ``Data``: sequences (full, causal, chunked, window) and
image patch grids.

Each builder returns a ``Data`` carrying a structured pattern in ``data.pattern``;
``data.pattern.edge_index()`` materializes the exact edge list. Supply-chain economies live in
:mod:`graphattn.economy`.
"""

from .grid import grid, patchify
from .sequence import causal, chunked, full, pattern_data, window

__all__ = ["causal", "chunked", "full", "grid", "patchify", "pattern_data", "window"]
