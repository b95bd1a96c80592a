"""The blocked engine against the scatter reference, and `engine="auto"` choosing it."""

from functools import partial

import pytest
import torch

from graphattn import (
    CausalFullGraph,
    ChunkedGraph,
    FullGraph,
    GridGraph,
    MultiHeadAttentionConv,
    WindowGraph,
)
from graphattn.engines import (
    AttentionCall,
    AttentionRequest,
    EdgeTerms,
    Engine,
    blocked,
    blocked_attention,
    resolve_engine,
    scatter_attention,
)
from graphattn.testing import assert_matches_reference, random_qkv

from ..conftest import HEAD_DIM, HEADS, IN_CHANNELS, OUT_CHANNELS

# Odd lengths (not multiples of any block size used below), ragged batches with empty graphs.
RAGGED = [5, 0, 17, 1, 9]
STRUCTURED = {
    "window-odd": WindowGraph(37, radius=3),
    "window-ragged": WindowGraph.from_sizes(RAGGED, radius=2),
    "window-causal-ragged": WindowGraph.from_sizes(RAGGED, radius=4, causal=True),
    "window-radius-0": WindowGraph(13, radius=0),
    "window-radius-beyond-length": WindowGraph.from_sizes([7, 2], radius=100),
    "chunked-odd": ChunkedGraph(23, chunk_size=4),
    "chunked-ragged": ChunkedGraph.from_sizes(RAGGED, chunk_size=4),
    "chunked-exact": ChunkedGraph(12, chunk_size=3),
    "chunked-bigger-than-graph": ChunkedGraph.from_sizes([3, 11], chunk_size=50),
    "grid-8": GridGraph(5, 7, radius=1),
    "grid-4-batch": GridGraph(4, 6, radius=1, metric="manhattan", num_graphs=3),
    "grid-radius-2": GridGraph(6, 5, radius=2),
    "grid-radius-beyond": GridGraph.from_sizes([6, 0, 6], height=2, width=3, radius=5),
    "grid-one-column": GridGraph(9, 1, radius=2, metric="manhattan"),
}
EMPTY = {
    "empty": WindowGraph(0, radius=2),
    "all-graphs-empty": ChunkedGraph.from_sizes([0, 0], chunk_size=3),
}


@pytest.mark.parametrize("pattern", STRUCTURED.values(), ids=STRUCTURED.keys())
def test_blocked_matches_reference(pattern, dtype, generator):
    q, k, v = random_qkv(pattern.num_nodes, HEADS, HEAD_DIM, dtype=dtype, generator=generator)
    assert_matches_reference("blocked", q, k, v, pattern, need_weights=True)
    assert_matches_reference("blocked", q, k, v, pattern, need_weights=False)


@pytest.mark.parametrize("block_size", [1, 3, 8])
@pytest.mark.parametrize(
    "pattern",
    [
        STRUCTURED["window-ragged"],
        STRUCTURED["window-causal-ragged"],
        STRUCTURED["window-odd"],
        WindowGraph(29, radius=5, causal=True),
        STRUCTURED["grid-8"],
    ],
    ids=["window", "window-causal", "window-single", "window-causal-single", "grid"],
)
def test_blocked_block_sizes(pattern, block_size, dtype, generator):
    """Small blocks put many block boundaries and padded slots inside every graph; on a
    single graph the key windows overlap by more than a block, or by part of one, and their
    backward adds them back in shifted slices."""
    fn = partial(blocked_attention, block_size=block_size)
    engine = Engine("blocked-test", fn, blocked.supports, priority=999)
    q, k, v = random_qkv(pattern.num_nodes, HEADS, HEAD_DIM, dtype=dtype, generator=generator)
    assert_matches_reference(engine, q, k, v, pattern)


