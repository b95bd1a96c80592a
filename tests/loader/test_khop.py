"""Exact L-hop mini-batches: the node and edge sets, and outputs/gradients equal to the full
graph's on the seeds; fan-out sampling; PyG's NeighborLoader where it can run; bad input."""

from __future__ import annotations

import pickle
import time

import pytest
import torch
import torch_geometric.typing
from torch_geometric.data import Data
from torch_geometric.utils import k_hop_subgraph

from graphattn.loader import HopSampler, KHopLoader, hop_batch
from graphattn.nn import GraphTransformer, GraphTransformerConfig

N, F, R = 37, 5, 3  # pairwise distinct sizes: nodes, features, relations


def _graph(seed: int = 0, num_nodes: int = N, num_edges: int = 110) -> Data:
    """A random multigraph with duplicate edges, self-loops, isolated and sink nodes."""
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes - 3, (2, num_edges), generator=g)  # 3 isolated nodes
    edge_index = torch.cat([edge_index, edge_index[:, :6], torch.tensor([[4, 9], [4, 9]])], 1)
    num_edges = edge_index.size(1)
    return Data(
        x=torch.randn(num_nodes, F, generator=g),
        y=torch.randn(num_nodes, generator=g),
        edge_index=edge_index,
        edge_attr=torch.randn(num_edges, 2, generator=g),
        edge_type=torch.randint(0, R, (num_edges,), generator=g),
        num_nodes=num_nodes,
    )


def _model(num_layers: int, engine: str = "auto") -> GraphTransformer:
    torch.manual_seed(1)
    config = GraphTransformerConfig(
        in_channels=F,
        channels=12,
        heads=3,
        num_layers=num_layers,
        out_channels=2,
        ffn_ratio=2,
        edge_dim=2,
        num_relations=R,
        engine=engine,
    )
    return GraphTransformer(config)


def _node_out(model: GraphTransformer, data: Data) -> torch.Tensor:
    return model(data.x, data.edge_index, data.edge_attr, data.edge_type).node


@pytest.mark.parametrize("num_hops", [0, 1, 2, 3])
def test_nodes_and_edges_are_the_in_neighbourhood(num_hops):
    data = _graph()
    sampler = HopSampler(data.edge_index, N)
    for seeds in (torch.tensor([5]), torch.tensor([30, 2, 17, 36]), torch.arange(N)):
        sub = sampler.sample(seeds, num_hops)
        subset, *_ = k_hop_subgraph(seeds, num_hops, data.edge_index, num_nodes=N)
        assert sorted(sub.n_id.tolist()) == subset.tolist()
        assert sub.n_id[: seeds.numel()].tolist() == seeds.tolist()  # seeds first, in order
        # the edges: exactly the in-edges of the nodes within num_hops - 1 hops
        if num_hops == 0:
            inner = torch.zeros(N, dtype=torch.bool)
        else:
            inner_nodes, *_ = k_hop_subgraph(seeds, num_hops - 1, data.edge_index, num_nodes=N)
            inner = torch.zeros(N, dtype=torch.bool)
            inner[inner_nodes] = True
        want = inner[data.edge_index[1]].nonzero().view(-1)
        assert sorted(sub.e_id.tolist()) == want.tolist()  # duplicates counted once each
        # relabelled edges are the global edges e_id
        assert torch.equal(sub.n_id[sub.edge_index], data.edge_index[:, sub.e_id])
        # per-hop counts, and edges grouped by the hop of their target
        assert sum(sub.num_sampled_nodes) == sub.n_id.numel()
        assert sum(sub.num_sampled_edges) == sub.e_id.numel()
        assert len(sub.num_sampled_nodes) == num_hops + 1
        bounds = torch.tensor(sub.num_sampled_nodes).cumsum(0)
        hop_of_target = torch.bucketize(sub.edge_index[1], bounds, right=True)
        assert torch.equal(hop_of_target, hop_of_target.sort().values)
        assert sub.seed_mask.sum() == seeds.numel() and sub.seed_mask[: seeds.numel()].all()


