"""The drop-in claim held to PyG's own bar: deployment (``torch.jit.trace``, ``torch.export``,
the ``torch.jit.script`` refusal), GATConv's arguments (``fill_value``, ``residual``, lazy
``edge_dim=-1``), PyG's return forms of ``return_attention_weights``, PyG's models built on the
layer (GPS, BasicGNN, SAGPooling, GNNExplainer), and PyG's own ``TransformerConv`` test adapted
to the total-width convention."""

from __future__ import annotations

import copy
import io
import warnings

import pytest
import torch
from torch_geometric import EdgeIndex
from torch_geometric.nn import GATConv, GPSConv, SAGPooling, Sequential, to_hetero
from torch_geometric.nn.models.basic_gnn import BasicGNN
from torch_geometric.typing import WITH_TORCH_SPARSE, SparseTensor
from torch_geometric.utils import add_self_loops, remove_self_loops, to_torch_csc_tensor

import graphattn.engines.fused as fused
from graphattn import FullGraph, MultiHeadAttentionConv, WindowGraph
from graphattn.conv import NOT_SCRIPTABLE

from .test_pyg import HEADS, C, brute_force, graph, make_conv


def _with_loops(edge_index, n, seed):
    """A random graph with some self-loops of its own (which the layer replaces)."""
    loops = torch.tensor([[1, 3], [1, 3]]) % n
    return torch.cat([graph(n, n, 3 * n, seed=seed), loops], dim=1)


def _traced(module, example):
    """``torch.jit.trace`` (deprecated by torch in favour of torch.export, still PyG's
    deployment path), saved and loaded back: a TorchScript module that runs without Python."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("error", torch.jit.TracerWarning)  # a trace hazard fails
        traced = torch.jit.trace(module, example, check_trace=False)  # checked by the callers
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
        buffer.seek(0)
        return torch.jit.load(buffer)


class _AttentionGNN(BasicGNN):
    """PyG's BasicGNN recipe (as GAT and GraphSAGE are built) on this layer."""

    supports_edge_weight = False
    supports_edge_attr = True
    supports_norm_batch = False

    def init_conv(self, in_channels, out_channels, **kwargs):
        return MultiHeadAttentionConv(in_channels, out_channels, HEADS, **kwargs)


