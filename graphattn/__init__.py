"""graphattn: multi-head self-attention as message passing on graphs.

Layers, from the bottom up: :mod:`graphattn.patterns` (graph descriptions) ->
:mod:`graphattn.engines` (attention cores, no parameters) -> :class:`MultiHeadAttentionConv`
(the PyG layer) -> :mod:`graphattn.nn` (blocks, models), with :mod:`graphattn.graphs`,
:mod:`graphattn.economy` and :mod:`graphattn.analysis` beside them.
"""

from .conv import AttentionOutput, MultiHeadAttentionConv
from .engines import available_engines
from .patterns import (
    CausalFullGraph,
    ChunkedGraph,
    EdgeList,
    FullGraph,
    GridGraph,
    Pattern,
    WindowGraph,
)

#: The package's version (as in ``pyproject.toml`` and the changelog).
__version__ = "0.3.6"

__all__ = [
    "AttentionOutput",
    "CausalFullGraph",
    "ChunkedGraph",
    "EdgeList",
    "FullGraph",
    "GridGraph",
    "MultiHeadAttentionConv",
    "Pattern",
    "WindowGraph",
    "__version__",
    "available_engines",
]
