"""Argument checks shared across the package (private).

Every check raises a ``TypeError`` or ``ValueError`` whose message names the argument.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

_INDEX_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def tracing() -> bool:
    """Whether the call is being recorded into a graph (``torch.compile``, ``torch.export``
    or ``torch.jit.trace``): value checks (which need a sync) and branches on values are out,
    since the recorded graph must hold for other inputs of the same kind."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def static_int(size: int | Tensor) -> int:
    """A size as a Python int. Under ``torch.jit.trace`` a module's tensor sizes are 0-dim
    tensors, which the trace records where they enter a computation; this reads one for the
    checks and bookkeeping that the trace does not record (the caller keeps the traced size
    for the computation), without the tracer's warning about it."""
    if isinstance(size, Tensor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return int(size)
    return size


def check_int(name: str, value: object, minimum: int | None = None) -> int:
    """``value`` as an int (bools rejected), at least ``minimum``.

    >>> check_int("radius", 2.5, 0)
    Traceback (most recent call last):
        ...
    TypeError: `radius` must be an int, got float
    """
    if isinstance(value, bool) or not isinstance(value, (int, torch.SymInt)):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return value


def check_positive_int(name: str, value: object) -> int:
    """``value`` as an int ``> 0``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"`{name}` must be > 0, got {value}")
    return value


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool, got {type(value).__name__}")
    return value


def check_probability(name: str, value: object) -> float:
    """A float in ``[0, 1)`` (a dropout probability)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a float, got {type(value).__name__}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1), got {value}")
    return float(value)


def check_sizes(name: str, sizes: object) -> list[int]:
    """A sequence (or 1-D integer tensor) of non-negative ints.

    >>> check_sizes("sizes", [2.7, 3])
    Traceback (most recent call last):
        ...
    TypeError: `sizes` must hold ints, got float
    """
    if isinstance(sizes, Tensor):
        if sizes.is_floating_point() or sizes.is_complex() or sizes.dtype == torch.bool:
            raise TypeError(f"`{name}` must hold integers, got dtype {sizes.dtype}")
        if sizes.dim() != 1:
            raise ValueError(f"`{name}` must be 1-D, got shape {tuple(sizes.shape)}")
        values = sizes.tolist()
    elif isinstance(sizes, Sequence) and not isinstance(sizes, str):
        values = list(sizes)
    else:
        raise TypeError(f"`{name}` must be a sequence of ints, got {type(sizes).__name__}")
    for n in values:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"`{name}` must hold ints, got {type(n).__name__}")
        if n < 0:
            raise ValueError(f"`{name}` must be >= 0, got {n}")
    return values


def check_index_tensor(name: str, value: object) -> Tensor:
    """``value`` as an integer tensor of a dtype PyG accepts, or a ``TypeError`` naming ``name``.

    >>> check_index_tensor("edge_type", torch.tensor([0.5]))
    Traceback (most recent call last):
        ...
    TypeError: `edge_type` must be an integer tensor, got dtype torch.float32
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}")
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"`{name}` must be an integer tensor, got dtype {value.dtype}")
    if value.dtype not in _INDEX_DTYPES:
        raise TypeError(
            f"`{name}` must be int64 or int32 (or int16, int8, uint8), got dtype {value.dtype}"
        )
    check_not_meta(name, value)
    return value


def check_not_meta(name: str, value: Tensor) -> None:
    """A ``ValueError`` naming ``name`` for a tensor on the ``meta`` device, which has shapes
    but no values to check or compute with.

    >>> check_not_meta("x", torch.empty(2, device="meta"))
    Traceback (most recent call last):
        ...
    ValueError: `x` is a meta tensor (a shape without values); graphattn needs real data
    """
    if value.device.type == "meta":
        raise ValueError(
            f"`{name}` is a meta tensor (a shape without values); graphattn needs real data"
        )


def check_same_device(name: str, value: Tensor, x: Tensor) -> None:
    """A ``ValueError`` naming ``name`` unless ``value`` is on the device of the features ``x``."""
    if value.device != x.device:
        raise ValueError(
            f"`{name}` is on {value.device} but `x` is on {x.device}; put them on the same device"
        )


def check_features(name: str, x: object, module: torch.nn.Module) -> Tensor:
    """``x`` as floating-point features in the dtype of ``module``'s parameters (any dtype
    under autocast), or a ``TypeError`` naming ``name`` before any compute.

    >>> check_features("x", torch.ones(2, 3, dtype=torch.long), torch.nn.Linear(3, 1))
    Traceback (most recent call last):
        ...
    TypeError: `x` must be a floating-point tensor, got dtype torch.int64
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {x.dtype}")
    param = next(module.parameters(), None)
    if (
        param is not None
        and x.dtype != param.dtype
        and not torch.is_autocast_enabled(x.device.type)
    ):
        raise TypeError(
            f"`{name}` is {x.dtype} but the parameters are {param.dtype}; convert one of them "
            f"(e.g. `module.to({x.dtype})`) or use autocast"
        )
    return x
