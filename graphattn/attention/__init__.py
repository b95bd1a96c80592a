"""The attention layer, structured patterns and engine dispatch."""

from .conv import AttentionOutput, MultiHeadAttentionConv
from .dispatch import AttentionRequest, Engine, engines, register_engine, resolve_engine
from .patterns import FullGraph, Pattern

__all__ = [
    "AttentionOutput",
    "AttentionRequest",
    "Engine",
    "FullGraph",
    "MultiHeadAttentionConv",
    "Pattern",
    "engines",
    "register_engine",
    "resolve_engine",
]