class _Deployed(torch.nn.Module):
    """A model called with tensors only, as a trace takes it."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, edge_index, edge_attr):
        return self.model(x, edge_index, edge_attr=edge_attr)


# ---- torch.jit.trace ------------------------------------------------------------------------
def test_trace_of_the_layer_and_a_model_holds_for_other_graphs():
    torch.manual_seed(0)
    conv = make_conv(edge_dim=2, fill_value="mean", num_relations=2, root_weight=True)
    model = _AttentionGNN(4, C, num_layers=2, edge_dim=2, fill_value="mean").double()

    def inputs(n, seed):
        edge_index = _with_loops(None, n, seed)
        e = edge_index.size(1)
        return torch.randn(n, 4).double(), edge_index, torch.randn(e, 2).double(), e

    x, edge_index, attr, e = inputs(6, 0)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]  # no self-loops of its own,
    attr, e = attr[: edge_index.size(1)], edge_index.size(1)  # unlike the graphs below
    edge_type = torch.randint(0, 2, (e,))
    traced_conv = _traced(conv, (x, edge_index, attr, edge_type))
    traced_model = _traced(_Deployed(model), (x, edge_index, attr))
    for n, seed in [(6, 0), (9, 1), (4, 2)]:  # other node and edge counts
        x, edge_index, attr, e = inputs(n, seed)
        edge_type = torch.randint(0, 2, (e,))
        torch.testing.assert_close(
            traced_conv(x, edge_index, attr, edge_type), conv(x, edge_index, attr, edge_type)
        )
        torch.testing.assert_close(
            traced_model(x, edge_index, attr), model(x, edge_index, edge_attr=attr)
        )


def test_trace_of_bipartite_calls_and_returned_weights():
    conv = make_conv((4, 3), flow="target_to_source")

    class Weights(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, x_src, x_dst, edge_index):
            return self.conv((x_src, x_dst), edge_index, return_attention_weights=True)

    def inputs(n_src, n_dst, seed):
        g = graph(n_dst, n_src, 4 * n_src, seed=seed)  # target -> source (flow)
        return torch.randn(n_src, 4).double(), torch.randn(n_dst, 3).double(), g

    traced = _traced(Weights(), inputs(5, 3, 0))
    for sizes in [(5, 3, 0), (8, 6, 1)]:
        args = inputs(*sizes)
        out, (edge_index, weights) = traced(*args)
        want, (want_index, want_weights) = Weights()(*args)
        torch.testing.assert_close(out, want)
        assert torch.equal(edge_index, want_index)
        torch.testing.assert_close(weights, want_weights)


def test_a_forced_fused_engine_says_why_it_is_not_traced():
    conv = make_conv(engine="fused")
    with pytest.raises(ValueError, match="torch.jit.trace would record its CSR"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.trace(conv, (torch.randn(5, 4).double(), graph(5, 5, 9)))


# ---- torch.export ---------------------------------------------------------------------------
def test_export_on_edge_lists_holds_for_other_graphs_with_the_default_engine(monkeypatch):
    from torch.export import Dim

    monkeypatch.setattr(fused, "AUTO_MIN_EDGES", 1)  # eager auto runs fused too
    conv = make_conv(edge_dim=2, fill_value=0.5).float()
    x, edge_index = torch.randn(7, 4), _with_loops(None, 7, 0)
    attr = torch.randn(edge_index.size(1), 2)
    n, e = Dim("n", max=2**20), Dim("e", max=2**20)
    exported = torch.export.export(
        conv, (x, edge_index, attr), dynamic_shapes=({0: n}, {1: e}, {0: e})
    )
    ops = {str(node.target) for m in exported.graph_module.modules() for node in m.graph.nodes}
    assert "graphattn.fused_attention.default" in ops  # what auto picks for compiled graphs
    for nodes, seed in [(7, 0), (12, 1), (3, 2)]:
        x, edge_index = torch.randn(nodes, 4), _with_loops(None, nodes, seed)
        attr = torch.randn(edge_index.size(1), 2)
        torch.testing.assert_close(
            exported.module()(x, edge_index, attr), conv(x, edge_index, attr), atol=1e-5, rtol=1e-4
        )


def test_export_of_patterns_is_strict_and_says_so_when_not():
    conv = make_conv().float()
    x = torch.randn(9, 4)
    for pattern in (FullGraph.from_sizes([4, 5]), WindowGraph.from_sizes([4, 5], radius=1)):
        with pytest.raises(ValueError, match=r"torch\.export\.export\(\.\.\., strict=True\)"):
            torch.export.export(conv, (x, pattern))
    # the message's word: strict export records the pattern's engine (here blocked)
    exported = torch.export.export(conv, (x, pattern), strict=True)
    x2 = torch.randn(9, 4)
    torch.testing.assert_close(exported.module()(x2, pattern), conv(x2, pattern))
    torch.testing.assert_close(conv(x2, pattern), conv(x2, pattern.edge_index()))  # real caches


# ---- torch.jit.script: the documented exception ---------------------------------------------
def test_script_refuses_with_what_to_use_instead_and_that_works():
    conv = make_conv()

    class MyModule(torch.nn.Module):  # PyG's TorchScript test form
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
            return self.conv(x, edge_index)

    pyg_sequential = Sequential("x, edge_index", [(conv, "x, edge_index -> x"), torch.nn.ReLU()])
    for module in (conv, MyModule(), pyg_sequential):
        with pytest.raises(RuntimeError) as err:
            torch.jit.script(module)
        assert str(err.value) == NOT_SCRIPTABLE
    assert "torch.jit.trace(model, (x, edge_index))" in NOT_SCRIPTABLE
    assert "torch.export.export(model, (x, edge_index))" in NOT_SCRIPTABLE
    # and what it names works on the same module, for other graphs as well
    x, edge_index = torch.randn(6, 4).double(), graph(6, 6, 20)
    traced = _traced(MyModule(), (x, edge_index))
    exported = torch.export.export(MyModule(), (x, edge_index))
    x, edge_index = torch.randn(6, 4).double(), graph(6, 6, 20, seed=5)  # same sizes
    torch.testing.assert_close(traced(x, edge_index), conv(x, edge_index))
    torch.testing.assert_close(exported.module()(x, edge_index), conv(x, edge_index))


# ---- GATConv's arguments --------------------------------------------------------------------
FILLS = [None, 0.0, 2.5, torch.tensor([0.5, -1.0]), "mean", "add", "max", "min", "mul"]


@pytest.mark.parametrize("engine", ["scatter", "fused"])
def test_fill_value_gives_gatconvs_self_loop_features(engine):
    x = torch.randn(7, 4).double()
    edge_index = torch.cat([_with_loops(None, 7, 3), torch.tensor([[2, 0], [5, 5]])], dim=1)
    attr = torch.randn(edge_index.size(1), 2).double()
    attr[0] = float("nan") if bool(edge_index[0, 0] == edge_index[1, 0]) else attr[0]
    for fill in FILLS:
        conv = make_conv(edge_dim=2, fill_value=fill, engine=engine)
        # PyG's own convention (GATConv's forward): remove self-loops, add one per node
        ref_index, ref_attr = remove_self_loops(edge_index, attr)
        ref_index, ref_attr = add_self_loops(ref_index, ref_attr, fill_value=fill, num_nodes=7)
        want = brute_force(conv, x, x, ref_index, ref_attr)[0]
        torch.testing.assert_close(conv(x, edge_index, attr), want, msg=f"fill_value={fill!r}")


def _gat_beside_the_layer(engine: str, dropout: float = 0.0):
    """GATConv (2 heads of 3 channels) and this layer without W_O on the same value weights."""
    gat = GATConv(5, 3, heads=2, dropout=dropout).double()
    ours = MultiHeadAttentionConv(5, 6, 2, dropout=dropout, out_projection=False, engine=engine)
    ours = ours.double()
    with torch.no_grad():
        ours.lin_value.weight.copy_(gat.lin.weight)
    return gat, ours


def _without_attention(gat: GATConv, ours: MultiHeadAttentionConv) -> None:
    with torch.no_grad():
        gat.att_src.zero_(), gat.att_dst.zero_()
        ours.lin_query.weight.zero_(), ours.lin_query.bias.zero_()


@pytest.mark.parametrize("engine", ["scatter", "fused", "auto"])
def test_without_attention_gatconv_and_the_layer_without_w_o_are_one_map(engine):
    """docs/real_data.md compares GATConv with zero attention vectors and this layer with zero
    queries: both then take each node's mean over itself and its in-neighbours of one linear
    map, concatenated over heads, plus a bias (here: including the self-loops a graph brings)."""
    torch.manual_seed(0)
    x = torch.randn(9, 5, dtype=torch.float64)
    edge_index = torch.cat([_with_loops(None, 9, 4), torch.tensor([[0, 0], [6, 6]])], dim=1)
    gat, ours = _gat_beside_the_layer(engine)
    with torch.no_grad():
        for p in (gat.att_src, gat.att_dst, gat.bias):
            p.normal_()
        ours.lin_value.bias.copy_(gat.bias)
        assert not torch.allclose(gat(x, edge_index), ours(x, edge_index))  # GAT attends
        _without_attention(gat, ours)
        torch.testing.assert_close(ours(x, edge_index), gat(x, edge_index))


def test_in_training_gatconv_and_the_layer_drop_the_same_attention_weights():
    """benchmarks/citation.py's ``draws`` part trains each layer on the other's random draws:
    from the same random state the two drop the same attention weights on the ``scatter``
    engine, which ``auto`` takes on the CPU below ``fused.AUTO_MIN_EDGES`` (biases at zero, as
    initialised: GATConv adds its bias after aggregation, this layer inside the values)."""
    torch.manual_seed(0)
    x = torch.randn(9, 5, dtype=torch.float64)
    # no self-loops of its own, as in Planetoid: both keep the edge order, add loops after it
    edge_index = remove_self_loops(graph(9, 9, 27, seed=4))[0]
    gat, ours = _gat_beside_the_layer("scatter", dropout=0.6)
    _without_attention(gat, ours)
    with torch.no_grad():
        outputs = []
        for conv in (gat, ours):
            torch.manual_seed(1)
            outputs.append((conv(x, edge_index), conv(x, edge_index)))
        torch.testing.assert_close(outputs[1], outputs[0])
        assert not torch.allclose(*outputs[0])  # a second draw drops other weights
        assert not torch.allclose(outputs[0][0], gat.eval()(x, edge_index))


def test_fill_value_and_residual_are_checked_and_residual_is_the_skip():
    with pytest.raises(ValueError, match="`fill_value` as a str"):
        MultiHeadAttentionConv(4, C, HEADS, fill_value="median")
    with pytest.raises(TypeError, match="`fill_value` must be"):
        MultiHeadAttentionConv(4, C, HEADS, fill_value=[1.0])
    with pytest.raises(ValueError, match="`fill_value` has 3 entries"):
        make_conv(edge_dim=2, fill_value=torch.ones(3))(
            torch.randn(5, 4).double(), graph(5, 5, 8), torch.randn(8, 2).double()
        )
    with pytest.raises(TypeError, match="`residual` must be a bool"):
        MultiHeadAttentionConv(4, C, HEADS, residual=1)
    residual, skip = make_conv(residual=True), make_conv(root_weight=True)
    assert repr(residual) == repr(skip) and residual.lin_skip is not None
    x, edge_index = torch.randn(6, 4).double(), graph(6, 6, 15)
    torch.testing.assert_close(residual(x, edge_index), skip(x, edge_index))


def test_lazy_edge_dim_infers_the_width_per_edge_type():
    torch.manual_seed(0)
    lazy = MultiHeadAttentionConv(4, C, HEADS, edge_dim=-1, fill_value="mean").double()
    x, edge_index = torch.randn(6, 4).double(), graph(6, 6, 15)
    attr = torch.randn(15, 3).double()
    out = lazy(x, edge_index, attr)
    assert lazy.lin_edge_key.weight.shape == (C, 3) and lazy.lin_edge_value.in_channels == 3
    fixed = MultiHeadAttentionConv(4, C, HEADS, edge_dim=3, fill_value="mean").double()
    fixed.load_state_dict(lazy.state_dict())
    torch.testing.assert_close(out, fixed(x, edge_index, attr))
    with pytest.raises(ValueError, match=r"`edge_attr` must have shape \[15, 3\]"):
        lazy(x, edge_index, torch.randn(15, 2).double())
    with pytest.raises(ValueError, match=r"`edge_dim` must be > 0 or -1 \(lazy\)"):
        MultiHeadAttentionConv(4, C, HEADS, edge_dim=-2)
    with pytest.raises(TypeError, match="`edge_dim` must be an int"):
        MultiHeadAttentionConv(4, C, HEADS, edge_dim=-1.0)
    one = MultiHeadAttentionConv(4, C, HEADS, edge_dim=-1).double()  # a 1-D edge_attr: width 1
    assert one(x, edge_index, attr[:, 0]).shape == (6, C) and one.lin_edge_key.in_channels == 1

    # PyG's lazy to_hetero pattern: edge types whose features differ in width
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = MultiHeadAttentionConv(
                (-1, -1), C, HEADS, edge_dim=-1, add_self_loops=False
            )

        def forward(self, x, edge_index, edge_attr):
            return self.conv(x, edge_index, edge_attr)

    from torch_geometric.data import HeteroData

    data = HeteroData()
    data["a"].x, data["b"].x = torch.randn(5, 4), torch.randn(3, 2)
    data["a", "to", "b"].edge_index = graph(5, 3, 7)
    data["a", "to", "b"].edge_attr = torch.randn(7, 2)
    data["b", "to", "a"].edge_index = graph(3, 5, 6)
    data["b", "to", "a"].edge_attr = torch.randn(6, 5)
    model = to_hetero(Net(), data.metadata())
    out = model(data.x_dict, data.edge_index_dict, data.edge_attr_dict)
    assert out["a"].shape == (5, C) and out["b"].shape == (3, C)
    assert model.conv["a__to__b"].lin_edge_key.in_channels == 2
    assert model.conv["b__to__a"].lin_edge_key.in_channels == 5


# ---- return forms of return_attention_weights -----------------------------------------------
def test_edge_index_in_gives_edge_index_out():
    x = torch.randn(6, 4).double()
    ei = EdgeIndex(graph(6, 6, 15), sparse_size=(6, 6))
    out, (edges, weights) = make_conv()(x, ei, return_attention_weights=True)
    assert isinstance(edges, EdgeIndex) and edges.sparse_size() == (6, 6)
    _, att = make_conv()(x, ei.as_tensor(), return_attention=True)
    assert torch.equal(edges.as_tensor(), att.edge_index)  # the caller's edges, then the loops
    torch.testing.assert_close(weights, att.weights)
    # without added self-loops the caller's own EdgeIndex comes back, as TransformerConv does
    _, (edges, _) = make_conv(add_self_loops=False)(x, ei, return_attention_weights=True)
    assert edges is ei


@pytest.mark.parametrize("layout", ["coo", "csr", "csc"])
def test_sparse_in_gives_sparse_weights_out_like_gatconv(layout):
    x = torch.randn(6, 4).double()
    edge_index = torch.unique(_with_loops(None, 6, 4), dim=1)
    adj = to_torch_csc_tensor(edge_index, size=(6, 6)).t()  # PyG's adj_t: a CSR tensor
    adj = {"csr": adj, "coo": adj.to_sparse_coo(), "csc": adj.to_sparse_csc()}[layout]
    conv = make_conv()
    x.requires_grad_()
    out, (sparse, weights) = conv(x, adj, return_attention_weights=True)
    # GATConv's structure: same layout, [N, N, H], the caller's loops replaced by one per node
    gat_adj = adj.to_sparse_csr() if layout == "csc" else adj  # GATConv's loops need COO/CSR
    _, (gat_sparse, _) = GATConv(4, 5, HEADS).double()(x, gat_adj, return_attention_weights=True)
    assert sparse.layout == adj.layout and sparse.shape == (6, 6, HEADS)
    assert sparse._nnz() == gat_sparse._nnz() == weights.size(0)
    assert torch.equal(sparse.to_dense() != 0, gat_sparse.to_dense() != 0)
    # the values are the weights of the [2, E'] form, placed at (target, source)
    _, att = conv(x, edge_index, return_attention=True)
    src, dst = att.edge_index
    dense = torch.zeros(6, 6, HEADS).double().index_put((dst, src), att.weights, accumulate=True)
    torch.testing.assert_close(sparse.to_dense(), dense)
    torch.testing.assert_close(out, conv(x, edge_index))
    (grad,) = torch.autograd.grad(weights.square().sum(), x)  # they carry gradients
    assert grad.abs().sum() > 0


# ---- PyG's models built on the layer --------------------------------------------------------
class _Formula(torch.nn.Module):
    """The layer's formula (self-loops replaced, a dense softmax per node: the oracle) with
    ``conv``'s weights, called as PyG calls a conv."""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x, edge_index, **kwargs):
        conv, heads, dim = self.conv, self.conv.heads, self.conv.head_dim
        loops = torch.arange(x.size(0)).expand(2, -1)
        src, dst = torch.cat([remove_self_loops(edge_index)[0], loops], dim=1)
        q = conv.lin_query(x).view(-1, heads, dim) / dim**0.5
        k, v = conv.lin_key(x).view(-1, heads, dim), conv.lin_value(x).view(-1, heads, dim)
        logits = (q[dst] * k[src]).sum(-1)  # (E, H)
        out = torch.zeros_like(q)
        for i in range(x.size(0)):
            into = dst == i
            out[i] = (logits[into].softmax(0).unsqueeze(-1) * v[src[into]]).sum(0)
        return conv.lin_out(out.reshape(x.size(0), -1))


