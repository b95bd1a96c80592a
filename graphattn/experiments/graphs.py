"""The benchmark graphs the speed and memory scripts time the sparse engines on."""

from __future__ import annotations

import torch

from .._checks import check_int

__all__ = ["benchmark_graph"]

KINDS = ("random", "economy")


def benchmark_graph(kind: str, num_nodes: int, degree: int, seed: int) -> torch.Tensor:
    """An int64 ``[2, E]`` edge list: ``"random"``, ``degree * num_nodes`` edges drawn uniformly
    (duplicates and self-loops as they fall), or ``"economy"``, a seeded multi-tier economy of
    ``num_nodes`` agents (:func:`graphattn.economy.economy_arrays`; ``degree`` unused).

    >>> benchmark_graph("random", 10, 4, seed=0).shape
    torch.Size([2, 40])
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, got {kind!r}")
    check_int("num_nodes", num_nodes, 1)
    check_int("degree", degree, 1)
    check_int("seed", seed, 0)
    if kind == "random":
        gen = torch.Generator().manual_seed(seed)
        return torch.randint(0, num_nodes, (2, num_nodes * degree), generator=gen)
    from ..economy import economy_arrays

    a = economy_arrays(num_nodes, seed=seed)
    return torch.stack([torch.from_numpy(a.src), torch.from_numpy(a.dst)])
