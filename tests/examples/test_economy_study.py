"""examples/economy_study.py: a tiny run (`examples` marker), the targets, the reach analysis and
the receptive field."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ._studies import assert_receptive_field, load_example, run_tiny

study = load_example("economy_study")

TINY = [
    "--agents", "20", "--train-economies", "2", "--train-scenarios", "2", "--test-economies", "2",
    "--test-scenarios", "1", "--steps", "3", "--width-steps", "3", "--d-model", "8",
    "--depth-heads", "2", "--width-d-model", "8", "--depths", "1", "2", "--hops", "1", "2",
    "--heads", "1", "2", "--relations", "1", "3", "--reach-graphs", "1", "--batch", "2",
    "--width-batch", "2", "--no-progress",
]  # fmt: skip


@pytest.mark.examples
def test_tiny_run_writes_every_table_and_figure(tmp_path, capsys):
    names = ("depth_vs_hops", "width_vs_relations", "head_relation_share")
    result, printed = run_tiny(study, TINY, tmp_path, capsys, csvs=names, pngs=names)
    assert "(a) depth vs hops" in printed and "(b) width vs relation types" in printed
    rows = {(r["hops_k"], r["depth_L"]): r for r in result["depth"]}
    assert set(rows) == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert all(math.isfinite(r["test_nmse"]) for r in rows.values())
    # nothing is out of reach once L >= k; something is at L < k
    assert rows[1, 1]["out_of_reach"] == rows[1, 2]["out_of_reach"] == rows[2, 2]["out_of_reach"]
    assert rows[2, 2]["out_of_reach"] == 0.0 and rows[2, 1]["out_of_reach"] > 0.0
    assert "np." not in (tmp_path / "depth_vs_hops.csv").read_text()  # plain numbers
    assert len(result["width"]) == 4
    # head shares: per (K, head), the shares over the K relations sum to 1
    totals: dict[tuple[int, int], float] = {}
    for r in result["shares"]:
        key = (r["relations_K"], r["head"])
        totals[key] = totals.get(key, 0.0) + r["share"]
    assert set(totals) == {(1, 0), (1, 1), (3, 0), (3, 1)}
    np.testing.assert_allclose(list(totals.values()), 1.0, atol=1e-3)


def test_bad_arguments_are_refused():
    for argv in (["--heads", "5"], ["--relations", "9"], ["--density", "0"], ["--hops", "0"]):
        with pytest.raises(SystemExit):
            study.parse_args(argv)


def test_targets_are_the_impulse_responses():
    graphs = study.make_graphs(25, 3, 1, 2, seed=4, density=0.5, steps=3)
    for g in graphs:
        result = study.simulate(g.economy, g.shocks, 3, persistent=False)
        torch.testing.assert_close(g.y, (1.0 - result.output[1:]).t().float())
    assert not torch.equal(graphs[0].shocks, graphs[1].shocks)  # two scenarios, one economy
    assert torch.equal(graphs[0].edge_index, graphs[1].edge_index)


def test_out_of_reach_counts_shocks_beyond_l_hops():
    graphs = study.make_graphs(40, 3, 1, 1, seed=2, density=0.5, steps=3)
    reach = study.out_of_reach(graphs, [1, 2, 3], [1, 2, 3])
    for k in (1, 2, 3):
        for depth in (1, 2, 3):
            if depth >= k:
                assert reach[k, depth] == 0.0  # the simulation is exactly k-hop local
            else:
                assert 0.0 < reach[k, depth] < 1.0
    assert reach[3, 1] > reach[3, 2]  # more is out of reach the shallower the model


@pytest.mark.parametrize("layers", [1, 2])
def test_depth_model_sees_exactly_its_upstream_hops(layers):
    (g,) = study.make_graphs(60, 3, 1, 1, seed=3, density=0.5, steps=1)
    hops = torch.from_numpy(study.upstream_hops(g.edge_index, g.num_nodes))  # [i, j]
    node = int(((hops == layers).sum(1) * (hops > layers).sum(1)).argmax())  # near and far
    torch.manual_seed(0)
    model = study.build_model(g.x.size(1), d_model=8, heads=2, layers=layers, num_relations=3)
    data = study.collate([g])
    hops_to_node = hops[node].clone()
    hops_to_node[node] = 0.0
    with torch.no_grad():
        assert_receptive_field(
            lambda v: study.predict(model, data.clone().update({"x": v})),
            data.x, hops_to_node, node, layers,
        )  # fmt: skip
