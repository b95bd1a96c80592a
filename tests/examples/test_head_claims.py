"""examples/claims/heads_*.py: a tiny run of every claim (`examples` marker), and their rules
on known inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from graphattn.experiments import plots, read_table

from ._studies import load_example

VERDICTS = {"confirmed", "partly", "refuted"}
CLAIMS = ("copy", "diversity", "motifs", "sparse", "prune")
scripts = {claim: load_example(f"claims/heads_{claim}") for claim in CLAIMS}
motifs = load_example("claims/_motifs")


@pytest.mark.examples
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

    for script in scripts.values():
        monkeypatch.setattr(script, "figure", draw_only, raising=False)
        monkeypatch.setattr(script, "heatmap", heatmap, raising=False)
    threads = torch.get_num_threads()
    for claim, script in scripts.items():
        verdict = script.main(["--smoke", "--out", str(tmp_path), "--no-progress"])
        assert verdict.verdict in VERDICTS
        assert torch.get_num_threads() == threads  # restored
        table, meta = read_table(tmp_path / f"{claim}_verdict.csv")
        assert table[0]["command"] == f"python examples/claims/heads_{claim}.py --smoke"
        assert '"level": "smoke"' in meta["settings"] and table[0]["verdict"] == verdict.verdict
    printed = capsys.readouterr().out
    assert printed.count("verdict (") == 5
    for name in ("copy_runs", "copy_heads", "diversity", "motifs_heads", "motifs_summary",
                 "sparse", "prune", "prune_importance"):  # fmt: skip
        assert read_table(tmp_path / f"{name}.csv")[0]
    assert sorted(figures) == sorted(
        f"{name}.png" for name in ("copy_accuracy", "copy_heads", "diversity", "motifs",
                                   "sparse", "prune", "prune_importance")
    )  # fmt: skip
    prune = read_table(tmp_path / "prune.csv")[0]
    smoke = motifs.PRESETS["smoke"]
    assert [r["kept"] for r in prune] == list(range(smoke["layers"] * smoke["heads"], -1, -1))


def test_copy_verdict_tells_log_from_linear_growth():
    copy_verdict = scripts["copy"].copy_verdict
    log = {16: 1, 32: 2, 64: 3, 128: 4, 256: 5}
    lin = {16: 1, 32: 2, 64: 4, 128: 8, 256: 16}
    verdict, fits = copy_verdict(log, 0.95, 16)
    assert verdict.verdict == "confirmed" and fits["r2_log"] == pytest.approx(1.0)
    assert "1 / 2 / 3 / 4 / 5" in verdict.number
    assert copy_verdict(lin, 0.95, 16)[0].verdict == "refuted"
    assert copy_verdict({16: 2, 32: 2, 64: 2}, 0.95, 16)[0].verdict == "partly"  # no growth
    verdict, _ = copy_verdict({16: 1, 32: 2, 64: 3, 128: None}, 0.95, 16)
    assert verdict.verdict == "partly" and "128" in verdict.reason


def test_motif_data_plants_exactly_the_sites_it_reports():
    width, length, spacing = 6, 40, 12
    data = motifs.motif_data(60, length, spacing, seed=3)
    seqs = data["x"].argmax(-1).numpy()
    planted = [motifs._encode(m) for m in motifs.MOTIFS.values()]
    groups = motifs.GROUPS
    for b in range(60):
        group = groups[int(data["group"][b])]
        assert float(data["label"][b]) == motifs.LABEL[groups.index(group)]
        found = motifs._occurrences(seqs[b], planted)
        assert found == {"background": 0, "single": 1, "pair": 2, "wrong spacing": 2,
                         "half pair": 1}[group]  # fmt: skip
        assert int(data["site"][b].sum()) == width * found
        left, right = int(data["left"][b]), int(data["right"][b])
        if group == "pair":
            assert right - left == spacing
        if group == "wrong spacing":
            assert abs(right - left - spacing) > 3
    features = motifs.kmer_features(data["x"][:2], 3)  # [2, L, 12]: bases i, i + 1, i + 2
    assert torch.equal(features[:, :-2, 4:8], data["x"][:2, 1:-1])
    assert (features[:, -1, 4:] == 0).all()


def test_rules_of_the_other_claims():
    diversity_verdict = scripts["diversity"].diversity_verdict
    base = [{"orthogonality": 0.0, "mean_cka": c, "accuracy": 1.0} for c in (0.8, 0.9)]
    ortho = [{"orthogonality": 1.0, "mean_cka": c, "accuracy": 0.99} for c in (0.3, 0.4)]
    assert diversity_verdict(base + ortho, 1.0).verdict == "confirmed"
    overlap = [{"orthogonality": 1.0, "mean_cka": c, "accuracy": 1.0} for c in (0.5, 0.85)]
    assert diversity_verdict(base + overlap, 1.0).verdict == "partly"
    assert diversity_verdict(base + base[::-1], 0.0).verdict == "refuted"
    prune_verdict = scripts["prune"].prune_verdict
    prune = [
        {"kept": k, "accuracy_importance": a, "accuracy_random_mean": a}
        for k, a in ((4, 0.9), (3, 0.9), (2, 0.895), (1, 0.7), (0, 0.5))
    ]
    verdict = prune_verdict(prune, 4)
    assert verdict.verdict == "confirmed" and verdict.number.startswith("2 of 4 heads")
    worse = prune[:1] + [{**r, "accuracy_importance": 0.5} for r in prune[1:]]
    assert prune_verdict(worse, 4).verdict == "refuted"
    motifs_verdict = scripts["motifs"].motifs_verdict
    heads = [
        {"layer": 0, "head": h, "entropy_norm": e, "motif_precision": p,
         "position_precision": 0.1, "chance": 0.1, "link": k, "link_wrong_spacing": 0.1}
        for h, (e, p, k) in enumerate([(0.2, 0.8, 0.05), (0.9, 0.1, 0.6), (0.8, 0.1, 0.05)])
    ]  # fmt: skip
    assert motifs_verdict(heads, 1, 1.0, 6, 120)[0].verdict == "confirmed"
    unlinked = [{**h, "link": 0.05} for h in heads]
    assert motifs_verdict(unlinked, 1, 1.0, 6, 120)[0].verdict == "partly"
    assert "not specific" not in motifs_verdict(heads, 1, 1.0, 6, 120)[0].reason
    anywhere = [{**h, "link_wrong_spacing": h["link"]} for h in heads]  # links any two motifs
    verdict, _ = motifs_verdict(anywhere, 1, 1.0, 6, 120)
    assert verdict.verdict == "confirmed" and "not specific to the spacing" in verdict.reason


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
    sparse_verdict = scripts["sparse"].sparse_verdict
    L = 120  # windows with 2r + 1 <= 60 count: r <= 29
    verdict = sparse_verdict(_sparse_rows(L, 0.99, {8: 0.5, 64: 0.99}, {8: 0.8, 16: 0.985}), L,
                             [8, 16])  # fmt: skip
    assert verdict.verdict == "partly" and "sparse-trained model matches" in verdict.reason
    assert "trained with r = 8: 0.800, 16: 0.985" in verdict.number
    rows = _sparse_rows(L, 0.99, {8: 0.5, 16: 0.99}, {8: 0.8, 64: 0.99})  # 64 does not count
    assert sparse_verdict(rows, L, [8, 64])[1:] == (
        "partly",
        "swapped-in windows keep accuracy, the sparse-trained model does not",
    )
    rows = _sparse_rows(L, 0.99, {8: 0.5}, {8: 0.8, 16: 0.5})
    assert sparse_verdict(rows, L, [8, 16]).verdict == "refuted"
    rows = _sparse_rows(L, 0.99, {16: 0.99}, {16: 0.99})
    assert sparse_verdict(rows, L, [16]).verdict == "confirmed"
