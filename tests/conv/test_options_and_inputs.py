"""Engine options the layer enforces (``aggr``, float16 overflow) and PyG ``EdgeIndex`` inputs
that caches must not serve wrongly: changed in place under inference mode, or without a sparse
size and with isolated trailing nodes. Every engine gives the reference's answer or an error."""

from __future__ import annotations

import gc
import threading
import time

import pytest
import torch
from torch_geometric import EdgeIndex

from graphattn import MultiHeadAttentionConv
from graphattn.engines.fused import numba_available

needs_numba = pytest.mark.skipif(not numba_available(), reason="numba is not installed")
EDGE_ENGINES = ["scatter", pytest.param("fused", marks=needs_numba)]


def _pair(engine: str, **kw):
    torch.manual_seed(0)
    conv = MultiHeadAttentionConv(8, 8, 2, engine=engine, **kw)
    ref = MultiHeadAttentionConv(8, 8, 2, engine="scatter", **kw)
    ref.load_state_dict(conv.state_dict())
    return conv, ref


@pytest.mark.parametrize("aggr", ["max", "mean", "min", "mul"])
def test_an_aggregation_the_engines_do_not_compute_is_refused(aggr):
    """Every engine sums, so any other ``aggr`` is refused (else ``scatter`` would take the max
    where ``fused`` sums)."""
    with pytest.raises(ValueError, match="`aggr` must be 'add'"):
        MultiHeadAttentionConv(4, 8, 2, aggr=aggr)
    for ok in ("add", "sum"):
        assert MultiHeadAttentionConv(4, 8, 2, aggr=ok).aggr == ok


@pytest.mark.xdist_group("fused-builds")  # one worker compiles the 16-bit builds
@pytest.mark.parametrize("engine", EDGE_ENGINES)
def test_float16_projections_that_overflow_are_a_clear_error(engine):
    """Finite float16 features whose projections exceed 65504 raise an error that says so,
    instead of giving NaN on every row."""
    conv, _ = _pair(engine)
    conv = conv.half()
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])
    x = (torch.randn(6, 8, generator=torch.Generator().manual_seed(1)) * 20_000).half()
    assert torch.isfinite(x).all()
    with pytest.raises(ValueError, match="float16 query/key/value projections"):
        conv(x, edge_index)
    assert torch.isfinite(conv.float()(x.float(), edge_index)).all()  # float32 is fine
    assert torch.isfinite(conv.bfloat16()(x.bfloat16(), edge_index)).all()


@pytest.mark.xdist_group("fused-builds")
@pytest.mark.parametrize("engine", EDGE_ENGINES)
def test_a_float16_value_projection_alone_that_overflows_is_an_error(engine):
    conv, _ = _pair(engine)
    conv = conv.half()
    with torch.no_grad():
        conv.lin_value.weight.mul_(1e4)  # v beyond 65504, q and k moderate
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])
    x = (torch.randn(6, 8, generator=torch.Generator().manual_seed(1)) * 30).half()
    with pytest.raises(ValueError, match="float16 query/key/value projections"):
        conv(x, edge_index)


def test_non_finite_float16_features_keep_their_local_semantics():
    """A NaN in a node's features is not an overflow: it reaches the nodes attending to it."""
    conv, _ = _pair("scatter")
    conv = conv.half()
    x = torch.randn(6, 8).half()
    x[0, 0] = float("nan")
    out = conv(x, torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]]))
    assert out[0].isnan().any() and out[1].isnan().any() and torch.isfinite(out[2:]).all()


@pytest.mark.parametrize("engine", EDGE_ENGINES)
@pytest.mark.parametrize("inference", [False, True])
def test_an_edge_index_changed_in_place_is_not_served_from_a_stale_cache(engine, inference):
    """An EdgeIndex changed in place through ``as_tensor()`` gets a fresh result: one made
    under inference_mode too (it has no version counter), and a sorted one on ``fused``
    (whose CSC comes from PyG's own cache on it)."""
    conv, ref = _pair(engine, add_self_loops=False)
    x = torch.randn(4, 8)
    raw = torch.tensor([[1, 2, 0, 3, 0, 1], [0, 0, 1, 1, 2, 2]])
    with torch.inference_mode(inference):
        ei = EdgeIndex(raw.clone(), sparse_size=(4, 4), sort_order="col")
    with torch.no_grad():
        before = conv(x, ei)
        with torch.inference_mode(inference):
            ei.as_tensor()[1, 1] = 1  # still sorted by target
            ei.as_tensor()[0, 0] = 3
        after = conv(x, ei)
        expected = ref(x, ei.as_tensor().clone())
    assert not torch.allclose(before, expected)
    torch.testing.assert_close(after, expected)


@pytest.mark.parametrize("engine", EDGE_ENGINES)
@pytest.mark.parametrize("sort_order", [None, "col", "row"])
def test_an_edge_index_without_sparse_size_and_isolated_trailing_nodes(engine, sort_order):
    """A valid EdgeIndex without ``sparse_size`` whose nodes 3..5 are isolated runs on every
    engine as on the reference; the isolated nodes get only the output bias."""
    conv, ref = _pair(engine, add_self_loops=False)
    x = torch.randn(6, 8)
    raw = torch.tensor([[1, 2, 0], [0, 1, 2]])
    if sort_order == "row":
        raw = raw[:, raw[0].argsort()]
    ei = EdgeIndex(raw, sort_order=sort_order)
    out = conv(x, ei)
    torch.testing.assert_close(out, ref(x, raw))
    assert torch.equal(out[3:], conv.lin_out.bias.expand(3, -1).detach())  # isolated: bias only


@needs_numba
def test_cycling_the_thread_count_does_not_pile_up_thread_pools():
    """Cycling ``torch.set_num_threads`` through 1..8 twice leaves at most 8 pool threads
    alive: a replaced pool winds down."""
    torch.manual_seed(0)
    conv = MultiHeadAttentionConv(8, 8, 2, engine="fused")
    x = torch.randn(4000, 8)
    edge_index = torch.randint(0, 4000, (2, 20_000))

    def pool_threads() -> int:
        return sum(t.name.startswith("graphattn-fused") for t in threading.enumerate())

    before = torch.get_num_threads()
    try:
        with torch.no_grad():
            for _ in range(2):
                for threads in range(1, 9):
                    torch.set_num_threads(threads)
                    conv(x, edge_index)
    finally:
        torch.set_num_threads(before)
    gc.collect()
    deadline = time.monotonic() + 5.0
    while pool_threads() > 8 and time.monotonic() < deadline:  # replaced pools wind down
        time.sleep(0.01)
    assert pool_threads() <= 8
