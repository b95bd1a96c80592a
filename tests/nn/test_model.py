"""GraphTransformer: end-to-end training, batching and pooling, positions, state_dict, errors."""

from __future__ import annotations

import pytest
import torch

from graphattn import FullGraph
from graphattn.nn import GraphTransformer, GraphTransformerConfig, GraphTransformerOutput

SIZES = [3, 8, 5]  # pairwise distinct graph sizes


def _config(**kwargs) -> GraphTransformerConfig:
    base = dict(in_channels=5, channels=12, heads=3, num_layers=2, out_channels=2)
    base.update(kwargs)
    return GraphTransformerConfig(**base)


def _mean_task(generator: torch.Generator, num_graphs: int = 16):
    """Each node must output the mean of feature 0 over its own graph (needs attention);
    each graph must output the maximum of feature 1 over its nodes (needs pooling)."""
    sizes = torch.randint(3, 9, (num_graphs,), generator=generator).tolist()
    pattern = FullGraph.from_sizes(sizes)
    x = torch.randn(pattern.num_nodes, 3, generator=generator)
    batch = pattern.batch()
    counts = torch.bincount(batch).float()
    graph_mean = torch.zeros(num_graphs).index_add_(0, batch, x[:, 0]) / counts
    graph_max = torch.full((num_graphs,), -1e9).scatter_reduce(0, batch, x[:, 1], "amax")
    return x, pattern, graph_mean[batch].unsqueeze(1), graph_max.unsqueeze(1)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_trains_end_to_end(norm):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    config = GraphTransformerConfig(
        in_channels=3,
        channels=32,
        heads=4,
        num_layers=2,
        out_channels=1,
        norm=norm,
        pool="max",
    )
    model = GraphTransformer(config)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    data = [_mean_task(gen) for _ in range(4)]
    held_out = _mean_task(torch.Generator().manual_seed(99))

    def loss_of(x, pattern, node_y, graph_y):
        out = model(x, pattern)
        return torch.nn.functional.mse_loss(out.node, node_y) + torch.nn.functional.mse_loss(
            out.graph, graph_y
        )

    with torch.no_grad():
        before = loss_of(*held_out).item()
    for step in range(150):
        loss = loss_of(*data[step % len(data)])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = loss_of(*held_out).item()
    print(f"{norm}: held-out loss {before:.3f} -> {after:.3f}")
    assert after < 0.25 * before, (before, after)


def test_output_is_named_tuple_with_shapes():
    model = GraphTransformer(_config())
    pattern = FullGraph.from_sizes(SIZES)
    out = model(torch.randn(16, 5), pattern)
    assert isinstance(out, GraphTransformerOutput)
    assert out.node.shape == (16, 2) and out.graph.shape == (3, 2)
    node, graph, attention = out
    assert attention is None
    assert node is out.node and graph is out.graph


