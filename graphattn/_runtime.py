"""What the current call runs under, and how structures cached on graphs are built (private).

Three execution contexts change what the code may do: a recording into a graph
(``torch.compile``, ``torch.export``, ``torch.jit.trace``: :func:`tracing`), a ``torch.func``
transform (:func:`transforms_active`) and :func:`torch.inference_mode`. The first two rule out
value checks and branches on values (:func:`static_mode`); the last two would leak into
anything cached on a graph object, which must serve later calls in any context
(:func:`building_cache`). The graph descriptions (:mod:`graphattn.patterns`), the engines and
the layer ask here instead of each testing torch's internals themselves.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["building_cache", "static_mode", "tracing", "transforms_active"]


def tracing() -> bool:
    """Whether the call is being recorded into a graph (``torch.compile``, ``torch.export``
    or ``torch.jit.trace``): value checks (which need a sync) and branches on values are out,
    since the recorded graph must hold for other inputs of the same kind."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def transforms_active() -> bool:
    """Whether a ``torch.func`` transform (``grad``, ``vmap``, ...) is running."""
    return torch._C._are_functorch_transforms_active()


def static_mode() -> bool:
    """Whether value-dependent branches are out (``torch.compile``, ``torch.export``,
    ``torch.jit.trace`` or ``torch.func``)."""
    return tracing() or transforms_active()


def building_cache() -> contextlib.AbstractContextManager:
    """The context in which derived structures are built for a graph's ``cache``.

    Inside :func:`torch.inference_mode` it turns inference mode off, so that a graph first
    used there caches normal tensors, which later training can save for its backward
    (inference tensors cannot be). Inside a ``torch.func`` transform (``grad``, ``hessian``,
    ``vmap``, ...) it steps outside the transform, so that what is cached belongs to no
    transform level and later calls, inside other transforms or none, can use it. Outside
    both it does nothing.
    """
    stack = contextlib.ExitStack()
    if torch.is_inference_mode_enabled():
        stack.enter_context(torch.inference_mode(False))
    if transforms_active():
        stack.enter_context(torch._C._DisableFuncTorch())
    return stack
