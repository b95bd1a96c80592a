"""examples/economy_shocks{,_theory,_learn}.py: tiny runs of all three (`examples` marker),
their seeded repeatability and their command lines."""

from __future__ import annotations

import math

import networkx as nx
import pytest

from graphattn.experiments import read_table

from ._studies import load_example

shocks = load_example("economy_shocks")
theory = load_example("economy_shocks_theory")
learn = load_example("economy_shocks_learn")

TINY = ["--agents", "120", "--sim-steps", "4", "--top", "5", "--graphml-max-nodes", "40",
        "--no-progress"]  # fmt: skip
TINY_THEORY = ["--agents", "120", "--vol-agents", "60", "120", "--vol-seeds", "2", "--vol-reps",
               "4", "--shapes", "inf", "1.5", "--no-progress"]  # fmt: skip
TINY_LEARN = [
    "--learn-agents", "40", "--train-economies", "2", "--train-scenarios", "2",
    "--test-scenarios", "2", "--steps", "2", "--d-model", "8", "--heads", "2", "--layers", "2",
    "--horizon", "2", "--no-progress",
]  # fmt: skip


@pytest.mark.examples
def test_tiny_runs_write_everything(tmp_path, capsys):
    shocks.main([*TINY, "--shock", "3:goods:0.5", "--shock", "7:capital:1", "--out", str(tmp_path)])
    theory.main([*TINY_THEORY, "--out", str(tmp_path)])
    result = learn.main([*TINY_LEARN, "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "machine:" in printed and "decay exponent" in printed
    names = ["supplier-failure", "credit-crunch", "labour-shortage", "random-failures", "custom"]
    for name in names:
        g = nx.read_graphml(tmp_path / f"neighbourhood_{name}.graphml")
        assert 0 < g.number_of_nodes() <= 40
        shocked = [v for v, s in g.nodes(data="shocked") if s]
        assert all(g.nodes[v]["hops"] == 0 for v in shocked)
    custom = nx.read_graphml(tmp_path / "neighbourhood_custom.graphml")
    assert {v for v, s in custom.nodes(data="shocked") if s} == {"3", "7"}
    pngs = ["aggregate_loss", "tier_loss", "loss_distribution", "volatility"]
    for png in [*pngs, "learn_pred_vs_true", "attention_vs_shares"]:
        assert (tmp_path / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    rows, meta = read_table(tmp_path / "scenario_losses.csv")
    assert meta["command"].startswith("python examples/economy_shocks.py --agents 120")
    assert {r["scenario"] for r in rows} == set(names) and len(rows) == 5 * 5
    goods = {"supplier-failure", "random-failures", "custom"}  # output falls at impact
    assert all((r["aggregate"] > 0) == (r["step"] > 0 or r["scenario"] in goods) for r in rows)
    top, _ = read_table(tmp_path / "top_agents.csv")
    custom_top = [r for r in top if r["scenario"] == "custom"]
    assert [r["rank"] for r in custom_top] == [1, 2, 3, 4, 5]
    losses = [r["cumulative_loss"] for r in custom_top]
    assert losses == sorted(losses, reverse=True)
    closed, _ = read_table(tmp_path / "closed_form.csv")
    assert closed[-1]["persistent_error"] < 1e-12 < closed[0]["persistent_error"]
    exps, _ = read_table(tmp_path / "volatility_exponents.csv")
    assert [r["tail"] for r in exps] == ["light", "power law 1.5"]
    assert all(math.isfinite(r["influence"]) and math.isfinite(r["simulated"]) for r in exps)
    tiers, _ = read_table(tmp_path / "learn_tiers.csv")
    assert tiers[0]["tier"] == "all" and len(tiers) == 6
    att = result["attention"]
    assert {r["model"] for r in att} == {"trained", "untrained"}
    assert all(0 <= r["closer_than_uniform"] <= 1 for r in att)


def test_the_volatility_measurement_repeats():
    args = theory.parse_args(TINY_THEORY)
    assert theory.volatility(args) == theory.volatility(args)


@pytest.mark.parametrize(
    "script, argv, message",
    [
        (shocks, ["--shock", "3:goods"], "AGENT:RELATION:SIZE"),
        (shocks, ["--shock", "x:goods:0.5"], "AGENT:RELATION:SIZE"),
        (shocks, ["--agents", "5"], "--agents"),
        (shocks, ["--scenarios"], "no scenario"),
        (theory, ["--shapes", "0.5"], "--shapes"),
        (theory, ["--vol-agents", "100"], "--vol-agents"),
        (learn, ["--heads", "3"], "--heads"),
    ],
)
def test_bad_arguments(script, argv, message, capsys):
    with pytest.raises(SystemExit):
        script.parse_args(argv)
    assert message in capsys.readouterr().err


def test_bad_shock_values_name_the_problem_before_any_compute(tmp_path, capsys):
    """An unknown relation or tier failed only after the economy was generated."""
    for bad, word in ((["--shock", "3:steel:0.5"], "relation"), (["--tier", "bank"], "--tier")):
        with pytest.raises(SystemExit):
            shocks.main([*TINY, *bad, "--out", str(tmp_path)])
        assert word in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.examples
def test_an_interrupted_run_leaves_the_last_complete_run(tmp_path, monkeypatch):
    """An interrupted run left a folder mixing two runs' files; now the folder keeps the last
    complete run until a new one completes, and then holds exactly the new run's files."""
    out = tmp_path / "out"
    base = [*TINY, "--out", str(out)]
    shocks.main([*base, "--scenarios", "credit-crunch", "random-failures"])
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "neighbourhood_random-failures.graphml" in first

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # after the CSVs, the GraphML files and two figures

    monkeypatch.setattr(shocks, "draw_histogram", interrupted)
    with pytest.raises(KeyboardInterrupt):
        shocks.main([*base, "--scenarios", "credit-crunch", "--sim-steps", "3"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    monkeypatch.undo()
    shocks.main([*base, "--scenarios", "credit-crunch", "--sim-steps", "3"])
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert "neighbourhood_random-failures.graphml" not in names  # the old run's: removed
    assert "neighbourhood_credit-crunch.graphml" in names
    rows, _ = read_table(out / "scenario_losses.csv")
    assert max(r["step"] for r in rows) == 3
