"""Builders of attention graphs: sequences (full, causal, chunked, window) and image grids.

Each builder returns a PyG :class:`~torch_geometric.data.Data` carrying a structured pattern in
``data.pattern``; ``data.pattern.edge_index()`` materializes the exact edge list.
"""

from .grid import grid, patchify
from .sequence import causal, chunked, full, pattern_data, window

__all__ = ["causal", "chunked", "full", "grid", "patchify", "pattern_data", "window"]