def test_sparse_and_dense_set_operations_agree(monkeypatch):
    """Small neighbourhoods use sorting, large ones N-sized masks: both give one answer."""
    import graphattn.loader.khop as khop

    data = _graph(seed=3, num_edges=250)
    sampler = HopSampler(data.edge_index, N)
    for seeds in (torch.tensor([6]), torch.tensor([20, 3, 11]), torch.arange(N)):
        for fanout in (None, [2, 2, 2]):
            subs = []
            for ratio in (0, 10**9):  # never dense, always dense
                monkeypatch.setattr(khop, "_DENSE_RATIO", ratio)
                gen = torch.Generator().manual_seed(0)
                subs.append(sampler.sample(seeds, 3, fanout, generator=gen))
            a, b = subs
            assert torch.equal(a.n_id, b.n_id) and torch.equal(a.e_id, b.e_id)
            assert torch.equal(a.edge_index, b.edge_index)


@pytest.mark.parametrize(
    ("num_layers", "engine"), [(1, "auto"), (2, "auto"), (3, "auto"), (2, "scatter")]
)
def test_outputs_and_gradients_equal_full_graph(num_layers, engine):
    data = _graph(seed=2)
    model = _model(num_layers, engine)
    full = _node_out(model, data)
    weight = torch.randn(N, 2, generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(4)
    loader = KHopLoader(data, num_layers, batch_size=8, shuffle=True, generator=gen)
    covered = []
    for batch in loader:
        seeds = batch.n_id[: batch.batch_size]
        covered += seeds.tolist()
        out = _node_out(model, batch)[: batch.batch_size]
        torch.testing.assert_close(out, full[seeds], atol=1e-5, rtol=1e-5)
        # the gradient of a loss on the seeds: the batch vs the full graph
        model.zero_grad()
        (out * weight[seeds]).sum().backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        model.zero_grad()
        (_node_out(model, data)[seeds] * weight[seeds]).sum().backward()
        want = [p.grad for p in model.parameters() if p.grad is not None]
        assert len(grads) == len(want) > 0
        for got, ref in zip(grads, want, strict=True):
            torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert sorted(covered) == list(range(N))


def test_fewer_hops_than_layers_is_not_exact():
    """The check above can fail: with one hop too few, a 2-layer model's seeds differ."""
    data = _graph(seed=2)
    model = _model(2)
    full = _node_out(model, data)
    batch = hop_batch(data, torch.arange(N)[::4], num_hops=1)
    out = _node_out(model, batch)[: batch.batch_size]
    assert (out - full[batch.n_id[: batch.batch_size]]).abs().max() > 1e-3


def test_batch_slices_node_and_edge_attributes():
    data = _graph()
    batch = hop_batch(data, torch.tensor([3, 11]), num_hops=2)
    assert torch.equal(batch.x, data.x[batch.n_id])
    assert torch.equal(batch.y, data.y[batch.n_id])
    assert torch.equal(batch.edge_attr, data.edge_attr[batch.e_id])
    assert torch.equal(batch.edge_type, data.edge_type[batch.e_id])
    assert batch.num_nodes == batch.n_id.numel() and batch.batch_size == 2
    assert torch.equal(batch.seed_mask.nonzero().view(-1), torch.tensor([0, 1]))
    assert data.num_nodes == N  # the input is not modified


def test_fan_out_sampling():
    data = _graph(seed=5, num_edges=300)
    sampler = HopSampler(data.edge_index, N)
    seeds = torch.tensor([0, 7, 21])
    in_deg = torch.bincount(data.edge_index[1], minlength=N)
    sub = sampler.sample(seeds, 2, [2, 3], generator=torch.Generator().manual_seed(0))
    # every sampled edge is a real edge, taken once
    assert torch.equal(sub.n_id[sub.edge_index], data.edge_index[:, sub.e_id])
    assert sub.e_id.unique().numel() == sub.e_id.numel()
    # hop h keeps min(k_h, in-degree) in-edges of each of its nodes
    first = 0
    for hop, k in enumerate([2, 3]):
        nodes = sub.n_id[first : first + sub.num_sampled_nodes[hop]]
        targets = sub.edge_index[1][sub.edge_index[1] >= first]
        targets = targets[targets < first + nodes.numel()] - first
        got = torch.bincount(targets, minlength=nodes.numel())
        assert torch.equal(got, in_deg[nodes].clamp_max(k))
        first += nodes.numel()
    assert sub.e_id.numel() < sampler.sample(seeds, 2).e_id.numel()
    # seeded: the same draw again; another seed: another draw
    again = sampler.sample(seeds, 2, [2, 3], generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.e_id, sub.e_id)
    draws = {
        tuple(
            sampler.sample(
                seeds, 2, [2, 3], generator=torch.Generator().manual_seed(s)
            ).e_id.tolist()
        )
        for s in range(5)
    }
    assert len(draws) > 1
    # a fan-out at least the largest in-degree is the exact neighbourhood
    big = int(in_deg.max())
    exact = sampler.sample(seeds, 2)
    assert torch.equal(sampler.sample(seeds, 2, [big, -1]).e_id, exact.e_id)


def test_loader_options():
    data = _graph()
    mask = torch.zeros(N, dtype=torch.bool)
    mask[[1, 4, 8, 9, 20]] = True
    batches = list(KHopLoader(data, 1, input_nodes=mask, batch_size=2))
    assert [b.batch_size for b in batches] == [2, 2, 1]
    seeds = torch.cat([b.n_id[: b.batch_size] for b in batches])
    assert seeds.tolist() == [1, 4, 8, 9, 20]
    assert [
        b.batch_size
        for b in KHopLoader(
            data, 1, input_nodes=torch.tensor([3, 2, 1]), batch_size=2, drop_last=True
        )
    ] == [2]
    loader = KHopLoader(data, 2, [4, -1], batch_size=5)
    assert repr(loader) == "KHopLoader(num_hops=2, num_neighbors=[4, -1], batch_size=5)"
    assert next(iter(loader)).num_sampled_edges[0] <= 4 * 5


def test_bad_input():
    data = _graph()
    sampler = HopSampler(data.edge_index, N)
    with pytest.raises(ValueError, match="`seeds` must be distinct"):
        sampler.sample(torch.tensor([1, 1]), 1)
    with pytest.raises(ValueError, match=r"`seeds` must be node ids in \[0, 37\)"):
        sampler.sample(torch.tensor([37]), 1)
    with pytest.raises(TypeError, match="`seeds` must be an integer tensor"):
        sampler.sample(torch.tensor([1.0]), 1)
    with pytest.raises(ValueError, match="`seeds` must be 1-D"):
        sampler.sample(torch.tensor([[1]]), 1)
    with pytest.raises(ValueError, match="`num_hops` must be >= 0"):
        sampler.sample(torch.tensor([1]), -1)
    with pytest.raises(ValueError, match="one int per hop"):
        sampler.sample(torch.tensor([1]), 2, [3])
    with pytest.raises(ValueError, match="`num_neighbors` entries must be >= 0 or -1"):
        sampler.sample(torch.tensor([1]), 1, [-2])
    with pytest.raises(TypeError, match="`num_neighbors` must be a sequence"):
        sampler.sample(torch.tensor([1]), 1, 3)
    with pytest.raises(ValueError, match="outside"):
        HopSampler(data.edge_index, 5)
    with pytest.raises(ValueError, match=r"`edge_index` must have shape \[2, E\]"):
        HopSampler(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="`data` must be a torch_geometric.data.Data"):
        KHopLoader(data.edge_index, 1)
    with pytest.raises(ValueError, match=r"`input_nodes` must be node ids in \[0, 37\)"):
        KHopLoader(data, 1, input_nodes=torch.tensor([40]))
    with pytest.raises(ValueError, match=r"a bool `input_nodes` must have shape \[37\]"):
        KHopLoader(data, 1, input_nodes=torch.ones(3, dtype=torch.bool))
    with pytest.raises(TypeError, match="KHopLoader sets `collate_fn` itself"):
        KHopLoader(data, 1, collate_fn=list)
    with pytest.raises(ValueError, match="`sampler` was built for a graph with 5 nodes"):
        hop_batch(data, torch.tensor([0]), 1, sampler=HopSampler(torch.tensor([[0], [1]]), 5))


@pytest.mark.skipif(
    not (torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE),
    reason="PyG's NeighborLoader needs pyg-lib or torch-sparse",
)
def test_pyg_neighbor_loader_gives_the_same_batches():
    """Where pyg-lib or torch-sparse is installed, NeighborLoader with num_neighbors=[-1] * L
    is the same exact mini-batch: the same nodes and edges and the full graph's outputs."""
    from torch_geometric.loader import NeighborLoader

    data = _graph(seed=2)
    model = _model(2)
    full = _node_out(model, data)
    ours = HopSampler(data.edge_index, N)
    for batch in NeighborLoader(data, num_neighbors=[-1, -1], batch_size=8):
        seeds = batch.n_id[: batch.batch_size]
        out = _node_out(model, batch)[: batch.batch_size]
        torch.testing.assert_close(out, full[seeds], atol=1e-5, rtol=1e-5)
        sub = ours.sample(seeds, 2)
        assert sorted(batch.n_id.tolist()) == sorted(sub.n_id.tolist())
        assert sorted(batch.e_id.tolist()) == sorted(sub.e_id.tolist())


def test_hops_after_the_frontier_is_empty_cost_nothing():
    """On a 6-cycle every node is reached within 6 hops; 20,000 hops take under a second (an
    empty hop re-reads no earlier hop). The layout lists keep one entry per hop."""
    ring = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])
    sampler = HopSampler(ring, 6)
    exact = sampler.sample(torch.tensor([2]), 8)
    start = time.perf_counter()
    sub = sampler.sample(torch.tensor([2]), 20_000)
    assert time.perf_counter() - start < 1.0
    assert torch.equal(sub.n_id, exact.n_id) and torch.equal(sub.e_id, exact.e_id)
    assert sub.num_sampled_nodes == [1] * 6 + [0] * 19_995
    assert sub.num_sampled_edges == [1] * 6 + [0] * 19_994


