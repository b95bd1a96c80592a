"""The engine registry and ``engine="auto"``: it only orders the engines.

What an engine supports is declared by the engine's own module (``supports`` and
``prefers`` next to its function). ``"auto"`` tries the engines by increasing priority and
takes the first that supports the request and prefers it (else the first that supports it);
a forced engine that cannot serve raises a :class:`ValueError` with its reason. The
``scatter`` reference supports everything, so ``"auto"`` always finds one.
"""

from __future__ import annotations

from . import blocked, dense, fused, scatter
from .base import AttentionRequest, Engine

__all__ = ["available_engines", "get_engine", "register_engine", "resolve_engine"]

_REGISTRY: dict[str, Engine] = {}
_ORDER: list[Engine] = []


def register_engine(engine: Engine) -> Engine:
    """Add (or replace) an engine in the registry."""
    if not isinstance(engine, Engine):
        raise TypeError(f"`engine` must be an Engine, got {type(engine).__name__}")
    _REGISTRY[engine.name] = engine
    _ORDER[:] = sorted(_REGISTRY.values(), key=lambda e: e.priority)
    return engine


def available_engines() -> tuple[str, ...]:
    """Names of the registered engines, in the order ``"auto"`` tries them."""
    return tuple(e.name for e in _ORDER)


def get_engine(name: str) -> Engine:
    """The registered engine called ``name``."""
    engine = _REGISTRY.get(name)
    if engine is None:
        raise ValueError(
            f"unknown `engine` {name!r}; expected 'auto' or one of {available_engines()}"
        )
    return engine


def resolve_engine(name: str, request: AttentionRequest) -> Engine:
    """The engine that serves ``request``: ``name`` itself, or the best one for ``"auto"``."""
    if name == "auto":
        fallback = None
        for engine in _ORDER:
            if engine.supports(request) is None:
                if engine.prefers(request):
                    return engine
                fallback = fallback or engine
        if fallback is None:  # pragma: no cover - scatter supports everything
            raise RuntimeError("no registered engine supports this request")
        return fallback
    engine = get_engine(name)
    reason = engine.supports(request)
    if reason is not None:
        raise ValueError(f"`engine`={name!r} cannot run this call: {reason}")
    return engine


for _engine in (dense.ENGINE, blocked.ENGINE, fused.ENGINE, scatter.ENGINE):
    register_engine(_engine)
