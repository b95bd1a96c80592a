"""graphattn: multi-head self-attention as message passing on graphs."""

from .attention import (
    AttentionOutput,
    FullGraph,
    MultiHeadAttentionConv,
    Pattern,
    engines,
)

__version__ = "0.1.0"

__all__ = [
    "AttentionOutput",
    "FullGraph",
    "MultiHeadAttentionConv",
    "Pattern",
    "__version__",
    "engines",
]
