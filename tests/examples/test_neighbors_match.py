"""examples/neighbors_match.py: the quick run, the task's ground truth, every graph's reach
and the summary's rule."""

from __future__ import annotations

import json
import math

import pytest
import torch

from graphattn.experiments import read_table

from ._studies import assert_receptive_field, load_example

nm = load_example("neighbors_match")


@pytest.mark.examples
def test_quick_run_writes_every_table_and_the_figure(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        result = nm.main(["--quick", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    assert "where training accuracy falls" in capsys.readouterr().out
    for name in ("neighbors_match", "published", "comparison", "summary"):
        assert (tmp_path / f"{name}.csv").read_text().startswith("# date: ")
    assert (tmp_path / "neighbors_match.png").read_bytes()[:4] == b"\x89PNG"
    settings = json.loads(read_table(tmp_path / "neighbors_match.csv")[1]["settings"])
    assert (settings["radii"], settings["steps"], settings["max_seconds"]) == ([2, 3], 20, 2.0)
    rows = {(row["model"], row["r"]): row for row in result["neighbors_match"]}
    assert set(rows) == {(m, r) for m in nm.MODELS for r in (2, 3)}
    for (model, r), row in rows.items():
        n = 2 ** (r + 1) - 1  # nodes of the tree
        layers, edges = {
            "GATConv on tree": (r + 1, 2 * n - 1),  # n - 1 tree edges + n self-loops
            "graphattn on tree": (r + 1, 2 * n - 1),
            "graphattn on full": (1, n * n),
            "graphattn on tree+VN": (3, (n - 1) + 2 * n + (n + 1)),
            "graphattn on tree+expander": (row["layers"], (n - 1) + 4 * n + n),
        }[model]
        assert (row["layers"], row["edges_per_tree"]) == (layers, edges), model
        assert 2 <= row["layers"] <= r + 1 or model.endswith("full")  # the expander's too
        assert 0.0 <= row["test_accuracy"] <= 1.0 and 0.0 <= row["train_accuracy"] <= 1.0
        assert 1 <= row["best_step"] <= row["steps"] <= row["max_steps"] == 20
        assert row["stopped_by"] in {"fit", "plateau", "step cap", "time cap"}
        assert row["steps"] == 20 if row["stopped_by"] == "step cap" else row["steps"] <= 20
        assert row["step_ms"] > 0 and row["leaves"] == 2**r
    paper = {(row["model"], row["r"]): row["train_accuracy"] for row in result["published"]}
    assert paper[("GAT", 4)] == 1.0 and paper[("GAT", 5)] == 0.41 and paper[("GCN", 5)] == 0.19
    gat = next(s for s in result["summary"] if s["source"] == "paper")
    assert (gat["kept_0.95_up_to_r"], gat["first_r_below_0.9"]) == (4, 5)
    # the released code's budget at r = 5: 50,000 epochs of ceil(25,600 / 1024) = 25 steps
    assert gat["max_steps_there"] == 50000 * 25
    labels = {c["model"] for c in result["comparison"]}
    assert {"paper: GAT (L = r+1)", "here: graphattn on tree (L = r+1)"} <= labels
    assert len(result["comparison"]) == len(result["published"]) + len(result["neighbors_match"])


def test_the_root_must_name_the_value_of_the_leaf_with_its_key():
    (keys, perms), (test_keys, _) = nm.examples(3, seed=0, permutations=50)
    n, total = 8, 50 * 8
    assert len(keys) + len(test_keys) == total and len(keys) == math.floor(0.8 * total)
    assert len({tuple(p) for p in perms.tolist()}) <= 50
    x = nm.features(keys[:5], perms[:5], 3, nodes=2 * n - 1).view(5, 2 * n - 1, 2 * n)
    leaves = torch.arange(n - 1, 2 * n - 1)
    for b in range(5):
        key = int(x[b, 0, :n].argmax())  # the root's key, and nothing else at the root
        assert key == keys[b] and x[b, 0].sum() == 1
        match = leaves[x[b, leaves, :n].argmax(1) == key]  # the leaf with that key
        assert len(match) == 1
        assert int(x[b, match[0], n:].argmax()) == perms[b, key]  # holds the label
        assert x[b, 1 : n - 1].abs().sum() == 0  # inner nodes are blank
    labels = perms.gather(1, keys[:, None])[:, 0]
    assert torch.bincount(labels, minlength=n).min() > 0  # every value is a label


@pytest.mark.parametrize(
    ("model", "r", "hops_of_leaves"),
    [("graphattn on tree", 3, 3), ("graphattn on tree+VN", 3, 2), ("graphattn on full", 3, 1)],
)
def test_the_root_sees_a_leaf_exactly_when_the_layers_reach_it(model, r, hops_of_leaves):
    trees = nm.Trees(model, r, seed=0)
    assert trees.layers == (1 if model.endswith("full") else hops_of_leaves + 1)
    keys, perms = torch.tensor([1, 2]), torch.stack([torch.randperm(2**r) for _ in range(2)])
    x = nm.features(keys, perms, r, trees.nodes)
    heap = torch.arange(trees.nodes) + 1  # heap order: depth = floor(log2(index + 1))
    hops = torch.floor(torch.log2(heap.float()))
    if model.endswith("VN"):
        hops = torch.minimum(hops, torch.tensor(2.0))
        hops[-1] = 1  # the virtual node
    elif model.endswith("full"):
        hops = torch.ones(trees.nodes)
    hops[0] = 0
    hops = torch.cat([hops, torch.full((trees.nodes,), math.inf)])  # the second tree
    roots = torch.tensor([0, trees.nodes])
    torch.manual_seed(0)
    for layers in {hops_of_leaves, max(hops_of_leaves - 1, 1)}:
        net = nm.Net(model, layers, r)
        with torch.no_grad():  # the logits at the first tree's root (row 0)
            forward = lambda v: net(v, trees.graph(2), roots)  # noqa: B023, E731
            assert_receptive_field(forward, x, hops, node=0, depth=layers)


def test_summary_reads_where_accuracy_falls():
    rows = [{"model": "m", "r": r, "train_accuracy": a, "steps": 10 * r, "max_steps": 99,
             "stopped_by": "time cap", "layers": r + 1}
            for r, a in [(2, 1.0), (3, 0.96), (4, 0.93), (5, 0.5), (6, 0.97)]]  # fmt: skip
    (mine, paper) = nm.summary(rows, nm.paper_rows())
    assert mine["kept_0.95_up_to_r"] == 3 and mine["first_r_below_0.9"] == 5
    assert (mine["steps_there"], mine["max_steps_there"], mine["stopped_by"]) == (
        50,
        99,
        "time cap",
    )
    assert paper["first_r_below_0.9"] == 5 and paper["stopped_by"] == "not reported"


@pytest.mark.examples
def test_the_layer_fits_the_smallest_tree_and_the_stopping_rule_ends_the_run(tmp_path):
    """r = 2 (76 training trees): r + 1 layers of this layer fit the training set, and the run
    stops at the evaluation that first reaches 1.0, well inside its step cap."""
    threads = torch.get_num_threads()
    try:
        argv = ["--quick", "--radii", "2", "--models", "graphattn on tree", "--steps", "300"]
        result = nm.main([*argv, "--max-seconds", "60", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    (row,) = result["neighbors_match"]
    assert (row["train_accuracy"], row["stopped_by"]) == (1.0, "fit")
    assert row["best_step"] == row["steps"] < 300 and row["steps"] % 10 == 0  # an evaluation
    here = next(s for s in result["summary"] if s["source"] == "here")
    assert (here["kept_0.95_up_to_r"], here["first_r_below_0.9"]) == (2, "")


def test_bad_arguments_are_refused(capsys):
    for argv in (["--radii", "1"], ["--steps", "0"], ["--max-seconds", "-1"],
                 ["--models", "GCN"]):  # fmt: skip
        with pytest.raises(SystemExit):
            nm.main(argv)
        assert f"argument {argv[0]}" in capsys.readouterr().err
