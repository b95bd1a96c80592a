"""graphattn: multi-head self-attention as message passing on graphs."""

from .attention import (
    AttentionOutput,
    CausalFullGraph,
    ChunkedGraph,
    FullGraph,
    GridGraph,
    MultiHeadAttentionConv,
    Pattern,
    WindowGraph,
    available_engines,
)

__version__ = "0.1.0"

__all__ = [
    "AttentionOutput",
    "CausalFullGraph",
    "ChunkedGraph",
    "FullGraph",
    "GridGraph",
    "MultiHeadAttentionConv",
    "Pattern",
    "WindowGraph",
    "__version__",
    "available_engines",
]
