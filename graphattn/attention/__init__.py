"""The attention layer, structured patterns and engine dispatch."""

from .conv import AttentionOutput, MultiHeadAttentionConv
from .dispatch import AttentionRequest, Engine, available_engines, register_engine, resolve_engine
from .patterns import CausalFullGraph, ChunkedGraph, FullGraph, GridGraph, Pattern, WindowGraph

__all__ = [
    "AttentionOutput",
    "AttentionRequest",
    "CausalFullGraph",
    "ChunkedGraph",
    "Engine",
    "FullGraph",
    "GridGraph",
    "MultiHeadAttentionConv",
    "Pattern",
    "available_engines",
    "register_engine",
    "resolve_engine",
    "WindowGraph",
]
