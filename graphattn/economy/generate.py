r"""Seeded multi-tier supply-chain economies with several relation types.

An economy is a directed multigraph of agents. Every edge points from the **supplier** of a
resource to its **customer** (``edge_index[0]`` = supplier, ``edge_index[1]`` = customer), so
PyG's ``source_to_target`` message passing moves information downstream, the way shocks travel.

Agents sit in tiers (default: ``raw -> supplier -> manufacturer -> retailer -> consumer``; the last
tier are households). Relation types, each with its own edges:

- ``goods``: from tier ``t - 1`` to tier ``t`` (tiers ``>= 1``), plus *cross-links*: with
  probability ``cross_link_prob`` a supplier slot skips tiers (any tier ``< t - 1``) or is
  lateral (same tier ``t``, never a self-loop).
- ``capital``: credit from lenders in any firm tier to firms (trade credit, internal capital
  markets); large agents lend more.
- ``labour``: from households (the last tier) to firms of every tier; large firms hire more.
- further relations (``energy``, ``services``, ``data``, ...; ``num_relations > 3``): to agents
  of tier ``>= 1`` from agents of the same or a lower tier.

Heavy-tailed degrees come from fitness-based preferential attachment (the "static model" of
Goh, Kahng & Kim, 2001): each agent gets a Pareto-distributed attractiveness per relation, and
suppliers are drawn with probability proportional to it, which gives power-law out-degrees
without a sequential loop. In-degrees grow with the agent's (log-normal) size. Everything is
vectorised with numpy; networkx (the ``economy`` extra) is needed only for the
``MultiDiGraph`` form (:mod:`graphattn.economy.convert`), which :func:`economy_data` skips.

Edge weights are **input shares**: for every customer and relation they are positive and sum to
1 over that customer's suppliers on that relation (the technical coefficients of an
input-output table, normalised per input type).

>>> from graphattn.economy import supply_chain_economy, to_data, from_data
>>> g = supply_chain_economy(60, num_relations=3, seed=0)
>>> sorted({r for _, _, r in g.edges(data="relation")})
['capital', 'goods', 'labour']
>>> data = to_data(g)
>>> data.edge_type.max().item() + 1, data.num_nodes
(3, 60)
>>> h = from_data(data)
>>> h.number_of_edges() == g.number_of_edges()
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch_geometric.data import Data

__all__ = ["DEFAULT_TIERS", "RELATION_NAMES", "EconomyArrays", "economy_arrays", "economy_data"]

#: The default tiers of a generated economy, upstream first (the last are households).
DEFAULT_TIERS: tuple[str, ...] = ("raw", "supplier", "manufacturer", "retailer", "consumer")
DEFAULT_TIER_SHARES: tuple[float, ...] = (0.10, 0.15, 0.15, 0.20, 0.40)
#: Names of the relation types, by id: an economy with ``K`` relations uses the first ``K``
#: (``relation<k>`` beyond these).
RELATION_NAMES: tuple[str, ...] = (
    "goods",
    "capital",
    "labour",
    "energy",
    "services",
    "data",
    "logistics",
    "insurance",
)


@dataclass
class EconomyArrays:
    """The raw arrays of a generated economy (no networkx, no torch).

    Attributes:
        tier: ``[N]`` int64 tier of every agent (0 = most upstream).
        size: ``[N]`` float64 agent size (log-normal, mean about 1).
        src, dst: ``[E]`` int64 supplier and customer of every edge.
        rel: ``[E]`` int64 relation type of every edge.
        weight: ``[E]`` float64 input share; sums to 1 per (customer, relation).
        tier_names, relation_names: names of the tiers and relations.
    """

    tier: np.ndarray
    size: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    rel: np.ndarray
    weight: np.ndarray
    tier_names: tuple[str, ...]
    relation_names: tuple[str, ...]

    @property
    def num_nodes(self) -> int:
        return int(self.tier.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.src.shape[0])


def _relation_names(num_relations: int) -> tuple[str, ...]:
    names = list(RELATION_NAMES[:num_relations])
    names += [f"relation{r}" for r in range(len(names), num_relations)]
    return tuple(names)


def _tier_counts(num_agents: int, shares: np.ndarray) -> np.ndarray:
    counts = np.maximum(1, np.floor(shares * num_agents).astype(np.int64))
    counts[-1] += num_agents - counts.sum()  # households absorb the rounding
    if counts[-1] < 1:
        raise ValueError(f"`num_agents` ({num_agents}) is too small for the tier shares")
    return counts


def _draw_suppliers(
    rng: np.random.Generator,
    customers: np.ndarray,
    slot_tier: np.ndarray,
    members: list[np.ndarray],
    fitness: np.ndarray,
) -> np.ndarray:
    """For each slot (customer, tier), pick one supplier of that tier with P ~ fitness."""
    src = np.empty_like(customers)
    for t, pool in enumerate(members):
        mask = slot_tier == t
        count = int(mask.sum())
        if count == 0:
            continue
        p = fitness[pool]
        src[mask] = rng.choice(pool, size=count, p=p / p.sum())
    return src


def economy_arrays(
    num_agents: int,
    *,
    num_relations: int = 3,
    tiers: Sequence[str] = DEFAULT_TIERS,
    tier_shares: Sequence[float] | None = None,
    mean_degree: float = 3.0,
    cross_link_prob: float = 0.15,
    pareto_shape: float = 1.5,
    seed: int = 0,
) -> EconomyArrays:
    """Generate an economy as numpy arrays; see the module docstring for the model.

    Args:
        num_agents (int): number of agents (at least ``2 * len(tiers)``).
        num_relations (int, optional): number of relation types ``K >= 1``; the first are
            ``goods``, ``capital``, ``labour``. (default: :obj:`3`)
        tiers (sequence of str, optional): tier names, upstream first; the last tier are
            households, which supply labour. (default: :obj:`DEFAULT_TIERS`)
        tier_shares (sequence of float, optional): fraction of agents per tier; default
            ``(0.10, 0.15, 0.15, 0.20, 0.40)`` for five tiers, otherwise equal shares.
        mean_degree (float, optional): mean number of suppliers of a customer per relation
            (at least 1). (default: :obj:`3.0`)
        cross_link_prob (float, optional): probability that a goods supplier slot skips tiers
            or links laterally within the tier. (default: :obj:`0.15`)
        pareto_shape (float, optional): shape :math:`\\beta` of the Pareto attractiveness
            (:math:`P(f > x) = x^{-\\beta}`, :math:`x \\ge 1`), which out-degrees inherit:
            smaller means a heavier tail; :math:`\\beta \\in (1, 2)` gives a finite mean and
            an infinite variance of out-degrees. ``math.inf`` is the light-tailed limit: every
            attractiveness is 1, so suppliers are drawn uniformly (``capital``: in proportion
            to size) and out-degrees are Poisson-like; the random stream is the same as for a
            finite shape, so tiers, sizes and supplier slots do not change. (default: :obj:`1.5`)
        seed (int, optional): random seed; equal seeds give equal economies.
            (default: :obj:`0`)
    """
    if isinstance(num_agents, bool) or not isinstance(num_agents, (int, np.integer)):
        raise TypeError(f"`num_agents` must be an int, got {type(num_agents).__name__}")
    if isinstance(num_relations, bool) or not isinstance(num_relations, (int, np.integer)):
        raise TypeError(f"`num_relations` must be an int, got {type(num_relations).__name__}")
    if num_relations < 1:
        raise ValueError(f"`num_relations` must be >= 1, got {num_relations}")
    if isinstance(tiers, str) or not isinstance(tiers, Sequence):
        raise TypeError(f"`tiers` must be a sequence of tier names, got {type(tiers).__name__}")
    tiers = tuple(str(t) for t in tiers)
    if len(tiers) < 2:
        raise ValueError(f"`tiers` needs at least 2 tiers, got {len(tiers)}")
    if num_agents < 2 * len(tiers):
        raise ValueError(
            f"`num_agents` must be >= 2 * len(tiers) = {2 * len(tiers)}, got {num_agents}"
        )
    if tier_shares is None:
        shares = (
            np.asarray(DEFAULT_TIER_SHARES)
            if len(tiers) == len(DEFAULT_TIER_SHARES)
            else np.full(len(tiers), 1.0 / len(tiers))
        )
    else:
        shares = np.asarray(tier_shares, dtype=np.float64)
        if shares.shape != (len(tiers),) or not (np.isfinite(shares) & (shares > 0)).all():
            raise ValueError(
                f"`tier_shares` must hold {len(tiers)} positive numbers, got {tier_shares}"
            )
        shares = shares / shares.sum()
    for name, value in (
        ("mean_degree", mean_degree),
        ("cross_link_prob", cross_link_prob),
        ("pareto_shape", pareto_shape),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"`{name}` must be a number, got {type(value).__name__}")
    if not 1.0 <= mean_degree < np.inf:
        raise ValueError(f"`mean_degree` must be finite and >= 1, got {mean_degree}")
    if not 0.0 <= cross_link_prob <= 1.0:
        raise ValueError(f"`cross_link_prob` must be in [0, 1], got {cross_link_prob}")
    if not pareto_shape > 0:
        raise ValueError(f"`pareto_shape` must be > 0, got {pareto_shape}")

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"`seed` must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng(seed)
    num_tiers = len(tiers)
    counts = _tier_counts(int(num_agents), shares)
    tier = np.repeat(np.arange(num_tiers), counts)  # agents are numbered tier by tier
    n = tier.shape[0]
    starts = np.concatenate([[0], np.cumsum(counts)])
    members = [np.arange(starts[t], starts[t + 1]) for t in range(num_tiers)]
    size = rng.lognormal(mean=-0.5, sigma=1.0, size=n)  # mean exp(0) = 1
    household = num_tiers - 1
    firms = np.flatnonzero(tier < household)

    def num_slots(customers: np.ndarray, scale: float) -> np.ndarray:
        # at least one supplier; more for larger customers (a long tail of in-degrees)
        lam = (mean_degree - 1.0) * scale * size[customers] / size.mean()
        return 1 + rng.poisson(np.minimum(lam, 10 * mean_degree))

    srcs, dsts, rels = [], [], []
    for r in range(num_relations):
        # heavy-tailed attractiveness; inf: all 1 (the same draws are made, so the random
        # stream, and with it every other part of the economy, stays as for a finite shape)
        draw = rng.pareto(pareto_shape if np.isfinite(pareto_shape) else 1.0, size=n)
        fitness = draw + 1.0 if np.isfinite(pareto_shape) else np.ones(n)
        if r == 0:  # goods: tier t-1 -> t, plus skip-tier and lateral cross-links
            customers = np.flatnonzero(tier >= 1)
            m = num_slots(customers, 1.0)
            cust = np.repeat(customers, m)
            slot_tier = tier[cust] - 1
            cross = rng.random(cust.shape[0]) < cross_link_prob
            # a cross-link goes to a uniform tier in [0, t] other than t - 1
            other = rng.integers(0, tier[cust])  # [0, t - 1)
            other = np.where(other == tier[cust] - 1, tier[cust], other)
            other = np.where(rng.random(cust.shape[0]) < 0.5, tier[cust], other)
            slot_tier = np.where(cross, other, slot_tier)
            # households buy from retailers only; no lateral household links
            slot_tier = np.where(tier[cust] == household, household - 1, slot_tier)
        elif r == 1:  # capital: firms borrow from lenders in any firm tier, big ones lend
            fitness = fitness * size
            cust = np.repeat(firms, num_slots(firms, 0.5))
            slot_tier = tier[rng.choice(firms, size=cust.shape[0])]
        elif r == 2:  # labour: households -> firms, big firms hire more
            cust = np.repeat(firms, num_slots(firms, 1.5))
            slot_tier = np.full(cust.shape[0], household)
        else:  # other inputs: from the same or a lower tier
            customers = np.flatnonzero(tier >= 1)
            cust = np.repeat(customers, num_slots(customers, 1.0))
            slot_tier = (rng.random(cust.shape[0]) * (tier[cust] + 1)).astype(np.int64)
        src = _draw_suppliers(rng, cust, slot_tier, members, fitness)
        keep = src != cust
        srcs.append(src[keep])
        dsts.append(cust[keep])
        rels.append(np.full(int(keep.sum()), r, dtype=np.int64))

    src = np.concatenate(srcs).astype(np.int64)
    dst = np.concatenate(dsts).astype(np.int64)
    rel = np.concatenate(rels)
    # a (supplier, customer, relation) triple appears once; sort by relation, customer, supplier
    key = (rel * n + dst) * n + src
    key = np.unique(key)
    src, dst, rel = key % n, (key // n) % n, key // (n * n)

    raw = np.sqrt(size[src]) * rng.lognormal(0.0, 0.5, size=src.shape[0])
    group = rel * n + dst
    _, inverse = np.unique(group, return_inverse=True)
    weight = raw / np.bincount(inverse, weights=raw)[inverse]
    return EconomyArrays(tier, size, src, dst, rel, weight, tiers, _relation_names(num_relations))


def economy_data(num_agents: int, *, dtype: torch.dtype = torch.float32, **kwargs) -> Data:
    """A seeded economy directly as a PyG ``Data`` (no networkx; fast for 100k+ agents).

    Equal to ``to_data(supply_chain_economy(num_agents, **kwargs), dtype=dtype)``.

    >>> data = economy_data(50, num_relations=3, seed=2)
    >>> data.edge_index.shape[0], data.x.shape[1]
    (2, 6)
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"`dtype` must be a floating torch.dtype, got {dtype!r}")
    arrays = economy_arrays(num_agents, **kwargs)
    return _build_data(
        arrays.tier,
        arrays.size,
        arrays.src,
        arrays.dst,
        arrays.rel,
        arrays.weight,
        arrays.tier_names,
        arrays.relation_names,
        dtype=dtype,
    )


