"""Partitioned training on ``torch.distributed``: every rank owns a part of the graph, holds
its exact L-hop halo, computes the loss on its owned nodes, and DDP all-reduces the gradients.

- :mod:`.partition`: :func:`partition_nodes` (METIS via ``pymetis``, or random),
  :func:`rank_subgraph` (owned nodes + halo), :func:`replication_factor`;
- :mod:`.ddp`: :func:`init_distributed` (from ``torchrun``'s environment, or one process),
  :func:`distribute_model` (DDP), :func:`owned_mean_loss`, :func:`reduce_mean`,
  :func:`all_reduce_sum`, :func:`all_reduce_max`, :func:`shared_partition`.

The launch is ``torchrun``; see ``docs/distributed.md`` and
``examples/distributed_training.py``.
"""

from .ddp import (
    DistContext,
    all_reduce_max,
    all_reduce_sum,
    distribute_model,
    init_distributed,
    owned_mean_loss,
    reduce_mean,
    shared_partition,
)
from .partition import (
    PARTITION_METHODS,
    ReplicationFactor,
    partition_nodes,
    rank_subgraph,
    replication_factor,
)

__all__ = [
    "PARTITION_METHODS",
    "DistContext",
    "ReplicationFactor",
    "all_reduce_max",
    "all_reduce_sum",
    "distribute_model",
    "init_distributed",
    "owned_mean_loss",
    "partition_nodes",
    "rank_subgraph",
    "reduce_mean",
    "replication_factor",
    "shared_partition",
]