@pytest.mark.parametrize("pool", ["mean", "sum", "max"])
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_batch_equals_graphs_run_one_by_one(pool, norm):
    """Pooling is per graph: a batch gives what each graph gives alone."""
    torch.manual_seed(1)
    model = GraphTransformer(_config(pool=pool, norm=norm, positional="learned", max_len=16))
    model.eval()
    pattern = FullGraph.from_sizes(SIZES)
    x = torch.randn(pattern.num_nodes, 5)
    out = model(x, pattern)
    bounds = zip(pattern.ptr[:-1].tolist(), pattern.ptr[1:].tolist(), strict=True)
    for g, (start, end) in enumerate(bounds):
        alone = model(x[start:end], FullGraph(end - start))
        assert alone.graph.shape == (1, 2)
        torch.testing.assert_close(out.node[start:end], alone.node, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(out.graph[g], alone.graph[0], atol=1e-5, rtol=1e-4)
    # the graph outputs really differ between graphs
    assert not torch.allclose(out.graph[0], out.graph[1])


def test_batch_vector_with_edge_index_equals_pattern():
    torch.manual_seed(2)
    model = GraphTransformer(_config(positional="sinusoidal")).eval()
    pattern = FullGraph.from_sizes(SIZES)
    x = torch.randn(pattern.num_nodes, 5)
    by_pattern = model(x, pattern)
    by_edges = model(x, pattern.edge_index(), batch=pattern.batch())
    torch.testing.assert_close(by_edges.node, by_pattern.node, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(by_edges.graph, by_pattern.graph, atol=1e-5, rtol=1e-4)
    # without a batch vector an edge list is one graph: B = 1, pooled over all nodes
    single = model(x, pattern.edge_index())
    assert single.graph.shape == (1, 2)


def test_empty_graph_in_batch_pools_to_bias():
    model = GraphTransformer(_config(pool="sum")).eval()
    pattern = FullGraph.from_sizes([4, 0, 3])
    out = model(torch.randn(7, 5), pattern)
    assert out.graph.shape == (3, 2)
    torch.testing.assert_close(out.graph[1], model.head_graph.bias)


def test_engines_agree_inside_the_model():
    torch.manual_seed(3)
    dense = GraphTransformer(_config(engine="dense", num_layers=3)).eval()
    scatter = GraphTransformer(_config(engine="scatter", num_layers=3)).eval()
    scatter.load_state_dict(dense.state_dict())
    pattern = FullGraph.from_sizes(SIZES)
    x = torch.randn(pattern.num_nodes, 5)
    a, b = dense(x, pattern), scatter(x, pattern)
    torch.testing.assert_close(a.node, b.node, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a.graph, b.graph, atol=1e-5, rtol=1e-4)


def test_edge_features_and_relations_reach_every_block():
    torch.manual_seed(4)
    model = GraphTransformer(_config(edge_dim=3, num_relations=4)).eval()
    edge_index = FullGraph.from_sizes(SIZES).edge_index()
    e = edge_index.size(1)
    x = torch.randn(16, 5)
    edge_attr, edge_type = torch.randn(e, 3), torch.randint(0, 4, (e,))
    out = model(x, edge_index, edge_attr, edge_type)
    assert out.node.shape == (16, 2)
    assert not torch.allclose(model(x, edge_index, edge_attr * 2, edge_type).node, out.node)
    assert not torch.allclose(model(x, edge_index, edge_attr, (edge_type + 1) % 4).node, out.node)
    assert all(b.attn.edge_dim == 3 and b.attn.num_relations == 4 for b in model.blocks)


def test_positions_default_to_index_within_graph():
    torch.manual_seed(5)
    model = GraphTransformer(_config(positional="learned", max_len=10)).eval()
    pattern = FullGraph.from_sizes(SIZES)
    x = torch.randn(16, 5)
    explicit = torch.cat([torch.arange(n) for n in SIZES])
    torch.testing.assert_close(model(x, pattern).node, model(x, pattern, pos=explicit).node)
    assert not torch.allclose(model(x, pattern).node, model(x, pattern, pos=explicit + 1).node)


def test_grid_model_runs_on_another_grid_size():
    torch.manual_seed(6)
    model = GraphTransformer(_config(positional="grid", grid_size=(3, 4))).eval()
    out = model(torch.randn(24, 5), FullGraph.from_sizes([12, 12]))
    assert out.graph.shape == (2, 2)
    bigger = model(torch.randn(30, 5), FullGraph(30), grid_size=(5, 6))
    assert bigger.node.shape == (30, 2) and torch.isfinite(bigger.node).all()
    rows, cols = torch.meshgrid(torch.arange(3), torch.arange(4), indexing="ij")
    pos = torch.stack([rows.flatten(), cols.flatten()], 1)
    x = torch.randn(12, 5)
    torch.testing.assert_close(model(x, FullGraph(12)).node, model(x, FullGraph(12), pos=pos).node)
    with pytest.raises(ValueError, match="grid"):
        model(torch.randn(13, 5), FullGraph(13))


@pytest.mark.parametrize("positional", [None, "learned", "grid"])
@pytest.mark.parametrize("checkpoint", [False, True])
def test_state_dict_round_trip(positional, checkpoint):
    torch.manual_seed(7)
    kwargs = dict(positional=positional, checkpoint=checkpoint)
    if positional == "grid":
        kwargs["grid_size"] = (4, 4)
    model = GraphTransformer(_config(**kwargs))
    with torch.no_grad():  # move away from the init so a fresh model cannot match by chance
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    copy = GraphTransformer(_config(**kwargs))
    copy.load_state_dict(model.state_dict())
    pattern = FullGraph.from_sizes([16, 16])
    x = torch.randn(32, 5)
    a, b = model.eval()(x, pattern), copy.eval()(x, pattern)
    torch.testing.assert_close(a.node, b.node, atol=0, rtol=0)
    torch.testing.assert_close(a.graph, b.graph, atol=0, rtol=0)


def test_checkpointed_model_has_same_gradients():
    torch.manual_seed(8)
    plain = GraphTransformer(_config(num_layers=3, dropout=0.1))
    ckpt = GraphTransformer(_config(num_layers=3, dropout=0.1, checkpoint=True))
    ckpt.load_state_dict(plain.state_dict())
    pattern = FullGraph.from_sizes(SIZES)
    x = torch.randn(16, 5)
    grads = []
    for model in (plain, ckpt):
        torch.manual_seed(0)
        out = model(x, pattern)
        (out.node.square().sum() + out.graph.sum()).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for ga, gb in zip(*grads, strict=True):
        torch.testing.assert_close(gb, ga, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(in_channels=0), ValueError, "in_channels"),
        (dict(channels=12, heads=5), ValueError, "heads"),
        (dict(num_layers=1.5), TypeError, "num_layers"),
        (dict(norm="sandwich"), ValueError, "norm"),
        (dict(ffn_ratio=-1), ValueError, "ffn_ratio"),
        (dict(dropout=1.5), ValueError, "dropout"),
        (dict(checkpoint="yes"), TypeError, "checkpoint"),
        (dict(engine="warp"), ValueError, "engine"),
        (dict(edge_dim=0), ValueError, "edge_dim"),
        (dict(positional="rotary"), ValueError, "positional"),
        (dict(positional="grid"), ValueError, "grid_size"),
        (dict(grid_size=(2, 2)), ValueError, "grid_size"),
        (dict(positional="grid", grid_size=(2, -2)), ValueError, "grid_size"),
        (dict(pool="median"), ValueError, "pool"),
    ],
)
def test_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        _config(**kwargs)


