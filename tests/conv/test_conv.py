"""MultiHeadAttentionConv: equivalences, invariances and known answers on the catalogue."""

from __future__ import annotations

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.dense.linear import Linear

from graphattn import AttentionOutput, FullGraph, MultiHeadAttentionConv, available_engines

from ..conftest import FAST_GRADCHECK, HEADS, IN_CHANNELS, OUT_CHANNELS


def make_conv(dtype=torch.float32, seed=0, **kwargs) -> MultiHeadAttentionConv:
    """A layer on the graph exactly as given (no added self-loops), with non-zero biases."""
    kwargs.setdefault("add_self_loops", False)
    torch.manual_seed(seed)
    conv = MultiHeadAttentionConv(IN_CHANNELS, OUT_CHANNELS, HEADS, **kwargs).to(dtype)
    # Non-zero biases so that a bias bug cannot hide behind zero initialisation.
    with torch.no_grad():
        for p in conv.parameters():
            if p.dim() == 1:
                p.normal_(std=0.3)
    return conv


def features(n: int, dtype=torch.float32, seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, IN_CHANNELS, generator=g, dtype=dtype)


def test_is_message_passing_and_repr():
    conv = MultiHeadAttentionConv(16, 32, heads=4)
    assert isinstance(conv, MessagePassing)
    assert repr(conv) == "MultiHeadAttentionConv(16, 32, heads=4)"
    conv = MultiHeadAttentionConv(16, 32, heads=4, edge_dim=3, num_relations=2, engine="scatter")
    assert repr(conv) == (
        "MultiHeadAttentionConv(16, 32, heads=4, edge_dim=3, num_relations=2, engine='scatter')"
    )


@pytest.mark.parametrize("heads", [1, 2, 4, 8, 16])
def test_parameter_count_does_not_depend_on_heads(heads):
    conv = MultiHeadAttentionConv(24, 64, heads)
    assert sum(p.numel() for p in conv.parameters()) == 3 * (24 * 64 + 64) + 64 * 64 + 64


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch_first", [True, False])
def test_equals_torch_multihead_attention(bias, batch_first):
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(12, 3, bias=bias, batch_first=batch_first)
    if bias:
        with torch.no_grad():
            mha.in_proj_bias.normal_()
            mha.out_proj.bias.normal_()
    conv = MultiHeadAttentionConv.from_torch(mha)
    sizes = [5, 5, 5]  # nn.MultiheadAttention needs a rectangular batch
    x = torch.randn(sum(sizes), 12, requires_grad=True)
    seq = x.view(3, 5, 12) if batch_first else x.view(3, 5, 12).transpose(0, 1)
    ref, ref_w = mha(seq, seq, seq, average_attn_weights=False)  # ref_w: (B, H, L, L)
    ref = ref if batch_first else ref.transpose(0, 1)
    ref = ref.reshape(-1, 12)
    grad = torch.randn_like(ref)
    (ref_grad,) = torch.autograd.grad(ref, x, grad)

    pattern = FullGraph.from_sizes(sizes)
    for graph in (pattern, pattern.edge_index()):
        out, att = conv(x, graph, return_attention=True)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        (got_grad,) = torch.autograd.grad(out, x, grad)
        torch.testing.assert_close(got_grad, ref_grad, atol=1e-5, rtol=1e-5)
        # weights of edge j -> i are mha's [b, h, i, j]; on the edge list, its own self-loops
        # (weight 0) are replaced by the appended ones (add_self_loops, the default)
        src, dst = att.edge_index
        b, i, j = dst // 5, dst % 5, src % 5
        used = att.weights.sum(-1) > 0
        assert int(used.sum()) == 75  # 3 complete graphs of 5 nodes
        torch.testing.assert_close(att.weights[used], ref_w[b, :, i, j][used], atol=1e-6, rtol=1e-5)


def test_from_torch_rejects_unsupported():
    with pytest.raises(TypeError, match="mha"):
        MultiHeadAttentionConv.from_torch(torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match="kdim"):
        MultiHeadAttentionConv.from_torch(torch.nn.MultiheadAttention(8, 2, kdim=4, vdim=4))
    with pytest.raises(ValueError, match="add_bias_kv"):
        MultiHeadAttentionConv.from_torch(torch.nn.MultiheadAttention(8, 2, add_bias_kv=True))


def test_layer_auto_matches_the_reference_on_catalogue(graph_case):
    """The layer routes every graph form (pattern or edge list) to an engine that gives the
    reference's numbers, weights and their edge order included. (Each engine against the
    reference, on every dtype, is tested in tests/engines.)"""
    conv = make_conv(torch.float64)
    x = features(graph_case.num_nodes, torch.float64).requires_grad_()
    conv.engine = "scatter"
    ref, ref_att = conv(x, graph_case.edge_index, return_attention=True)
    grad = torch.randn_like(ref)
    ref_grad = torch.autograd.grad(ref, x, grad)[0] if graph_case.num_nodes else None
    conv.engine = "auto"
    for graph in (g for g in (graph_case.pattern, graph_case.edge_index) if g is not None):
        out, att = conv(x, graph, return_attention=True)
        torch.testing.assert_close(out, ref)
        torch.testing.assert_close(att.edge_index, ref_att.edge_index)
        torch.testing.assert_close(att.weights, ref_att.weights)
        if graph_case.num_nodes:
            torch.testing.assert_close(torch.autograd.grad(out, x, grad)[0], ref_grad)


