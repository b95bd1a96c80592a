r"""Named shock scenarios, hop distances and losses per tier: what a user asks of an economy.

A :class:`Scenario` holds the ``[N, K]`` shocks that :func:`~graphattn.economy.simulate` takes
and the agents where they originate. The named scenarios (:data:`SCENARIOS`):

- ``supplier-failure``: the largest goods supplier of a tier fails (shock 1 on every relation);
  "largest" is :func:`supplier_reach`, the sum of the input shares it delivers, i.e. how many
  customers' worth of inputs depend on it;
- ``credit-crunch``: the largest lenders (by their reach on ``capital``; 1 % of firms, at least
  one) tighten credit by half;
- ``labour-shortage``: a random fifth of households lose half of their labour;
- ``random-failures``: a random 1 % of firms (at least one) fail.

:func:`custom_scenario` builds one from ``(agent, relation, size)`` triples.

Losses are relative to the pre-shock steady state, where every level is 1: agent :math:`i`
loses :math:`1 - y_i(t)` at step :math:`t`. :func:`aggregate_loss` and :func:`tier_losses`
weight agents by size (their steady-state scale),
:math:`X(t) = \sum_i s_i (1 - y_i(t)) / \sum_i s_i`.

>>> import torch
>>> from graphattn.economy import economy_data, simulate
>>> data = economy_data(200, num_relations=3, seed=0, dtype=torch.float64)
>>> sc = scenario(data, "supplier-failure", tier="manufacturer")
>>> sc.origin.tolist() == [largest_supplier(data, "manufacturer")]
True
>>> res = simulate(data, sc.shocks, steps=4)
>>> loss = tier_losses(data, res.output)  # [steps + 1, tiers]
>>> bool(loss[0, 0] == 0 and loss[1, 3] > 0)  # raw producers are upstream; retailers get hit
True
>>> hops = hop_distance(data, sc.origin)
>>> int(hops[sc.origin[0]]), bool(((hops > 0) & (hops <= 4)).any())
(0, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import Data

from .._checks import check_int
from ._validate import check_edges

__all__ = [
    "SCENARIOS",
    "Scenario",
    "aggregate_loss",
    "custom_scenario",
    "hop_distance",
    "largest_supplier",
    "scenario",
    "supplier_reach",
    "tier_losses",
]

#: The named scenarios :func:`scenario` builds (described at the top of this module).
SCENARIOS: tuple[str, ...] = (
    "supplier-failure",
    "credit-crunch",
    "labour-shortage",
    "random-failures",
)


@dataclass(frozen=True)
class Scenario:
    """Shocks to simulate and where they start.

    Attributes:
        name: the scenario's name.
        description: one line saying who is hit and how hard.
        shocks: ``[N, K]`` float64 shocks in ``[0, 1]``, column ``r`` for relation ``r``.
        origin: int64 agents with a non-zero shock (sorted).
    """

    name: str
    description: str
    shocks: Tensor
    origin: Tensor


def _check_data(data: Data) -> list[str]:
    if not isinstance(data, Data):
        raise TypeError(f"`data` must be a torch_geometric.data.Data, got {type(data).__name__}")
    for name in ("edge_index", "edge_type", "tier"):
        if getattr(data, name, None) is None:
            raise ValueError(f"`data` has no `{name}`; build it with economy_data or to_data")
    names = list(getattr(data, "relation_names", None) or [])
    if not names:
        raise ValueError("`data` has no `relation_names`; build it with economy_data or to_data")
    check_edges(data, len(names))
    return names


def _tier_index(data: Data, tier: int | str) -> int:
    tier_names = list(getattr(data, "tier_names", None) or [])
    num_tiers = len(tier_names) or int(data.tier.max()) + 1
    if isinstance(tier, str):
        if tier not in tier_names:
            raise ValueError(f"`tier` {tier!r} is not one of the economy's tiers {tier_names}")
        return tier_names.index(tier)
    if isinstance(tier, bool) or not isinstance(tier, int) or not 0 <= tier < num_tiers:
        raise ValueError(f"`tier` must be a tier name or an int in [0, {num_tiers}), got {tier!r}")
    return tier


def _relation_index(names: Sequence[str], relation: int | str) -> int:
    if isinstance(relation, str):
        if relation not in names:
            raise ValueError(f"`relation` {relation!r} is not one of the relations {names}")
        return names.index(relation)
    if isinstance(relation, bool) or not isinstance(relation, int):
        raise TypeError(f"`relation` must be a name or an int, got {type(relation).__name__}")
    if not 0 <= relation < len(names):
        raise ValueError(f"`relation` must be in [0, {len(names)}), got {relation}")
    return relation


def supplier_reach(data: Data, relation: str = "goods") -> Tensor:
    r"""The sum of the input shares every agent delivers on ``relation``, float64 ``[N]``:
    :math:`\sum_{i} w^r_{ji}` over its customers :math:`i`, i.e. how many customers' worth of
    that input depend on agent :math:`j` (0 for agents that supply nothing on it)."""
    names = _check_data(data)
    r = _relation_index(names, relation)
    n = int(data.num_nodes)
    keep = data.edge_type == r
    src, dst = data.edge_index[:, keep]
    weight = getattr(data, "edge_weight", None)
    w = (
        weight[keep].double()
        if weight is not None
        else torch.ones(src.numel(), dtype=torch.float64)
    )
    total = torch.zeros(n, dtype=torch.float64).index_add_(0, dst, w)
    w = w / total[dst]  # shares per customer sum to 1, as in simulate
    return torch.zeros(n, dtype=torch.float64).index_add_(0, src, w)


def largest_supplier(data: Data, tier: int | str, relation: str = "goods") -> int:
    """The agent of ``tier`` (a name or index) with the largest :func:`supplier_reach` on
    ``relation`` (the lowest index among ties)."""
    t = _tier_index(data, tier)
    reach = supplier_reach(data, relation)
    members = (data.tier == t).nonzero().flatten()
    if reach[members].max() <= 0:
        raise ValueError(f"no agent of tier {tier!r} supplies anything on {relation!r}")
    return int(members[reach[members].argmax()])


def _top(values: Tensor, candidates: Tensor, count: int) -> Tensor:
    # the `count` candidates with the largest values (stable: lower index first among ties)
    order = torch.argsort(-values[candidates], stable=True)
    return candidates[order[:count]]


def _random_subset(candidates: Tensor, share: float, seed: int) -> Tensor:
    count = max(1, round(share * candidates.numel()))
    perm = torch.randperm(candidates.numel(), generator=torch.Generator().manual_seed(seed))
    return candidates[perm[:count]]


def _check_fraction(name: str, value: float, *, open_low: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__}")
    if not (0.0 < value <= 1.0):
        raise ValueError(f"`{name}` must be in (0, 1], got {value}")
    return float(value)


def scenario(
    data: Data,
    name: str,
    *,
    tier: int | str = "supplier",
    severity: float | None = None,
    share: float | None = None,
    seed: int = 0,
) -> Scenario:
    """One of the named scenarios of :data:`SCENARIOS` on ``data``.

    Args:
        data: an economy ``Data`` (``economy_data`` or ``to_data``).
        name (str): ``"supplier-failure"``, ``"credit-crunch"``, ``"labour-shortage"`` or
            ``"random-failures"``.
        tier (int or str, optional): the tier whose largest supplier fails
            (``supplier-failure`` only). (default: :obj:`"supplier"`)
        severity (float, optional): the shock size in ``(0, 1]``; default 1 (failure) for
            ``supplier-failure`` and ``random-failures``, 0.5 for the others.
        share (float, optional): the share of agents hit in ``(0, 1]``: of firms for
            ``credit-crunch`` (the largest lenders; default 0.01) and ``random-failures``
            (default 0.01), of households for ``labour-shortage`` (default 0.2).
        seed (int, optional): the seed of the random choices. (default: :obj:`0`)
    """
    names = _check_data(data)
    check_int("seed", seed, 0)
    if name not in SCENARIOS:
        raise ValueError(f"`name`: unknown scenario {name!r}; expected one of {SCENARIOS}")
    default_severity = 1.0 if name in ("supplier-failure", "random-failures") else 0.5
    sev = _check_fraction("severity", default_severity if severity is None else severity)
    n, k = int(data.num_nodes), len(names)
    tier_names = list(getattr(data, "tier_names", None) or [])
    household = int(data.tier.max())
    firms = (data.tier < household).nonzero().flatten()
    shocks = torch.zeros(n, k, dtype=torch.float64)
    if name == "supplier-failure":
        agent = largest_supplier(data, tier)
        reach = float(supplier_reach(data)[agent])
        t = int(data.tier[agent])
        tier_name = tier_names[t] if tier_names else str(t)
        origin = torch.tensor([agent])
        shocks[origin] = sev
        what = "fails" if sev == 1.0 else f"loses {sev:.0%} of everything it supplies"
        description = (
            f"the largest {tier_name} (agent {agent}, {reach:.1f} customers' worth of goods) {what}"
        )
    elif name == "credit-crunch":
        r = _relation_index(names, "capital")
        frac = _check_fraction("share", 0.01 if share is None else share)
        origin = _top(supplier_reach(data, "capital"), firms, max(1, round(frac * firms.numel())))
        shocks[origin, r] = sev
        description = (
            f"the {origin.numel()} largest lenders ({frac:.1%} of firms) cut credit by {sev:.0%}"
        )
    elif name == "labour-shortage":
        r = _relation_index(names, "labour")
        frac = _check_fraction("share", 0.2 if share is None else share)
        households = (data.tier == household).nonzero().flatten()
        origin = _random_subset(households, frac, seed)
        shocks[origin, r] = sev
        description = (
            f"{origin.numel()} random households ({frac:.0%}) lose {sev:.0%} of their labour"
        )
    else:  # random-failures
        frac = _check_fraction("share", 0.01 if share is None else share)
        origin = _random_subset(firms, frac, seed)
        shocks[origin] = sev
        what = "fail" if sev == 1.0 else f"lose {sev:.0%} of everything they supply"
        description = f"{origin.numel()} random firms ({frac:.0%}) {what}"
    return Scenario(name, description, shocks, origin.sort().values)


def custom_scenario(
    data: Data, shocks: Iterable[tuple[int, int | str, float]], name: str = "custom"
) -> Scenario:
    """A scenario from ``(agent, relation, size)`` triples, e.g. ``[(12, "goods", 0.5)]``.

    Args:
        data: the economy.
        shocks: triples of an agent index, a relation (name or index) and a size in
            ``[0, 1]``; a later triple for the same agent and relation replaces an earlier one.
        name (str, optional): the scenario's name. (default: :obj:`"custom"`)
    """
    names = _check_data(data)
    n = int(data.num_nodes)
    out = torch.zeros(n, len(names), dtype=torch.float64)
    parts = []
    for triple in shocks:
        if not isinstance(triple, (tuple, list)) or len(triple) != 3:
            raise ValueError(f"every shock must be (agent, relation, size), got {triple!r}")
        agent, relation, size = triple
        if isinstance(agent, bool) or not isinstance(agent, int) or not 0 <= agent < n:
            raise ValueError(f"shock agent must be an int in [0, {n}), got {agent!r}")
        r = _relation_index(names, relation)
        if isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 <= size <= 1:
            raise ValueError(f"shock size must be a number in [0, 1], got {size!r}")
        out[agent, r] = float(size)
        parts.append(f"agent {agent} {names[r]} {float(size):g}")
    if not parts:
        raise ValueError("`shocks` is empty: give at least one (agent, relation, size)")
    origin = (out > 0).any(dim=1).nonzero().flatten()
    return Scenario(name, "shocks: " + ", ".join(parts), out, origin)


def hop_distance(data: Data, sources: Tensor | Sequence[int], *, max_hops: int | None = None):
    """Downstream hop distance of every agent from the nearest of ``sources``, int64 ``[N]``.

    Hops follow edges supplier -> customer on every relation, the way shocks travel: an agent
    at distance ``d`` is first reached at step ``d`` of the simulation. Agents that cannot be
    reached (or are farther than ``max_hops``) get ``-1``.
    """
    _check_data(data)
    n = int(data.num_nodes)
    sources = torch.as_tensor(sources)
    if sources.is_floating_point() or sources.is_complex() or sources.dtype == torch.bool:
        raise TypeError(f"`sources` must hold agent ids (integers), got dtype {sources.dtype}")
    sources = sources.long().flatten()
    if sources.numel() and (sources.min() < 0 or sources.max() >= n):
        raise ValueError(f"`sources` must be agent indices in [0, {n})")
    if max_hops is not None:
        check_int("max_hops", max_hops, 0)
    src, dst = data.edge_index
    dist = torch.full((n,), -1, dtype=torch.long)
    dist[sources] = 0
    frontier = torch.zeros(n, dtype=torch.bool)
    frontier[sources] = True
    hops = 0
    while frontier.any() and (max_hops is None or hops < max_hops):
        hops += 1
        reached = torch.zeros(n, dtype=torch.bool)
        reached[dst[frontier[src]]] = True
        frontier = reached & (dist < 0)
        dist[frontier] = hops
    return dist


def _losses(data: Data, output: Tensor) -> tuple[Tensor, Tensor]:
    n = int(data.num_nodes)
    if not isinstance(output, Tensor) or output.dim() not in (1, 2) or output.shape[-1] != n:
        shape = list(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(f"`output` must have shape [T + 1, {n}] or [{n}], got {shape}")
    size = getattr(data, "agent_size", None)
    size = size.double() if size is not None else torch.ones(n, dtype=torch.float64)
    return 1.0 - output.double(), size


def aggregate_loss(data: Data, output: Tensor) -> Tensor:
    r"""The size-weighted output loss :math:`\sum_i s_i (1 - y_i) / \sum_i s_i` of every step:
    ``output`` ``[T + 1, N]`` (``simulate(...).output``) -> ``[T + 1]``, or ``[N]`` -> ``[]``."""
    loss, size = _losses(data, output)
    return loss @ size / size.sum()


def tier_losses(data: Data, output: Tensor) -> Tensor:
    """The size-weighted output loss of every tier and step: ``output`` ``[T + 1, N]`` ->
    ``[T + 1, num_tiers]`` (``[N]`` -> ``[num_tiers]``)."""
    _check_data(data)
    loss, size = _losses(data, output)
    num_tiers = len(getattr(data, "tier_names", None) or []) or int(data.tier.max()) + 1
    total = torch.zeros(num_tiers, dtype=torch.float64).index_add_(0, data.tier, size)
    weighted = torch.zeros(*loss.shape[:-1], num_tiers, dtype=torch.float64)
    weighted.index_add_(loss.dim() - 1, data.tier, loss * size)
    return weighted / total.clamp_min(torch.finfo(torch.float64).tiny)
