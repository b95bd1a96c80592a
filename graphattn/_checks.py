"""Argument checks shared by the layers, patterns and models (private)."""

from __future__ import annotations

import torch
from torch import Tensor


def check_index_tensor(name: str, value: object) -> Tensor:
    """``value`` as an integer tensor, or a ``TypeError`` naming ``name``.

    >>> check_index_tensor("edge_type", torch.tensor([0.5]))
    Traceback (most recent call last):
        ...
    TypeError: `edge_type` must be an integer tensor, got dtype torch.float32
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}")
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"`{name}` must be an integer tensor, got dtype {value.dtype}")
    return value


def check_same_device(name: str, value: Tensor, x: Tensor) -> None:
    """A ``ValueError`` naming ``name`` unless ``value`` is on the device of the features ``x``."""
    if value.device != x.device:
        raise ValueError(
            f"`{name}` is on {value.device} but `x` is on {x.device}; put them on the same device"
        )
