"""Checks of an economy's tensors, shared by the simulator, the scenarios and the closed forms
(private). Every check raises a ``ValueError``/``TypeError`` naming the attribute."""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Data

from .._checks import check_index_tensor


def check_edges(data: Data, num_relations: int | None = None) -> None:
    """``data.edge_index`` ``[2, E]`` with node ids in ``[0, N)``, ``data.edge_type`` ``[E]``
    in ``[0, num_relations)`` (when given) and ``data.edge_weight`` (when present) ``[E]``,
    finite and positive (input shares)."""
    n = int(data.num_nodes)
    edge_index = data.edge_index
    check_index_tensor("data.edge_index", edge_index)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"`data.edge_index` must have shape [2, E], got {list(edge_index.shape)}")
    num_edges = edge_index.size(1)
    if num_edges and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        raise ValueError(
            f"`data.edge_index` holds agent ids in [{int(edge_index.min())}, "
            f"{int(edge_index.max())}], outside [0, {n})"
        )
    edge_type = data.edge_type
    check_index_tensor("data.edge_type", edge_type)
    if list(edge_type.shape) != [num_edges]:
        raise ValueError(
            f"`data.edge_type` must have shape [{num_edges}] (one per edge), "
            f"got {list(edge_type.shape)}"
        )
    if num_relations is not None and num_edges:
        lo, hi = int(edge_type.min()), int(edge_type.max())
        if lo < 0 or hi >= num_relations:
            raise ValueError(
                f"`data.edge_type` values must be in [0, {num_relations}) "
                f"(= len(relation_names)), got range [{lo}, {hi}]"
            )
    weight = getattr(data, "edge_weight", None)
    if weight is not None:
        if not isinstance(weight, Tensor) or not weight.is_floating_point():
            raise TypeError("`data.edge_weight` must be a floating-point tensor")
        if list(weight.shape) != [num_edges]:
            raise ValueError(
                f"`data.edge_weight` must have shape [{num_edges}] (one per edge), "
                f"got {list(weight.shape)}"
            )
        if num_edges and not bool((torch.isfinite(weight) & (weight > 0)).all()):
            raise ValueError("`data.edge_weight` must be finite and positive (input shares)")


def check_shocks(shocks: Tensor, shape: list[int]) -> None:
    """``shocks`` a floating tensor of ``shape`` with every value in ``[0, 1]`` (NaN refused)."""
    if not isinstance(shocks, Tensor) or not shocks.is_floating_point():
        raise TypeError("`shocks` must be a floating-point tensor")
    if list(shocks.shape) != shape:
        raise ValueError(f"`shocks` must have shape {shape}, got {list(shocks.shape)}")
    if shocks.numel() and not bool(((shocks >= 0) & (shocks <= 1)).all()):  # NaN fails both
        raise ValueError("`shocks` must lie in [0, 1] (no NaN)")
