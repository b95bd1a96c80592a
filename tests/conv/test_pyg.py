"""The layer as a PyG user calls it: every input form, bipartite and heterogeneous graphs,
self-loops and skip connections, PyG's hooks, explainers and flow, call forms, compile."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from torch_geometric import EdgeIndex
from torch_geometric.data import HeteroData
from torch_geometric.nn import HeteroConv, Sequential, to_hetero

import graphattn.engines.fused as fused
from graphattn import (
    CausalFullGraph,
    ChunkedGraph,
    EdgeList,
    FullGraph,
    GridGraph,
    MultiHeadAttentionConv,
    WindowGraph,
    available_engines,
)

HEADS, DIM = 3, 5
C = HEADS * DIM


def brute_force(conv, x_src, x_dst, edge_index, edge_attr=None, edge_type=None, rel=None):
    """The layer's formula computed edge by edge with dense softmaxes (an independent oracle;
    ``edge_index`` already holds any self-loops; ``rel`` overrides the relation tables).
    Returns ``(out [N_dst, C], weights [E, H])``."""
    q = conv.lin_query(x_dst).view(-1, HEADS, DIM) / math.sqrt(DIM)
    k = conv.lin_key(x_src).view(-1, HEADS, DIM)[edge_index[0]]
    v = conv.lin_value(x_src).view(-1, HEADS, DIM)[edge_index[0]]
    if edge_attr is not None:
        k = k + conv.lin_edge_key(edge_attr).view(-1, HEADS, DIM)
        v = v + conv.lin_edge_value(edge_attr).view(-1, HEADS, DIM)
    if edge_type is not None:
        rel_key, rel_value = rel if rel is not None else (conv.rel_key, conv.rel_value)
        k = k + rel_key.view(-1, HEADS, DIM)[edge_type]
        v = v + rel_value.view(-1, HEADS, DIM)[edge_type]
    logits = (q[edge_index[1]] * k).sum(-1)  # (E, H)
    weights = torch.zeros_like(logits)
    out = torch.zeros(x_dst.size(0), HEADS, DIM, dtype=x_dst.dtype)
    for i in range(x_dst.size(0)):
        into = (edge_index[1] == i).nonzero().flatten()
        if into.numel():
            weights[into] = logits[into].softmax(0)
            out[i] = (weights[into].unsqueeze(-1) * v[into]).sum(0)
    out = conv.lin_out(out.reshape(-1, C))
    if conv.lin_skip is not None:
        out = out + conv.lin_skip(x_dst)
    return out, weights


def make_conv(in_channels=4, **kwargs):
    torch.manual_seed(0)
    conv = MultiHeadAttentionConv(in_channels, C, HEADS, **kwargs).double()
    with torch.no_grad():  # non-zero biases, so that a bias bug cannot hide
        for p in conv.parameters():
            if p.dim() == 1:
                p.normal_(std=0.3)
    return conv


def graph(num_src, num_dst, num_edges, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.stack(
        [
            torch.randint(0, num_src, (num_edges,), generator=g),
            torch.randint(0, num_dst, (num_edges,), generator=g),
        ]
    )


def engines_for(conv, *args, **kwargs):
    """Every engine that serves this call (besides "auto")."""
    names = []
    for name in available_engines():
        conv.engine = name
        try:
            conv.engine_for(*args, **kwargs)
        except ValueError:
            continue
        names.append(name)
    conv.engine = "auto"
    return names


# ---- bipartite and lazy input sizes --------------------------------------------------------
def test_bipartite_pair_matches_the_formula_on_every_engine():
    conv = make_conv((4, 6), root_weight=True)
    x_src, x_dst = torch.randn(7, 4).double(), torch.randn(5, 6).double()
    edge_index = graph(7, 4, 30)  # target 4 has no incoming edge
    want, want_w = brute_force(conv, x_src, x_dst, edge_index)
    for engine in ["auto", *engines_for(conv, (x_src, x_dst), edge_index)]:
        conv.engine = engine
        out, att = conv((x_src, x_dst), edge_index, return_attention=True)
        torch.testing.assert_close(out, want)
        torch.testing.assert_close(att.weights, want_w)
        assert torch.equal(att.edge_index, edge_index)  # bipartite: no self-loops added


def test_lazy_in_channels_are_inferred_on_the_first_call():
    conv = MultiHeadAttentionConv(-1, C, HEADS, root_weight=True)
    out = conv(torch.randn(6, 9), graph(6, 6, 20))
    assert out.shape == (6, C) and conv.lin_query.weight.shape == (C, 9)
    pair = MultiHeadAttentionConv((-1, -1), C, HEADS)
    assert pair((torch.randn(6, 9), torch.randn(4, 3)), graph(6, 4, 20)).shape == (4, C)
    assert pair.lin_key.weight.shape == (C, 9) and pair.lin_query.weight.shape == (C, 3)


def _hetero_data():
    data = HeteroData()
    data["a"].x = torch.randn(6, 4)
    data["b"].x = torch.randn(5, 4)
    data["a", "to", "a"].edge_index = graph(6, 6, 14, seed=1)
    data["a", "to", "b"].edge_index = graph(6, 5, 9, seed=2)
    data["b", "rev", "a"].edge_index = graph(5, 6, 7, seed=3)
    return data


class _Net(torch.nn.Module):
    def __init__(self, engine):
        super().__init__()
        self.conv = MultiHeadAttentionConv(
            (-1, -1), C, HEADS, add_self_loops=False, root_weight=True, engine=engine
        )

    def forward(self, x, edge_index):
        return self.conv(x, edge_index)


@pytest.mark.parametrize("engine", ["auto", "scatter", "fused"])
def test_to_hetero_equals_a_sum_over_edge_types(engine):
    data = _hetero_data()
    model = to_hetero(_Net(engine), data.metadata(), aggr="sum")
    out = model(data.x_dict, data.edge_index_dict)
    for dst in ("a", "b"):
        want = 0
        for src, rel, d in data.edge_types:
            if d != dst:
                continue
            conv = model.conv[f"{src}__{rel}__{d}"]
            x_src, x_dst = data[src].x, data[dst].x
            want = want + brute_force(conv, x_src, x_dst, data[src, rel, d].edge_index)[0]
        torch.testing.assert_close(out[dst], want, atol=1e-5, rtol=1e-4)


def test_hetero_conv_with_a_conv_per_edge_type():
    data = _hetero_data()
    convs = {
        et: MultiHeadAttentionConv(-1, C, HEADS, add_self_loops=False) for et in data.edge_types
    }
    out = HeteroConv(convs, aggr="sum")(data.x_dict, data.edge_index_dict)
    want_b = brute_force(
        convs["a", "to", "b"], data["a"].x, data["b"].x, data["a", "to", "b"].edge_index
    )[0]
    torch.testing.assert_close(out["b"], want_b, atol=1e-5, rtol=1e-4)


# ---- graph input forms ---------------------------------------------------------------------
def _forms(edge_index, n):
    src, dst = edge_index
    adj_t = torch.sparse_coo_tensor(torch.stack([dst, src]), torch.ones(src.numel()), (n, n))
    return {
        "tensor": edge_index,
        "int32": edge_index.int(),
        "EdgeIndex": EdgeIndex(edge_index, sparse_size=(n, n)),
        "EdgeIndex-sorted": EdgeIndex(edge_index, sparse_size=(n, n)).sort_by("col")[0],
        "EdgeList": EdgeList(edge_index, n),
        "sparse-coo": adj_t,
        "sparse-csr": adj_t.to_sparse_csr(),
        "sparse-csc": adj_t.to_sparse_csc(),
    }


@pytest.mark.parametrize("engine", ["scatter", "fused"])
def test_every_graph_form_gives_the_same_layer_output(engine):
    conv = make_conv(engine=engine)
    x = torch.randn(9, 4).double()
    edge_index = torch.unique(graph(9, 9, 40), dim=1).contiguous()  # CSR/CSC merge duplicates
    x.requires_grad_()
    want = conv(x, edge_index)
    (want_grad,) = torch.autograd.grad(want.sum(), x)
    for name, form in _forms(edge_index, 9).items():
        out = conv(x, form)
        (grad,) = torch.autograd.grad(out.sum(), x)
        if name.startswith("sparse-c") or name == "EdgeIndex-sorted":  # edges reordered
            torch.testing.assert_close(out, want, msg=name)
        else:
            torch.testing.assert_close(out, want, atol=0, rtol=0, msg=name)
        torch.testing.assert_close(grad, want_grad, msg=name)


def test_sparse_tensor_adjacency():
    torch_sparse = pytest.importorskip("torch_sparse")  # not installable on every machine
    conv = make_conv()
    x = torch.randn(9, 4).double()
    edge_index = graph(9, 9, 40)
    adj_t = torch_sparse.SparseTensor(row=edge_index[1], col=edge_index[0], sparse_sizes=(9, 9))
    torch.testing.assert_close(conv(x, adj_t), conv(x, edge_index))


def test_edge_index_results_are_cached_on_the_edge_index():
    conv = make_conv()
    ei = EdgeIndex(graph(9, 9, 40), sparse_size=(9, 9))
    x = torch.randn(9, 4).double()
    conv(x, ei)
    cached = dict(ei._graphattn_inputs)
    conv(x, ei)
    assert {k: v[1] for k, v in ei._graphattn_inputs.items()} == {
        k: v[1] for k, v in cached.items()
    }


def test_sparse_input_rejects_target_to_source_flow():
    conv = make_conv(flow="target_to_source")
    adj_t = torch.sparse_coo_tensor(graph(9, 9, 5), torch.ones(5), (9, 9))
    with pytest.raises(ValueError, match="flow='target_to_source'"):
        conv(torch.randn(9, 4).double(), adj_t)


# ---- self-loops, skip and gate ------------------------------------------------------------
def _with_loops(edge_index, n):
    """PyG's GATConv convention, spelled out: existing self-loops removed, one per node added."""
    keep = edge_index[0] != edge_index[1]
    loops = torch.arange(n).expand(2, n)
    return torch.cat([edge_index[:, keep], loops], dim=1), keep


