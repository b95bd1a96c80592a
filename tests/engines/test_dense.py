import pytest
import torch

from graphattn import CausalFullGraph, FullGraph
from graphattn.engines import AttentionCall, dense_attention
from graphattn.testing import assert_matches_reference, random_qkv

from ..conftest import HEAD_DIM, HEADS


def test_dense_matches_reference(pattern_case, dtype, generator):
    if not isinstance(pattern_case.pattern, (FullGraph, CausalFullGraph)):
        with pytest.raises(ValueError, match="needs a FullGraph"):
            dense_attention(
                AttentionCall(*random_qkv(pattern_case.num_nodes, 1, 2), pattern_case.pattern)
            )
        return
    q, k, v = random_qkv(pattern_case.num_nodes, HEADS, HEAD_DIM, dtype=dtype, generator=generator)
    assert_matches_reference("dense", q, k, v, pattern_case.pattern)


@pytest.mark.parametrize("sizes", [[4, 4, 4], [5], [2, 0, 2], [0, 0], [9, 1, 1, 6]])
def test_dense_uniform_and_ragged_batches(sizes, dtype, generator):
    pattern = FullGraph.from_sizes(sizes)
    q, k, v = random_qkv(pattern.num_nodes, HEADS, HEAD_DIM, dtype=dtype, generator=generator)
    assert_matches_reference("dense", q, k, v, pattern)


def test_dense_without_weights_uses_sdpa_path(generator):
    pattern = FullGraph.from_sizes([3, 8])
    q, k, v = random_qkv(11, HEADS, HEAD_DIM, generator=generator)
    assert_matches_reference("dense", q, k, v, pattern, need_weights=False)


def test_dense_rejects_edge_lists(generator):
    q, k, v = random_qkv(3, HEADS, HEAD_DIM, generator=generator)
    with pytest.raises(ValueError, match="FullGraph"):
        dense_attention(AttentionCall(q, k, v, torch.zeros(2, 1, dtype=torch.long)))
