"""The real-data benchmark's quick setting runs end to end, offline, and writes its CSVs."""

import importlib
import sys

import pytest
import torch

from graphattn.experiments import read_table

from ._scripts import BENCHMARKS, load_script


def test_citation_quick(tmp_path):
    script = load_script("citation")
    rows = script.main(["--quick", "--threads", "1", "--out", str(tmp_path)])
    recipe = [m for m, spec in script.MODELS.items() if "recipe" in spec.parts]
    measured = {(r["model"], r["training"]) for r in rows if r["seeds"] == 2}
    assert measured == {(m, "full batch") for m in recipe} | {
        (script.MINIBATCH, "mini-batch (64 seeds)")
    }
    assert [r["test_acc_mean"] for r in rows if r["model"] == script.PAPER] == [83.0]
    runs, meta = read_table(tmp_path / "runs.csv")
    assert len(runs) == 2 * (len(recipe) + 1) and "machine" in meta
    assert all(0.0 <= r["test_acc"] <= 100.0 for r in runs)
    ours = [r for r in runs if r["model"].startswith("graphattn")]
    assert all(0.0 < r["entropy_ratio"] <= 1.0 for r in ours)
    table, _ = read_table(tmp_path / "accuracy.csv")
    assert len(table) == len(rows)


@pytest.mark.slow  # starts two worker processes
def test_runs_in_worker_processes_give_the_same_accuracies(tmp_path, monkeypatch, request):
    # worker processes import the script by name, as they do when it runs as a program
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    request.addfinalizer(lambda: sys.modules.pop("citation", None))
    script = importlib.import_module("citation")
    args = ["--quick", "--only", "minibatch", "--threads", "1"]
    script.main([*args, "--out", str(tmp_path / "one")])
    script.main([*args, "--workers", "2", "--out", str(tmp_path / "two")])
    one, _ = read_table(tmp_path / "one" / "runs.csv")
    two, _ = read_table(tmp_path / "two" / "runs.csv")
    key = ("model", "training", "seed", "val_acc", "test_acc", "best_epoch")
    assert [[r[k] for k in key] for r in one] == [[r[k] for k in key] for r in two]
    assert len(one) == 2


def test_models_picks_runs_and_a_selection_outside_the_parts_is_refused(tmp_path, capsys):
    script = load_script("citation")
    name = "GATConv, uniform attention"
    rows = script.main(["--quick", "--only", "attention", "--models", name, "--out", str(tmp_path)])
    assert [r["model"] for r in rows] == [name]
    assert rows[0]["entropy_ratio"] == 1.0  # attention vectors frozen at zero: exact means
    with pytest.raises(SystemExit):
        script.main(["--quick", "--only", "minibatch", "--models", "GATConv"])
    assert "none of --models" in capsys.readouterr().err


@pytest.mark.parametrize("donor, receiver", [("gat", "ours_pyg"), ("ours_pyg", "gat")])
def test_draws_part_builds_a_layer_on_the_other_layers_draws(donor, receiver):
    script = load_script("citation")
    donor, receiver = getattr(script, donor), getattr(script, receiver)
    torch.manual_seed(3)
    first = donor(12, 3)
    state = torch.get_rng_state()
    torch.manual_seed(3)
    model = script.on_draws_of(donor, receiver)(12, 3)
    assert torch.equal(torch.get_rng_state(), state)  # training draws what the donor's run draws
    for layer in ("conv1", "conv2"):
        got, want = (script.value_weight(getattr(m, layer)) for m in (model, first))
        assert torch.equal(got, want)
    torch.manual_seed(3)
    own = script.value_weight(receiver(12, 3).conv1)
    assert not torch.equal(own, script.value_weight(model.conv1))


def test_draws_part_runs(tmp_path):
    script = load_script("citation")
    rows = script.main(["--quick", "--only", "draws", "--out", str(tmp_path)])
    assert {r["model"] for r in rows} == {m for m, s in script.MODELS.items() if "draws" in s.parts}
    assert len(rows) == 4


def test_additive_score_probe_is_the_layer_but_for_its_score():
    script = load_script("citation")
    torch.manual_seed(0)
    probe = script.AdditiveScore(5, 8, 2).eval()
    layer = script.MultiHeadAttentionConv(5, 8, 2, out_projection=False).eval()
    for name in ("lin_query", "lin_key", "lin_value"):
        getattr(layer, name).load_state_dict(getattr(probe, name).state_dict())
    x = torch.randn(6, 5)
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 3, 5], [1, 0, 2, 2, 4, 4, 0]])  # a loop, a pair
    out, (loops, alpha) = probe(x, edge_index, return_attention_weights=True)
    assert loops.size(1) == 6 + 6 and alpha.shape == (12, 2)  # 6 non-loop edges and 6 loops
    assert not torch.allclose(out, layer(x, edge_index), atol=1e-4)  # the scores differ
    with torch.no_grad():  # zero logits in both: each node's mean of W_V x over its in-edges
        probe.att.zero_()
        layer.lin_query.weight.zero_()
        layer.lin_query.bias.zero_()
    torch.testing.assert_close(probe(x, edge_index), layer(x, edge_index))


def test_scores_part_runs(tmp_path):
    script = load_script("citation")
    rows = script.main(["--quick", "--only", "scores", "--out", str(tmp_path)])
    assert {r["model"] for r in rows} == {
        "GATv2Conv",
        "graphattn's Q, K, V, GATv2's additive score",
    }
    assert all(0.0 < r["entropy_ratio"] <= 1.0 for r in rows)


def test_additive_score_probe_draws_the_first_layers_weights_as_the_layers_own_run():
    script = load_script("citation")
    torch.manual_seed(5)
    own = script.ours_pyg(12, 3).conv1
    torch.manual_seed(5)
    probe = script.GATRecipe(script.AdditiveScore, 12, 3).conv1
    for name in ("lin_query", "lin_key", "lin_value"):
        assert torch.equal(getattr(probe, name).weight, getattr(own, name).weight)