@pytest.mark.parametrize("engine", ["scatter", "fused"])
def test_add_self_loops_replaces_existing_loops_with_one_per_node(engine):
    conv = make_conv(edge_dim=2, num_relations=3, engine=engine)
    x = torch.randn(8, 4).double()
    edge_index = torch.cat([graph(8, 8, 30), torch.tensor([[2, 2, 5], [2, 2, 5]])], dim=1)
    edge_attr = torch.randn(33, 2).double()
    edge_type = torch.randint(0, 3, (33,))
    out, att = conv(x, edge_index, edge_attr, edge_type, return_attention=True)
    ref_index, keep = _with_loops(edge_index, 8)
    # the appended loops carry zero edge features and a relation with no embedding
    attr = torch.cat([edge_attr[keep], torch.zeros(8, 2).double()])
    rel = torch.cat([edge_type[keep], torch.full((8,), 3)])
    none = torch.zeros(1, C).double()
    tables = (torch.cat([conv.rel_key, none]), torch.cat([conv.rel_value, none]))
    want, want_w = brute_force(conv, x, x, ref_index, attr, rel, tables)
    torch.testing.assert_close(out, want)
    # weights: the caller's edges (its own self-loops get 0), then the appended loops
    assert torch.equal(att.edge_index[:, :33], edge_index)
    assert torch.equal(att.edge_index[:, 33:], torch.arange(8).expand(2, 8))
    assert (att.weights[:33][~keep] == 0).all()
    torch.testing.assert_close(att.weights[:33][keep], want_w[: int(keep.sum())])
    torch.testing.assert_close(att.weights[33:], want_w[int(keep.sum()) :])


