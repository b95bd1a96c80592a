"""The engine registry and engine="auto"."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphattn import EdgeList, FullGraph, available_engines
from graphattn.engines import AttentionRequest, resolve_engine
from graphattn.testing import assert_matches_reference, random_qkv


def request(graph, **kwargs) -> AttentionRequest:
    return AttentionRequest(graph=graph, device=torch.device("cpu"), dtype=torch.float32, **kwargs)


def test_registry_lists_reference_last():
    names = available_engines()
    assert "dense" in names and names[-1] == "scatter"


def test_auto_prefers_dense_for_full_patterns_only():
    assert resolve_engine("auto", request(FullGraph(4))).name == "dense"
    assert resolve_engine("auto", request(FullGraph(4), has_relations=True)).name != "dense"
    edges = EdgeList(torch.zeros(2, 0, dtype=torch.long), 0)
    assert resolve_engine("auto", request(edges)).name != "dense"


def test_unknown_engine():
    with pytest.raises(ValueError, match="unknown `engine` 'nope'"):
        resolve_engine("nope", request(FullGraph(2)))


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 9), min_size=1, max_size=5),
    heads=st.integers(1, 3),
    dim=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_dense_matches_reference_on_random_batches(sizes, heads, dim, seed):
    pattern = FullGraph.from_sizes(sizes)
    g = torch.Generator().manual_seed(seed)
    q, k, v = random_qkv(pattern.num_nodes, heads, dim, dtype=torch.float64, generator=g)
    assert_matches_reference("dense", q, k, v, pattern)
