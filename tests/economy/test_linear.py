"""The linear special case: the simulator against the Leontief / Ghosh closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from graphattn.economy import (
    ShockDynamics,
    cumulative_impulse_response,
    economy_data,
    influence_vector,
    long_run_loss,
    random_shocks,
    simulate,
    supply_matrix,
)

LINEAR = ShockDynamics(elasticity={"goods": 1.0})


@pytest.fixture(scope="module")
def cyclic():
    """One relation, many lateral links: A has cycles (not nilpotent), so the Neumann series
    is infinite and the simulator only converges to the closed form."""
    data = economy_data(150, num_relations=1, seed=2, cross_link_prob=0.5, dtype=torch.float64)
    src, dst = data.edge_index.numpy()
    a = np.zeros((150, 150))
    np.add.at(a, (dst, src), data.edge_weight.numpy())  # row = customer, column = supplier
    rows = a.sum(1)
    a[rows > 0] /= rows[rows > 0, None]
    return data, a


def test_supply_matrix_is_the_share_matrix(cyclic):
    data, a = cyclic
    np.testing.assert_allclose(supply_matrix(data).toarray(), a, rtol=0, atol=1e-15)


def test_persistent_shock_converges_to_closed_form(cyclic):
    data, a = cyclic
    n = data.num_nodes
    radius = np.abs(np.linalg.eigvals(a)).max()
    assert 0.5 < radius < 1.0  # a genuinely infinite series, converging
    sigma = random_shocks(n, 1, density=0.3, max_size=0.8, seed=4)
    s = sigma[:, 0].numpy()
    m = (1.0 - s)[:, None] * a  # M = (I - Sigma) A
    exact = np.linalg.solve(np.eye(n) - m, s)  # x* = (I - M)^-1 sigma, dense and independent
    res = simulate(data, sigma, 300, dynamics=LINEAR)
    loss = 1.0 - res.output.numpy()  # (T + 1, N)
    # every step is the partial Neumann sum x(t) = sum_{s <= t} M^s sigma, to rounding
    partial, term = np.zeros(n), s.copy()
    for t in range(12):
        partial = partial + term
        np.testing.assert_allclose(loss[t], partial, rtol=0, atol=1e-14)
        term = m @ term
    err = np.abs(loss - exact).max(axis=1)
    assert err[5] > 1e-3  # far from the limit after a few steps ...
    assert err[10] > err[40] > err[80]  # ... and converging geometrically
    assert err[300] < 1e-13
    np.testing.assert_allclose(long_run_loss(data, sigma).numpy(), exact, rtol=0, atol=1e-13)


def test_one_off_shock_sums_to_the_ghosh_inverse(cyclic):
    data, a = cyclic
    n = data.num_nodes
    sigma = random_shocks(n, 1, density=0.2, seed=5)
    leontief = np.linalg.solve(np.eye(n) - a, sigma[:, 0].numpy())  # L sigma
    res = simulate(data, sigma, 300, persistent=False, dynamics=LINEAR)
    total = (1.0 - res.output).sum(0).numpy()  # sum_t A^t sigma
    np.testing.assert_allclose(total, leontief, rtol=1e-12, atol=1e-13)
    got = cumulative_impulse_response(data, sigma).numpy()
    np.testing.assert_allclose(got, leontief, rtol=1e-12, atol=1e-14)


def test_first_order_is_the_ghosh_inverse_and_the_influence_vector(cyclic):
    data, a = cyclic
    n = data.num_nodes
    base = random_shocks(n, 1, density=1.0, max_size=1.0, seed=6)
    gaps = []
    for eps in (0.02, 0.01):
        exact = long_run_loss(data, eps * base)
        gaps.append((exact - cumulative_impulse_response(data, eps * base)).abs().max())
    assert 3.5 < float(gaps[0] / gaps[1]) < 4.5  # the gap is second order in the shock
    f = data.agent_size.numpy() / data.agent_size.numpy().sum()
    v = np.linalg.solve(np.eye(n) - a.T, f)  # v = L^T f
    np.testing.assert_allclose(influence_vector(data).numpy(), v, rtol=1e-12)
    # aggregate loss f^T L sigma = v^T sigma
    linear = float(f @ cumulative_impulse_response(data, base).numpy())
    assert linear == pytest.approx(float(v @ base[:, 0].numpy()), rel=1e-12)


def test_linear_case_inside_a_multi_relation_economy():
    # goods elasticity 1, every other relation 0: output is the linear model on goods edges,
    # whatever happens on capital and labour
    data = economy_data(120, num_relations=3, seed=1, dtype=torch.float64)
    dyn = ShockDynamics(
        elasticity={"goods": 1.0, "capital": 0.0, "labour": 0.0}, default_elasticity=0.0
    )
    shocks = random_shocks(120, 3, density=0.3, seed=2)
    res = simulate(data, shocks, 40, dynamics=dyn)
    expected = long_run_loss(data, shocks)  # uses the goods column
    torch.testing.assert_close(1.0 - res.output[-1], expected, rtol=0, atol=1e-14)
    assert not torch.allclose(expected, long_run_loss(data, shocks[:, 1].contiguous()))


def _closed_pair() -> Data:
    # agents 1 and 2 supply only each other: a closed group with no outside supplier
    data = Data(
        edge_index=torch.tensor([[1, 2], [2, 1]]),
        edge_type=torch.zeros(2, dtype=torch.long),
        edge_weight=torch.ones(2, dtype=torch.float64),
        num_nodes=3,
    )
    data.relation_names = ["goods"]
    return data


def test_closed_group_collapses_and_has_no_leontief_inverse():
    data = _closed_pair()
    shocks = torch.tensor([0.0, 0.5, 0.0], dtype=torch.float64)
    # x1 = 0.5 + 0.5 x2, x2 = x1: any persistent shock in the group ends in full collapse
    assert long_run_loss(data, shocks).tolist() == pytest.approx([0.0, 1.0, 1.0])
    res = simulate(data, shocks.unsqueeze(1), 60, dynamics=LINEAR)
    assert (1.0 - res.output[-1]).tolist() == pytest.approx([0.0, 1.0, 1.0], abs=1e-8)
    with pytest.raises(ValueError, match="closed group"):
        cumulative_impulse_response(data, shocks)
    with pytest.raises(ValueError, match="closed group"):
        influence_vector(data)


def test_bad_input():
    data = _closed_pair()
    with pytest.raises(TypeError, match="shocks"):
        long_run_loss(data, torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="shape"):
        long_run_loss(data, torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        long_run_loss(data, torch.tensor([0.0, 1.5, 0.0]))
    with pytest.raises(ValueError, match="one column per relation"):
        long_run_loss(data, torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="relation"):
        supply_matrix(data, "capital")
    with pytest.raises(TypeError, match="data"):
        supply_matrix("economy")
    with pytest.raises(ValueError, match="weights"):
        influence_vector(data, torch.tensor([1.0, -1.0, 0.0]))
    with pytest.raises(ValueError, match="weights"):
        influence_vector(data, torch.ones(2))
