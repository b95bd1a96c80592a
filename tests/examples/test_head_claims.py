"""examples/head_claims.py: a tiny in-process run of every claim, and its rules on known inputs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from graphattn.experiments import plots, read_table

ROOT = Path(__file__).resolve().parents[2]
VERDICTS = {"confirmed", "partly", "refuted"}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


claims = _load("head_claims")


def test_every_claim_runs_and_writes_csv_png_and_a_verdict(tmp_path, capsys, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []

    def draw_only(path, draw, **kwargs):  # run the drawing code and the figure checks;
        fig, ax = plt.subplots()  # skip layout and PNG encoding
        try:
            draw(ax)
            plots._check_axes(ax, str(path))  # labelled axes, explained lines, distinct series
        finally:
            plt.close(fig)
        figures.append(Path(path).name)

    def heatmap(path, rows, row, col, value, **kwargs):
        assert {row, col, value} <= set(rows[0])
        figures.append(Path(path).name)

    monkeypatch.setattr(claims, "figure", draw_only)
    monkeypatch.setattr(claims, "heatmap", heatmap)
    threads = torch.get_num_threads()
    rows = claims.main(["all", "--smoke", "--out", str(tmp_path), "--no-progress"])
    assert torch.get_num_threads() == threads  # restored
    assert [r["verdict"] in VERDICTS for r in rows] == [True] * 5
    printed = capsys.readouterr().out
    for claim in claims.CLAIMS:
        assert f"verdict ({claim})" in printed
        table, meta = read_table(tmp_path / f"{claim}_verdict.csv")
        assert table[0]["command"] == f"python examples/head_claims.py {claim} --smoke"
        assert "level" in meta["settings"]
    for name in ("copy_runs", "copy_heads", "diversity", "motifs_heads", "motifs_summary",
                 "sparse", "prune", "prune_importance"):  # fmt: skip
        assert read_table(tmp_path / f"{name}.csv")[0]
    assert sorted(figures) == sorted(
        f"{name}.png" for name in ("copy_accuracy", "copy_heads", "diversity", "motifs",
                                   "sparse", "prune", "prune_importance")
    )  # fmt: skip
    prune = read_table(tmp_path / "prune.csv")[0]
    smoke = claims.PRESETS["smoke"]["motifs"]
    assert [r["kept"] for r in prune] == list(range(smoke["layers"] * smoke["heads"], -1, -1))


def test_copy_verdict_tells_log_from_linear_growth():
    log = {16: 1, 32: 2, 64: 3, 128: 4, 256: 5}
    lin = {16: 1, 32: 2, 64: 4, 128: 8, 256: 16}
    number, verdict, _, fits = claims.copy_verdict(log, 0.95, 16)
    assert verdict == "confirmed" and fits["r2_log"] == pytest.approx(1.0)
    assert "1 / 2 / 3 / 4 / 5" in number
    assert claims.copy_verdict(lin, 0.95, 16)[1] == "refuted"
    assert claims.copy_verdict({16: 2, 32: 2, 64: 2}, 0.95, 16)[1] == "partly"  # no growth
    _, verdict, reason, _ = claims.copy_verdict({16: 1, 32: 2, 64: 3, 128: None}, 0.95, 16)
    assert verdict == "partly" and "128" in reason


def test_motif_data_plants_exactly_the_sites_it_reports():
    width, length, spacing = 6, 40, 12
    data = claims.motif_data(60, length, spacing, seed=3)
    seqs = data["x"].argmax(-1).numpy()
    motifs = [claims._encode(m) for m in claims.MOTIFS.values()]
    groups = claims.GROUPS
    for b in range(60):
        group = groups[int(data["group"][b])]
        assert float(data["label"][b]) == claims.LABEL[groups.index(group)]
        found = claims._occurrences(seqs[b], motifs)
        assert found == {"background": 0, "single": 1, "pair": 2, "wrong spacing": 2,
                         "half pair": 1}[group]  # fmt: skip
        assert int(data["site"][b].sum()) == width * found
        left, right = int(data["left"][b]), int(data["right"][b])
        if group == "pair":
            assert right - left == spacing
        if group == "wrong spacing":
            assert abs(right - left - spacing) > 3
    features = claims.kmer_features(data["x"][:2], 3)  # [2, L, 12]: bases i, i + 1, i + 2
    assert torch.equal(features[:, :-2, 4:8], data["x"][:2, 1:-1])
    assert (features[:, -1, 4:] == 0).all()


def test_rules_of_the_other_claims():
    base = [{"orthogonality": 0.0, "mean_cka": c, "accuracy": 1.0} for c in (0.8, 0.9)]
    ortho = [{"orthogonality": 1.0, "mean_cka": c, "accuracy": 0.99} for c in (0.3, 0.4)]
    assert claims.diversity_verdict(base + ortho, 1.0)[1] == "confirmed"
    overlap = [{"orthogonality": 1.0, "mean_cka": c, "accuracy": 1.0} for c in (0.5, 0.85)]
    assert claims.diversity_verdict(base + overlap, 1.0)[1] == "partly"
    assert claims.diversity_verdict(base + base[::-1], 0.0)[1] == "refuted"
    prune = [
        {"kept": k, "accuracy_importance": a, "accuracy_random_mean": a}
        for k, a in ((4, 0.9), (3, 0.9), (2, 0.895), (1, 0.7), (0, 0.5))
    ]
    number, verdict, _ = claims.prune_verdict(prune, 4)
    assert verdict == "confirmed" and number.startswith("2 of 4 heads")
    assert claims.prune_verdict(prune[:1] + [{**r, "accuracy_importance": 0.5}
                                             for r in prune[1:]], 4)[1] == "refuted"  # fmt: skip
    heads = [
        {"layer": 0, "head": h, "entropy_norm": e, "motif_precision": p,
         "position_precision": 0.1, "chance": 0.1, "link": k, "link_wrong_spacing": 0.1}
        for h, (e, p, k) in enumerate([(0.2, 0.8, 0.05), (0.9, 0.1, 0.6), (0.8, 0.1, 0.05)])
    ]  # fmt: skip
    assert claims.motifs_verdict(heads, 1, 1.0, 6, 120)[1] == "confirmed"
    unlinked = [{**h, "link": 0.05} for h in heads]
    assert claims.motifs_verdict(unlinked, 1, 1.0, 6, 120)[1] == "partly"
    assert "not specific" not in claims.motifs_verdict(heads, 1, 1.0, 6, 120)[2]
    anywhere = [{**h, "link_wrong_spacing": h["link"]} for h in heads]  # links any two motifs
    _, verdict, reason, _ = claims.motifs_verdict(anywhere, 1, 1.0, 6, 120)
    assert verdict == "confirmed" and "not specific to the spacing" in reason


def _sparse_rows(length, full, swapped, trained):
    rows = [
        {"trained": "full", "pattern": "full", "size": length, "accuracy": full, "rel_error": 0.0}
    ]
    rows += [{"trained": "full", "pattern": "window", "size": r, "accuracy": a, "rel_error": 0.1}
             for r, a in swapped.items()]  # fmt: skip
    rows += [{"trained": f"window({r})", "pattern": "window", "size": r, "accuracy": a}
             for r, a in trained.items()]  # fmt: skip
    return rows


def test_sparse_rule_counts_only_windows_of_at_most_half_the_sequence():
    L = 120  # windows with 2r + 1 <= 60 count: r <= 29
    rows = _sparse_rows(L, 0.99, {8: 0.5, 64: 0.99}, {8: 0.8, 16: 0.985})
    number, verdict, reason = claims.sparse_verdict(rows, L, [8, 16])
    assert verdict == "partly" and "sparse-trained model matches" in reason
    assert "trained with r = 8: 0.800, 16: 0.985" in number
    rows = _sparse_rows(L, 0.99, {8: 0.5, 16: 0.99}, {8: 0.8, 64: 0.99})  # 64 does not count
    assert claims.sparse_verdict(rows, L, [8, 64])[1:] == (
        "partly",
        "swapped-in windows keep accuracy, the sparse-trained model does not",
    )
    rows = _sparse_rows(L, 0.99, {8: 0.5}, {8: 0.8, 16: 0.5})
    assert claims.sparse_verdict(rows, L, [8, 16])[1] == "refuted"
    rows = _sparse_rows(L, 0.99, {16: 0.99}, {16: 0.99})
    assert claims.sparse_verdict(rows, L, [16])[1] == "confirmed"


def test_the_command_names_copy_overrides():
    full = claims.PRESETS["full"]["copy"]
    assert claims.command("copy", "full", full) == "python examples/head_claims.py copy"
    changed = {**full, "lengths": [512], "steps": 2000}
    assert claims.command("copy", "quick", {**claims.PRESETS["quick"]["copy"], "steps": 9}) == (
        "python examples/head_claims.py copy --quick --copy-steps 9"
    )
    assert claims.command("copy", "full", changed).endswith("--copy-lengths 512 --copy-steps 2000")
