import numpy as np
import pytest
import torch

from graphattn import EdgeList, FullGraph, MultiHeadAttentionConv
from graphattn.engines import AttentionCall, AttentionRequest, EdgeTerms, resolve_engine
from graphattn.engines.fused import csr_for, fused_attention
from graphattn.engines.fused import kernels as K
from graphattn.engines.fused.csr import group_edges
from graphattn.engines.fused.ops import chunk_bounds, fused_attention_op
from graphattn.testing import assert_matches_reference, random_qkv

from ..conftest import FAST_GRADCHECK, HEAD_DIM, HEADS, IN_CHANNELS, OUT_CHANNELS
from .fused_common import (
    NUM_RELATIONS,
    assert_layer_with_edge_terms_matches_scatter,
    gradcheck_op,
    random_terms,
)

# the compiled-for-the-shape and 16-bit kernel builds are compiled once, on one xdist worker
pytestmark = pytest.mark.xdist_group("fused-builds")


def _scaled_qkv(num_nodes, dtype, generator):
    """Random q, k, v with q scaled by D ** -0.5, as engines receive it from the layer."""
    q, k, v = random_qkv(num_nodes, HEADS, HEAD_DIM, dtype=dtype, generator=generator)
    return (q.detach() * HEAD_DIM**-0.5).requires_grad_(), k, v


# ---- equality with the scatter reference -------------------------------------------------
@pytest.mark.parametrize("kind", ["none", "features", "relations", "both"])
def test_fused_matches_reference(graph_case, dtype, generator, kind):
    q, k, v = _scaled_qkv(graph_case.num_nodes, dtype, generator)
    terms = None if kind == "none" else random_terms(kind, graph_case.num_edges, dtype, generator)
    assert_matches_reference("fused", q, k, v, graph_case.edge_index, terms=terms)


def test_fused_matches_reference_without_weights(graph_case, generator):
    q, k, v = random_qkv(graph_case.num_nodes, HEADS, HEAD_DIM, generator=generator)
    assert_matches_reference("fused", q, k, v, graph_case.edge_index, need_weights=False)


def test_fused_on_patterns(pattern_case, generator):
    q, k, v = _scaled_qkv(pattern_case.num_nodes, torch.float32, generator)
    terms = random_terms("both", pattern_case.num_edges, torch.float32, generator)
    assert_matches_reference("fused", q, k, v, pattern_case.pattern, terms=terms)


# ---- compiled shapes and tiles -----------------------------------------------------------
# The catalogue above runs the generic build (3 heads of 11); these run the float32 build
# compiled for its shape (2 heads of 8), and nodes whose incoming edges span several tiles.
SPECIAL_HEADS, SPECIAL_DIM = 2, 8


@pytest.fixture
def specialise(monkeypatch):
    """Take the compiled-for-the-shape build even on the catalogue's small graphs."""
    monkeypatch.setattr(K, "SPECIALISE_MIN_WORK", 0)


def test_shape_selects_build():
    f32, f64 = np.float32, np.float64
    big = K.SPECIALISE_MIN_WORK
    special = K.kernels(SPECIAL_HEADS, SPECIAL_DIM, SPECIAL_DIM)
    assert special is not K._generic()
    assert K.select(SPECIAL_HEADS, SPECIAL_DIM, SPECIAL_DIM, f32, big) is special
    assert K.select(SPECIAL_HEADS, SPECIAL_DIM, SPECIAL_DIM, f32, big - 1) is K._generic()
    assert K.select(SPECIAL_HEADS, SPECIAL_DIM, SPECIAL_DIM, f64, big) is K._generic()
    assert K.select(HEADS, HEAD_DIM, HEAD_DIM, f32, big) is K._generic()
    assert K.select(SPECIAL_HEADS, SPECIAL_DIM, 7, f32, big) is K._generic()