def test_weights_sum_to_one_over_incoming_edges(graph_case):
    conv = make_conv()
    x = features(graph_case.num_nodes)
    _, att = conv(x, graph_case.edge_index, return_attention=True)
    assert isinstance(att, AttentionOutput)
    assert att.weights.shape == (graph_case.num_edges, HEADS)
    sums = torch.zeros(graph_case.num_nodes, HEADS).index_add_(0, att.edge_index[1], att.weights)
    has_in = torch.zeros(graph_case.num_nodes, dtype=torch.bool)
    has_in[att.edge_index[1]] = True
    torch.testing.assert_close(sums[has_in], torch.ones_like(sums[has_in]))
    assert (sums[~has_in] == 0).all()


def test_isolated_nodes_get_zero_attention_and_zero_gradient(graph_case):
    conv = make_conv(bias=False)
    x = features(graph_case.num_nodes).requires_grad_()
    out = conv(x, graph_case.edge_index)
    has_in = torch.zeros(graph_case.num_nodes, dtype=torch.bool)
    has_in[graph_case.edge_index[1]] = True
    assert torch.isfinite(out).all()
    assert (out[~has_in] == 0).all()
    if graph_case.num_nodes:
        out[~has_in].sum().backward()
        assert x.grad is not None and (x.grad == 0).all()


def test_duplicate_edges_count_twice():
    conv = make_conv(bias=False)
    x = features(3)
    once = torch.tensor([[0, 1], [2, 2]])  # 0 -> 2, 1 -> 2
    twice = torch.tensor([[0, 0, 1], [2, 2, 2]])  # 0 -> 2 counted twice
    _, att = conv(x, twice, return_attention=True)
    out_once, att_once = conv(x, once, return_attention=True)
    # Doubling an edge doubles its exp-score: w'_0 = 2 w_0 / (2 w_0 + w_1) per copy pair.
    w0, w1 = att_once.weights[0], att_once.weights[1]
    torch.testing.assert_close(att.weights[0] + att.weights[1], 2 * w0 / (2 * w0 + w1))
    assert not torch.allclose(conv(x, twice)[2], out_once[2])


def test_without_out_projection_heads_are_concatenated_as_they_are(graph_case):
    """``out_projection=False``: the output is the heads' weighted values side by side (PyG's
    ``GATConv``/``TransformerConv`` form), on every engine, and the parameters lose W_O."""
    conv = make_conv(torch.float64, out_projection=False)
    assert not any(name.startswith("lin_out") for name, _ in conv.named_parameters())
    assert repr(conv).endswith("out_projection=False)")
    x = features(graph_case.num_nodes, torch.float64)
    out, att = conv(x, graph_case.edge_index, return_attention=True)
    source, target = att.edge_index
    value = conv.lin_value(x).view(-1, HEADS, OUT_CHANNELS // HEADS)  # (N, H, D)
    expected = torch.zeros_like(value).index_add_(
        0, target, att.weights.unsqueeze(-1) * value[source]
    )
    torch.testing.assert_close(out, expected.view(-1, OUT_CHANNELS))
    graph = graph_case.pattern if graph_case.pattern is not None else graph_case.edge_index
    for engine in available_engines():
        conv.engine = engine
        try:
            torch.testing.assert_close(conv(x, graph), out)
        except ValueError as err:  # a forced engine that cannot serve the graph says so
            assert "cannot run this call" in str(err), err


def test_out_projection_is_checked_and_kept_by_default():
    with pytest.raises(TypeError, match="out_projection"):
        MultiHeadAttentionConv(4, 8, 2, out_projection="no")
    assert isinstance(MultiHeadAttentionConv(4, 8, 2).lin_out, Linear)


def test_self_edge_only_returns_projected_value():
    """Known answer: a node whose only in-edge is its self-loop outputs W_O v_i."""
    conv = make_conv()
    x = features(4)
    out = conv(x, torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]]))
    torch.testing.assert_close(out, conv.lin_out(conv.lin_value(x)))


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 12),
    e=st.integers(0, 40),
    seed=st.integers(0, 2**16),
)
def test_permutation_equivariance_and_edge_order_invariance(n, e, seed):
    g = torch.Generator().manual_seed(seed)
    conv = make_conv(torch.float64)
    x = torch.randn(n, IN_CHANNELS, generator=g, dtype=torch.float64)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    out = conv(x, edge_index)

    perm = torch.randperm(n, generator=g)  # new node k is old node perm[k]
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    out_perm = conv(x[perm], inv[edge_index])
    torch.testing.assert_close(out_perm, out[perm])

    shuffle = torch.randperm(e, generator=g)
    torch.testing.assert_close(conv(x, edge_index[:, shuffle]), out)


