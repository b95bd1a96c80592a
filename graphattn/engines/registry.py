"""The engine registry and ``engine="auto"``: it only orders the engines.

What an engine supports is declared by the engine's own module (``supports`` and
``prefers`` next to its function). ``"auto"`` tries the engines by increasing priority and
takes the first that supports the request and prefers it (else the first that supports it).
A call that the requested engine cannot serve raises a :class:`ValueError` that gives every
registered engine's reasons, as xformers' dispatcher does, and :func:`explain_engines` gives
the same account without raising. The ``scatter`` reference supports everything, so
``"auto"`` always finds one while it is registered.

>>> import torch
>>> from graphattn import FullGraph
>>> request = AttentionRequest(FullGraph(4), torch.device("cpu"), torch.float32, has_relations=True)
>>> print(explain_engines(request))  # doctest: +NORMALIZE_WHITESPACE, +ELLIPSIS
engine='auto' runs 'scatter' on this call; the engines in the order 'auto' tries them:
  dense: cannot: it does not take edge features or relation types
  blocked: cannot: it needs a ChunkedGraph, WindowGraph or GridGraph pattern; it does not take
    edge features or relation types
  fused: ...
  scatter: can run it (chosen)
"""

from __future__ import annotations

from . import blocked, dense, fused, scatter
from .base import AttentionRequest, Engine

__all__ = [
    "available_engines",
    "engine_reasons",
    "explain_engines",
    "get_engine",
    "register_engine",
    "resolve_engine",
]

# The registry, by name; the order "auto" tries engines in is derived from it on each use.
_ENGINES: dict[str, Engine] = {}


def _ordered() -> list[Engine]:
    return sorted(_ENGINES.values(), key=lambda e: e.priority)  # stable: ties keep their order


def register_engine(engine: Engine) -> Engine:
    """Add (or replace) an engine in the registry."""
    if not isinstance(engine, Engine):
        raise TypeError(f"`engine` must be an Engine, got {type(engine).__name__}")
    _ENGINES[engine.name] = engine
    return engine


def available_engines() -> tuple[str, ...]:
    """Names of the registered engines, in the order ``"auto"`` tries them."""
    return tuple(e.name for e in _ordered())


def get_engine(name: str) -> Engine:
    """The registered engine called ``name``."""
    if not isinstance(name, str):
        raise TypeError(f"`engine` must be a str, got {type(name).__name__}")
    engine = _ENGINES.get(name)
    if engine is None:
        raise ValueError(
            f"unknown `engine` {name!r}; expected 'auto' or one of {available_engines()}"
        )
    return engine


def engine_reasons(request: AttentionRequest) -> dict[str, str | None]:
    """Why each registered engine cannot serve ``request`` (:obj:`None` for an engine that
    can), in the order ``"auto"`` tries them."""
    return {engine.name: engine.supports(request) for engine in _ordered()}


def _choose(engine: Engine | str, request: AttentionRequest) -> tuple[Engine | None, dict]:
    """``(the engine that serves request or None, every engine's reasons)``."""
    reasons = engine_reasons(request)
    if isinstance(engine, Engine):  # a forced engine, registered or not
        if engine.name not in reasons or _ENGINES[engine.name] is not engine:
            reasons[engine.name] = engine.supports(request)
        return (engine if reasons[engine.name] is None else None), reasons
    if engine != "auto":
        forced = get_engine(engine)  # unknown names fail first
        return (forced if reasons[engine] is None else None), reasons
    fallback = None
    for candidate in _ordered():
        if reasons[candidate.name] is None:
            if candidate.prefers(request):
                return candidate, reasons
            fallback = fallback or candidate
    return fallback, reasons


def _account(reasons: dict[str, str | None], chosen: Engine | None, auto: bool) -> str:
    """One line per engine: what it says about the call."""
    lines = []
    for name, reason in reasons.items():
        if reason is not None:
            says = f"cannot: {reason}"
        elif chosen is not None and name == chosen.name:
            says = "can run it (chosen)"
        elif auto and chosen is not None and _ENGINES[name].priority < chosen.priority:
            says = "can run it, but 'auto' does not prefer it here"
        else:
            says = "can run it"
        lines.append(f"  {name}: {says}")
    return "\n".join(lines)


def explain_engines(request: AttentionRequest, name: str = "auto") -> str:
    """Which engine ``engine=name`` runs for ``request``, and what every registered engine
    says about it: that it can run it, or why not (every reason its ``supports`` gives)."""
    chosen, reasons = _choose(name, request)
    head = f"engine={name!r} " + (
        "cannot run this call" if chosen is None else f"runs {chosen.name!r} on this call"
    )
    account = _account(reasons, chosen, auto=name == "auto")
    return f"{head}; the engines in the order 'auto' tries them:\n{account}"


def resolve_engine(name: str | Engine, request: AttentionRequest) -> Engine:
    """The engine that serves ``request``: ``name`` itself (a registered name, or an
    :class:`Engine`), or the best one for ``"auto"``. A :class:`ValueError` when it cannot,
    giving every registered engine's reasons."""
    chosen, reasons = _choose(name, request)
    if chosen is not None:
        return chosen
    if isinstance(name, Engine):
        name = name.name
    if name == "auto":
        head = "no registered engine can run this call (engine='auto')"
    else:
        head = f"`engine`={name!r} cannot run this call: {reasons[name]}"
    account = _account(reasons, None, auto=False)
    raise ValueError(f"{head}\nwhat each engine says, in the order 'auto' tries them:\n{account}")


for _engine in (dense.ENGINE, blocked.ENGINE, fused.ENGINE, scatter.ENGINE):
    register_engine(_engine)