def test_expf_matches_exp_and_keeps_special_values():
    from numba import njit

    @njit
    def expf(a):
        out = np.empty_like(a)
        for i in range(a.size):
            out[i] = K._expf(a[i])
        return out

    grid = np.linspace(-87.3, 88.72, 400_001, dtype=np.float32)
    exact = np.exp(grid.astype(np.float64))
    assert np.max(np.abs(expf(grid) - exact) / exact) < 4e-7
    special = np.array([-np.inf, -1e4, -87.4, 0.0, -0.0, 88.73, 1e4, np.inf, np.nan], np.float32)
    got = expf(special)
    np.testing.assert_array_equal(got[:3], 0.0)  # -inf and below the normal floats: 0
    np.testing.assert_array_equal(got[3:5], 1.0)
    np.testing.assert_array_equal(got[5:8], np.inf)
    assert np.isnan(got[8])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_of_infinite_and_nan_scores(dtype):
    from numba import njit

    @njit
    def weight(score, offset, zero):
        return K._weight(score, offset, zero)

    inf, nan, one, zero = dtype(np.inf), dtype(np.nan), dtype(1.0), dtype(0.0)
    assert weight(-inf, -inf, zero) == 0.0  # a masked edge of a node whose edges all are
    assert weight(-inf, one, zero) == 0.0
    assert weight(one, one, zero) == 1.0
    assert np.isclose(weight(dtype(0.5), one, zero), np.exp(-0.5), rtol=1e-6)
    assert np.isnan(weight(nan, one, zero)) and np.isnan(weight(one, nan, zero))
    assert np.isnan(weight(-inf, nan, zero))
    assert np.isnan(weight(inf, inf, zero))  # a +inf score makes its node NaN, as in the reference


def test_kernel_compiles_new_signatures_with_slp_only(monkeypatch):
    from numba import njit
    from numba.core import config

    @njit
    def total(a):
        return a.sum()

    kernel = K.Kernel(total)
    seen = []
    compile_ = total.compile

    def spy(signature):
        seen.append(config.SLP_VECTORIZE)
        return compile_(signature)

    monkeypatch.setattr(total, "compile", spy)
    before = config.SLP_VECTORIZE
    assert kernel(np.ones(3)) == 3.0  # first signature: compiled by the wrapper
    assert kernel(np.ones(4)) == 4.0  # known: straight to the dispatcher
    assert kernel(np.ones(2, np.float32)) == 2.0  # a new one: compiled again
    assert seen == [1, 1] and len(total.signatures) == 2
    assert config.SLP_VECTORIZE == before  # restored: other numba code is not affected
    with pytest.raises(Exception, match="(?i)typ"):  # numba's own typing error propagates
        kernel("not an array")


@pytest.mark.parametrize("kind", ["none", "both"])
def test_specialised_build_matches_reference(graph_case, generator, kind, specialise):
    q, k, v = random_qkv(graph_case.num_nodes, SPECIAL_HEADS, SPECIAL_DIM, generator=generator)
    terms = None
    if kind != "none":
        terms = random_terms(
            kind, graph_case.num_edges, torch.float32, generator, SPECIAL_HEADS, SPECIAL_DIM
        )
    assert_matches_reference("fused", q, k, v, graph_case.edge_index, terms=terms)


def _hub_graph(generator, in_degree):
    """Node 0 receives ``in_degree`` edges (sources cycling through 1..50, so with duplicates);
    with keys that grow with the source id, some tiles raise the running maximum and some do
    not. Plus a few random edges."""
    src = torch.cat(
        [torch.arange(1, in_degree + 1) % 50 + 1, torch.randint(0, 51, (40,), generator=generator)]
    )
    dst = torch.cat(
        [torch.zeros(in_degree, dtype=torch.long), torch.randint(1, 51, (40,), generator=generator)]
    )
    return torch.stack([src, dst])


@pytest.mark.parametrize(
    "build",
    [(SPECIAL_HEADS, SPECIAL_DIM, torch.float32), (HEADS, HEAD_DIM, torch.float64)],
    ids=["specialised", "generic"],
)
@pytest.mark.parametrize("kind", ["none", "both"])
def test_nodes_spanning_several_tiles(build, kind, generator, specialise):
    heads, dim, dtype = build
    edge_index = _hub_graph(generator, 3 * K.TILE + 5)
    q, k, v = random_qkv(51, heads, dim, dtype=dtype, generator=generator)
    step = 0.2 if dtype == torch.float64 else 0.05  # float32: logits within its precision
    with torch.no_grad():  # keys grow with the source id: later tiles hold larger scores
        k.mul_(0.1).add_(torch.arange(51, dtype=dtype).view(-1, 1, 1) * step)
        q.abs_()
    terms = None
    if kind != "none":
        terms = random_terms(kind, edge_index.size(1), dtype, generator, heads, dim)
    assert_matches_reference("fused", q, k, v, edge_index, terms=terms)


