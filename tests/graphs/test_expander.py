"""graphattn.graphs.expander: regular, symmetric, within each graph, seeded, and an expander."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import shortest_path
from scipy.sparse.linalg import eigsh

from graphattn import MultiHeadAttentionConv
from graphattn.graphs import expander


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 12), min_size=1, max_size=4), half=st.integers(1, 3))
def test_every_node_has_degree_edges_each_way_inside_its_graph(sizes, half):
    degree = 2 * half
    data = expander(sizes, degree, generator=gen())
    src, dst = data.edge_index
    n = sum(sizes)
    assert data.num_nodes == n and data.ptr.tolist() == np.cumsum([0, *sizes]).tolist()
    assert data.batch.tolist() == [g for g, k in enumerate(sizes) for _ in range(k)]
    in_cycles = torch.tensor([k >= 2 for k in sizes for _ in range(k)], dtype=torch.bool)
    expected = torch.where(in_cycles, degree, 0)
    assert torch.equal(torch.bincount(dst, minlength=n), expected)
    assert torch.equal(torch.bincount(src, minlength=n), expected)
    assert not (src == dst).any(), "no self-loops"
    assert torch.equal(data.batch[src], data.batch[dst]), "edges stay inside their graph"
    # symmetric as a multiset: j -> i as often as i -> j
    key = lambda a, b: sorted((a * max(n, 1) + b).tolist())  # noqa: E731
    assert key(src, dst) == key(dst, src)
    # sorted by target, then source
    assert key(dst, src) == (dst * max(n, 1) + src).tolist()


def test_seeded_generators_repeat_and_differ():
    a = expander([30, 17], 4, generator=gen(1)).edge_index
    assert torch.equal(a, expander([30, 17], 4, generator=gen(1)).edge_index)
    assert not torch.equal(a, expander([30, 17], 4, generator=gen(2)).edge_index)
    torch.manual_seed(3)  # without a generator: torch's global one
    b = expander(30, 4).edge_index
    torch.manual_seed(3)
    assert torch.equal(b, expander(30, 4).edge_index)


def test_it_is_an_expander():
    """A random 4-regular graph on 1000 nodes: connected, a diameter of a few log n, and a
    second adjacency eigenvalue near the Ramanujan bound 2 sqrt(3) = 3.46 (a cycle, the
    worst 2-regular case, has 2 cos(2 pi / n), almost 2 = its degree)."""
    n, degree = 1000, 4
    src, dst = expander(n, degree, generator=gen(0)).edge_index.numpy()
    adj = sp.coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n)).tocsr()
    hops = shortest_path(adj, unweighted=True, indices=[0, 1, 2])
    assert np.isfinite(hops).all(), "connected"
    assert hops.max() <= 12  # log_3(1000) = 6.3
    v0 = np.random.default_rng(0).random(n)
    top = np.sort(eigsh(adj, k=2, which="LA", return_eigenvectors=False, v0=v0))
    bottom = eigsh(adj, k=1, which="SA", return_eigenvectors=False, v0=v0)[0]
    assert top[-1] == pytest.approx(degree)
    assert max(top[0], -bottom) < 2 * np.sqrt(degree - 1) + 0.3


def test_two_node_graphs_repeat_their_pair_and_the_layer_takes_the_overlay():
    data = expander([2], 4, generator=gen())
    assert data.edge_index.tolist() == [[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]]
    tree = torch.tensor([[1, 2], [0, 0]])  # two leaves -> a root
    over = expander(3, 2, generator=gen())
    edge_index = torch.cat([tree, over.edge_index], dim=1)
    out = MultiHeadAttentionConv(4, 4, heads=2)(torch.randn(3, 4), edge_index)
    assert out.shape == (3, 4) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        (dict(sizes=[4], degree=3), ValueError, "degree"),
        (dict(sizes=[4], degree=0), ValueError, "degree"),
        (dict(sizes=[4], degree=2.0), TypeError, "degree"),
        (dict(sizes=[4], degree=True), TypeError, "degree"),
        (dict(sizes=[-1], degree=2), ValueError, "sizes"),
        (dict(sizes=[1.5], degree=2), TypeError, "sizes"),
        (dict(sizes=[4], degree=2, generator=0), TypeError, "generator"),
    ],
)
def test_bad_input_names_the_argument(kwargs, error, name):
    with pytest.raises(error, match=name):
        expander(**kwargs)
