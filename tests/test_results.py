"""The README's and docs' tables are exactly what their result CSVs say."""

from __future__ import annotations

from pathlib import Path

from graphattn.experiments.tables import check

ROOT = Path(__file__).resolve().parents[1]


def test_tables_match_their_csvs():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    stale = check(docs, ROOT)
    assert not stale, f"regenerate with `make tables`: {stale}"
