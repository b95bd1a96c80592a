"""Samples for models that learn the cascade: an economy with shocks as inputs, losses as targets.

:func:`shock_sample` turns an economy and its ``[N, K]`` shocks into one PyG ``Data``: every
agent's features and shocks as ``x``, the supply graph with its relation types and log input
shares as edges, and the agent's output loss ``1 - y_i(t)`` after the chosen horizons, simulated
by :func:`~graphattn.economy.simulate`, as ``y``. A model of ``L`` attention layers over this
graph (self-loops added) sees exactly the ``L``-hop upstream neighbourhood, which is what the
loss after ``L`` steps depends on. :func:`random_scenarios` draws shock scenarios of every kind,
the training data of such a model.

>>> import torch
>>> from graphattn.economy import economy_data, random_shocks
>>> data = economy_data(60, num_relations=3, seed=0, dtype=torch.float64)
>>> shocks = random_shocks(60, 3, density=0.3, seed=1)
>>> sample = shock_sample(data, shocks, [1, 2, 3], persistent=False)
>>> sample.x.shape, sample.y.shape, sample.edge_attr.shape[1]  # x: tiers + log size + K
(torch.Size([60, 9]), torch.Size([60, 3]), 1)
>>> [s.name for s in random_scenarios(data, 5, seed=0)][-1]
'random'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from .._checks import check_int
from ._validate import check_shocks
from .scenarios import SCENARIOS, Scenario, _check_data, scenario
from .simulate import MAX_STEPS, ShockDynamics, random_shocks, simulate

__all__ = ["random_scenarios", "shock_sample"]


def shock_sample(
    data: Data,
    shocks: Tensor,
    horizon: int | Sequence[int],
    *,
    persistent: bool = True,
    dynamics: ShockDynamics | None = None,
    dtype: torch.dtype = torch.float32,
) -> Data:
    """One sample: the economy ``data`` under ``shocks``, with the losses they cause as targets.

    Args:
        data: an economy ``Data`` (:func:`~graphattn.economy.economy_data`; float64 keeps the
            simulation exact).
        shocks: ``[N, K]`` shock sizes in ``[0, 1]``, column ``r`` for relation ``r``.
        horizon (int or sequence of int): the step(s) ``t >= 1`` whose loss is the target.
        persistent (bool, optional): shocks at every step, or at ``t = 0`` only (impulse).
            (default: :obj:`True`)
        dynamics (ShockDynamics, optional): the simulator's parameters. (default: its default)
        dtype (torch.dtype, optional): floating dtype of ``x``, ``edge_attr`` and ``y``.
            (default: :obj:`torch.float32`)

    Returns:
        ``Data`` with ``x`` ``[N, F + K]`` (``data.x``, then the shocks), ``edge_index``,
        ``edge_type``, ``edge_attr`` ``[E, 1]`` (the log input share of every edge), ``y``:
        ``[N]`` the loss ``1 - y_i(t)`` for an int ``horizon``, ``[N, len(horizon)]`` one
        column per step for a sequence; and ``tier`` ``[N]``.
    """
    names = _check_data(data)
    if getattr(data, "x", None) is None or getattr(data, "edge_weight", None) is None:
        raise ValueError(
            "`data` needs `x` and `edge_weight`: build it with economy_data or to_data"
        )
    n = int(data.num_nodes)
    check_shocks(shocks, [n, len(names)])
    single = isinstance(horizon, int) and not isinstance(horizon, bool)
    steps = [horizon] if single else horizon
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence) or not steps:
        raise TypeError(
            f"`horizon` must be an int or a non-empty sequence of ints, got {horizon!r}"
        )
    for t in steps:
        check_int("horizon", t, 1)
        if t > MAX_STEPS:
            raise ValueError(f"`horizon` must be <= {MAX_STEPS}, got {t}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"`dtype` must be a floating torch.dtype, got {dtype!r}")
    result = simulate(data, shocks, max(steps), persistent=persistent, dynamics=dynamics)
    loss = 1.0 - result.output[list(steps)]  # (len(steps), N)
    return Data(
        x=torch.cat([data.x, shocks], dim=1).to(dtype),  # (N, F + K)
        edge_index=data.edge_index,
        edge_type=data.edge_type,
        edge_attr=data.edge_weight.log().to(dtype).unsqueeze(1),  # (E, 1): log input share
        y=(loss[0] if single else loss.t()).to(dtype),  # (N) or (N, len(horizon))
        tier=data.tier,
        num_nodes=n,
    )


def random_scenarios(data: Data, count: int, *, seed: int = 0) -> list[Scenario]:
    """``count`` scenarios cycling through every kind, each with random parameters (seeded).

    In turn: a ``supplier-failure`` of a random firm tier (severity in ``[0.3, 1]``), a
    ``credit-crunch`` (1-10 % of firms, severity ``[0.2, 0.9]``), a ``labour-shortage`` (5-50 %
    of households, ``[0.2, 0.9]``), ``random-failures`` (1-5 % of firms, ``[0.5, 1]``) and
    ``random``: sparse shocks on every relation (:func:`~graphattn.economy.random_shocks`,
    density 0.05, sizes up to 0.8).

    Args:
        data: an economy ``Data``.
        count (int): the number of scenarios.
        seed (int, optional): the seed of every random choice. (default: :obj:`0`)
    """
    _check_data(data)
    check_int("count", count, 0)
    check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    firm_tiers = list(data.tier_names[:-1])
    kinds = (*SCENARIOS, "random")
    out = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        s = int(rng.integers(1 << 30))
        if kind == "supplier-failure":
            tier = firm_tiers[int(rng.integers(len(firm_tiers)))]
            out.append(scenario(data, kind, tier=tier, severity=float(rng.uniform(0.3, 1.0))))
        elif kind == "credit-crunch":
            share, severity = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.2, 0.9))
            out.append(scenario(data, kind, share=share, severity=severity))
        elif kind == "labour-shortage":
            share, severity = float(rng.uniform(0.05, 0.5)), float(rng.uniform(0.2, 0.9))
            out.append(scenario(data, kind, share=share, severity=severity, seed=s))
        elif kind == "random-failures":
            share, severity = float(rng.uniform(0.01, 0.05)), float(rng.uniform(0.5, 1.0))
            out.append(scenario(data, kind, share=share, severity=severity, seed=s))
        else:
            k = len(data.relation_names)
            shocks = random_shocks(data.num_nodes, k, density=0.05, max_size=0.8, seed=s)
            origin = (shocks > 0).any(1).nonzero().flatten()
            out.append(Scenario("random", "random sparse shocks", shocks, origin))
    return out
