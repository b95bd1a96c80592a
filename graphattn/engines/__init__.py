"""Attention engines: pure functions ``(AttentionCall) -> (out, weights)``.

See :mod:`graphattn.engines.base` for the contract every engine follows; each engine module
declares what it supports next to its function, and :mod:`.registry` orders them for
``engine="auto"``. Beside the engine functions, the names exported here are all that the
layer above (:class:`~graphattn.MultiHeadAttentionConv`) uses: the call, request and
edge-term records, the registry, :func:`joint_columns` (the stacked-projection layout) and
:class:`AttentionMessages` (the reference's message-passing methods, which the layer
shares); it imports nothing else from this package.
"""

from .base import AttentionCall, AttentionRequest, EdgeTerms, Engine, joint_columns
from .blocked import blocked_attention
from .dense import dense_attention
from .fused import fused_attention
from .registry import (
    available_engines,
    engine_reasons,
    explain_engines,
    get_engine,
    register_engine,
    resolve_engine,
)
from .scatter import AttentionMessages, AttentionPropagation, scatter_attention

__all__ = [
    "AttentionMessages",
    "AttentionCall",
    "AttentionPropagation",
    "AttentionRequest",
    "EdgeTerms",
    "Engine",
    "available_engines",
    "blocked_attention",
    "dense_attention",
    "engine_reasons",
    "explain_engines",
    "fused_attention",
    "get_engine",
    "joint_columns",
    "register_engine",
    "resolve_engine",
    "scatter_attention",
]