SINGLE = {
    "window-odd": STRUCTURED["window-odd"],
    "window-causal": WindowGraph(29, radius=5, causal=True),
    "window-radius-beyond-length": WindowGraph(7, radius=100),
    "chunked-odd": STRUCTURED["chunked-odd"],
    "grid-8": STRUCTURED["grid-8"],
    "grid-radius-2": STRUCTURED["grid-radius-2"],
}


@pytest.mark.parametrize("block_size", [1, 3, 8, 64])
@pytest.mark.parametrize("pattern", SINGLE.values(), ids=SINGLE.keys())
def test_blocked_grouped_flash_calls(pattern, block_size, dtype, generator, monkeypatch):
    """On one graph the CPU path runs the flash kernel group by group; with groups of one
    block every group boundary, padded end and partial key piece is crossed."""
    monkeypatch.setattr(blocked, "GROUP_KEY_BYTES", 1)
    calls = []
    apply = blocked._GroupedWindows.apply
    monkeypatch.setattr(blocked._GroupedWindows, "apply", lambda *a: calls.append(1) or apply(*a))
    fn = partial(blocked_attention, block_size=block_size)
    engine = Engine("blocked-test", fn, blocked.supports, priority=999)
    q, k, v = random_qkv(pattern.num_nodes, HEADS, HEAD_DIM, dtype=dtype, generator=generator)
    assert_matches_reference(engine, q, k, v, pattern, need_weights=False)
    assert calls, "the grouped path did not run"


@pytest.mark.parametrize("pattern", EMPTY.values(), ids=EMPTY.keys())
def test_blocked_zero_nodes(pattern, dtype, generator):
    q, k, v = random_qkv(0, HEADS, HEAD_DIM, dtype=dtype, generator=generator)
    out, weights = blocked_attention(AttentionCall(q, k, v, pattern, need_weights=True))
    assert out.shape == (0, HEADS, HEAD_DIM) and weights.shape == (0, HEADS)
    assert_matches_reference("blocked", q, k, v, pattern)


@pytest.mark.parametrize("sizes", [[6, 9], [15]], ids=["batch", "one-graph"])
def test_blocked_value_width_may_differ(sizes, generator):
    pattern = WindowGraph.from_sizes(sizes, radius=2)
    q, k, _ = random_qkv(15, HEADS, HEAD_DIM, generator=generator)
    v = torch.randn(15, HEADS, 4, generator=generator)
    call = AttentionCall(q, k, v, pattern)
    torch.testing.assert_close(blocked_attention(call)[0], scatter_attention(call)[0])