def test_an_edge_attribute_whose_level_its_size_cannot_tell():
    """With E == N an attribute's size cannot tell per node from per edge (PyG would take
    ``weight``, without "edge" in its name, as per node): that is an error unless declared."""
    ring = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])
    data = Data(x=torch.randn(6, 2), edge_index=ring, weight=torch.arange(6.0), num_nodes=6)
    with pytest.raises(ValueError, match=r"level of \['weight'\]"):
        hop_batch(data, torch.tensor([0]), 1)
    with pytest.raises(ValueError, match=r"level of \['weight'\]"):
        KHopLoader(data, 1)
    batch = hop_batch(data, torch.tensor([0]), 1, edge_attrs=["weight"])
    assert torch.equal(batch.weight, data.weight[batch.e_id])  # the edge 5 -> 0
    assert torch.equal(batch.x, data.x[batch.n_id])
    batch = next(iter(KHopLoader(data, 1, edge_attrs=["weight"], batch_size=2)))
    assert torch.equal(batch.weight, data.weight[batch.e_id])
    data.weight = torch.arange(6.0)  # declared per node (none of them is per edge)
    batch = hop_batch(data, torch.tensor([0]), 1, edge_attrs=[])
    assert torch.equal(batch.weight, data.weight[batch.n_id])
    with pytest.raises(ValueError, match="`edge_attrs`: 'nope' is not a tensor attribute"):
        hop_batch(data, torch.tensor([0]), 1, edge_attrs=["nope"])
    with pytest.raises(TypeError, match="`edge_attrs` must be a sequence"):
        hop_batch(data, torch.tensor([0]), 1, edge_attrs="weight")


