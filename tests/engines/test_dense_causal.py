"""The dense engine on causal full attention (SDPA ``is_causal``)."""

import pytest

from graphattn import CausalFullGraph
from graphattn.testing import assert_matches_reference, random_qkv

from ..conftest import HEAD_DIM, HEADS


@pytest.mark.parametrize("sizes", [[9], [4, 4, 4], [3, 0, 8, 1], [0, 0], [1]])
@pytest.mark.parametrize("need_weights", [True, False])
def test_dense_causal_matches_reference(sizes, need_weights, dtype, generator):
    pattern = CausalFullGraph.from_sizes(sizes)
    q, k, v = random_qkv(pattern.num_nodes, HEADS, HEAD_DIM, dtype=dtype, generator=generator)
    assert_matches_reference("dense", q, k, v, pattern, need_weights=need_weights)