def test_gps_conv_runs_the_layer_as_its_local_message_passing():
    torch.manual_seed(0)
    conv = make_conv(in_channels=C)
    gps = GPSConv(C, conv, heads=3, norm=None).double().eval()
    oracle = copy.deepcopy(gps)
    oracle.conv = _Formula(conv)
    x, edge_index = torch.randn(9, C).double(), graph(9, 9, 30)
    batch = torch.tensor([0] * 4 + [1] * 5)
    torch.testing.assert_close(gps(x, edge_index, batch), oracle(x, edge_index, batch))


def test_basic_gnn_recipe_on_the_layer_chains_its_layers():
    torch.manual_seed(0)
    model = _AttentionGNN(-1, C, num_layers=2, out_channels=6).double()
    x, edge_index = torch.randn(8, 4).double(), graph(8, 8, 25)
    out = model(x, edge_index)
    h = _Formula(model.convs[0])(x, edge_index).relu()
    torch.testing.assert_close(out, _Formula(model.convs[1])(h, edge_index))


def test_sag_pooling_scores_nodes_with_the_layer():
    torch.manual_seed(0)
    pool = SAGPooling(4, ratio=0.5, GNN=MultiHeadAttentionConv).double()
    x, edge_index = torch.randn(8, 4).double(), graph(8, 8, 25)
    x_out, _, _, _, perm, score = pool(x, edge_index)
    want = torch.tanh(_Formula(pool.gnn)(x, edge_index).view(-1))
    torch.testing.assert_close(score, want[perm])
    assert set(perm.tolist()) == set(want.topk(4).indices.tolist())
    torch.testing.assert_close(x_out, x[perm] * score.unsqueeze(-1))


