"""Helpers of the example tests: import an example script, check a model's receptive field."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str):
    """Import ``examples/<name>.py`` (not a package; ``name`` may hold a folder, e.g.
    ``claims/heads_copy``) as a module, its folder on ``sys.path`` as when Python runs it, so
    that it finds the helper modules beside it."""
    path = EXAMPLES / f"{name}.py"
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_name = path.stem
    if module_name in sys.modules and getattr(sys.modules[module_name], "__file__", None) == str(
        path
    ):
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up; siblings import it
    spec.loader.exec_module(module)
    return module


def run_tiny(script, argv: list[str], out: Path, capsys, csvs=(), pngs=()):
    """Run ``script.main(argv + --out out)``: the torch threads it set are restored, every
    named CSV starts with its header and every named PNG is a PNG. Returns the result and what
    the run printed."""
    threads = torch.get_num_threads()
    result = script.main([*argv, "--out", str(out)])
    assert torch.get_num_threads() == threads  # the run's threads, restored
    for name in csvs:
        assert (out / f"{name}.csv").read_text().startswith("# date: "), name
    for name in pngs:
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
    return result, capsys.readouterr().out


def assert_receptive_field(
    forward: Callable[[Tensor], Tensor], x: Tensor, hops: Tensor, node: int, depth: int
) -> None:
    """The output of ``forward`` at ``node`` is a function of exactly the inputs at most
    ``depth`` hops away.

    ``hops[j]`` is the hop count from ``j`` to ``node`` (``inf`` where ``j`` does not reach
    it). Re-drawing the inputs of every node farther than ``depth`` hops leaves the output at
    ``node`` bit for bit unchanged; re-drawing those exactly ``depth`` hops away changes it.
    """
    gen = torch.Generator().manual_seed(0)
    far = hops > depth
    edge = hops == depth
    assert far.any() and edge.any(), "the test graph must have nodes beyond and at the edge"
    base = forward(x)[node]
    moved_far = x.clone()
    moved_far[far] = torch.rand(moved_far[far].shape, generator=gen)
    assert torch.equal(forward(moved_far)[node], base), "an input beyond reach changed the output"
    moved_edge = x.clone()
    moved_edge[edge] = torch.rand(moved_edge[edge].shape, generator=gen)
    assert not torch.allclose(forward(moved_edge)[node], base, atol=1e-6), (
        f"inputs {depth} hops away did not reach the output"
    )
