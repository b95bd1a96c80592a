"""Bad input fails before any compute with an error that names the argument."""

from __future__ import annotations

import pytest
import torch

from graphattn import FullGraph, MultiHeadAttentionConv
from graphattn.patterns import Pattern


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"heads": 0}, ValueError, "`heads` must be > 0"),
        ({"heads": -2}, ValueError, "`heads` must be > 0"),
        ({"heads": 5}, ValueError, "`heads` \\(5\\) must divide `out_channels` \\(12\\)"),
        ({"heads": 2.0}, TypeError, "`heads` must be an int"),
        ({"in_channels": 0}, ValueError, "`in_channels` must be > 0"),
        ({"out_channels": "12"}, TypeError, "`out_channels` must be an int"),
        ({"dropout": 1.0}, ValueError, "`dropout` must be in \\[0, 1\\)"),
        ({"dropout": None}, TypeError, "`dropout` must be a float"),
        ({"edge_dim": 0}, ValueError, "`edge_dim` must be > 0"),
        ({"num_relations": 0}, ValueError, "`num_relations` must be > 0"),
        ({"engine": "flash"}, ValueError, "unknown `engine` 'flash'"),
        ({"engine": 3}, TypeError, "`engine` must be a str"),
    ],
)
def test_constructor_errors(kwargs, error, match):
    args = {"in_channels": 4, "out_channels": 12, "heads": 3, **kwargs}
    with pytest.raises(error, match=match):
        MultiHeadAttentionConv(**args)


EI = torch.tensor([[0, 1, 2], [1, 2, 0]])


@pytest.mark.parametrize(
    ("x", "edge_index", "error", "match"),
    [
        ([[1.0] * 4], EI, TypeError, "`x` must be a torch.Tensor or an \\(x_src, x_dst\\) pair"),
        (torch.ones(3, 4, dtype=torch.long), EI, TypeError, "`x` must be a floating-point"),
        (torch.randn(3, 4, 1), EI, ValueError, "`x` must have shape \\[num_nodes, 4\\]"),
        (torch.randn(3, 5), EI, ValueError, "shape \\[num_nodes, 4\\], got \\[3, 5\\]"),
        (torch.randn(3, 4), EI.float(), TypeError, "`edge_index` must be an integer tensor"),
        (torch.randn(3, 4), EI.bool(), TypeError, "`edge_index` must be an integer tensor"),
        (torch.randn(3, 4), EI.t(), ValueError, "`edge_index` must have shape \\[2, E\\]"),
        (torch.randn(3, 4), EI[0], ValueError, "`edge_index` must have shape \\[2, E\\]"),
        (torch.randn(3, 4), EI - 1, ValueError, "`edge_index` has a negative node index"),
        (torch.randn(2, 4), EI, ValueError, "`edge_index` refers to node 2 but `x` has only 2"),
        (torch.randn(3, 4), EI.tolist(), TypeError, "`edge_index` must be an integer \\[2, E\\]"),
        (torch.randn(3, 4), FullGraph(4), ValueError, "pattern covers 4 nodes but `x` has 3"),
    ],
)
def test_forward_errors(x, edge_index, error, match):
    conv = MultiHeadAttentionConv(4, 12, heads=3)
    with pytest.raises(error, match=match):
        conv(x, edge_index)