def test_gradcheck_with_edge_terms_across_tiles(generator):
    edge_index = _hub_graph(generator, K.TILE + 3)
    q, k, v = random_qkv(51, 2, 3, dtype=torch.float64, generator=generator)
    terms = random_terms("both", edge_index.size(1), torch.float64, generator, 2, 3)
    edges = EdgeList(edge_index, 51)

    def fn(q, k, v, ek, ev, rk, rv):
        t = EdgeTerms(ek, ev, rk, rv, terms.edge_type)
        return fused_attention(AttentionCall(q, k, v, edges, terms=t))[0]

    inputs = (q, k, v, terms.key, terms.value, terms.rel_key, terms.rel_value)
    assert torch.autograd.gradcheck(fn, inputs)


def test_fused_value_width_differs_from_key_width(generator):
    edge_index = torch.randint(0, 8, (2, 31), generator=generator)
    q, k = random_qkv(8, 2, 3, generator=generator)[:2]
    v = torch.randn(8, 2, 7, generator=generator, requires_grad=True)
    assert_matches_reference("fused", q, k, v, edge_index)


def test_bipartite_graph_matches_reference(generator):
    """7 sources, 4 targets: keys and values have 7 rows, queries 4."""
    edge_index = torch.stack(
        [
            torch.randint(0, 7, (25,), generator=generator),
            torch.randint(0, 3, (25,), generator=generator),
        ]
    )  # target 3 has no incoming edge
    q = torch.randn(4, HEADS, HEAD_DIM, dtype=torch.float64, generator=generator).requires_grad_()
    k, v, _ = random_qkv(7, HEADS, HEAD_DIM, dtype=torch.float64, generator=generator)
    terms = random_terms("both", 25, torch.float64, generator)
    assert_matches_reference("fused", q, k, v, EdgeList(edge_index, 7, 4), terms=terms)


def test_isolated_nodes_get_zero_output_and_gradient(generator):
    edges = EdgeList(torch.tensor([[0, 1, 1], [1, 2, 2]]), 4)  # nodes 0, 3 have no in-edge
    q, k, v = random_qkv(4, HEADS, HEAD_DIM, dtype=torch.float64, generator=generator)
    out, _ = fused_attention(AttentionCall(q, k, v, edges))
    assert torch.equal(out[[0, 3]], torch.zeros(2, HEADS, HEAD_DIM, dtype=torch.float64))
    out.square().sum().backward()
    assert torch.equal(q.grad[[0, 3]], torch.zeros(2, HEADS, HEAD_DIM, dtype=torch.float64))
    # node 3 is nobody's source either
    assert torch.equal(k.grad[[2, 3]], torch.zeros(2, HEADS, HEAD_DIM, dtype=torch.float64))
    assert v.grad[[0, 1]].abs().sum() > 0


def test_duplicate_edges_count_twice(generator):
    q, k, v = random_qkv(3, 1, 4, dtype=torch.float64, generator=generator)
    once, _ = fused_attention(AttentionCall(q, k, v, EdgeList(torch.tensor([[0, 1], [2, 2]]), 3)))
    twice, w = fused_attention(
        AttentionCall(q, k, v, EdgeList(torch.tensor([[0, 0, 1], [2, 2, 2]]), 3), need_weights=True)
    )
    assert not torch.allclose(once[2], twice[2])
    torch.testing.assert_close(w[0], w[1])
    s = (q[2, 0] * k[:2, 0]).sum(-1)  # the two distinct logits
    p = torch.softmax(torch.stack([s[0], s[0], s[1]]), 0)
    torch.testing.assert_close(twice[2, 0], p[0] * v[0, 0] * 2 + p[2] * v[1, 0])


def test_weights_carry_gradients(generator):
    """A loss on the returned weights reaches q and k, as on the reference."""
    edge_index = torch.randint(0, 9, (2, 40), generator=generator)
    q, k, v = random_qkv(9, 2, 3, dtype=torch.float64, generator=generator)
    edges = EdgeList(edge_index, 9)
    grads = []
    for engine in ("fused", "scatter"):
        from graphattn.engines import get_engine

        _, w = get_engine(engine)(AttentionCall(q, k, v, edges, need_weights=True))
        assert w.requires_grad
        entropy = -(w * w.clamp_min(1e-12).log()).sum()
        grads.append(torch.autograd.grad(entropy, (q, k)))
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want)


