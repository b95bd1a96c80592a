import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gather_floor.py"


def _load():
    spec = importlib.util.spec_from_file_location("gather_floor", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gather_floor_smoke(capsys):
    result = _load().main(["--nodes", "500", "--degree", "4", "--d-model", "16",
                           "--repeats", "2"])
    assert 0 < result["best_s"] <= result["median_s"]
    assert result["floor_s"] == pytest.approx(3 * result["best_s"])
    assert "floor for forward + backward" in capsys.readouterr().out


def test_gather_floor_rejects_bad_sizes():
    with pytest.raises(SystemExit):
        _load().main(["--nodes", "0"])
