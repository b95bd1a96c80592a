r"""Discrete-time shock propagation on a supply-chain economy (input-output style).

The economy is the multigraph of :mod:`graphattn.economy.generate`: edges ``j -> i`` point from
supplier to customer, carry a relation :math:`r` (``goods``, ``capital``, ``labour``, ...) and
an input share :math:`w^r_{ji} > 0` with :math:`\sum_j w^r_{ji} = 1` for every customer
:math:`i` that has suppliers on :math:`r`.

**State.** Agent :math:`i` at step :math:`t` holds one *supply level* :math:`p^r_i(t)` per
relation: what it delivers to its customers along :math:`r`, relative to the pre-shock steady
state (where every level is 1). Its output is :math:`y_i(t) = p^\text{goods}_i(t)`.

**Shocks.** :math:`\sigma^r_i \in [0, 1]` per agent and relation: on ``goods`` the share of
output capacity lost (a supplier's plant fails), on ``capital`` a credit tightening at the
lender, on ``labour`` the share of a household's labour that leaves. They hit at :math:`t = 0`
and either stay (``persistent=True``: :math:`\sigma^r_i(t) = \sigma^r_i` for all :math:`t`) or
are one-off impulses (:math:`\sigma^r_i(t) = 0` for :math:`t \ge 1`).

**Dynamics.** Impact: :math:`p^r_i(0) = 1 - \sigma^r_i(0)`. For :math:`t \ge 1`, first the
*input availability* on every relation, the input-share weighted supply of the suppliers,

.. math::
    u^r_i(t) = \sum_{j \to i \,\in\, E_r} w^r_{ji} \, p^r_j(t-1)
    \qquad (u^r_i(t) = 1 \text{ if } i \text{ has no supplier on } r),

the supply-side input-output step: within one input type the suppliers are aggregated
linearly with fixed input shares, the technical coefficients of an input-output table (with a
single relation and :math:`\theta = 1` this is the linear Ghosh / Leontief supply model
:math:`y(t) = (1 - \sigma) \odot W^\top y(t-1)`). Then output, and each relation's own rule:

.. math::
    \text{goods:}\quad & y_i(t) = p^\text{goods}_i(t) = \big(1 - \sigma^\text{goods}_i(t)\big)
        \prod_{r} u^r_i(t)^{\theta_r}
        \qquad \text{(Cobb-Douglas in the input bundles, constant returns by default)} \\
    \text{capital:}\quad & p^\text{capital}_i(t) = \big(1 - \sigma^\text{capital}_i(t)\big)
        \big(1 - \rho_\text{capital}\,(1 - u^\text{capital}_i(t))\big)\,
        y_i(t)^{\eta_\text{capital}}
        \qquad \text{(a lender passes a share } \rho \text{ of the tightening it faces on)} \\
    \text{labour:}\quad & p^\text{labour}_i(t) = \big(1 - \sigma^\text{labour}_i(t)\big)
        \big(1 - \lambda\,(1 - p^\text{labour}_i(t-1))\big)\, y_i(t)^{\eta_\text{labour}}
        \qquad \text{(labour that left returns at rate } 1 - \lambda \text{)} \\
    \text{other } r:\quad & p^r_i(t) = \big(1 - \sigma^r_i(t)\big)
        \big(1 - \rho_r\,(1 - u^r_i(t))\big)\, y_i(t)^{\eta_r}
        \qquad \text{(pass-through, like capital)}

The factor :math:`y_i(t)^{\eta_r}` is the activity (balance-sheet) channel: an agent that
produces less also lends, works and delivers less on its other relations (for households
:math:`y_i` is their consumption, the goods they can buy). With :math:`\eta_r > 0` every input
of an agent reaches everything it supplies.

**Locality.** Every rule reads only agent :math:`i`'s own previous state and shocks and its
in-neighbours' states at :math:`t - 1`, so by induction the state after :math:`t` steps is a
function of the shocks within :math:`t` upstream hops only: changing anything farther away
leaves it unchanged bit for bit (sums run over the same edges in the same order), while with
``persistent=True`` a change of a shock within :math:`t` hops reaches it through every path
(all factors are strictly monotone while no level is 0). With impulse shocks the state after
:math:`t` steps depends on the shocks at walk length exactly :math:`t` (plus a household's own
decaying labour shock), which is the impulse response at horizon :math:`t`.

>>> import torch
>>> from graphattn.economy import economy_data
>>> from graphattn.economy import simulate, random_shocks
>>> data = economy_data(60, num_relations=3, seed=0)
>>> shocks = random_shocks(60, 3, seed=1)
>>> result = simulate(data, shocks, steps=4)
>>> result.output.shape, result.supply.shape
(torch.Size([5, 60]), torch.Size([5, 60, 3]))
>>> bool(result.output.max() <= 1 + 1e-12 and result.output.min() >= 0)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor
from torch_geometric.data import Data

from .._checks import check_bool, check_int
from ._validate import check_edges, check_shocks

__all__ = ["MAX_STEPS", "ShockDynamics", "SimulationResult", "random_shocks", "simulate"]


@dataclass(frozen=True)
class ShockDynamics:
    """Parameters of the relation-specific rules (see the module docstring).

    Attributes:
        elasticity: :math:`\\theta_r`, the exponent of relation ``r``'s input availability in
            output, by relation name. The defaults for goods, capital and labour sum to 1
            (constant returns); each further relation adds ``default_elasticity``.
        default_elasticity: :math:`\\theta_r` of relations not named in ``elasticity``.
        pass_through: :math:`\\rho_r` of ``capital`` and the other pass-through relations.
        default_pass_through: :math:`\\rho_r` of relations not named in ``pass_through``.
        labour_persistence: :math:`\\lambda`, the share of a labour shortfall that persists
            from one step to the next.
        activity: :math:`\\eta_r`, the elasticity of what an agent supplies on relation ``r``
            to its own output (0 switches the activity channel off), by relation name.
        default_activity: :math:`\\eta_r` of relations not named in ``activity``.
    """

    elasticity: Mapping[str, float] = field(
        default_factory=lambda: {"goods": 0.6, "capital": 0.15, "labour": 0.25}
    )
    default_elasticity: float = 0.15
    pass_through: Mapping[str, float] = field(default_factory=lambda: {"capital": 0.6})
    default_pass_through: float = 0.5
    labour_persistence: float = 0.5
    activity: Mapping[str, float] = field(default_factory=lambda: {"labour": 0.2})
    default_activity: float = 0.3

    def __post_init__(self) -> None:
        maps = (
            ("elasticity", self.elasticity),
            ("pass_through", self.pass_through),
            ("activity", self.activity),
        )
        for name, mapping in maps:
            if not isinstance(mapping, Mapping):
                raise TypeError(f"`{name}` must map relation names to numbers")
            for key, value in mapping.items():
                _check_number(f"{name}[{key!r}]", value, unit=name == "pass_through")
        _check_number("default_elasticity", self.default_elasticity)
        _check_number("default_pass_through", self.default_pass_through, unit=True)
        _check_number("labour_persistence", self.labour_persistence, unit=True)
        _check_number("default_activity", self.default_activity)

    def eta(self, name: str) -> float:
        return 1.0 if name == "goods" else float(self.activity.get(name, self.default_activity))

    def theta(self, name: str) -> float:
        return float(self.elasticity.get(name, self.default_elasticity))

    def rho(self, name: str) -> float:
        return float(self.pass_through.get(name, self.default_pass_through))


def _check_number(name: str, value: object, *, unit: bool = False) -> None:
    """A finite number ``>= 0`` (in ``[0, 1]`` when ``unit``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__}")
    if not (math.isfinite(value) and value >= 0 and (value <= 1 or not unit)):
        raise ValueError(
            f"`{name}` must be {'in [0, 1]' if unit else 'finite and >= 0'}, got {value}"
        )


