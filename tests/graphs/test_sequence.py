"""Sequence patterns and builders: every materialized edge list against a brute-force
definition, plus the builders' Data and input checks."""

import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphattn import CausalFullGraph, ChunkedGraph, FullGraph, GridGraph, WindowGraph
from graphattn.graphs import causal, chunked, full, pattern_data, window

sizes_st = st.lists(st.integers(0, 13), min_size=1, max_size=4)


def brute_force(sizes, allowed):
    """Edges (j -> i) of every graph by checking every pair, sorted by target then source."""
    pairs, offset = [], 0
    for n in sizes:
        for i in range(n):
            for j in range(n):
                if allowed(i, j):
                    pairs.append((offset + j, offset + i))
        offset += n
    if not pairs:
        return torch.empty(2, 0, dtype=torch.long)
    return torch.tensor(pairs, dtype=torch.long).t()


def assert_edges(pattern, expected):
    got = pattern.edge_index()
    assert got.dtype == torch.long
    assert torch.equal(got, expected), f"{pattern}: {got.tolist()} != {expected.tolist()}"
    assert pattern.num_edges == expected.size(1)


@settings(max_examples=40, deadline=None)
@given(sizes=sizes_st)
def test_full_and_causal_edges(sizes):
    assert_edges(FullGraph.from_sizes(sizes), brute_force(sizes, lambda i, j: True))
    assert_edges(CausalFullGraph.from_sizes(sizes), brute_force(sizes, lambda i, j: j <= i))


@settings(max_examples=60, deadline=None)
@given(sizes=sizes_st, chunk=st.integers(1, 6))
def test_chunked_edges(sizes, chunk):
    expected = brute_force(sizes, lambda i, j: i // chunk == j // chunk)
    assert_edges(ChunkedGraph.from_sizes(sizes, chunk_size=chunk), expected)


@settings(max_examples=60, deadline=None)
@given(sizes=sizes_st, radius=st.integers(0, 15), is_causal=st.booleans())
def test_window_edges(sizes, radius, is_causal):
    if is_causal:
        expected = brute_force(sizes, lambda i, j: i - radius <= j <= i)
    else:
        expected = brute_force(sizes, lambda i, j: abs(i - j) <= radius)
    assert_edges(WindowGraph.from_sizes(sizes, radius=radius, causal=is_causal), expected)


@pytest.mark.parametrize(
    "data, pattern",
    [
        (full(5), FullGraph(5)),
        (full([2, 0, 3], causal=True), CausalFullGraph.from_sizes([2, 0, 3])),
        (causal([4, 1]), CausalFullGraph.from_sizes([4, 1])),
        (chunked([7, 2], chunk_size=3), ChunkedGraph.from_sizes([7, 2], chunk_size=3)),
        (window(9, radius=2), WindowGraph(9, radius=2)),
        (
            window([3, 0, 8], 1, causal=True),
            WindowGraph.from_sizes([3, 0, 8], radius=1, causal=True),
        ),
    ],
)
def test_builders_return_data_with_pattern(data, pattern):
    assert data.pattern == pattern
    assert data.num_nodes == pattern.num_nodes
    assert torch.equal(data.ptr, pattern.ptr)
    assert torch.equal(data.batch, pattern.batch())
    assert "edge_index" not in data
    materialized = pattern_data(pattern, materialize=True)
    assert torch.equal(materialized.edge_index, pattern.edge_index())


def test_patterns_are_printable_value_objects():
    assert repr(WindowGraph(10, radius=3, causal=True)) == (
        "WindowGraph(num_nodes=10, num_graphs=1, radius=3, causal=True)"
    )
    assert repr(ChunkedGraph.from_sizes([4, 5], chunk_size=2)) == (
        "ChunkedGraph(num_nodes=9, num_graphs=2, chunk_size=2)"
    )
    assert WindowGraph(10, radius=3) == WindowGraph(10, radius=3)
    assert WindowGraph(10, radius=3) != WindowGraph(10, radius=2)
    assert WindowGraph(10, radius=3) != WindowGraph(10, radius=3, causal=True)
    assert ChunkedGraph(10, chunk_size=3) != WindowGraph(10, radius=3)
    assert CausalFullGraph(4) != FullGraph(4)
    assert not isinstance(CausalFullGraph(4), FullGraph)


@pytest.mark.parametrize(
    "pattern",
    [
        FullGraph.from_sizes([2, 0, 3]),
        CausalFullGraph(4),
        ChunkedGraph(5, chunk_size=2),
        WindowGraph.from_sizes([4, 2], radius=2, causal=True),
        GridGraph(2, 3, radius=1, metric="manhattan", num_graphs=2),
    ],
    ids=lambda p: type(p).__name__,
)
def test_patterns_pickle_to_equal_values(pattern):
    """Every pattern rebuilds from its pointer and its parameters as keywords, grids too."""
    copy = pickle.loads(pickle.dumps(pattern))
    assert type(copy) is type(pattern) and copy == pattern
    assert torch.equal(copy.edge_index(), pattern.edge_index())


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: WindowGraph(5, radius=-1), ValueError, "radius"),
        (lambda: WindowGraph(5, radius=1.5), TypeError, "radius"),
        (lambda: WindowGraph(5, radius=1, causal=1), TypeError, "causal"),
        (lambda: ChunkedGraph(5, chunk_size=0), ValueError, "chunk_size"),
        (lambda: ChunkedGraph(5, chunk_size=True), TypeError, "chunk_size"),
        (lambda: window(-1, radius=1), ValueError, "lengths"),
        (lambda: window([2.0], radius=1), TypeError, "lengths"),
        (lambda: full(3, causal="yes"), TypeError, "causal"),
        (lambda: pattern_data(torch.zeros(2, 3)), TypeError, "pattern"),
    ],
)
def test_bad_input_names_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()