def test_forward_errors():
    model = GraphTransformer(_config())
    pattern = FullGraph(4)
    with pytest.raises(TypeError, match="config"):
        GraphTransformer({"in_channels": 5})
    with pytest.raises(ValueError, match="`x`"):
        model(torch.randn(4, 6), pattern)
    with pytest.raises(TypeError, match="`x`"):
        model(torch.ones(4, 5, dtype=torch.long), pattern)
    with pytest.raises(ValueError, match="pattern has 4 nodes"):
        model(torch.randn(5, 5), pattern)
    with pytest.raises(ValueError, match="`batch`"):
        model(torch.randn(4, 5), pattern.edge_index(), batch=torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="`batch`"):
        model(torch.randn(4, 5), pattern.edge_index(), batch=torch.zeros(4))
    with pytest.raises(ValueError, match="`batch`"):
        model(torch.randn(4, 5), pattern, batch=torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="`pos`"):
        model(torch.randn(4, 5), pattern, pos=torch.arange(4))
    with pytest.raises(ValueError, match="grid_size"):
        model(torch.randn(4, 5), pattern, grid_size=(2, 2))
    learned = GraphTransformer(_config(positional="learned", max_len=3))
    with pytest.raises(ValueError, match="max_len"):
        learned(torch.randn(4, 5), pattern)
