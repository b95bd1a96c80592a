"""Partitions (METIS, random, the fallback), each rank's owned nodes + halo, replication."""

from __future__ import annotations

import sys

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import k_hop_subgraph

from graphattn.distributed import (
    ReplicationFactor,
    partition_nodes,
    rank_subgraph,
    replication_factor,
)
from graphattn.graphs import grid
from graphattn.nn import GraphTransformer, GraphTransformerConfig


def _grid_edges(rows: int = 13, cols: int = 11) -> torch.Tensor:
    return grid(rows, cols, neighbourhood=4).pattern.edge_index()


def _cut(edge_index: torch.Tensor, parts: torch.Tensor) -> int:
    return int((parts[edge_index[0]] != parts[edge_index[1]]).sum())


def test_random_partition_is_balanced_and_seeded():
    edges = _grid_edges()
    parts = partition_nodes(edges, 143, 4, method="random", seed=3)
    assert parts.dtype == torch.long and parts.shape == (143,)
    assert sorted(torch.bincount(parts).tolist()) == [35, 36, 36, 36]
    assert torch.equal(parts, partition_nodes(edges, 143, 4, method="random", seed=3))
    assert not torch.equal(parts, partition_nodes(edges, 143, 4, method="random", seed=4))
    assert torch.equal(partition_nodes(edges, 143, 1), torch.zeros(143, dtype=torch.long))


def test_metis_cuts_fewer_edges_than_random():
    pytest.importorskip("pymetis")
    edges = _grid_edges()
    metis = partition_nodes(edges, 143, 4, method="metis", seed=0)
    random = partition_nodes(edges, 143, 4, method="random", seed=0)
    counts = torch.bincount(metis, minlength=4)
    assert counts.min() > 0 and counts.max() <= 1.1 * 143 / 4  # METIS's default 3% + rounding
    assert _cut(edges, metis) < _cut(edges, random) / 3
    assert torch.equal(metis, partition_nodes(edges, 143, 4, method="metis", seed=0))
    # halo: METIS replicates less than random for every depth
    for hops in (1, 2):
        assert (
            replication_factor(edges, metis, hops).nodes
            < replication_factor(edges, random, hops).nodes
        )


def test_falls_back_to_random_without_pymetis(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymetis", None)  # `import pymetis` raises ImportError
    edges = _grid_edges()
    with pytest.warns(UserWarning, match="pymetis is not installed"):
        parts = partition_nodes(edges, 143, 3, method="metis", seed=2)
    assert torch.equal(parts, partition_nodes(edges, 143, 3, method="random", seed=2))


@pytest.mark.parametrize("hops", [0, 1, 2, 3])
def test_replication_factor_is_the_halo_size(hops):
    g = torch.Generator().manual_seed(0)
    edges = torch.randint(0, 50, (2, 120), generator=g)
    parts = partition_nodes(edges, 50, 3, method="random", seed=0)
    held_nodes = held_edges = 0
    for rank in range(3):
        owned = (parts == rank).nonzero().view(-1)
        held_nodes += k_hop_subgraph(owned, hops, edges, num_nodes=50)[0].numel()
        if hops > 0:
            inner = k_hop_subgraph(owned, hops - 1, edges, num_nodes=50)[0]
            held_edges += int(torch.isin(edges[1], inner).sum())
    factor = replication_factor(edges, parts, hops)
    assert factor == ReplicationFactor(held_nodes / 50, held_edges / 120)
    one = replication_factor(edges, torch.zeros(50, dtype=torch.long), hops)
    assert one == ReplicationFactor(1.0, 1.0 if hops > 0 else 0.0)


def test_every_rank_reproduces_the_full_graph_on_its_nodes():
    g = torch.Generator().manual_seed(1)
    n = 40
    data = Data(
        x=torch.randn(n, 4, generator=g),
        edge_index=torch.randint(0, n, (2, 130), generator=g),
        num_nodes=n,
    )
    torch.manual_seed(0)
    model = GraphTransformer(
        GraphTransformerConfig(in_channels=4, channels=8, heads=2, num_layers=3)
    )
    full = model(data.x, data.edge_index).node
    parts = partition_nodes(data.edge_index, n, 3, method="random", seed=0)
    seen = []
    for rank in range(3):
        local = rank_subgraph(data, parts, rank, 3)
        owned = local.n_id[: local.batch_size]
        assert torch.equal(owned, (parts == rank).nonzero().view(-1))
        out = model(local.x, local.edge_index).node[: local.batch_size]
        torch.testing.assert_close(out, full[owned], atol=1e-5, rtol=1e-5)
        seen += owned.tolist()
        # a halo one hop short of the model's depth is not exact: the check above can fail
        short = rank_subgraph(data, parts, rank, 2)
        assert not torch.allclose(
            model(short.x, short.edge_index).node[: short.batch_size], full[owned], atol=1e-3
        )
    assert sorted(seen) == list(range(n))


def test_bad_input():
    edges = _grid_edges()
    with pytest.raises(ValueError, match="`method` must be one of"):
        partition_nodes(edges, 143, 2, method="spectral")
    with pytest.raises(ValueError, match="`num_parts` must be > 0"):
        partition_nodes(edges, 143, 0)
    with pytest.raises(ValueError, match=r"outside \[0, 10\)"):
        partition_nodes(edges, 10, 2)
    with pytest.raises(TypeError, match="`edge_index` must be an integer tensor"):
        partition_nodes(edges.float(), 143, 2)
    data = Data(x=torch.zeros(143, 1), edge_index=edges)
    with pytest.raises(ValueError, match=r"`parts` must have shape \[143\]"):
        rank_subgraph(data, torch.zeros(5, dtype=torch.long), 0, 1)
    with pytest.raises(ValueError, match="`parts` must be >= 0"):
        rank_subgraph(data, torch.full((143,), -1), 0, 1)
    with pytest.raises(TypeError, match="`data` must be a torch_geometric.data.Data"):
        rank_subgraph(edges, torch.zeros(143, dtype=torch.long), 0, 1)
    with pytest.raises(ValueError, match="`num_hops` must be >= 0"):
        replication_factor(edges, torch.zeros(143, dtype=torch.long), -1)
