"""The shock simulation: exact t-hop upstream dependency, dynamics, and input checks."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.utils import k_hop_subgraph

from graphattn.economy import ShockDynamics, economy_data, random_shocks, simulate


@pytest.fixture(scope="module")
def economy():
    return economy_data(173, num_relations=4, seed=21, dtype=torch.float64)


def _upstream_distance(data, target: int, max_hops: int) -> torch.Tensor:
    """Upstream hop distance of every node to ``target`` (max_hops + 1 when farther)."""
    dist = torch.full((data.num_nodes,), max_hops + 1)
    for hops in range(max_hops, -1, -1):
        subset, *_ = k_hop_subgraph(
            target, hops, data.edge_index, num_nodes=data.num_nodes, flow="source_to_target"
        )
        dist[subset] = hops
    return dist


@pytest.mark.parametrize("steps", [1, 2, 3, 4])
def test_far_perturbations_leave_state_unchanged_bit_for_bit(economy, steps):
    k = len(economy.relation_names)
    base_shocks = random_shocks(economy.num_nodes, k, density=0.3, seed=steps)
    targets = torch.arange(economy.num_nodes)[economy.tier >= 2][:12]
    for persistent in (True, False):
        base = simulate(economy, base_shocks, steps, persistent=persistent)
        for target in targets.tolist():
            dist = _upstream_distance(economy, target, steps)
            far = (dist > steps).nonzero().flatten()
            if far.numel() == 0:
                continue
            shocks = base_shocks.clone()
            shocks[far] = torch.rand(far.numel(), k, dtype=torch.float64)  # change all of them
            new = simulate(economy, shocks, steps, persistent=persistent)
            for t in range(steps + 1):
                # bit for bit: every agent within distance steps - t keeps its state at t
                near = (dist <= steps - t).nonzero().flatten()
                assert torch.equal(new.supply[t, near], base.supply[t, near])
            assert not torch.equal(new.supply[steps], base.supply[steps])  # others did move


@pytest.mark.parametrize("steps", [1, 2, 3, 4])
def test_perturbation_within_t_hops_changes_state(economy, steps):
    k = len(economy.relation_names)
    base_shocks = random_shocks(economy.num_nodes, k, density=0.2, max_size=0.5, seed=7 + steps)
    base = simulate(economy, base_shocks, steps)
    checked = 0
    for target in (torch.arange(economy.num_nodes)[economy.tier >= 3][:8]).tolist():
        dist = _upstream_distance(economy, target, steps)
        for hops in range(0, steps + 1):
            if not (dist == hops).any():
                continue
            # a node at upstream distance `hops` starts a shortest path of that length to target
            node = int((dist == hops).nonzero()[0])
            shocks = base_shocks.clone()
            shocks[node] = 0.9 - 0.5 * shocks[node]  # a different shock on every channel
            new = simulate(economy, shocks, steps)
            assert new.output[steps, target] != base.output[steps, target], (target, hops)
            checked += 1
    assert checked >= 8


def test_path_economy_known_answer():
    # a chain 0 -> 1 -> 2 of goods only: the shock travels one hop per step
    from torch_geometric.data import Data

    data = Data(
        edge_index=torch.tensor([[0, 1], [1, 2]]),
        num_nodes=3,
        edge_type=torch.zeros(2, dtype=torch.long),
        edge_weight=torch.ones(2, dtype=torch.float64),
    )
    data.relation_names = ["goods"]
    shocks = torch.tensor([[0.5], [0.0], [0.0]], dtype=torch.float64)
    linear = ShockDynamics(elasticity={"goods": 1.0})  # the linear supply-side IO model
    out = simulate(data, shocks, 3, dynamics=linear).output
    assert out.tolist() == [[0.5, 1.0, 1.0], [0.5, 0.5, 1.0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]
    impulse = simulate(data, shocks, 3, persistent=False, dynamics=linear).output
    assert impulse.tolist() == [[0.5, 1.0, 1.0], [1.0, 0.5, 1.0], [1.0, 1.0, 0.5], [1, 1, 1]]
    default = simulate(data, shocks, 2).output  # output elasticity 0.6 to goods
    assert default[2, 2].item() == pytest.approx(0.5**0.36)


def test_relation_specific_rules():
    # 0 -capital-> 1 -capital-> 2 and household 3 -labour-> 1, goods 1 -> 2
    from torch_geometric.data import Data

    edge_index = torch.tensor([[0, 1, 3, 1], [1, 2, 1, 2]])
    edge_type = torch.tensor([1, 1, 2, 0])
    data = Data(
        edge_index=edge_index,
        edge_type=edge_type,
        num_nodes=4,
        edge_weight=torch.ones(4, dtype=torch.float64),
    )
    data.relation_names = ["goods", "capital", "labour"]
    dyn = ShockDynamics(
        elasticity={"goods": 1.0, "capital": 0.5, "labour": 0.25},
        pass_through={"capital": 0.4},
        labour_persistence=0.5,
        activity={"capital": 0.0, "labour": 0.0},
    )
    shocks = torch.zeros(4, 3, dtype=torch.float64)
    shocks[0, 1] = 0.5  # credit tightens at lender 0
    shocks[3, 2] = 0.2  # a fifth of household 3's labour leaves
    res = simulate(data, shocks, 2, persistent=False, dynamics=dyn)
    cap, lab = res.supply[..., 1], res.supply[..., 2]
    assert cap[1].tolist() == pytest.approx([1.0, 1 - 0.4 * 0.5, 1.0, 1.0])
    assert cap[2].tolist() == pytest.approx([1.0, 1.0, 1 - 0.4 * 0.4 * 0.5, 1.0])
    assert lab[1, 3].item() == pytest.approx(1 - 0.5 * 0.2)  # persistence
    # agent 1 at t=1 sees capital 0.5 and labour 0.8 from t=0
    assert res.output[1, 1].item() == pytest.approx(0.5**0.5 * 0.8**0.25)
    # the activity channel: agent 1 lends less when it produces less
    active = ShockDynamics(
        elasticity=dyn.elasticity, pass_through=dyn.pass_through, activity={"capital": 0.7}
    )
    res = simulate(data, shocks, 1, persistent=False, dynamics=active)
    y1 = res.output[1, 1].item()
    assert res.supply[1, 1, 1].item() == pytest.approx((1 - 0.4 * 0.5) * y1**0.7)


def test_output_bounded_and_shapes(economy):
    k = len(economy.relation_names)
    res = simulate(economy, random_shocks(economy.num_nodes, k, density=0.5, seed=3), 5)
    assert res.output.shape == (6, economy.num_nodes)
    assert res.supply.shape == (6, economy.num_nodes, k)
    assert res.supply.min() >= 0 and res.supply.max() <= 1 + 1e-12
    assert torch.equal(res.output, res.supply[..., 0])


def test_bad_inputs(economy):
    k = len(economy.relation_names)
    good = torch.zeros(economy.num_nodes, k, dtype=torch.float64)
    with pytest.raises(ValueError, match="shocks"):
        simulate(economy, good[:, :2], 2)
    with pytest.raises(ValueError, match="shocks"):
        simulate(economy, good + 2, 2)
    with pytest.raises(TypeError, match="shocks"):
        simulate(economy, good.long(), 2)
    with pytest.raises(ValueError, match="steps"):
        simulate(economy, good, -1)
    with pytest.raises(ValueError, match="goods"):
        simulate(economy, good, 1, relation_names=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="density"):
        random_shocks(3, 2, density=2.0)