def test_self_loops_leave_patterns_unchanged_and_make_edge_lists_match_them():
    conv = make_conv()
    x = torch.randn(7, 4).double()
    pattern = WindowGraph(7, radius=2)  # holds one self-loop per node already
    torch.testing.assert_close(conv(x, pattern), conv(x, pattern.edge_index()))
    conv.add_self_loops = False
    torch.testing.assert_close(conv(x, pattern), conv(x, pattern.edge_index()))


def test_a_node_without_in_edges_sees_itself():
    conv = make_conv(bias=False)
    x = torch.randn(4, 4).double()
    out = conv(x, torch.tensor([[0], [1]]))  # nodes 0, 2, 3 have no in-edge of their own
    torch.testing.assert_close(out[[0, 2, 3]], conv.lin_out(conv.lin_value(x))[[0, 2, 3]])


def test_root_weight_and_beta_gate():
    x = torch.randn(6, 4).double()
    edge_index = graph(6, 6, 20)
    plain = make_conv(add_self_loops=False)
    skip = make_conv(add_self_loops=False, root_weight=True)
    skip.load_state_dict(plain.state_dict(), strict=False)
    torch.testing.assert_close(skip(x, edge_index), plain(x, edge_index) + skip.lin_skip(x))
    gated = make_conv(add_self_loops=False, root_weight=True, beta=True)
    gated.load_state_dict(skip.state_dict(), strict=False)
    attn, x_r = plain(x, edge_index), gated.lin_skip(x)
    beta = gated.lin_beta(torch.cat([attn, x_r, attn - x_r], -1)).sigmoid()
    torch.testing.assert_close(gated(x, edge_index), beta * x_r + (1 - beta) * attn)
    with pytest.raises(ValueError, match="`beta=True`.*root_weight"):
        MultiHeadAttentionConv(4, C, HEADS, beta=True)


