"""Shared fixtures: the labelled graph catalogue every engine test draws from.

Sizes are pairwise distinct (N varies per graph, F=5 input channels, H=3 heads, D=11 channels
per head) so that a transposed dimension cannot pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import Tensor

from graphattn import CausalFullGraph, ChunkedGraph, FullGraph, GridGraph, WindowGraph
from graphattn.patterns import Pattern

IN_CHANNELS = 5
HEADS = 3
HEAD_DIM = 11
OUT_CHANNELS = HEADS * HEAD_DIM


@dataclass
class GraphCase:
    """A labelled test graph: an edge list, and the pattern it equals (if any)."""

    name: str
    num_nodes: int
    edge_index: Tensor
    pattern: Pattern | None = None

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    def __repr__(self) -> str:
        return f"GraphCase({self.name}, N={self.num_nodes}, E={self.num_edges})"


TESTS = Path(__file__).resolve().parent

#: ``torch.autograd.gradcheck`` settings for float64 inputs: fast mode (one random projection
#: u^T J v instead of the whole Jacobian, column by column) with tolerances tightened to what
#: float64 finite differences reach; with the defaults, fast mode misses a 0.1% error in one
#: input's gradient.
FAST_GRADCHECK = {"fast_mode": True, "atol": 1e-8, "rtol": 1e-6}


def pytest_configure(config):
    """Under pytest-xdist (``make test``: two workers) each worker runs torch on one thread,
    so that the workers do not oversubscribe the cores; the kernels' multi-threaded paths have
    their own tests, which set the thread count."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


#: test folders of small models that run on one torch thread
ONE_THREAD = {"nn", "distributed", "loader"}


@pytest.fixture(autouse=True)
def _small_models_on_one_thread(request):
    """Run the small models of ``ONE_THREAD``'s folders on one torch thread.

    On a shared 2-core machine two OpenMP threads per process make tiny matmuls much slower
    (the threads wait on each other while other processes hold the cores).
    """
    if Path(request.node.path).relative_to(TESTS).parts[0] not in ONE_THREAD:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _edges(pairs: list[tuple[int, int]]) -> Tensor:
    if not pairs:
        return torch.empty(2, 0, dtype=torch.long)
    return torch.tensor(pairs, dtype=torch.long).t().contiguous()


def _complete(n: int) -> list[tuple[int, int]]:
    return [(j, i) for i in range(n) for j in range(n)]


def _random_edges(n: int, e: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (2, e), generator=g)


def build_catalogue() -> list[GraphCase]:
    batch_sizes = [1, 3, 7, 0, 12]
    batch = FullGraph.from_sizes(batch_sizes)
    full7 = FullGraph(7)
    cases = [
        GraphCase("empty", 0, _edges([])),
        GraphCase("no-edges", 6, _edges([])),
        # nodes 0, 3 and 8 have no incoming edge; node 5 has a single one
        GraphCase(
            "isolated",
            9,
            _edges([(1, 2), (2, 1), (4, 2), (6, 5), (7, 6), (1, 7), (2, 7), (4, 4), (0, 1)]),
        ),
        GraphCase("self-loops", 5, _edges([(i, i) for i in range(5)] + [(0, 1), (3, 1)])),
        GraphCase(
            "duplicate-edges",
            6,
            _edges([(0, 1), (0, 1), (0, 1), (2, 1), (3, 4), (3, 4), (5, 4), (1, 0), (5, 5)]),
        ),
        GraphCase("complete", 7, full7.edge_index(), full7),
        GraphCase("path", 8, _edges([(i, i + 1) for i in range(7)])),
        GraphCase("random", 23, _random_edges(23, 97, seed=0)),
        GraphCase("batch", sum(batch_sizes), batch.edge_index(), batch),
        GraphCase("single-node", 1, _edges([(0, 0)]), FullGraph(1)),
    ]
    # Structured patterns over ragged batches (a zero-length graph included), with lengths
    # that are not multiples of the chunk or window size.
    structured = [
        ("causal-batch", CausalFullGraph.from_sizes([4, 0, 9])),
        ("chunked-batch", ChunkedGraph.from_sizes([7, 0, 12, 1], chunk_size=3)),
        ("window-batch", WindowGraph.from_sizes([13, 2, 0, 6], radius=2)),
        ("causal-window", WindowGraph.from_sizes([11, 5], radius=3, causal=True)),
        ("grid-8", GridGraph(3, 5, radius=1, num_graphs=2)),
        ("grid-4", GridGraph(4, 3, radius=1, metric="manhattan")),
    ]
    for name, pattern in structured:
        cases.append(GraphCase(name, pattern.num_nodes, pattern.edge_index(), pattern))
    return cases


CATALOGUE = build_catalogue()


def pytest_generate_tests(metafunc):
    """``graph_case`` runs over the whole catalogue; ``pattern_case`` over the patterned ones."""
    if "graph_case" in metafunc.fixturenames:
        metafunc.parametrize("graph_case", CATALOGUE, ids=[c.name for c in CATALOGUE])
    if "pattern_case" in metafunc.fixturenames:
        cases = [c for c in CATALOGUE if c.pattern is not None]
        metafunc.parametrize("pattern_case", cases, ids=[c.name for c in cases])


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