def test_locality_output_depends_only_on_in_neighbours():
    conv = make_conv(torch.float64)
    edge_index = torch.tensor([[1, 2, 4, 0], [0, 0, 3, 4]])  # node 0 <- {1, 2}
    x = features(6, torch.float64).requires_grad_()
    out = conv(x, edge_index)
    (grad,) = torch.autograd.grad(out[0].sum(), x)
    depends = grad.abs().sum(dim=1) > 0
    assert depends.tolist() == [True, True, True, False, False, False]


def test_gradcheck_float64(graph_case):
    conv = make_conv(torch.float64, edge_dim=2, num_relations=3)
    x = features(graph_case.num_nodes, torch.float64).requires_grad_()
    g = torch.Generator().manual_seed(5)
    edge_attr = torch.randn(graph_case.num_edges, 2, dtype=torch.float64, generator=g)
    edge_attr.requires_grad_()
    edge_type = torch.randint(0, 3, (graph_case.num_edges,), generator=g)
    assert torch.autograd.gradcheck(
        lambda x, a: conv(x, graph_case.edge_index, edge_attr=a, edge_type=edge_type),
        (x, edge_attr),
        **FAST_GRADCHECK,
    )


def test_edge_features_and_relations_enter_key_and_value():
    conv = make_conv(torch.float64, edge_dim=2, num_relations=3, bias=False)
    x = features(3, torch.float64)
    edge_index = torch.tensor([[0, 1, 2], [2, 2, 2]])
    edge_attr = torch.randn(3, 2, dtype=torch.float64)
    edge_type = torch.tensor([0, 2, 1])
    out, att = conv(x, edge_index, edge_attr=edge_attr, edge_type=edge_type, return_attention=True)
    # by hand: k_j + e^K_ij, v_j + e^V_ij, heads of 11 channels
    key = conv.lin_key(x)[edge_index[0]] + conv.lin_edge_key(edge_attr) + conv.rel_key[edge_type]
    val = conv.lin_value(x)[edge_index[0]] + conv.lin_edge_value(edge_attr)
    val = val + conv.rel_value[edge_type]
    q = conv.lin_query(x)[2].view(HEADS, -1)
    logits = (key.view(3, HEADS, -1) * q).sum(-1) / (OUT_CHANNELS // HEADS) ** 0.5  # (E, H)
    w = logits.softmax(dim=0)
    torch.testing.assert_close(att.weights, w)
    expected = conv.lin_out((w.unsqueeze(-1) * val.view(3, HEADS, -1)).sum(0).reshape(-1))
    torch.testing.assert_close(out[2], expected)


@pytest.mark.xdist_group("fused-builds")  # one worker compiles the special builds
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_inputs_compute_in_float32_without_overflow(half):
    conv = make_conv(torch.float32)
    x = features(6) * 60.0  # logits far beyond float16's range
    pattern = FullGraph(6)
    with torch.no_grad():
        ref = conv.double()(x.double(), pattern)
        conv_half = conv.to(half)
        for engine in ("dense", "scatter"):
            conv_half.engine = engine
            out, att = conv_half(x.to(half), pattern, return_attention=True)
            assert out.dtype == half and att.weights.dtype == torch.float32
            assert torch.isfinite(out).all()
            torch.testing.assert_close(out.double(), ref, atol=0.05 * ref.abs().max(), rtol=0.05)


def test_dropout_only_in_training():
    conv = make_conv(dropout=0.5)
    x = features(9)
    pattern = FullGraph(9)
    conv.eval()
    torch.testing.assert_close(conv(x, pattern), conv(x, pattern))
    conv.train()
    torch.manual_seed(0)
    a = conv(x, pattern)
    conv.eval()
    assert not torch.allclose(a, conv(x, pattern))
    conv.train()
    _, att = conv(x, pattern, return_attention=True)  # weights are taken before dropout
    sums = torch.zeros(9, HEADS).index_add_(0, att.edge_index[1], att.weights)
    torch.testing.assert_close(sums, torch.ones_like(sums))


def test_state_dict_round_trip():
    conv = make_conv(edge_dim=2, num_relations=4)
    buffer = io.BytesIO()
    torch.save(conv.state_dict(), buffer)
    buffer.seek(0)
    other = MultiHeadAttentionConv(
        IN_CHANNELS, OUT_CHANNELS, HEADS, edge_dim=2, num_relations=4, add_self_loops=False
    )
    other.load_state_dict(torch.load(buffer))
    x = features(5)
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    kwargs = {"edge_attr": torch.randn(4, 2), "edge_type": torch.tensor([0, 1, 2, 3])}
    torch.testing.assert_close(other(x, edge_index, **kwargs), conv(x, edge_index, **kwargs))


def test_reset_parameters_reinitialises():
    conv = make_conv()
    before = conv.lin_query.weight.clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.lin_query.weight)
    assert (conv.lin_query.bias == 0).all()


def test_engine_for_reports_choice():
    conv = make_conv()
    x = features(7)
    assert conv.engine_for(x, FullGraph(7)) == "dense"
    assert conv.engine_for(x, FullGraph(7).edge_index()) != "dense"
    assert conv.engine_for(x, FullGraph(7).edge_index()) in available_engines()
