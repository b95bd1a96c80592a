"""The engine registry and ``engine="auto"``.

Each engine is registered with a ``supports`` predicate that returns :obj:`None` when it can
serve a request, or a short reason when it cannot. ``"auto"`` takes the supporting engine with
the lowest ``priority``; a forced engine that cannot serve raises a :class:`ValueError` with
the reason. The ``scatter`` reference supports everything, so ``"auto"`` always finds one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..engines.base import EdgeTerms
from ..engines.blocked import BLOCKED_PATTERNS, blocked_attention
from ..engines.dense import dense_attention
from ..engines.fused import fused_attention
from ..engines.scatter import scatter_attention
from .patterns import CausalFullGraph, FullGraph, Pattern

__all__ = ["AttentionRequest", "Engine", "available_engines", "register_engine", "resolve_engine"]

logger = logging.getLogger("graphattn")


@dataclass(frozen=True)
class AttentionRequest:
    """What an engine must serve: the graph and the options of one forward call."""

    graph: Tensor | Pattern
    device: torch.device
    dtype: torch.dtype  # the compute dtype (float32 or float64)
    has_edge_features: bool = False
    has_relations: bool = False
    need_weights: bool = False
    dropout: float = 0.0

    @property
    def has_edge_terms(self) -> bool:
        return self.has_edge_features or self.has_relations


EngineFn = Callable[..., tuple[Tensor, "Tensor | None"]]


@dataclass(frozen=True)
class Engine:
    """A named engine: its function, what it supports, and its rank for ``"auto"``."""

    name: str
    fn: EngineFn
    supports: Callable[[AttentionRequest], str | None]
    priority: int

    def __call__(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        graph: Tensor | Pattern,
        *,
        terms: EdgeTerms | None = None,
        dropout: float = 0.0,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        return self.fn(q, k, v, graph, terms=terms, dropout=dropout, need_weights=need_weights)


_REGISTRY: dict[str, Engine] = {}


def register_engine(engine: Engine) -> Engine:
    """Add (or replace) an engine in the registry."""
    _REGISTRY[engine.name] = engine
    return engine


def available_engines() -> tuple[str, ...]:
    """Names of the registered engines, in the order ``"auto"`` tries them."""
    return tuple(e.name for e in sorted(_REGISTRY.values(), key=lambda e: e.priority))


def resolve_engine(name: str, request: AttentionRequest) -> Engine:
    """The engine that serves ``request``: ``name`` itself, or the best one for ``"auto"``."""
    if name == "auto":
        for engine in sorted(_REGISTRY.values(), key=lambda e: e.priority):
            if engine.supports(request) is None:
                logger.debug("engine=auto chose %r for %s", engine.name, _describe(request))
                return engine
        raise RuntimeError("no registered engine supports this request")  # pragma: no cover
    engine = _REGISTRY.get(name)
    if engine is None:
        raise ValueError(
            f"unknown `engine` {name!r}; expected 'auto' or one of {available_engines()}"
        )
    reason = engine.supports(request)
    if reason is not None:
        raise ValueError(f"`engine`={name!r} cannot run this call: {reason}")
    return engine


def _describe(request: AttentionRequest) -> str:
    graph = request.graph
    g = repr(graph) if isinstance(graph, Pattern) else f"edge_index with {graph.size(1)} edges"
    return f"{g} on {request.device}"


def _scatter_supports(request: AttentionRequest) -> str | None:
    return None


def _pattern_supports(patterns: tuple[type, ...], needs: str):
    """``supports`` of an engine that serves only ``patterns``, without edge terms."""

    def supports(request: AttentionRequest) -> str | None:
        if not isinstance(request.graph, patterns):
            return f"it needs {needs}"
        if request.has_edge_terms:
            return "it does not take edge features or relation types"
        return None

    return supports


_dense_supports = _pattern_supports(
    (FullGraph, CausalFullGraph),
    "a FullGraph or CausalFullGraph pattern (attention to the whole graph)",
)
register_engine(Engine("dense", dense_attention, _dense_supports, priority=10))
register_engine(Engine("scatter", scatter_attention, _scatter_supports, priority=1000))


def _fused_supports(request: AttentionRequest) -> str | None:
    if request.device.type != "cpu":
        return f"it runs on the CPU only, not on {request.device}"
    if request.dtype not in (torch.float32, torch.float64):
        return f"it computes in float32 or float64, not {request.dtype}"
    return None


_blocked_supports = _pattern_supports(
    BLOCKED_PATTERNS, "a ChunkedGraph, WindowGraph or GridGraph pattern"
)
register_engine(Engine("blocked", blocked_attention, _blocked_supports, priority=20))
register_engine(Engine("fused", fused_attention, _fused_supports, priority=100))