def test_gnn_explainer_trains_an_edge_mask_through_the_layer():
    from torch_geometric.explain import Explainer, GNNExplainer

    torch.manual_seed(0)
    model = _AttentionGNN(4, C, num_layers=2, out_channels=3)
    explainer = Explainer(
        model, GNNExplainer(epochs=5), explanation_type="model", edge_mask_type="object",
        model_config=dict(mode="multiclass_classification", task_level="node", return_type="raw"),
    )  # fmt: skip
    x, edge_index = torch.randn(8, 4), graph(8, 8, 25)
    explanation = explainer(x, edge_index, index=2)
    mask = explanation.edge_mask
    assert mask.shape == (25,) and torch.isfinite(mask).all()
    # only edges within two hops of node 2 can matter; the others keep a zero mask
    hop1 = edge_index[0, edge_index[1] == 2]
    near = torch.isin(edge_index[1], torch.cat([hop1, torch.tensor([2])]))
    assert (mask[~near] == 0).all() and (mask[near] > 0).any()


# ---- PyG's own TransformerConv test, adapted --------------------------------------------------
@pytest.mark.parametrize("edge_dim", [None, 8])
def test_pyg_transformer_conv_test_forms(edge_dim):
    """PyG 2.8's ``test/nn/conv/test_transformer_conv.py``, adapted: ``out_channels`` is the
    total width (``TransformerConv(8, 32, heads=2)`` is ``MultiHeadAttentionConv(8, 64, 2)``),
    TransformerConv's defaults spelled out (``root_weight=True``, no self-loops);
    ``concat=False`` has no equivalent (README, "Coming from PyG"); the TorchScript blocks
    (under PyG's FULL_TEST) are the documented exception: the refusal, then the trace it names.
    """
    x1, x2 = torch.randn(4, 8), torch.randn(2, 16)
    out_channels, heads = 64, 2
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])
    edge_attr = torch.randn(edge_index.size(1), edge_dim) if edge_dim else None
    adj1 = to_torch_csc_tensor(edge_index, size=(4, 4))
    kwargs = dict(beta=True, root_weight=True, add_self_loops=False, edge_dim=edge_dim)

    conv = MultiHeadAttentionConv(8, out_channels, heads, **kwargs)
    assert str(conv).startswith(f"MultiHeadAttentionConv(8, {out_channels}, heads={heads}")
    out = conv(x1, edge_index, edge_attr)
    assert out.size() == (4, out_channels)
    assert torch.allclose(conv(x1, adj1.t(), edge_attr), out, atol=1e-6)
    if WITH_TORCH_SPARSE:  # pragma: no cover - torch_sparse has no build for this torch
        adj2 = SparseTensor.from_edge_index(edge_index, edge_attr, sparse_sizes=(4, 4))
        assert torch.allclose(conv(x1, adj2.t()), out, atol=1e-6)

    class MyModule(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, x, edge_index, edge_attr=None):
            return self.conv(x, edge_index, edge_attr)

    with pytest.raises(RuntimeError, match="torch.jit.trace"):
        torch.jit.script(MyModule())
    edge_args = [] if edge_attr is None else [edge_attr]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.10+ deprecates jit
        jit = torch.jit.trace(MyModule(), (x1, edge_index, *edge_args), check_trace=False)
    assert torch.allclose(jit(x1, edge_index, *edge_args), out)

    # Test `return_attention_weights`.
    result = conv(x1, edge_index, edge_attr, return_attention_weights=True)
    assert torch.allclose(result[0], out)
    assert result[1][0].size() == (2, 4)
    assert result[1][1].size() == (4, 2)
    assert result[1][1].min() >= 0 and result[1][1].max() <= 1
    assert "_alpha" not in vars(conv)  # nothing kept on the module

    # Test bipartite message passing:
    adj1 = to_torch_csc_tensor(edge_index, size=(4, 2))
    conv = MultiHeadAttentionConv((8, 16), out_channels, heads, **kwargs)
    assert str(conv).startswith(f"MultiHeadAttentionConv((8, 16), {out_channels}, heads={heads}")
    out = conv((x1, x2), edge_index, edge_attr)
    assert out.size() == (2, out_channels)
    assert torch.allclose(conv((x1, x2), adj1.t(), edge_attr), out, atol=1e-6)