def _build_data(
    tier: np.ndarray,
    size: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    rel: np.ndarray,
    weight: np.ndarray,
    tier_names: Sequence[str],
    relation_names: Sequence[str],
    *,
    dtype: torch.dtype,
    node_names: list | None = None,
) -> Data:
    # (the node size is stored as ``agent_size``: ``Data.size`` is a method)
    num_tiers = len(tier_names)
    tier_t = torch.as_tensor(tier, dtype=torch.long)
    size_t = torch.as_tensor(size, dtype=torch.float64)
    # features: one-hot tier, log size  -> [N, num_tiers + 1]
    x = torch.cat(
        [
            torch.nn.functional.one_hot(tier_t, num_tiers).to(dtype),
            size_t.log().to(dtype).unsqueeze(1),
        ],
        dim=1,
    )
    data = Data(
        x=x,
        edge_index=torch.stack(
            [torch.as_tensor(src, dtype=torch.long), torch.as_tensor(dst, dtype=torch.long)]
        ),  # (2, E)
        edge_type=torch.as_tensor(rel, dtype=torch.long),
        edge_weight=torch.as_tensor(weight, dtype=torch.float64).to(dtype),
        tier=tier_t,
        agent_size=size_t.to(dtype),
        num_nodes=int(tier_t.shape[0]),
    )
    data.tier_names = list(tier_names)
    data.relation_names = list(relation_names)
    if node_names is not None:
        data.node_names = list(node_names)
    return data
