"""Named shock scenarios, hop distances and losses per tier."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import torch

from graphattn.economy import (
    SCENARIOS,
    aggregate_loss,
    custom_scenario,
    economy_arrays,
    economy_data,
    from_data,
    hop_distance,
    largest_supplier,
    scenario,
    simulate,
    supplier_reach,
    tier_losses,
)


@pytest.fixture(scope="module")
def economy():
    return economy_data(400, num_relations=3, seed=11, dtype=torch.float64)


def _reach_by_hand(data, relation: int) -> np.ndarray:
    reach = np.zeros(data.num_nodes)
    src = data.edge_index[0].tolist()
    for u, r, w in zip(src, data.edge_type.tolist(), data.edge_weight.tolist(), strict=True):
        if r == relation:
            reach[u] += w  # shares already sum to 1 per customer and relation
    return reach


def test_supplier_reach_and_largest_supplier(economy):
    for r, name in enumerate(economy.relation_names):
        np.testing.assert_allclose(
            supplier_reach(economy, name).numpy(), _reach_by_hand(economy, r), atol=1e-12
        )
    reach = _reach_by_hand(economy, 0)
    for t, tier in enumerate(economy.tier_names[:-1]):  # households supply no goods
        members = np.flatnonzero(economy.tier.numpy() == t)
        best = members[np.argmax(reach[members])]
        assert largest_supplier(economy, tier) == largest_supplier(economy, t) == best


def test_named_scenarios(economy):
    n, household = economy.num_nodes, economy.tier.max().item()
    firms = (economy.tier < household).nonzero().flatten()
    tier = economy.tier
    for name in SCENARIOS:
        sc = scenario(economy, name, seed=3)
        assert sc.name == name and sc.shocks.shape == (n, 3) and sc.shocks.dtype == torch.float64
        hit = (sc.shocks > 0).any(1).nonzero().flatten()
        assert torch.equal(hit, sc.origin) and sc.description
    fail = scenario(economy, "supplier-failure", tier="manufacturer")
    assert fail.origin.tolist() == [largest_supplier(economy, "manufacturer")]
    assert (fail.shocks[fail.origin] == 1).all()
    crunch = scenario(economy, "credit-crunch")
    capital = supplier_reach(economy, "capital")
    count = max(1, round(0.01 * firms.numel()))
    assert crunch.origin.numel() == count
    assert (capital[crunch.origin].min() >= capital[firms].sort().values[-count]).item()
    assert (crunch.shocks[:, [0, 2]] == 0).all() and (crunch.shocks[crunch.origin, 1] == 0.5).all()
    labour = scenario(economy, "labour-shortage", share=0.5, severity=0.3, seed=1)
    assert (tier[labour.origin] == household).all()
    assert labour.origin.numel() == round(0.5 * (tier == household).sum().item())
    assert (labour.shocks[labour.origin, 2] == 0.3).all() and labour.shocks[:, :2].eq(0).all()
    rand = scenario(economy, "random-failures", seed=1)
    assert (tier[rand.origin] < household).all() and rand.origin.numel() == count
    # seeded: the same seed gives the same agents, another seed others
    assert torch.equal(rand.origin, scenario(economy, "random-failures", seed=1).origin)
    assert not torch.equal(rand.origin, scenario(economy, "random-failures", seed=2).origin)


def test_custom_scenario(economy):
    sc = custom_scenario(economy, [(5, "goods", 0.5), (7, 1, 0.25), (5, "goods", 0.75)])
    assert sc.origin.tolist() == [5, 7]
    assert sc.shocks[5, 0].item() == 0.75 and sc.shocks[7, 1].item() == 0.25
    assert sc.shocks.sum().item() == 1.0


def test_hop_distance_matches_networkx(economy):
    sources = [3, 50, 120]
    g = nx.DiGraph(from_data(economy))
    lengths = nx.multi_source_dijkstra_path_length(g, set(sources), weight=lambda *_: 1)
    expected = [lengths.get(v, -1) for v in range(economy.num_nodes)]
    assert hop_distance(economy, torch.tensor(sources)).tolist() == expected
    capped = hop_distance(economy, sources, max_hops=1)
    assert capped.tolist() == [d if d <= 1 else -1 for d in expected]


def test_shocks_reach_agents_no_sooner_than_their_hop_distance(economy):
    sc = scenario(economy, "supplier-failure", tier="raw")
    res = simulate(economy, sc.shocks, 5)
    loss = 1.0 - res.output
    hops = hop_distance(economy, sc.origin)
    # (shares summing to 1 up to rounding leave unshocked agents within 1e-15 of 1)
    assert (loss[:, hops < 0].abs() < 1e-14).all()  # never reached: never hit
    for t in range(6):
        assert (loss[t, hops > t].abs() < 1e-14).all()  # not yet reached
        assert (loss[t, hops == t] > 1e-3).any()  # the front of the cascade


def test_tier_and_aggregate_losses(economy):
    out = 1.0 - torch.rand(3, economy.num_nodes, dtype=torch.float64)
    size, tier = economy.agent_size, economy.tier
    by_tier = tier_losses(economy, out)
    assert by_tier.shape == (3, len(economy.tier_names))
    for t in range(len(economy.tier_names)):
        m = tier == t
        expected = ((1 - out[:, m]) * size[m]).sum(1) / size[m].sum()
        torch.testing.assert_close(by_tier[:, t], expected)
    share = torch.zeros(len(economy.tier_names), dtype=torch.float64).index_add_(0, tier, size)
    total = aggregate_loss(economy, out)
    torch.testing.assert_close(total, by_tier @ (share / share.sum()))
    assert aggregate_loss(economy, out[0]).shape == ()
    torch.testing.assert_close(tier_losses(economy, out[1]), by_tier[1])


def test_light_tailed_generator_option():
    heavy = economy_arrays(3000, num_relations=1, seed=4, pareto_shape=1.2)
    light = economy_arrays(3000, num_relations=1, seed=4, pareto_shape=math.inf)
    # the same random stream: tiers and sizes are equal; only the suppliers drawn differ
    assert np.array_equal(heavy.tier, light.tier) and np.array_equal(heavy.size, light.size)
    deg_heavy = np.bincount(heavy.src, minlength=3000)
    deg_light = np.bincount(light.src, minlength=3000)
    assert deg_heavy.max() > 4 * deg_light.max()
    # a customer's tier t - 1 suppliers are uniform: out-degrees within a tier are Poisson-like
    retailers = deg_light[light.tier == 3]
    assert retailers.var() < 1.5 * retailers.mean()
    with pytest.raises(ValueError, match="pareto_shape"):
        economy_arrays(100, pareto_shape=float("nan"))


def test_bad_input(economy):
    with pytest.raises(ValueError, match="unknown scenario"):
        scenario(economy, "meteor")
    with pytest.raises(ValueError, match="tier"):
        scenario(economy, "supplier-failure", tier="bank")
    with pytest.raises(ValueError, match="tier"):
        largest_supplier(economy, 9)
    with pytest.raises(ValueError, match="no agent of tier"):
        largest_supplier(economy, "consumer")
    with pytest.raises(ValueError, match="severity"):
        scenario(economy, "credit-crunch", severity=1.5)
    with pytest.raises(ValueError, match="share"):
        scenario(economy, "random-failures", share=0.0)
    one = economy_data(60, num_relations=1, seed=0)
    with pytest.raises(ValueError, match="capital"):
        scenario(one, "credit-crunch")
    with pytest.raises(ValueError, match="agent"):
        custom_scenario(economy, [(10_000, "goods", 0.5)])
    with pytest.raises(ValueError, match="relation"):
        custom_scenario(economy, [(1, "energy", 0.5)])
    with pytest.raises(ValueError, match="size"):
        custom_scenario(economy, [(1, "goods", 2.0)])
    with pytest.raises(ValueError, match="empty"):
        custom_scenario(economy, [])
    with pytest.raises(ValueError, match="sources"):
        hop_distance(economy, [-1])
    with pytest.raises(ValueError, match="output"):
        aggregate_loss(economy, torch.ones(3, 5))
    with pytest.raises(TypeError, match="data"):
        tier_losses(None, torch.ones(3))


def test_shock_sample_holds_the_shocks_and_the_simulated_losses(economy):
    from graphattn.economy import random_shocks, shock_sample

    shocks = random_shocks(economy.num_nodes, 3, density=0.3, seed=4)
    sample = shock_sample(economy, shocks, [1, 3], persistent=False)
    output = simulate(economy, shocks, 3, persistent=False).output
    torch.testing.assert_close(sample.y, (1.0 - output[[1, 3]]).t().float())
    torch.testing.assert_close(sample.x, torch.cat([economy.x, shocks], 1).float())
    torch.testing.assert_close(sample.edge_attr[:, 0], economy.edge_weight.log().float())
    assert torch.equal(sample.edge_index, economy.edge_index) and torch.equal(
        sample.tier, economy.tier
    )
    one = shock_sample(economy, shocks, 2, dtype=torch.float64)  # persistent by default
    torch.testing.assert_close(one.y, 1.0 - simulate(economy, shocks, 2).output[2])
    assert one.y.shape == (economy.num_nodes,) and one.x.dtype == torch.float64
    for horizon, err in ((0, ValueError), ([], TypeError), ("2", TypeError), (True, TypeError)):
        with pytest.raises(err, match="horizon"):
            shock_sample(economy, shocks, horizon)
    with pytest.raises(ValueError, match="shocks"):
        shock_sample(economy, shocks[:, :2], 1)
    with pytest.raises(TypeError, match="dtype"):
        shock_sample(economy, shocks, 1, dtype=torch.long)


def test_random_scenarios_cycle_through_every_kind_and_repeat(economy):
    from graphattn.economy import random_scenarios

    first, again = random_scenarios(economy, 7, seed=3), random_scenarios(economy, 7, seed=3)
    assert [s.name for s in first] == [*SCENARIOS, "random", *SCENARIOS[:2]]
    assert all(torch.equal(a.shocks, b.shocks) for a, b in zip(first, again, strict=True))
    other = random_scenarios(economy, 7, seed=4)
    assert not all(torch.equal(a.shocks, b.shocks) for a, b in zip(first, other, strict=True))
    for sc in first:
        assert sc.shocks.shape == (economy.num_nodes, 3) and sc.origin.numel() > 0
        assert torch.equal(sc.origin, (sc.shocks > 0).any(1).nonzero().flatten())
    assert random_scenarios(economy, 0) == []
    with pytest.raises(ValueError, match="count"):
        random_scenarios(economy, -1)