MAX_STEPS = 100_000
"""The most steps :func:`simulate` runs (far past convergence: every level moves by a
geometric factor per step)."""


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class SimulationResult(NamedTuple):
    """Trajectories of a simulation with ``T`` steps over ``N`` agents and ``K`` relations.

    Attributes:
        output: ``[T + 1, N]`` output :math:`y_i(t)` (the ``goods`` supply level).
        supply: ``[T + 1, N, K]`` supply levels :math:`p^r_i(t)`.
    """

    output: Tensor
    supply: Tensor


def random_shocks(
    num_nodes: int,
    num_relations: int,
    *,
    density: float = 0.1,
    max_size: float = 0.8,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Sparse random shocks ``[N, K]``: each entry is hit with probability ``density`` and
    then uniform in ``(0, max_size]``.

    Args:
        num_nodes, num_relations: the shape.
        density (float, optional): probability that an (agent, relation) is shocked.
            (default: :obj:`0.1`)
        max_size (float, optional): largest shock, in ``(0, 1]``. (default: :obj:`0.8`)
        seed (int, optional): seed of a fresh generator (ignored when ``generator`` is given).
        generator (torch.Generator, optional): random source.
        dtype: floating dtype of the result. (default: float64)
    """
    num_nodes = check_int("num_nodes", num_nodes, 0)
    num_relations = check_int("num_relations", num_relations, 1)
    for name, value in (("density", density), ("max_size", max_size)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"`{name}` must be a float, got {type(value).__name__}")
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"`density` must be in [0, 1], got {density}")
    if not 0.0 < max_size <= 1.0:
        raise ValueError(f"`max_size` must be in (0, 1], got {max_size}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"`generator` must be a torch.Generator, got {type(generator).__name__}")
    if generator is None:
        seed = 0 if seed is None else check_int("seed", seed, 0)
        generator = torch.Generator().manual_seed(seed)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"`dtype` must be a floating torch.dtype, got {dtype!r}")
    hit = torch.rand(num_nodes, num_relations, generator=generator, dtype=torch.float64) < density
    size = max_size * (
        1.0 - torch.rand(num_nodes, num_relations, generator=generator, dtype=torch.float64)
    )  # (0, max_size]
    return (hit * size).to(dtype)


def simulate(
    data: Data,
    shocks: Tensor,
    steps: int,
    *,
    persistent: bool = True,
    dynamics: ShockDynamics | None = None,
    relation_names: Sequence[str] | None = None,
    dtype: torch.dtype = torch.float64,
) -> SimulationResult:
    """Propagate ``shocks`` through the economy ``data`` for ``steps`` steps.

    Args:
        data: an economy ``Data`` with ``edge_index`` (supplier -> customer), ``edge_type``,
            ``edge_weight`` (input shares) and ``relation_names`` (or pass them).
        shocks: ``[N, K]`` shock sizes in ``[0, 1]``, column ``r`` for relation ``r``.
        steps (int): number of steps ``0 <= T <= MAX_STEPS`` (100,000); the ``[T + 1, N, K]``
            states must also fit in the memory available.
        persistent (bool, optional): keep the shocks at every step (``True``) or apply them
            at ``t = 0`` only (impulse). (default: :obj:`True`)
        dynamics (ShockDynamics, optional): parameters. (default: ``ShockDynamics()``)
        relation_names (sequence of str, optional): names of the ``K`` relations; default
            ``data.relation_names``. One must be ``"goods"``.
        dtype: compute dtype. (default: float64)

    Returns:
        :class:`SimulationResult` with ``output`` ``[T + 1, N]`` and ``supply``
        ``[T + 1, N, K]``.
    """
    if not isinstance(data, Data):
        raise TypeError(f"`data` must be a torch_geometric.data.Data, got {type(data).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
        raise ValueError(f"`steps` must be an int in [0, {MAX_STEPS}], got {steps!r}")
    check_bool("persistent", persistent)
    if dynamics is not None and not isinstance(dynamics, ShockDynamics):
        raise TypeError(f"`dynamics` must be a ShockDynamics, got {type(dynamics).__name__}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"`dtype` must be a floating torch.dtype, got {dtype!r}")
    names = list(
        relation_names
        if relation_names is not None
        else getattr(data, "relation_names", None) or []
    )
    num_rel = len(names)
    if "goods" not in names:
        raise ValueError(f"`relation_names` must include 'goods', got {names}")
    for name in ("edge_index", "edge_type"):
        if getattr(data, name, None) is None:
            raise ValueError(f"`data` has no `{name}`; build it with economy_data or to_data")
    check_edges(data, num_rel)  # ids in range, one type and one positive weight per edge
    edge_weight = getattr(data, "edge_weight", None)
    n = int(data.num_nodes)
    check_shocks(shocks, [n, num_rel])
    available = _available_bytes()
    need = (steps + 1) * n * num_rel * torch.empty(0, dtype=dtype).element_size()
    if available is not None and need > available:
        raise ValueError(
            f"`steps` {steps} needs {need / 2**30:.1f} GiB for the [T + 1, N, K] states, more "
            f"than the {available / 2**30:.1f} GiB of memory available"
        )
    dyn = dynamics if dynamics is not None else ShockDynamics()

    src, dst = data.edge_index.long()  # (E,), (E,)
    rel = data.edge_type.long()
    weight = (
        edge_weight.to(dtype) if edge_weight is not None else torch.ones(src.numel(), dtype=dtype)
    )
    slot = dst * num_rel + rel  # flat (customer, relation) index of every edge
    # renormalise the input shares per (customer, relation) in the compute dtype, so that
    # float32 weights still give levels <= 1 (a per-customer operation: locality is kept)
    total = torch.zeros(n * num_rel, dtype=dtype).index_add_(0, slot, weight)
    weight = weight / total[slot]
    has_supplier = torch.zeros(n * num_rel, dtype=torch.bool)
    has_supplier[slot] = True
    has_supplier = has_supplier.view(n, num_rel)  # (N, K)

    goods = names.index("goods")
    theta = torch.tensor([dyn.theta(r) for r in names], dtype=dtype)  # (K,)
    rho = torch.tensor([dyn.rho(r) for r in names], dtype=dtype)  # (K,)
    eta = torch.tensor([dyn.eta(r) for r in names], dtype=dtype)  # (K,)
    is_labour = torch.tensor([r == "labour" for r in names])  # (K,)
    lam = float(dyn.labour_persistence)
    keep = 1.0 - shocks.to(dtype)  # (N, K)
    ones = torch.ones(n, num_rel, dtype=dtype)

    stacked = torch.empty(steps + 1, n, num_rel, dtype=dtype)  # (T + 1, N, K), filled in place
    stacked[0] = keep  # p(0) = 1 - sigma(0)
    for t in range(1, steps + 1):
        prev = stacked[t - 1]
        msg = weight * prev[src, rel]  # (E,)
        avail = torch.zeros(n * num_rel, dtype=dtype).index_add_(0, slot, msg).view(n, num_rel)
        avail = torch.where(has_supplier, avail, ones)  # u(t), (N, K)
        factor = keep if persistent else ones
        nxt = factor * (1.0 - rho * (1.0 - avail))  # pass-through rule, (N, K)
        labour = factor * (1.0 - lam * (1.0 - prev))
        nxt = torch.where(is_labour, labour, nxt)
        output = factor[:, goods] * avail.clamp_min(0).pow(theta).prod(dim=1)  # (N,)
        nxt = nxt * output.unsqueeze(1).pow(eta)  # activity channel, (N, K)
        nxt[:, goods] = output
        stacked[t] = nxt
    return SimulationResult(stacked[:, :, goods].clone(), stacked)