# ---- torch.library: opcheck, gradcheck, torch.compile ------------------------------------
def _op_args(num_nodes, num_edges, heads, dim, *, terms, dropout, generator, masked=False):
    q, k, v = random_qkv(num_nodes, heads, dim, dtype=torch.float64, generator=generator)
    edges = EdgeList(torch.randint(0, num_nodes, (2, num_edges), generator=generator), num_nodes)
    t = random_terms(terms, num_edges, torch.float64, generator, heads, dim)
    seed = torch.tensor(1234)
    by_target, by_source = csr_for(edges, "target"), csr_for(edges, "source")
    mask = torch.rand(num_edges, generator=generator) < 0.2 if masked else None
    return (
        q, k, v, *by_target.as_tuple(), *by_source.as_tuple(), t.key, t.value, t.rel_key,
        t.rel_value, t.edge_type, mask, dropout, seed,
    )  # fmt: skip


@pytest.mark.parametrize("terms,dropout,masked", [("none", 0.0, False), ("both", 0.3, True)])
def test_opcheck(terms, dropout, masked, generator):
    args = _op_args(7, 19, 2, 3, terms=terms, dropout=dropout, generator=generator, masked=masked)
    torch.library.opcheck(fused_attention_op, args)


def test_opcheck_group_edges(generator):
    edge_index = torch.randint(0, 6, (2, 15), generator=generator)
    torch.library.opcheck(group_edges, (edge_index[1], edge_index[0], 8, 6))


def test_gradcheck_on_catalogue(graph_case, generator):
    n, e = graph_case.num_nodes, graph_case.num_edges
    q, k, v = random_qkv(n, 2, 3, dtype=torch.float64, generator=generator)
    terms = random_terms("both", e, torch.float64, generator, heads=2, dim=3)
    edges = EdgeList(graph_case.edge_index, n)

    def fn(q, k, v, key, value, rel_key, rel_value):
        t = EdgeTerms(key, value, rel_key, rel_value, terms.edge_type)
        return fused_attention(AttentionCall(q, k, v, edges, terms=t))[0]

    inputs = (q, k, v, terms.key, terms.value, terms.rel_key, terms.rel_value)
    # fast mode checks random projections of the Jacobian (a full check is done above)
    assert torch.autograd.gradcheck(fn, inputs, **FAST_GRADCHECK)


def test_gradcheck_with_dropout(generator):
    args = _op_args(6, 17, 2, 3, terms="both", dropout=0.4, generator=generator, masked=True)
    assert gradcheck_op(args)


def test_dropout_keeps_expected_fraction():
    """q = 0 gives uniform weights 1/E; with v = 1 the output is (kept / E) / (1 - p)."""
    num_edges, p = 4000, 0.25
    edge_index = torch.stack([torch.arange(num_edges), torch.zeros(num_edges, dtype=torch.long)])
    edges = EdgeList(edge_index, num_edges)
    q = torch.zeros(num_edges, 2, 1, dtype=torch.float64)
    v = torch.ones(num_edges, 2, 1, dtype=torch.float64)
    torch.manual_seed(0)
    out, _ = fused_attention(AttentionCall(q, q, v, edges, dropout=p))
    again, _ = fused_attention(AttentionCall(q, q, v, edges, dropout=p))
    mean = out[0, :, 0]
    sigma = (p / (1 - p) / num_edges) ** 0.5
    assert ((mean - 1).abs() < 5 * sigma).all()
    assert ((mean - 1).abs() > 0).all()  # something was dropped
    assert mean[0] != mean[1]  # heads draw independent masks
    assert not torch.equal(out, again)  # a new seed each call


def test_compile_fullgraph_no_graph_break(generator):
    """AOT tracing (fake kernels and autograd) without graph breaks; inductor is the slow test."""
    torch.manual_seed(0)
    conv = MultiHeadAttentionConv(IN_CHANNELS, OUT_CHANNELS, HEADS, engine="fused")
    x = torch.randn(13, IN_CHANNELS, generator=generator)
    edge_index = torch.randint(0, 13, (2, 40), generator=generator)
    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")
    out = compiled(x, edge_index)
    torch.testing.assert_close(out, conv(x, edge_index))
    out.sum().backward()
    assert conv.lin_query.weight.grad is not None


