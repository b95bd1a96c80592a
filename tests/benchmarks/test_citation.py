"""The real-data benchmark's quick setting runs end to end, offline, and writes its CSVs."""

from graphattn.experiments import read_table

from ._scripts import load_script


def test_citation_quick(tmp_path):
    script = load_script("citation")
    rows = script.main(["--quick", "--threads", "1", "--out", str(tmp_path)])
    recipe = [m for m, spec in script.MODELS.items() if spec.part == "recipe"]
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