def test_blocked_follows_the_sdpa_backend_choice(generator, monkeypatch):
    """With SDPA's flash backend switched off, the grouped flash calls step aside too."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    calls = []
    apply = blocked._GroupedWindows.apply
    monkeypatch.setattr(blocked._GroupedWindows, "apply", lambda *a: calls.append(1) or apply(*a))
    pattern = WindowGraph(20, radius=3)
    q, k, v = random_qkv(20, HEADS, HEAD_DIM, generator=generator)
    call = AttentionCall(q, k, v, pattern)
    with sdpa_kernel(SDPBackend.MATH):
        out, _ = blocked_attention(call)
    assert not calls
    torch.testing.assert_close(out, blocked_attention(call)[0])
    assert calls


def test_blocked_dropout(generator):
    pattern = WindowGraph.from_sizes([11, 6], radius=2)
    q, k, v = random_qkv(pattern.num_nodes, HEADS, HEAD_DIM, generator=generator)
    clean, clean_w = blocked_attention(AttentionCall(q, k, v, pattern, need_weights=True))
    torch.manual_seed(0)
    samples = []
    for need_weights in (False, True):
        for _ in range(300):
            out, w = blocked_attention(
                AttentionCall(q, k, v, pattern, dropout=0.3, need_weights=need_weights)
            )
            assert torch.isfinite(out).all()
            if need_weights:  # weights are taken before dropout
                torch.testing.assert_close(w, clean_w)
            samples.append(out.detach())
    assert not torch.allclose(samples[0], clean)
    # dropout rescales kept weights by 1 / (1 - p): the mean output is the clean output
    mean = torch.stack(samples).mean(0)
    torch.testing.assert_close(mean, clean.detach(), atol=0.25, rtol=0.0)
    assert (mean - clean).abs().mean() < 0.05


def test_auto_chooses_blocked_for_local_patterns_and_dense_for_full():
    x = torch.randn(20, IN_CHANNELS)
    conv = MultiHeadAttentionConv(IN_CHANNELS, OUT_CHANNELS, heads=HEADS)
    assert conv.engine_for(x, WindowGraph(20, radius=3)) == "blocked"
    assert conv.engine_for(x, WindowGraph(20, radius=3, causal=True)) == "blocked"
    assert conv.engine_for(x, ChunkedGraph.from_sizes([8, 0, 12], chunk_size=5)) == "blocked"
    assert conv.engine_for(x, GridGraph(4, 5, radius=1)) == "blocked"
    assert conv.engine_for(x, FullGraph(20), return_attention=True) == "dense"
    assert conv.engine_for(x, CausalFullGraph(20)) == "dense"
    assert conv.engine_for(x, WindowGraph(20, radius=3).edge_index()) != "blocked"


def test_blocked_rejects_what_it_cannot_do(generator):
    q, k, v = random_qkv(6, HEADS, HEAD_DIM, generator=generator)
    request = AttentionRequest(FullGraph(6), q.device, q.dtype)
    with pytest.raises(ValueError, match="blocked.*ChunkedGraph, WindowGraph or GridGraph"):
        resolve_engine("blocked", request)
    with pytest.raises(ValueError, match="WindowGraph"):
        blocked_attention(AttentionCall(q, k, v, FullGraph(6)))
    with pytest.raises(ValueError, match="WindowGraph"):
        blocked_attention(AttentionCall(q, k, v, WindowGraph(6, radius=1).edge_index()))
    with pytest.raises(ValueError, match="edge features"):
        terms = EdgeTerms(key=torch.zeros(16, HEADS, HEAD_DIM))
        blocked_attention(AttentionCall(q, k, v, WindowGraph(6, radius=1), terms=terms))
    with pytest.raises(ValueError, match="block_size"):
        blocked_attention(AttentionCall(q, k, v, WindowGraph(6, radius=1)), block_size=0)
    with pytest.raises(ValueError, match="7 nodes"):
        blocked_attention(AttentionCall(q, k, v, WindowGraph(7, radius=1)))


def test_layer_auto_equals_scatter_layer(dtype):
    torch.manual_seed(3)
    pattern = WindowGraph.from_sizes([13, 0, 30, 4], radius=5)
    x = torch.randn(pattern.num_nodes, IN_CHANNELS, dtype=dtype, requires_grad=True)
    auto = MultiHeadAttentionConv(IN_CHANNELS, OUT_CHANNELS, heads=HEADS).to(dtype)
    ref = MultiHeadAttentionConv(IN_CHANNELS, OUT_CHANNELS, heads=HEADS, engine="scatter")
    ref = ref.to(dtype)
    ref.load_state_dict(auto.state_dict())
    assert auto.engine_for(x, pattern, return_attention=True) == "blocked"
    out, att = auto(x, pattern, return_attention=True)
    out_ref, att_ref = ref(x, pattern, return_attention=True)
    tol = {"atol": 1e-10, "rtol": 1e-8} if dtype == torch.float64 else {}
    torch.testing.assert_close(out, out_ref, **tol)
    assert torch.equal(att.edge_index, pattern.edge_index())
    torch.testing.assert_close(att.weights, att_ref.weights, **tol)
    grad = torch.randn_like(out)
    (gx,) = torch.autograd.grad(out, x, grad)
    (gx_ref,) = torch.autograd.grad(out_ref, x, grad)
    torch.testing.assert_close(gx, gx_ref, **tol)
