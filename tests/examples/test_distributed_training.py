"""examples/distributed_training.py: a tiny single-process run in this process (`examples`
marker), and (slow) the same again and with torchrun and 2 processes, whose full-graph losses
must be the same; the caches of the economy and the partition."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from graphattn.experiments import read_table

from ._studies import load_example

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--agents", "300", "--steps", "3", "--d-model", "8", "--heads", "2", "--threads", "1"]


def _load_example():
    return load_example("distributed_training")


def _losses(path: Path) -> list[float]:
    return [row["loss"] for row in read_table(path)[0]]


@pytest.mark.examples
def test_single_process_run(tmp_path, capsys):
    example = _load_example()
    threads = torch.get_num_threads()
    args = [*TINY, "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]
    try:
        first = example.main(args)
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert "machine:" in printed and "step   3/3" in printed and "graph edges/s" in printed
    assert first["world_size"] == 1 and first["agents"] == 300
    assert first["replication_nodes"] == 1.0 and first["replication_edges"] == 1.0
    assert math.isfinite(first["test_nmse"]) and first["final_loss"] < first["first_loss"]
    out = tmp_path / "out"
    for name in ("np1-ranks.csv", "np1-steps.csv", "np1-summary.csv", "np1-loss.png"):
        assert (out / name).exists(), name
    (rank,), meta = read_table(out / "np1-ranks.csv")
    assert rank["held_edges"] == first["edges"] and rank["train_peak_mb"] > 0
    assert "distributed_training.py" in meta["command"] and "machine" in meta
    assert len(_losses(out / "np1-steps.csv")) == 3


@pytest.mark.slow
@pytest.mark.examples
def test_torchrun_two_processes_give_the_single_process_losses(tmp_path):
    """Fixed seeds: a second run, from the cache, and a 2-process run print the same losses."""
    common = [*TINY, "--out", str(tmp_path), "--cache", str(tmp_path / "cache")]
    example = str(ROOT / "examples" / "distributed_training.py")
    for cmd in (
        [sys.executable, example, *common],
        [sys.executable, example, "--tag", "again", *common],
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",  # a free port: two runs at once do not meet on 29500
            "--nproc_per_node",
            "2",
            example,
            "--partition",
            "random",
            *common,
        ],
    ):
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    one, two = _losses(tmp_path / "np1-steps.csv"), _losses(tmp_path / "np2-random-steps.csv")
    assert _losses(tmp_path / "again-steps.csv") == one
    torch.testing.assert_close(two, one, rtol=1e-4, atol=1e-5)
    ranks, _ = read_table(tmp_path / "np2-random-ranks.csv")
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    assert sum(r["owned_nodes"] for r in ranks) == 300


def _cache_args(example, tmp_path, *extra):
    return example.parse_args(
        ["--agents", "60", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path), *extra]
    )


def test_the_economy_cache_is_keyed_on_every_setting_that_shapes_it(tmp_path, monkeypatch):
    """The cache key left out --density: a second run with another density trained on the
    first run's data while its CSV recorded the new density."""
    import graphattn
    from graphattn.distributed import DistContext

    example = _load_example()
    ctx = DistContext()
    first = example.load_data(_cache_args(example, tmp_path, "--density", "0.3"), ctx)
    other = example.load_data(_cache_args(example, tmp_path, "--density", "0.6"), ctx)
    assert not torch.equal(first.x, other.x)  # the shocks are inputs
    assert len(list((tmp_path / "cache").glob("economy-*.pt"))) == 2
    monkeypatch.setattr(example, "build_economy", lambda args: pytest.fail("not from the cache"))
    again = example.load_data(_cache_args(example, tmp_path, "--density", "0.3"), ctx)
    assert torch.equal(again.x, first.x) and torch.equal(again.y, first.y)
    monkeypatch.setattr(graphattn, "__version__", "0.0.0")  # another library version
    with pytest.raises(pytest.fail.Exception, match="not from the cache"):
        example.load_data(_cache_args(example, tmp_path, "--density", "0.3"), ctx)


def test_the_partition_cache_is_keyed_on_the_method_and_the_parts(tmp_path, monkeypatch):
    from graphattn.distributed import DistContext

    example = _load_example()
    args = _cache_args(example, tmp_path, "--partition", "random")
    data = example.load_data(args, DistContext())
    two, three = DistContext(world_size=2), DistContext(world_size=3)
    parts = {
        (method, ctx.world_size): example.load_partition(
            _cache_args(example, tmp_path, "--partition", method), ctx, data
        )
        for method in ("random", "metis")
        for ctx in (two, three)
    }
    assert len(list((tmp_path / "cache").glob("parts-*.pt"))) == 4
    assert int(parts["random", 3].max()) == 2 and int(parts["random", 2].max()) == 1
    monkeypatch.setattr(example, "shared_partition", lambda *a, **k: pytest.fail("recomputed"))
    again = example.load_partition(args, two, data)
    assert torch.equal(again, parts["random", 2])
    seeded = _cache_args(example, tmp_path, "--partition", "random", "--seed", "1")
    with pytest.raises(pytest.fail.Exception, match="recomputed"):  # another seed: another key
        example.load_partition(seeded, two, example.load_data(seeded, DistContext()))
