"""A tiny run of examples/economy_study.py: every table and figure is written."""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import torch

from graphattn.nn import GraphTransformer

ROOT = Path(__file__).resolve().parents[2]


def _load_study():
    spec = importlib.util.spec_from_file_location(
        "economy_study", ROOT / "examples" / "economy_study.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("economy_study", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_tiny_study_run(tmp_path, capsys):
    study = _load_study()
    threads = torch.get_num_threads()
    try:
        result = study.main(
            [
                "--agents",
                "20",
                "--scenarios",
                "2",
                "--test-scenarios",
                "1",
                "--epochs",
                "3",
                "--d-model",
                "8",
                "--depths",
                "1",
                "2",
                "--hops",
                "1",
                "2",
                "--heads",
                "1",
                "2",
                "--relations",
                "1",
                "3",
                "--no-progress",
                "--out",
                str(tmp_path),
            ]
        )
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert "(a) depth vs hops" in printed and "(b) width vs relation types" in printed
    for name in ("depth_vs_hops", "width_vs_relations", "head_relation_share"):
        assert (tmp_path / f"{name}.csv").stat().st_size > 0
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    with (tmp_path / "depth_vs_hops.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {(int(r["hops_k"]), int(r["depth_L"])) for r in rows} == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert all(math.isfinite(float(r["test_nmse"])) for r in rows)
    assert len(result["width"]) == 4
    # head shares: per head, the shares over the K relations sum to 1
    for row in result["shares"]:
        k = row["relations_K"]
        total = sum(float(row[n]) for n in ["goods", "capital", "labour"][:k])
        assert abs(total - 1.0) < 1e-3


def test_head_relation_share_sums_to_one():
    study = _load_study()
    split = study.make_split(25, 3, 2, seed=5, density=0.5, steps=1)
    torch.manual_seed(0)
    model = study.build_model(split.batch.x.size(1), d_model=12, heads=3, layers=2, num_relations=3)
    assert isinstance(model, GraphTransformer)
    shares = study.head_relation_share(model, split.batch, 3)
    assert shares.shape == (2, 3, 3)  # (layers, heads, relations)
    np.testing.assert_allclose(shares.sum(-1), 1.0, rtol=1e-5)