def test_edge_attr_errors():
    x = torch.randn(3, 4)
    plain = MultiHeadAttentionConv(4, 12, heads=3)
    with pytest.raises(ValueError, match="`edge_attr` given, but the layer was built without"):
        plain(x, EI, edge_attr=torch.randn(3, 2))
    conv = MultiHeadAttentionConv(4, 12, heads=3, edge_dim=2)
    with pytest.raises(ValueError, match="built with edge_dim=2; pass `edge_attr`"):
        conv(x, EI)
    with pytest.raises(ValueError, match="`edge_attr` must have shape \\[3, 2\\]"):
        conv(x, EI, edge_attr=torch.randn(4, 2))
    with pytest.raises(ValueError, match="`edge_attr` must have shape \\[3, 2\\]"):
        conv(x, EI, edge_attr=torch.randn(3))
    with pytest.raises(TypeError, match="`edge_attr` must be a floating-point"):
        conv(x, EI, edge_attr=torch.ones(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="`edge_attr` must have shape \\[9, 2\\]"):
        conv(x, FullGraph(3), edge_attr=torch.randn(3, 2))


def test_edge_type_errors():
    x = torch.randn(3, 4)
    plain = MultiHeadAttentionConv(4, 12, heads=3)
    with pytest.raises(ValueError, match="`edge_type` given, but the layer was built without"):
        plain(x, EI, edge_type=torch.zeros(3, dtype=torch.long))
    conv = MultiHeadAttentionConv(4, 12, heads=3, num_relations=2)
    with pytest.raises(ValueError, match="built with num_relations=2; pass `edge_type`"):
        conv(x, EI)
    with pytest.raises(TypeError, match="`edge_type` must be an integer tensor"):
        conv(x, EI, edge_type=torch.zeros(3))
    with pytest.raises(ValueError, match="`edge_type` must have shape \\[3\\]"):
        conv(x, EI, edge_type=torch.zeros(3, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="`edge_type` values must be in \\[0, 2\\), got range"):
        conv(x, EI, edge_type=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="`edge_type` values must be in \\[0, 2\\), got range"):
        conv(x, EI, edge_type=torch.tensor([0, -1, 1]))


def test_forced_engine_that_cannot_serve():
    conv = MultiHeadAttentionConv(4, 12, heads=3, engine="dense")
    with pytest.raises(ValueError, match="`engine`='dense' cannot run this call: it needs a Full"):
        conv(torch.randn(3, 4), EI)
    conv = MultiHeadAttentionConv(4, 12, heads=3, edge_dim=2, engine="dense")
    with pytest.raises(ValueError, match="does not take edge features"):
        conv(torch.randn(3, 4), FullGraph(3), edge_attr=torch.randn(9, 2))


def test_checks_run_before_compute(monkeypatch):
    conv = MultiHeadAttentionConv(4, 12, heads=3)
    calls = []
    monkeypatch.setattr(conv.lin_query, "forward", lambda x: calls.append(x))
    with pytest.raises(ValueError):
        conv(torch.randn(2, 4), EI)
    assert calls == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "give `num_nodes` or `ptr`"),
        ({"num_nodes": -1}, ValueError, "`num_nodes` must be >= 0"),
        ({"num_nodes": 2.5}, TypeError, "`num_nodes` must be an int"),
        ({"ptr": [1, 3]}, ValueError, "`ptr` must start at 0"),
        ({"ptr": [0, 3, 2]}, ValueError, "`ptr` must be non-decreasing"),
        ({"ptr": torch.tensor([0.0, 2.0])}, TypeError, "`ptr` must be an integer tensor"),
        ({"ptr": torch.zeros(2, 2, dtype=torch.long)}, ValueError, "`ptr` must be 1-D"),
        ({"num_nodes": 4, "ptr": [0, 3]}, ValueError, "`ptr\\[-1\\]` \\(3\\) must equal"),
    ],
)
def test_pattern_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        FullGraph(**kwargs)
    with pytest.raises(ValueError, match="`sizes`"):
        FullGraph.from_sizes([2, -1])


def test_pattern_basics():
    p = FullGraph.from_sizes([2, 0, 3])
    assert isinstance(p, Pattern)
    assert repr(p) == "FullGraph(num_nodes=5, num_graphs=3)"
    assert p.sizes.tolist() == [2, 0, 3] and p.num_edges == 13
    assert p.batch().tolist() == [0, 0, 2, 2, 2]
    assert p == FullGraph(ptr=[0, 2, 2, 5]) and p != FullGraph(5)
    brute = sorted(
        (j, i) for lo, hi in ((0, 2), (2, 5)) for i in range(lo, hi) for j in range(lo, hi)
    )
    assert sorted(map(tuple, p.edge_index().t().tolist())) == brute


def test_device_mismatch_on_meta():
    """The device check, exercised without a GPU through the meta device."""
    conv = MultiHeadAttentionConv(4, 12, heads=3)
    with pytest.raises(ValueError, match="`edge_index` is on meta but `x` is on cpu"):
        conv(torch.randn(3, 4), torch.empty(2, 3, dtype=torch.long, device="meta"))
    conv = MultiHeadAttentionConv(4, 12, heads=3, edge_dim=2)
    with pytest.raises(ValueError, match="`edge_attr` is on meta"):
        conv(torch.randn(3, 4), EI, edge_attr=torch.empty(3, 2, device="meta"))
