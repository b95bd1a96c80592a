"""Attention engines: pure functions ``(q, k, v, graph, ...) -> (out, weights)``.

See :mod:`graphattn.engines.base` for the contract every engine follows; each engine module
declares what it supports next to its function, and :mod:`.registry` orders them for
``engine="auto"``.
"""

from .base import AttentionRequest, EdgeTerms, Engine
from .blocked import blocked_attention
from .dense import dense_attention
from .fused import fused_attention
from .registry import available_engines, get_engine, register_engine, resolve_engine
from .scatter import AttentionPropagation, scatter_attention

__all__ = [
    "AttentionPropagation",
    "AttentionRequest",
    "EdgeTerms",
    "Engine",
    "available_engines",
    "blocked_attention",
    "dense_attention",
    "fused_attention",
    "get_engine",
    "register_engine",
    "resolve_engine",
    "scatter_attention",
]
