"""Node orderings for locality: round trips, equivariance of the layer, bandwidth, errors."""

from __future__ import annotations

import pytest
import torch

from graphattn import MultiHeadAttentionConv
from graphattn.graphs import locality_order

pytest.importorskip("scipy")


def _ring(n: int, seed: int = 0) -> torch.Tensor:
    """A ring whose node ids are shuffled: neighbours far apart in id."""
    ids = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return torch.stack([ids, ids.roll(-1)])


def _bandwidth(edge_index: torch.Tensor) -> int:
    return int((edge_index[0] - edge_index[1]).abs().max())


@pytest.mark.parametrize("method", ["rcm", "degree", "metis"])
def test_round_trip_and_the_layer_is_equivariant(method):
    if method == "metis":
        pytest.importorskip("pymetis")
    edge_index = _ring(40)
    order = locality_order(edge_index, 40, method)
    assert sorted(order.perm.tolist()) == list(range(40))
    x = torch.randn(40, 6, dtype=torch.float64)
    assert torch.equal(order.restore(order.nodes(x)), x)
    torch.manual_seed(0)
    conv = MultiHeadAttentionConv(6, 8, heads=2).double()
    out = order.restore(conv(order.nodes(x), order.edges(edge_index)))
    torch.testing.assert_close(out, conv(x, edge_index))


def test_rcm_narrows_a_shuffled_ring():
    edge_index = _ring(200)
    order = locality_order(edge_index, 200, "rcm")
    assert _bandwidth(order.edges(edge_index)) <= 2 < _bandwidth(edge_index)


def test_errors_name_the_argument():
    edge_index = _ring(5)
    with pytest.raises(ValueError, match="`method`"):
        locality_order(edge_index, 5, "spectral")
    with pytest.raises(ValueError, match="outside"):
        locality_order(edge_index, 4)
    with pytest.raises(TypeError, match="`edge_index`"):
        locality_order(edge_index.float(), 5)
    order = locality_order(edge_index, 5)
    with pytest.raises(ValueError, match="`x` must have 5 rows"):
        order.nodes(torch.zeros(4, 2))