@pytest.mark.slow
def test_compile_inductor(generator):
    torch._dynamo.reset()
    conv = MultiHeadAttentionConv(
        IN_CHANNELS, OUT_CHANNELS, HEADS, engine="fused", num_relations=NUM_RELATIONS
    )
    x = torch.randn(11, IN_CHANNELS, generator=generator)
    edge_index = torch.randint(0, 11, (2, 37), generator=generator)
    edge_type = torch.randint(0, NUM_RELATIONS, (37,), generator=generator)
    compiled = torch.compile(conv, fullgraph=True)
    out = compiled(x, edge_index, edge_type=edge_type)
    torch.testing.assert_close(out, conv(x, edge_index, edge_type=edge_type))
    out.sum().backward()


# ---- the layer ----------------------------------------------------------------------------
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_inputs_through_the_layer(half, generator):
    torch.manual_seed(0)
    conv = MultiHeadAttentionConv(IN_CHANNELS, OUT_CHANNELS, HEADS, engine="fused").to(half)
    ref = MultiHeadAttentionConv(IN_CHANNELS, OUT_CHANNELS, HEADS, engine="scatter").to(half)
    ref.load_state_dict(conv.state_dict())
    x = torch.randn(17, IN_CHANNELS, generator=generator).to(half)
    edge_index = torch.randint(0, 17, (2, 60), generator=generator)
    out, att = conv(x, edge_index, return_attention=True)
    want, want_att = ref(x, edge_index, return_attention=True)
    assert out.dtype == half and att.weights.dtype == torch.float32
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(att.weights, want_att.weights)
    out.float().sum().backward()
    want.float().sum().backward()
    torch.testing.assert_close(conv.lin_key.weight.grad, ref.lin_key.weight.grad)


def test_layer_with_edge_features_and_relations_matches_scatter(generator):
    assert_layer_with_edge_terms_matches_scatter(generator)


def test_auto_picks_fused_for_large_edge_lists_on_cpu(monkeypatch):
    import graphattn.engines.fused as fused

    conv = MultiHeadAttentionConv(IN_CHANNELS, OUT_CHANNELS, HEADS)
    x = torch.randn(6, IN_CHANNELS)
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    assert conv.engine_for(x, edge_index) == "scatter"  # tiny: scatter is faster
    monkeypatch.setattr(fused, "AUTO_MIN_EDGES", 3)
    assert conv.engine_for(x, edge_index) == "fused"
    assert conv.engine_for(x, FullGraph(6)) == "dense"  # structured engines keep their patterns
    assert conv.double().engine_for(x.double(), edge_index) == "fused"


def test_auto_falls_back_to_scatter_off_the_cpu():
    request = AttentionRequest(
        graph=EdgeList(torch.zeros(2, 1, dtype=torch.long), 1),
        device=torch.device("meta"),
        dtype=torch.float32,
    )
    assert resolve_engine("auto", request).name == "scatter"
    with pytest.raises(ValueError, match="CPU"):
        resolve_engine("fused", request)


def test_bad_inputs_name_the_argument():
    q = torch.randn(3, 2, 4)
    edges = EdgeList(torch.tensor([[0], [1]]), 3)
    with pytest.raises(TypeError, match="`k`"):
        fused_attention(AttentionCall(q, q.long(), q, edges))
    with pytest.raises(ValueError, match="`q`"):
        fused_attention(AttentionCall(q[0], q, q, edges))
    with pytest.raises(TypeError, match="`graph`"):
        fused_attention(AttentionCall(q, q, q, [[0], [1]]))
    with pytest.raises(ValueError, match="`graph` has 4 sources"):
        fused_attention(AttentionCall(q, q, q, EdgeList(torch.tensor([[0], [1]]), 4)))
    with pytest.raises(ValueError, match="outside"):
        node_3_of_3 = EdgeList(torch.tensor([[0], [3]]), 3)
        fused_attention(AttentionCall(q, q, q, node_3_of_3))
    bad_type = EdgeTerms(None, None, q[:2], q[:2], torch.tensor([2]))
    with pytest.raises(ValueError, match="`edge_type`"):
        fused_attention(AttentionCall(q, q, q, edges, terms=bad_type))
    with pytest.raises(ValueError, match="`edge_key`"):
        fused_attention(AttentionCall(q, q, q, edges, terms=EdgeTerms(key=q)))


