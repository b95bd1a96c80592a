r"""Training on ``torch.distributed``: process group from ``torchrun``, DDP, the owned-node loss.

Each rank holds its part of the graph plus the exact halo (:func:`rank_subgraph`), runs the
same model (:class:`torch.nn.parallel.DistributedDataParallel`) on it, and computes the loss
on the nodes it owns only. For a loss that is a mean over the :math:`M` labelled nodes of the
whole graph, rank :math:`r` returns

.. math::
    \ell_r = \frac{R}{M} \sum_{i \in \text{owned}_r} \ell_i ,

and DDP's all-reduce averages the gradients over the :math:`R` ranks:
:math:`\frac{1}{R} \sum_r \nabla \ell_r = \nabla \frac{1}{M} \sum_i \ell_i`, the full-graph
gradient, exactly (up to the order of floating-point sums). Nothing here replaces
``torch.distributed``: the launch is ``torchrun``, the communication gloo (CPU) or NCCL (GPU).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .partition import partition_nodes

__all__ = [
    "DistContext",
    "all_reduce_max",
    "all_reduce_sum",
    "distribute_model",
    "init_distributed",
    "owned_mean_loss",
    "reduce_mean",
    "shared_partition",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size`` processes, its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # None: a single process without a process group

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the rank that prints and writes files)."""
        return self.rank == 0


def init_distributed(backend: str | None = None, **kwargs) -> DistContext:
    """Join the process group that ``torchrun`` describes, or run as a single process.

    Under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
    ``MASTER_PORT`` set) this initialises ``torch.distributed`` with ``backend`` (default:
    ``"nccl"`` when CUDA is available, each process on GPU ``LOCAL_RANK``; else ``"gloo"`` on
    the CPU). Without ``WORLD_SIZE`` it returns a single-process context and initialises
    nothing, so the same script runs with and without ``torchrun``. A process group that is
    already initialised is used as it is. ``kwargs`` go to ``init_process_group``
    (``timeout``, ...).

    >>> import os
    >>> "WORLD_SIZE" in os.environ or init_distributed().world_size == 1
    True
    """
    if backend is not None and backend not in ("gloo", "nccl", "mpi", "ucc"):
        raise ValueError(f"`backend` must be 'gloo', 'nccl', 'mpi' or 'ucc', got {backend!r}")
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("`backend` 'nccl' needs CUDA GPUs, and none is available: use 'gloo'")
    if not dist.is_initialized():
        if "WORLD_SIZE" not in os.environ:
            return DistContext()
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if backend == "nccl":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
            dist.init_process_group(backend, device_id=device, **kwargs)
        else:
            dist.init_process_group(backend, **kwargs)
    backend = dist.get_backend()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device, backend)


def _initialised() -> bool:
    return dist.is_available() and dist.is_initialized()


def distribute_model(model: nn.Module, ctx: DistContext | None = None, **ddp_kwargs) -> nn.Module:
    """``model`` on the context's device, wrapped in ``DistributedDataParallel`` when a process
    group is initialised (else returned as it is).

    DDP broadcasts rank 0's parameters and buffers at construction, so every rank starts
    from the same weights. ``ddp_kwargs`` go to DDP; pass ``find_unused_parameters=True``
    when the loss leaves parameters unused (e.g. :class:`~graphattn.nn.GraphTransformer`'s
    graph-level head when training on node outputs).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    ctx = DistContext() if ctx is None else ctx
    model = model.to(ctx.device)
    if not _initialised():
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, **ddp_kwargs)


def _all_reduce(t: Tensor, op) -> Tensor:
    """``op`` of ``t`` over all ranks, on a copy (``t`` itself unchanged)."""
    t = t.detach().clone()
    if _initialised():
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        reduced = t.to(device)
        dist.all_reduce(reduced, op=op)
        t = reduced.to(t.device)
    return t


def all_reduce_sum(value: Tensor | float | int) -> Tensor:
    """The sum of ``value`` over all ranks (a detached copy; ``value`` itself unchanged)."""
    return _all_reduce(torch.as_tensor(value), dist.ReduceOp.SUM)


def all_reduce_max(value: Tensor | float | int) -> Tensor:
    """The largest ``value`` over all ranks (a detached copy; a Python number becomes a
    float64 tensor), e.g. the time of a step, which ends with the slowest rank."""
    t = value if isinstance(value, Tensor) else torch.tensor(value, dtype=torch.float64)
    return _all_reduce(t, dist.ReduceOp.MAX)


def reduce_mean(value: Tensor | float | int) -> Tensor:
    """The mean of ``value`` over all ranks: with :func:`owned_mean_loss` the full-graph loss."""
    world = dist.get_world_size() if _initialised() else 1
    return all_reduce_sum(value) / world


def owned_mean_loss(per_node: Tensor, num_global: int | float | Tensor) -> Tensor:
    r"""This rank's term of a mean over ``num_global`` nodes of all ranks, scaled by the world
    size so that DDP's gradient averaging yields the gradient of the full mean:
    ``per_node.sum() * world_size / num_global``.

    Args:
        per_node (Tensor): the losses of the nodes this rank owns (and labels), any shape.
        num_global (int or Tensor): the number of loss terms over all ranks
            (e.g. ``all_reduce_sum(per_node.numel())``).
    """
    if not isinstance(per_node, Tensor):
        raise TypeError(f"`per_node` must be a torch.Tensor, got {type(per_node).__name__}")
    if isinstance(num_global, (bool, str)) or not isinstance(num_global, (int, float, Tensor)):
        raise TypeError(f"`num_global` must be a number, got {type(num_global).__name__}")
    total = float(num_global)
    if not 0 < total < math.inf:
        raise ValueError(f"`num_global` must be > 0 and finite, got {total}")
    world = dist.get_world_size() if _initialised() else 1
    return per_node.sum() * (world / total)


def shared_partition(
    edge_index: Tensor,
    num_nodes: int,
    ctx: DistContext,
    *,
    method: str = "metis",
    seed: int = 0,
) -> Tensor:
    """:func:`partition_nodes` into ``ctx.world_size`` parts, computed once on rank 0 and
    broadcast, so that every rank uses the same partition."""
    if _initialised() and ctx.world_size > 1:
        if ctx.rank == 0:
            parts = partition_nodes(edge_index, num_nodes, ctx.world_size, method=method, seed=seed)
        else:
            parts = torch.empty(num_nodes, dtype=torch.long)
        buffer = parts.to(ctx.device)
        dist.broadcast(buffer, src=0)
        return buffer.cpu()
    return partition_nodes(edge_index, num_nodes, ctx.world_size, method=method, seed=seed)
