"""The engine registry and engine="auto"."""

from __future__ import annotations

import logging

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphattn import FullGraph, MultiHeadAttentionConv, available_engines
from graphattn.attention.dispatch import AttentionRequest, resolve_engine
from graphattn.testing import assert_matches_reference, random_qkv


def request(graph, **kwargs) -> AttentionRequest:
    return AttentionRequest(graph=graph, device=torch.device("cpu"), dtype=torch.float32, **kwargs)


def test_registry_lists_reference_last():
    names = available_engines()
    assert "dense" in names and names[-1] == "scatter"


def test_auto_prefers_dense_for_full_patterns_only():
    assert resolve_engine("auto", request(FullGraph(4))).name == "dense"
    assert resolve_engine("auto", request(FullGraph(4), has_relations=True)).name != "dense"
    assert resolve_engine("auto", request(torch.zeros(2, 0, dtype=torch.long))).name != "dense"


def test_unknown_engine():
    with pytest.raises(ValueError, match="unknown `engine` 'nope'"):
        resolve_engine("nope", request(FullGraph(2)))


def test_auto_choice_is_logged(caplog):
    conv = MultiHeadAttentionConv(4, 6, heads=2)
    with caplog.at_level(logging.DEBUG, logger="graphattn"):
        conv(torch.randn(3, 4), FullGraph(3))
    assert "engine=auto chose 'dense' for FullGraph(num_nodes=3, num_graphs=1)" in caplog.text


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
