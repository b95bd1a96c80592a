"""The supply-chain economy generator: sizes, relations, direction, seeds, round trips."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from graphattn.economy import (
    DEFAULT_TIERS,
    economy_arrays,
    economy_data,
    from_data,
    supply_chain_economy,
    to_data,
)


@pytest.mark.parametrize("num_agents", [23, 97, 1031])
@pytest.mark.parametrize("num_relations", [1, 3, 5])
def test_sizes_and_relation_types(num_agents, num_relations):
    g = supply_chain_economy(num_agents, num_relations=num_relations, seed=3)
    assert g.number_of_nodes() == num_agents
    assert list(g.nodes) == list(range(num_agents))
    names = g.graph["relations"]
    assert len(names) == num_relations
    assert names[:3] == ["goods", "capital", "labour"][:num_relations]
    used = {r for _, _, r in g.edges(data="relation")}
    assert used == set(names)  # every relation type has its own edges
    for u, v, key, attrs in g.edges(keys=True, data=True):
        assert key == attrs["relation"] and u != v and attrs["weight"] > 0
    tiers = [t for _, t in g.nodes(data="tier")]
    assert set(tiers) == set(range(len(DEFAULT_TIERS)))


def test_direction_is_supplier_to_customer():
    a = economy_arrays(500, num_relations=3, seed=5)
    tier_src, tier_dst = a.tier[a.src], a.tier[a.dst]
    households = len(DEFAULT_TIERS) - 1
    goods, capital, labour = (a.rel == r for r in range(3))
    # goods flow downstream: mostly tier t-1 -> t; cross-links skip tiers or stay in the tier
    assert (tier_src[goods] <= tier_dst[goods]).all()
    assert np.mean(tier_src[goods] == tier_dst[goods] - 1) > 0.7
    assert (tier_src[goods] < tier_dst[goods] - 1).any()  # skip-tier cross-links exist
    # raw producers buy no goods; households buy goods from retailers only
    assert not (goods & (tier_dst == 0)).any()
    assert (tier_src[goods & (tier_dst == households)] == households - 1).all()
    # labour goes from households to firms; capital between firms
    assert (tier_src[labour] == households).all() and (tier_dst[labour] < households).all()
    assert (tier_src[capital] < households).all() and (tier_dst[capital] < households).all()
    data = economy_data(500, num_relations=3, seed=5)
    assert torch.equal(data.edge_index[0], torch.from_numpy(a.src))  # row 0 = supplier
    assert torch.equal(data.edge_index[1], torch.from_numpy(a.dst))


def test_weights_are_input_shares():
    a = economy_arrays(400, num_relations=4, seed=7)
    total = {}
    for d, r, w in zip(a.dst.tolist(), a.rel.tolist(), a.weight.tolist(), strict=True):
        total[d, r] = total.get((d, r), 0.0) + w
    assert np.allclose(list(total.values()), 1.0)


def test_heavy_tailed_out_degrees():
    a = economy_arrays(20_000, num_relations=3, seed=0)
    out_deg = np.bincount(a.src, minlength=a.num_nodes)
    # preferential attachment: the busiest supplier serves far more than the mean
    assert out_deg.max() > 20 * out_deg[out_deg > 0].mean()


def test_reproducible_with_seed():
    a = economy_data(300, num_relations=4, seed=11)
    b = economy_data(300, num_relations=4, seed=11)
    c = economy_data(300, num_relations=4, seed=12)
    for key in ("x", "edge_index", "edge_type", "edge_weight", "tier", "agent_size"):
        assert torch.equal(a[key], b[key]), key
    assert a.edge_index.shape != c.edge_index.shape or not torch.equal(a.edge_index, c.edge_index)


def test_economy_data_equals_networkx_path():
    g = supply_chain_economy(211, num_relations=4, seed=2)
    d1, d2 = to_data(g), economy_data(211, num_relations=4, seed=2)
    for key in ("x", "edge_index", "edge_type", "edge_weight", "tier"):
        assert torch.equal(d1[key], d2[key]), key
    assert d1.relation_names == d2.relation_names == ["goods", "capital", "labour", "energy"]
    assert d1.x.shape == (211, len(DEFAULT_TIERS) + 1)
    # edges sorted by relation, then customer, then supplier
    key = (d1.edge_type * 211 + d1.edge_index[1]) * 211 + d1.edge_index[0]
    assert (key[1:] > key[:-1]).all()


def _edge_set(g: nx.MultiDiGraph) -> dict:
    return {(u, v, k): d for u, v, k, d in g.edges(keys=True, data=True)}


def test_networkx_round_trip_exact_in_float64():
    g = supply_chain_economy(157, num_relations=3, seed=4)
    h = from_data(to_data(g, dtype=torch.float64))
    assert list(h.nodes) == list(g.nodes)
    assert dict(h.nodes(data=True)) == dict(g.nodes(data=True))
    assert _edge_set(h) == _edge_set(g)
    assert h.graph == g.graph


def test_round_trip_float32_and_data_side():
    data = economy_data(131, num_relations=2, seed=9)
    back = to_data(from_data(data))
    for key in ("edge_index", "edge_type", "edge_weight", "tier", "agent_size"):
        assert torch.equal(back[key], data[key]), key
    # log(size) is recomputed from the float32 size: equal up to float32 rounding
    torch.testing.assert_close(back.x, data.x)


def test_round_trip_keeps_node_names():
    g = supply_chain_economy(41, seed=1)
    names = {i: f"agent-{(i * 7) % 41}" for i in g.nodes}
    relabelled = nx.relabel_nodes(g, names)
    data = to_data(relabelled, dtype=torch.float64)
    assert data.node_names == [names[i] for i in g.nodes]
    # node i of the Data is the i-th node of the graph, whatever its name
    assert torch.equal(data.edge_index, to_data(g, dtype=torch.float64).edge_index)
    back = from_data(data)
    assert list(back.nodes) == list(relabelled.nodes)
    assert _edge_set(back) == _edge_set(relabelled)


def test_large_economy_builds():
    data = economy_data(100_000, num_relations=3, seed=0)
    assert data.num_nodes == 100_000
    assert data.edge_index.size(1) > 300_000
    assert int(data.edge_index.max()) < 100_000


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_agents": 5}, ValueError, "num_agents"),
        ({"num_agents": 50.0}, TypeError, "num_agents"),
        ({"num_agents": 50, "num_relations": 0}, ValueError, "num_relations"),
        ({"num_agents": 50, "tier_shares": [1, 2]}, ValueError, "tier_shares"),
        ({"num_agents": 50, "mean_degree": 0.5}, ValueError, "mean_degree"),
        ({"num_agents": 50, "cross_link_prob": 1.5}, ValueError, "cross_link_prob"),
        ({"num_agents": 50, "tiers": ["only"]}, ValueError, "tiers"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        economy_arrays(**kwargs)


def test_conversion_type_errors():
    with pytest.raises(TypeError, match="graph"):
        to_data(nx.DiGraph())
    with pytest.raises(TypeError, match="data"):
        from_data(supply_chain_economy(20))


def test_custom_tiers_and_many_relations():
    g = supply_chain_economy(30, tiers=["firm", "household"], num_relations=10, seed=6)
    assert g.graph["tiers"] == ["firm", "household"]
    assert g.graph["relations"][-2:] == ["relation8", "relation9"]
    data = to_data(g)
    assert data.x.shape == (30, 3)
    # households buy goods from firms and supply labour to them
    src_tier, dst_tier = data.tier[data.edge_index[0]], data.tier[data.edge_index[1]]
    goods, labour = data.edge_type == 0, data.edge_type == 2
    assert (src_tier[goods] == 0).all() and (dst_tier[goods] == 1).all()
    assert (src_tier[labour] == 1).all() and (dst_tier[labour] == 0).all()


def test_parallel_edges_of_one_relation_survive_the_round_trip():
    """from_data keyed edges by (supplier, customer, relation): 286 edges became 281."""
    data = economy_data(60, seed=0, dtype=torch.float64)
    repeat = torch.arange(5)
    for name in ("edge_index", "edge_type", "edge_weight"):
        value = getattr(data, name)
        setattr(data, name, torch.cat([value, value[..., repeat]], dim=-1))
    graph = from_data(data)
    assert graph.number_of_edges() == data.num_edges
    back = to_data(graph, dtype=torch.float64)
    assert back.num_edges == data.num_edges
    ours = sorted(zip(*data.edge_index.tolist(), data.edge_type.tolist(), strict=True))
    theirs = sorted(zip(*back.edge_index.tolist(), back.edge_type.tolist(), strict=True))
    assert ours == theirs
    u, v = data.edge_index[:, 0].tolist()
    assert graph.has_edge(u, v, key=data.relation_names[int(data.edge_type[0])])  # named key