def test_from_torch_stays_exact_on_a_materialized_complete_graph():
    mha = torch.nn.MultiheadAttention(12, 3, batch_first=True)
    conv = MultiHeadAttentionConv.from_torch(mha)
    seq = torch.randn(2, 5, 12)
    ref, _ = mha(seq, seq, seq)
    for g in (FullGraph.from_sizes([5, 5]), FullGraph.from_sizes([5, 5]).edge_index()):
        torch.testing.assert_close(conv(seq.reshape(10, 12), g), ref.reshape(10, 12))


# ---- PyG's contract: hooks, explainers, flow, weights with gradients ----------------------
def test_hooks_fire_and_auto_routes_to_message_passing(monkeypatch):
    monkeypatch.setattr(fused, "AUTO_MIN_EDGES", 1)  # auto would pick fused on this graph
    conv = make_conv()
    x = torch.randn(9, 4).double()
    edge_index = graph(9, 9, 40)
    assert conv.engine_for(x, edge_index) == "fused"
    seen = []
    conv.register_message_forward_hook(lambda m, inputs, out: seen.append(("message", out.shape)))
    conv.register_aggregate_forward_hook(lambda m, inputs, out: seen.append(("aggr", out.shape)))
    conv.register_propagate_forward_hook(lambda m, inputs, out: seen.append(("prop", out.shape)))
    assert conv.engine_for(x, edge_index) == "scatter"
    conv(x, edge_index)
    assert [s[0] for s in seen] == ["message", "aggr", "prop"]
    assert seen[0][1] == (49, HEADS, DIM)  # 40 edges + 9 self-loops
    conv.engine = "fused"
    with pytest.raises(ValueError, match="PyG's message passing"):
        conv(x, edge_index)


