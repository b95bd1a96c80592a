"""The README's and docs' tables are exactly what their result CSVs say."""

from __future__ import annotations

from pathlib import Path

from graphattn.experiments.tables import check

ROOT = Path(__file__).resolve().parents[1]


def test_tables_match_their_csvs():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    stale = check(docs, ROOT)
    assert not stale, f"regenerate with `make tables`: {stale}"


def test_auto_min_edges_is_the_recorded_crossover():
    """``fused.AUTO_MIN_EDGES`` is the edge count from which fused beat scatter at every larger
    size in the committed crossover recording (the rule benchmarks/auto_crossover.py prints)."""
    from graphattn.engines import fused
    from graphattn.experiments import read_table

    rows, _ = read_table(ROOT / "results/auto_crossover/auto_crossover.csv")
    rows = sorted(rows, key=lambda r: r["edges"])
    wins = [r["ratio"] > 1 for r in rows]
    assert wins[-1], "fused never wins in the recording"
    first = max(i for i, w in enumerate(wins) if not w) + 1 if not all(wins) else 0
    assert fused.AUTO_MIN_EDGES == rows[first]["edges"]
