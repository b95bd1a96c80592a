import csv

import pytest

from ._scripts import load_script


def _load():
    return load_script("sparse_scaling")


def test_sparse_scaling_smoke(tmp_path):
    """Tiny sizes, one step each, every engine in its own process: table, CSV and PNG."""
    bench = _load()
    rows = bench.main(
        [
            "--sizes",
            "64",
            "--degree",
            "4",
            "--d-model",
            "16",
            "--heads",
            "2",
            "--warmup",
            "0",
            "--repeats",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert {r["engine"] for r in rows} == {"fused", "scatter", "pyg", "proj"}
    for r in rows:
        assert "error" not in r, r
        assert r["time_s"] > 0 and r["peak_extra_mb"] >= 0
    with open(tmp_path / "sparse_scaling.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert (tmp_path / "sparse_scaling.png").stat().st_size > 0


def test_sparse_scaling_rejects_unknown_engine(tmp_path):
    with pytest.raises(SystemExit):
        _load().main(["--engines", "nope", "--out", str(tmp_path)])