def test_attention_explainer_finds_the_attention(monkeypatch):
    from torch_geometric.explain import AttentionExplainer, Explainer

    monkeypatch.setattr(fused, "AUTO_MIN_EDGES", 1)  # auto would pick fused on this graph
    conv = make_conv().float()
    x, edge_index = torch.randn(9, 4), graph(9, 9, 40)
    assert conv.engine_for(x, edge_index) == "fused"  # until the explainer's hooks are set

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, x, edge_index):
            return self.conv(x, edge_index)

    explainer = Explainer(
        Model(), AttentionExplainer(), explanation_type="model", edge_mask_type="object",
        model_config=dict(mode="regression", task_level="node", return_type="raw"),
    )  # fmt: skip
    explanation = explainer(x, edge_index)
    _, att = conv(x, edge_index, return_attention=True)
    # the explainer's mask is the (head-max) attention of the caller's 40 edges
    torch.testing.assert_close(explanation.edge_mask, att.weights[:40].max(-1).values)


def test_gnn_explainer_edge_mask_gets_gradients(monkeypatch):
    from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

    monkeypatch.setattr(fused, "AUTO_MIN_EDGES", 1)  # auto would pick fused on this graph
    conv = make_conv()
    x, edge_index = torch.randn(9, 4).double(), graph(9, 9, 40)
    assert conv.engine_for(x, edge_index) == "fused"
    mask = torch.nn.Parameter(torch.zeros(40).double())
    set_masks(conv, mask, edge_index, apply_sigmoid=True)
    try:
        assert conv.engine_for(x, edge_index) == "scatter"  # the mask routes to PyG's path
        out = conv(x, edge_index)
        out.square().sum().backward()
    finally:
        clear_masks(conv)
    assert mask.grad is not None and mask.grad.abs().sum() > 0
    # with the mask at 0 (sigmoid 1/2) every message of the caller's edges is halved
    conv.add_self_loops = False
    with torch.no_grad():
        set_masks(conv, torch.zeros(40).double(), edge_index, apply_sigmoid=True)
        explained = conv(x, edge_index)
        clear_masks(conv)
    torch.testing.assert_close(explained, _halved_messages(conv, x, edge_index))


def _halved_messages(conv, x, edge_index):
    """The layer's output with every attention message scaled by 1/2 (mask sigmoid(0))."""
    out, _ = brute_force(conv, x, x, edge_index)
    return conv.lin_out.bias + 0.5 * (out - conv.lin_out.bias)


@pytest.mark.parametrize("engine", ["scatter", "fused", "auto"])
def test_flow_target_to_source_equals_flipped_edges(engine, monkeypatch):
    monkeypatch.setattr(fused, "AUTO_MIN_EDGES", 1)  # auto picks fused on this graph
    x = torch.randn(9, 4).double()
    edge_index = graph(9, 9, 40)
    forward = make_conv(engine=engine)
    backward = make_conv(engine=engine, flow="target_to_source")
    out, att = backward(x, edge_index.flip(0), return_attention=True)
    want, want_att = forward(x, edge_index, return_attention=True)
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(att.weights, want_att.weights)
    assert torch.equal(att.edge_index, want_att.edge_index.flip(0))  # the caller's orientation
    causal = CausalFullGraph.from_sizes([4, 5])  # not symmetric: flow matters
    torch.testing.assert_close(backward(x, causal), forward(x, causal.edge_index().flip(0)))