def test_a_sampler_built_on_another_graph_of_the_same_size_is_refused():
    data = _graph()
    other = HopSampler(data.edge_index.flip(0), N)  # same N and E, other edges
    with pytest.raises(ValueError, match="`sampler` was built on other edges"):
        hop_batch(data, torch.tensor([0]), 1, sampler=other)
    same = HopSampler(data.edge_index, N)
    batch = hop_batch(data, torch.tensor([3]), 2, sampler=same)
    assert torch.equal(batch.n_id, hop_batch(data, torch.tensor([3]), 2).n_id)
    copy = data.clone()  # equal edges in another tensor: accepted
    assert hop_batch(copy, torch.tensor([3]), 2, sampler=same).num_nodes == batch.num_nodes
    data.edge_index[0, 0] = (data.edge_index[0, 0] + 1) % N  # changed after the sampler
    with pytest.raises(ValueError, match="`sampler` was built on other edges"):
        hop_batch(data, torch.tensor([0]), 1, sampler=same)


def test_the_loader_sends_its_workers_the_batch_recipe_not_itself():
    """``multiprocessing_context="spawn"`` pickles the collate function for every worker; a
    bound method took the whole loader along and killed the workers."""
    data = _graph()
    loader = KHopLoader(data, 1, batch_size=4, generator=torch.Generator().manual_seed(0))
    blob = pickle.dumps(loader.collate_fn)
    assert b"KHopLoader" not in blob
    collate = pickle.loads(blob)
    batch = collate([3, 11])
    assert torch.equal(batch.n_id, hop_batch(data, torch.tensor([3, 11]), 1).n_id)


@pytest.mark.slow
def test_spawned_workers_with_a_generator_load_the_batches():
    data = _graph()
    loader = KHopLoader(
        data, 1, batch_size=16, generator=torch.Generator().manual_seed(0), num_workers=1,
        multiprocessing_context="spawn",
    )  # fmt: skip
    assert sum(b.batch_size for b in loader) == N
