"""examples/claims_table.py and the verdict rules of examples/claims/transformer_*.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphattn.experiments import read_table, write_table

from ._studies import load_example

ROOT = Path(__file__).resolve().parents[2]
MACHINE = {"cpu": "test", "cores": "2", "torch": "x", "torch_threads": "1"}

table = load_example("claims_table")
variance, params, logits, depth, memory = (
    load_example(f"claims/transformer_{claim}")
    for claim in ("variance", "params", "logits", "depth", "memory")
)


def _verdicts(folder: Path, names: list[tuple[str, int]]) -> None:
    for name, count in names:
        rows = [
            {"claim": f"{name} {i}", "command": "cmd", "number": "1", "verdict": "partly",
             "reason": "why"}
            for i in range(count)
        ]  # fmt: skip
        write_table(folder / name, rows, machine=MACHINE, command="cmd")


def test_claims_table_collects_every_verdict_in_order(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    _verdicts(first, table.VERDICTS[:5])
    _verdicts(second, table.VERDICTS[5:])
    out = tmp_path / "claims"
    rows = table.main(["--inputs", str(first), str(second), "--out", str(out)])
    assert len(rows) == 11
    written, meta = read_table(out / "claims.csv")
    assert [r["claim"] for r in written][:5] == [
        "variance_verdict.csv 0", "params_verdict.csv 0", "logits_verdict.csv 0",
        "depth_verdict.csv 0", "depth_verdict.csv 1",
    ]  # fmt: skip
    assert list(written[0]) == table.COLUMNS and written[0]["machine"].startswith("test, 2 cores")
    assert meta["command"].startswith("python examples/claims_table.py --inputs")
    (second / "prune_verdict.csv").unlink()
    with pytest.raises(FileNotFoundError, match="prune_verdict"):
        table.main(["--inputs", str(first), str(second), "--out", str(out)])
    assert len(table.collect([first, second], allow_missing=True)) == 10


def test_the_default_inputs_are_the_recorded_runs(monkeypatch, tmp_path):
    """`python examples/claims_table.py` as documented works on a fresh clone: its default
    inputs are where the README's table was recorded from, and they give that table."""
    monkeypatch.chdir(ROOT)
    rows = table.collect([Path(p) for p in table.RECORDED])
    recorded, meta = read_table(ROOT / "results" / "claims" / "claims.csv")
    assert meta["settings"] == '{"inputs": ' + str(list(table.RECORDED)).replace("'", '"') + "}"
    assert rows == recorded


def test_transformer_claim_rules():
    rows = [{"heads": h, "output_var_mean": v} for h, v in ((1, 1.0), (16, 1.05))]
    assert variance.variance_verdict(rows).verdict == "confirmed"
    rows = rows[:1] + [{"heads": 16, "output_var_mean": 2.0}]
    assert variance.variance_verdict(rows).verdict == "refuted"
    rows = [{"heads": h, "attention_params": 20, "formula_4(d^2+d)": 20} for h in (1, 2)]
    assert params.params_verdict(rows).verdict == "confirmed"
    rows = [
        {"head_dim": d, "logit_var_unscaled": u, "logit_var_scaled": u / d}
        for d, u in ((16, 16.2), (256, 250.0))
    ]
    assert logits.logits_verdict(rows).verdict == "confirmed"
    grads = [{"norm": "pre", "ratio_first/last": 3.9}, {"norm": "post", "ratio_first/last": 0.94}]
    train = [
        {"norm": n, "lr": lr, "final_loss_mean": v}
        for n, lr, v in (("pre", 1e-3, 0.017), ("post", 1e-3, 0.22), ("pre", 3e-4, 0.043),
                         ("post", 3e-4, 0.047))
    ]  # fmt: skip
    g, t = depth.depth_verdicts(grads, train)
    assert (g.verdict, t.verdict) == ("partly", "partly") and "0.001" in t.reason
    assert "Post-LN 0.94" in g.number and t.number.startswith("lr 0.001: Pre-LN 0.017")
    rows = [
        {"variant": v, "checkpoint": c, "longest_fitting": n, "gain_vs_no_checkpoint": g,
         "budget_mb": 128.0}
        for v, c, n, g in (("dense", False, 1280, 1.0), ("dense", True, 7616, 5.94))
    ]  # fmt: skip
    verdict = memory.memory_verdict(rows)
    assert verdict.verdict == "partly" and "dense 1280 -> 7616 (5.9x)" in verdict.number
