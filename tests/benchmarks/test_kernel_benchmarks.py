import pytest

from ._scripts import load_script


def _load():
    return load_script("gather_floor")


def test_gather_floor_smoke(capsys):
    result = _load().main(["--nodes", "500", "--degree", "4", "--d-model", "16", "--repeats", "2"])
    assert 0 < result["best_s"] <= result["median_s"]
    assert result["floor_s"] == pytest.approx(3 * result["best_s"])
    assert "floor for forward + backward" in capsys.readouterr().out


def test_gather_floor_rejects_bad_sizes():
    with pytest.raises(SystemExit):
        _load().main(["--nodes", "0"])


@pytest.mark.xdist_group("fused-builds")  # one worker compiles the special builds
def test_fused_kernels_smoke(tmp_path, capsys):
    """Both builds timed, and the table written as the README says (fused_kernels.csv)."""
    from graphattn.experiments import read_table

    rows = load_script("fused_kernels").main(
        ["--nodes", "300", "--degree", "4", "--heads", "2", "--d-model", "16", "--repeats", "1",
         "--rounds", "1", "--out", str(tmp_path)]
    )  # fmt: skip
    assert [r["build"] for r in rows] == ["compiled", "generic"]
    for r in rows:
        assert r["total_best_s"] > 0
    assert "by source" in capsys.readouterr().out
    written, meta = read_table(tmp_path / "fused_kernels.csv")
    assert [r["build"] for r in written] == ["compiled", "generic"]
    assert meta["machine"] and meta["settings"]


def test_fused_kernels_rejects_bad_sizes():
    with pytest.raises(SystemExit):
        load_script("fused_kernels").main(["--heads", "0"])


def test_window_floor_smoke(tmp_path, capsys):
    """The window step split into projections, flash core and glue, written as a CSV."""
    result = load_script("window_floor").main(
        ["--nodes", "300", "--radius", "8", "--d-model", "16", "--heads", "2", "--repeats", "2",
         "--matmul-size", "64", "--out", str(tmp_path)]
    )  # fmt: skip
    assert result["layer_s"] > 0 and result["projections_s"] > 0 and result["flash_core_s"] > 0
    assert 0 < result["frac_matmul"] and 0 < result["frac_bound"]
    assert result["block"] == 64 and result["span"] == 64 + 2 * 8
    assert "projections + core alone" in capsys.readouterr().out
    assert (tmp_path / "window_floor.csv").read_text().startswith("# date:")


def test_window_floor_rejects_bad_sizes():
    with pytest.raises(SystemExit):
        load_script("window_floor").main(["--heads", "3"])
