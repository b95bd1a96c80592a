"""attention_entropy, relation_shares and attention_distance on inputs with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from graphattn import AttentionOutput, FullGraph, GridGraph, MultiHeadAttentionConv, WindowGraph
from graphattn.analysis import attention_distance, attention_entropy, relation_shares


def _uniform(edge_index: torch.Tensor, num_nodes: int, heads: int) -> torch.Tensor:
    deg = torch.bincount(edge_index[1], minlength=num_nodes).float()
    return (1.0 / deg[edge_index[1]]).unsqueeze(1).expand(-1, heads).contiguous()


def _random_graph(num_nodes=7, num_edges=23, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_nodes, (2, num_edges), generator=g)


def test_uniform_attention_has_entropy_log_degree():
    num_nodes = 9  # some nodes get no edge, some duplicate edges
    edge_index = _random_graph(num_nodes)
    weights = _uniform(edge_index, num_nodes, heads=3)
    per_node = attention_entropy((edge_index, weights), num_nodes, per_node=True)
    deg = torch.bincount(edge_index[1], minlength=num_nodes).double()
    expected = deg.log().float().unsqueeze(1).expand(-1, 3)
    has_edges = deg > 0
    torch.testing.assert_close(per_node[has_edges], expected[has_edges])
    assert per_node[~has_edges].isnan().all() and (~has_edges).any()
    mean = attention_entropy(AttentionOutput(edge_index, weights), num_nodes)
    torch.testing.assert_close(mean, expected[has_edges].mean(0))
    norm = attention_entropy((edge_index, weights), num_nodes, normalize=True, per_node=True)
    torch.testing.assert_close(norm[deg > 1], torch.ones(int((deg > 1).sum()), 3))
    assert norm[deg == 1].isnan().all()


def test_one_hot_attention_has_zero_entropy():
    pattern = FullGraph.from_sizes([4, 6])
    edge_index = pattern.edge_index()
    counts = torch.bincount(edge_index[1])  # edges are sorted by target
    first = torch.zeros(edge_index.size(1))  # all weight on the first in-edge of each target
    first[counts.cumsum(0) - counts] = 1.0
    weights = torch.stack([first, _uniform(edge_index, 10, 1)[:, 0]], dim=1)
    ent = attention_entropy((edge_index, weights))
    assert float(ent[0]) == 0.0
    torch.testing.assert_close(ent[1], torch.tensor((4 * math.log(4) + 6 * math.log(6)) / 10))


def test_entropy_of_a_layer_with_zero_queries_is_log_n_on_every_engine():
    torch.manual_seed(0)
    conv = MultiHeadAttentionConv(5, 12, heads=3)
    with torch.no_grad():
        conv.lin_query.weight.zero_()
        conv.lin_query.bias.zero_()  # every logit 0: uniform attention
    x = torch.randn(11, 5)
    for graph in (FullGraph(11), WindowGraph(11, radius=2)):
        _, att = conv(x, graph, return_attention=True)
        deg = torch.bincount(att.edge_index[1], minlength=11).float()
        torch.testing.assert_close(
            attention_entropy(att, 11, per_node=True), deg.log().unsqueeze(1).expand(-1, 3)
        )


def test_relation_shares_known_answer_and_self_loops():
    # targets 0 and 1; three typed edges, then the three self-loops a layer appends
    edge_index = torch.tensor([[1, 2, 0, 0, 1, 2], [0, 0, 1, 0, 1, 2]])
    weights = torch.tensor([[0.5, 1.0], [0.3, 0.0], [0.4, 0.0], [0.2, 0.0], [0.6, 1.0], [1.0, 1.0]])
    edge_type = torch.tensor([0, 1, 1])
    shares = relation_shares((edge_index, weights), edge_type, 3)
    torch.testing.assert_close(shares, torch.tensor([[0.5 / 1.2, 0.7 / 1.2, 0.0], [1.0, 0, 0]]))
    separate = relation_shares((edge_index, weights), edge_type, 3, self_loops="separate")
    torch.testing.assert_close(separate[0], torch.tensor([0.5, 0.7, 0.0, 1.8]) / 3.0)
    torch.testing.assert_close(separate.sum(1), torch.ones(2))


def test_relation_shares_of_a_layer_follow_edge_counts_under_uniform_attention():
    torch.manual_seed(1)
    edge_index = _random_graph(8, 30, seed=3)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    edge_type = torch.randint(0, 3, (edge_index.size(1),))
    conv = MultiHeadAttentionConv(4, 6, heads=2, num_relations=3)
    with torch.no_grad():
        conv.lin_query.weight.zero_()
        conv.lin_query.bias.zero_()
    _, att = conv(torch.randn(8, 4), edge_index, edge_type=edge_type, return_attention=True)
    assert att.weights.size(0) == edge_index.size(1) + 8  # self-loops appended
    deg = torch.bincount(att.edge_index[1], minlength=8).float()
    w = 1.0 / deg[edge_index[1]]  # uniform weights of the typed edges
    mass = torch.zeros(3).index_add_(0, edge_type, w)
    torch.testing.assert_close(
        relation_shares(att, edge_type, 3), (mass / mass.sum()).expand(2, 3), atol=1e-6, rtol=0
    )
    # input self-loops are removed by the layer: edge_type no longer lines up
    looped = torch.cat([torch.tensor([[0], [0]]), edge_index], dim=1)
    _, att = conv(
        torch.randn(8, 4), looped, edge_type=torch.cat([edge_type[:1], edge_type]),
        return_attention=True,
    )  # fmt: skip
    with pytest.raises(ValueError, match="self-loop"):
        relation_shares(att, torch.cat([edge_type[:1], edge_type]), 3)


def test_attention_distance_known_answers():
    g = WindowGraph.from_sizes([7, 5], radius=2)
    edge_index = g.edge_index()
    offset = (edge_index[0] - edge_index[1]).abs().float()
    self_only = (offset == 0).float()
    uniform = _uniform(edge_index, 12, 1)[:, 0]
    dist = attention_distance((edge_index, torch.stack([self_only, uniform], 1)), g, per_node=True)
    assert (dist[:, 0] == 0).all()
    expected = torch.zeros(12).index_add_(0, edge_index[1], uniform * offset)
    torch.testing.assert_close(dist[:, 1], expected)
    # positions as a tensor give the same (batch offsets cancel within a graph)
    torch.testing.assert_close(
        attention_distance((edge_index, uniform.unsqueeze(1)), torch.arange(12)),
        expected.mean().unsqueeze(0),
    )
    # grid: Chebyshev distance; all weight on a diagonal neighbour spans 1, not 2 or sqrt(2)
    grid = GridGraph(3, 4, radius=1)
    ei = grid.edge_index()
    rows, cols = ei // 4, ei % 4
    diagonal = ((rows[0] - rows[1]).abs() == 1) & ((cols[0] - cols[1]).abs() == 1)
    w = diagonal.float() / torch.bincount(ei[1][diagonal], minlength=12).float()[ei[1]]
    per_node = attention_distance((ei, w.unsqueeze(1)), grid, per_node=True)
    torch.testing.assert_close(per_node, torch.ones(12, 1))


def test_bad_input_names_the_argument():
    edge_index = torch.tensor([[0, 1], [1, 0]])
    weights = torch.ones(2, 1)
    with pytest.raises(TypeError, match="`att`"):
        attention_entropy(weights)
    with pytest.raises(ValueError, match="`att.weights`"):
        attention_entropy((edge_index, torch.ones(3, 1)))
    with pytest.raises(TypeError, match="`att.edge_index`"):
        attention_entropy((edge_index.float(), weights))
    with pytest.raises(ValueError, match="`num_nodes`"):
        attention_entropy((edge_index, weights), 1)
    with pytest.raises(ValueError, match="`edge_type`"):
        relation_shares((edge_index, weights), torch.tensor([0, 5]), 2)
    with pytest.raises(ValueError, match="`edge_type`"):
        relation_shares((edge_index, weights), torch.tensor([0, 1, 1]), 2)
    with pytest.raises(ValueError, match="`self_loops`"):
        relation_shares((edge_index, weights), torch.tensor([0, 1]), 2, self_loops="drop")
    with pytest.raises(ValueError, match="`positions`"):
        attention_distance((edge_index, weights), torch.arange(1))
    with pytest.raises(TypeError, match="`positions`"):
        attention_distance((edge_index, weights), [0, 1])


def test_nan_weights_show_in_the_mean_instead_of_being_dropped():
    """attention_entropy and attention_distance keep NaN nodes in their mean (it is NaN);
    only nodes where the measure is undefined (no in-edges) are left out."""
    edge_index = torch.tensor([[0, 1, 0, 1], [0, 0, 1, 1]])  # nodes 0 and 1 have 2 in-edges
    weights = torch.tensor([[0.5], [0.5], [float("nan")], [float("nan")]])
    assert math.isnan(float(attention_entropy((edge_index, weights))))
    assert math.isnan(float(attention_distance((edge_index, weights), torch.arange(3.0))))
    isolated = torch.tensor([[0, 1], [0, 0]])  # node 1 has no in-edge: left out, not NaN
    finite = torch.tensor([[0.5], [0.5]])
    assert float(attention_entropy((isolated, finite), num_nodes=2)) == pytest.approx(math.log(2))


def test_attention_maps_are_the_dense_blocks_of_a_layers_weights():
    """On full attention the maps are each graph's [H, L, L] block (query rows); on a window
    the pairs without an edge hold 0; rows sum to 1 either way."""
    from graphattn.analysis import attention_maps

    torch.manual_seed(0)
    length, graphs, heads = 5, 3, 2
    conv = MultiHeadAttentionConv(4, 8, heads)
    x = torch.randn(graphs * length, 4)
    full = FullGraph.from_sizes([length] * graphs)
    att = conv(x, full, return_attention_weights=True)[1]
    maps = attention_maps(att, length)
    assert maps.shape == (graphs, heads, length, length)
    dense = torch.zeros(graphs * length, graphs * length, heads)
    dense[att.edge_index[1], att.edge_index[0]] = att.weights  # (target, source, H)
    for b in range(graphs):
        block = dense[b * length : (b + 1) * length, b * length : (b + 1) * length]
        torch.testing.assert_close(maps[b], block.permute(2, 0, 1), rtol=0, atol=0)
    window = WindowGraph.from_sizes([length] * graphs, radius=1)
    maps = attention_maps(conv(x, window, return_attention_weights=True)[1], length)
    i, j = torch.meshgrid(torch.arange(length), torch.arange(length), indexing="ij")
    assert (maps[..., (i - j).abs() > 1] == 0).all() and (maps[..., (i - j).abs() <= 1] > 0).all()
    torch.testing.assert_close(maps.sum(-1), torch.ones(graphs, heads, length))


def test_attention_maps_refuse_a_wrong_graph_size():
    from graphattn.analysis import attention_maps

    edge_index = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    weights = torch.ones(4, 1)
    assert attention_maps((edge_index, weights), 2).shape == (2, 1, 2, 2)
    with pytest.raises(ValueError, match="graph_size"):
        attention_maps((edge_index, weights), 3)  # 4 nodes are not graphs of 3
    with pytest.raises(ValueError, match="joins two graphs"):
        attention_maps((torch.tensor([[0, 3], [2, 1]]), torch.ones(2, 1)), 2)
    with pytest.raises((TypeError, ValueError), match="graph_size"):
        attention_maps((edge_index, weights), 0)