def test_weights_carry_gradients_on_the_default_engine(monkeypatch):
    """An entropy regulariser on the returned weights trains the projections on any engine."""
    monkeypatch.setattr(fused, "AUTO_MIN_EDGES", 1)
    x, edge_index = torch.randn(9, 4).double(), graph(9, 9, 40)
    grads = []
    for engine in ("auto", "scatter"):
        conv = make_conv(engine=engine)
        out, att = conv(x, edge_index, return_attention=True)
        w = att.weights
        entropy = -(w * w.clamp_min(1e-12).log()).sum()
        (out.sum() + entropy).backward()
        grads.append({n: p.grad for n, p in conv.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grad, grads[1][name], msg=name)


# ---- call forms -----------------------------------------------------------------------------
def test_positional_edge_attr_one_dimensional_attr_and_pyg_spelling():
    conv = make_conv(edge_dim=1)
    x, edge_index = torch.randn(6, 4).double(), graph(6, 6, 15)
    attr = torch.randn(15).double()
    want = conv(x, edge_index, edge_attr=attr.unsqueeze(-1))
    torch.testing.assert_close(conv(x, edge_index, attr), want)
    out, (ei, alpha) = conv(x, edge_index, attr, return_attention_weights=True)
    torch.testing.assert_close(out, want)
    assert ei.shape == (2, 21) and alpha.shape == (21, HEADS)
    with pytest.raises(ValueError, match="contradicts"):
        conv(x, edge_index, attr, return_attention=True, return_attention_weights=False)


def test_pyg_sequential_string_form():
    conv = make_conv(edge_dim=2)
    model = Sequential(
        "x, edge_index, edge_attr",
        [(conv, "x, edge_index, edge_attr -> x"), torch.nn.ReLU()],
    )
    x, edge_index, attr = torch.randn(6, 4).double(), graph(6, 6, 15), torch.randn(15, 2).double()
    torch.testing.assert_close(model(x, edge_index, attr), conv(x, edge_index, attr).relu())


def test_size_argument_is_checked():
    conv = make_conv()
    x = torch.randn(6, 4).double()
    assert conv(x, graph(6, 6, 10), size=(6, 6)).shape == (6, C)
    with pytest.raises(ValueError, match="`size` must be"):
        conv(x, graph(6, 6, 10), size=(6, 5))


# ---- torch.compile --------------------------------------------------------------------------
def test_compile_fullgraph_one_graph_on_every_graph_kind():
    from graphattn.nn import GraphTransformer, GraphTransformerConfig

    torch.manual_seed(0)
    model = GraphTransformer(GraphTransformerConfig(in_channels=4, channels=12, heads=2))
    sizes = [5, 7]
    graphs = {
        "edge_index": graph(12, 12, 40),
        "full": FullGraph.from_sizes(sizes),
        "causal": CausalFullGraph.from_sizes(sizes),
        "chunked": ChunkedGraph.from_sizes(sizes, chunk_size=3),
        "window": WindowGraph.from_sizes(sizes, radius=2),
        "grid": GridGraph(3, 4),
    }
    x = torch.randn(12, 4)
    for name, g in graphs.items():
        torch._dynamo.reset()
        explained = torch._dynamo.explain(lambda x, g=g: model(x, g).node)(x)
        assert (explained.graph_count, explained.graph_break_count) == (1, 0), (
            name, [str(r.reason)[:200] for r in explained.break_reasons],
        )  # fmt: skip


def test_compile_dynamic_does_not_recompile_for_new_graph_sizes():
    from graphattn.nn import GraphTransformer, GraphTransformerConfig

    torch._dynamo.reset()
    torch.manual_seed(0)
    model = GraphTransformer(GraphTransformerConfig(in_channels=4, channels=12, heads=2))
    compiles = []

    def backend(gm, example_inputs):
        compiles.append(gm)
        return gm.forward

    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend=backend)
    for n, e in [(20, 300), (33, 4000), (50, 25)]:  # across the auto threshold, too
        x, edge_index = torch.randn(n, 4), graph(n, n, e, seed=n)
        out = compiled(x, edge_index).node
        torch.testing.assert_close(out, model(x, edge_index).node, atol=1e-5, rtol=1e-4)
    assert len(compiles) == 1


# ---- optional dependencies ------------------------------------------------------------------
def test_import_without_numba_and_fused_declines(monkeypatch):
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import torch, graphattn\n"
        "assert 'numba' not in [m for m, v in sys.modules.items() if v is not None]\n"
        "conv = graphattn.MultiHeadAttentionConv(4, 6, heads=2, engine='fused')\n"
        "try:\n"
        "    conv(torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]]))\n"
        "except ValueError as err:\n"
        "    assert 'numba is not installed' in str(err), err\n"
        "else:\n"
        "    raise AssertionError('fused ran without numba')\n"
        "print(graphattn.MultiHeadAttentionConv(4, 6, heads=2).engine_for("
        "torch.randn(3, 4), torch.randint(0, 3, (2, 5000))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "scatter"