# ---- CSR construction, caching and the thread ranges --------------------------------------
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_group_edges_equals_a_stable_argsort(dtype, generator):
    edge_index = torch.randint(0, 9, (2, 50), generator=generator).to(dtype)
    src, dst = edge_index.long()
    ptr, idx, eid = group_edges(edge_index[1], edge_index[0], 11, 9)  # 2 nodes without edges
    perm = torch.argsort(dst, stable=True)
    assert ptr.dtype == torch.long and idx.dtype == eid.dtype == torch.int32
    assert ptr.tolist() == [0] + torch.bincount(dst, minlength=11).cumsum(0).tolist()
    assert torch.equal(eid.long(), perm)
    assert torch.equal(idx.long(), src[perm])


def test_group_edges_rejects_out_of_range():
    with pytest.raises(ValueError, match=r"edge 1 \(0 -> 5\)"):
        group_edges(torch.tensor([1, 5]), torch.tensor([0, 0]), 5, 3)


def test_csr_is_cached_on_the_graph_object(generator):
    edges = EdgeList(torch.randint(0, 10, (2, 30), generator=generator), 10)
    assert csr_for(edges) is csr_for(edges)
    assert csr_for(edges, "source") is not csr_for(edges)
    pattern = FullGraph.from_sizes([3, 5])
    assert csr_for(pattern.edge_list()) is csr_for(pattern.edge_list())
    with pytest.raises(ValueError, match="`by`"):
        csr_for(edges, "rows")


def test_csr_from_a_sorted_edge_index_uses_its_own_caches(generator):
    from torch_geometric import EdgeIndex

    ei = EdgeIndex(torch.randint(0, 10, (2, 30), generator=generator), sparse_size=(10, 10))
    ei, _ = ei.sort_by("col")
    edges = EdgeList(ei.as_tensor(), 10)
    edges.cache["origin"] = ei
    got, want = csr_for(edges), csr_for(EdgeList(ei.as_tensor(), 10))
    assert torch.equal(got.ptr, want.ptr) and torch.equal(got.idx, want.idx)
    assert torch.equal(got.eid, torch.arange(30, dtype=torch.int32))  # already grouped


def test_chunk_bounds_balance_edges_and_nodes():
    ptr = np.array([0, 100, 100, 101, 102, 300, 301, 302, 303], dtype=np.int64)
    bounds = chunk_bounds(ptr, 4)
    assert bounds[0] == 0 and bounds[-1] == 8 and np.all(np.diff(bounds) > 0)
    assert ((bounds > 0) & (bounds <= 4)).any()  # the hubs 0 and 4 fall into different ranges


def test_threaded_ranges_give_the_same_numbers(generator, monkeypatch):
    """Above the serial threshold the kernels run on several threads; every node is computed
    by one call, so the result does not depend on the thread count."""
    n, e = 600, 20000
    edges = EdgeList(torch.randint(0, n, (2, e), generator=generator), n)
    q, k, v = random_qkv(n, HEADS, HEAD_DIM, generator=generator)
    outs = []
    for threads in (1, 2):
        monkeypatch.setattr(torch, "get_num_threads", lambda threads=threads: threads)
        out, w = fused_attention(AttentionCall(q, k, v, edges, need_weights=True))
        grads = torch.autograd.grad(out, (q, k, v), torch.ones_like(out))
        outs.append((out, w, *grads))
    for a, b in zip(*outs, strict=True):
        assert torch.equal(a, b)


# ---- 16-bit rows ----------------------------------------------------------------------------
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_16_bit_rows_equal_the_upcast_computation(half, generator):
    """q, k, v stay 16-bit in memory and are converted in the kernels: the same numbers as
    upcasting them first (accumulated in float32); gradients come back 16-bit."""
    n = 40
    edges = EdgeList(torch.randint(0, n, (2, 300), generator=generator), n)
    q16, k16, v16 = (
        (torch.randn(n, HEADS, HEAD_DIM, generator=generator) * 0.5).to(half).requires_grad_()
        for _ in range(3)
    )
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q16, k16, v16))
    terms = EdgeTerms(mask=torch.rand(300, generator=generator) < 0.1)
    out16, w16 = fused_attention(
        AttentionCall(q16, k16, v16, edges, terms=terms, need_weights=True)
    )
    out32, w32 = fused_attention(
        AttentionCall(q32, k32, v32, edges, terms=terms, need_weights=True)
    )
    assert out16.dtype == w16.dtype == torch.float32
    assert torch.equal(out16, out32) and torch.equal(w16, w32)
    grad = torch.randn_like(out32)
    got = torch.autograd.grad(out16, (q16, k16, v16), grad)
    want = torch.autograd.grad(out32, (q32, k32, v32), grad)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == half and torch.equal(g, w.to(half))
