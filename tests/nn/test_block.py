"""GraphTransformerBlock: Pre-/Post-LN order, parity with torch, checkpointing, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graphattn import FullGraph
from graphattn.nn import GraphTransformerBlock

from ..conftest import CATALOGUE

CHANNELS = 12
HEADS = 3


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("case", CATALOGUE, ids=[c.name for c in CATALOGUE])
def test_shapes_on_catalogue(norm, case):
    block = GraphTransformerBlock(CHANNELS, HEADS, norm=norm)
    x = torch.randn(case.num_nodes, CHANNELS)
    out = block(x, case.edge_index)
    assert out.shape == (case.num_nodes, CHANNELS)
    assert torch.isfinite(out).all()
    if case.pattern is not None:
        torch.testing.assert_close(block(x, case.pattern), out, atol=1e-5, rtol=1e-5)


def _zero_branches(block: GraphTransformerBlock) -> None:
    with torch.no_grad():
        for lin in (block.attn.lin_out, block.mlp.lin2):
            lin.weight.zero_()
            lin.bias.zero_()


def test_pre_ln_with_silent_branches_is_identity():
    block = GraphTransformerBlock(CHANNELS, HEADS, norm="pre")
    _zero_branches(block)
    x = torch.randn(9, CHANNELS) * 3 + 1
    torch.testing.assert_close(block(x, FullGraph(9)), x)


def test_post_ln_with_silent_branches_is_layer_norm():
    block = GraphTransformerBlock(CHANNELS, HEADS, norm="post")
    _zero_branches(block)
    x = torch.randn(9, CHANNELS) * 3 + 1
    want = nn.functional.layer_norm(x, (CHANNELS,))  # LN2(LN1(x)) with unit affine
    torch.testing.assert_close(block(x, FullGraph(9)), want, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(block(x, FullGraph(9)), x)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_matches_torch_transformer_encoder_layer(norm):
    """On a complete graph the block is nn.TransformerEncoderLayer (GELU, no dropout)."""
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(
        CHANNELS,
        HEADS,
        dim_feedforward=4 * CHANNELS,
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=norm == "pre",
    ).eval()
    block = GraphTransformerBlock(CHANNELS, HEADS, norm=norm, engine="scatter").eval()
    with torch.no_grad():
        conv = type(block.attn).from_torch(ref.self_attn, engine="scatter")
        block.attn.load_state_dict(conv.state_dict())
        for mine, theirs in (
            (block.mlp.lin1, ref.linear1),
            (block.mlp.lin2, ref.linear2),
            (block.norm1, ref.norm1),
            (block.norm2, ref.norm2),
        ):
            mine.load_state_dict(theirs.state_dict())
        for p in (block.norm1.weight, block.norm2.weight, block.norm1.bias):
            p.add_(torch.randn_like(p) * 0.1)  # non-trivial affine, copied to both
        ref.norm1.load_state_dict(block.norm1.state_dict())
        ref.norm2.load_state_dict(block.norm2.state_dict())
    x = torch.randn(1, 10, CHANNELS)
    want = ref(x)[0]
    got = block(x[0], FullGraph(10))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def _run(block, x, graph, seed, **kwargs):
    torch.manual_seed(seed)
    x = x.clone().requires_grad_()
    out = block(x, graph, **kwargs)
    grad_out = torch.linspace(-1, 1, out.numel()).view_as(out)
    grads = torch.autograd.grad(out, [x, *block.parameters()], grad_out, allow_unused=True)
    return out.detach(), grads


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("engine", ["scatter", "dense"])
def test_checkpoint_gives_same_outputs_and_gradients(norm, engine):
    """With dropout in training mode: the recomputation must replay the same masks."""
    torch.manual_seed(1)
    plain = GraphTransformerBlock(CHANNELS, HEADS, norm=norm, dropout=0.2, engine=engine)
    ckpt = GraphTransformerBlock(
        CHANNELS, HEADS, norm=norm, dropout=0.2, engine=engine, checkpoint=True
    )
    ckpt.load_state_dict(plain.state_dict())
    graph = FullGraph.from_sizes([4, 7])
    x = torch.randn(11, CHANNELS)
    out_a, grads_a = _run(plain.train(), x, graph, seed=5)
    out_b, grads_b = _run(ckpt.train(), x, graph, seed=5)
    torch.testing.assert_close(out_b, out_a, atol=0, rtol=0)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        assert (ga is None) == (gb is None)
        if ga is not None:
            torch.testing.assert_close(gb, ga, atol=1e-6, rtol=1e-5)
    # a different seed draws other dropout masks: the comparison above is not vacuous
    out_c, _ = _run(plain.train(), x, graph, seed=6)
    assert not torch.allclose(out_c, out_a)


def test_checkpoint_with_edge_features_and_relations():
    torch.manual_seed(2)
    kwargs = dict(edge_dim=4, num_relations=3, engine="scatter")
    plain = GraphTransformerBlock(CHANNELS, HEADS, **kwargs)
    ckpt = GraphTransformerBlock(CHANNELS, HEADS, checkpoint=True, **kwargs)
    ckpt.load_state_dict(plain.state_dict())
    edge_index = CATALOGUE[7].edge_index  # "random"
    assert CATALOGUE[7].name == "random"
    e = edge_index.size(1)
    extra = dict(edge_attr=torch.randn(e, 4), edge_type=torch.randint(0, 3, (e,)))
    x = torch.randn(CATALOGUE[7].num_nodes, CHANNELS)
    out_a, grads_a = _run(plain, x, edge_index, 0, **extra)
    out_b, grads_b = _run(ckpt, x, edge_index, 0, **extra)
    torch.testing.assert_close(out_b, out_a)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(gb, ga)


def test_checkpoint_keeps_fewer_activations():
    torch.manual_seed(3)
    plain = GraphTransformerBlock(32, 4, engine="dense")
    ckpt = GraphTransformerBlock(32, 4, engine="dense", checkpoint=True)
    x = torch.randn(64, 32, requires_grad=True)

    # What the forward keeps for backward (the recomputation's saves happen in backward).
    def forward_saved(block):
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = block(x, FullGraph(64))
        return total, out

    saved_plain, _ = forward_saved(plain)
    saved_ckpt, _ = forward_saved(ckpt)
    assert saved_ckpt < saved_plain / 4, (saved_ckpt, saved_plain)


def test_no_checkpoint_under_no_grad():
    block = GraphTransformerBlock(CHANNELS, HEADS, checkpoint=True)
    with torch.no_grad():
        out = block(torch.randn(5, CHANNELS), FullGraph(5))
    assert out.shape == (5, CHANNELS) and not out.requires_grad


def test_repr():
    assert repr(GraphTransformerBlock(16, 4)) == "GraphTransformerBlock(16, heads=4, norm='pre')"
    assert (
        repr(GraphTransformerBlock(16, 2, norm="post", ffn_ratio=2, checkpoint=True))
        == "GraphTransformerBlock(16, heads=2, norm='post', ffn_ratio=2, checkpoint=True)"
    )


def test_ffn_ratio_sets_hidden_size():
    block = GraphTransformerBlock(16, 4, ffn_ratio=2.5)
    assert block.mlp.lin1.out_features == 40 and block.mlp.lin2.in_features == 40


def test_attention_dropout_defaults_to_dropout():
    assert GraphTransformerBlock(16, 4, dropout=0.3).attn.dropout == 0.3
    assert GraphTransformerBlock(16, 4, dropout=0.3, attention_dropout=0.0).attn.dropout == 0.0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(channels=16, heads=3), ValueError, "heads"),
        (dict(channels=0, heads=1), ValueError, "channels"),
        (dict(channels=16.0, heads=4), TypeError, "channels"),
        (dict(channels=16, heads=4, norm="mid"), ValueError, "norm"),
        (dict(channels=16, heads=4, norm=None), TypeError, "norm"),
        (dict(channels=16, heads=4, ffn_ratio=0), ValueError, "ffn_ratio"),
        (dict(channels=16, heads=4, ffn_ratio="4"), TypeError, "ffn_ratio"),
        (dict(channels=16, heads=4, dropout=1.0), ValueError, "dropout"),
        (dict(channels=16, heads=4, attention_dropout=-0.1), ValueError, "attention_dropout"),
        (dict(channels=16, heads=4, checkpoint=1), TypeError, "checkpoint"),
        (dict(channels=16, heads=4, engine="nope"), ValueError, "engine"),
    ],
)
def test_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        GraphTransformerBlock(**kwargs)


def test_forward_errors():
    block = GraphTransformerBlock(16, 4)
    with pytest.raises(ValueError, match="`x`"):
        block(torch.randn(5, 15), FullGraph(5))
    with pytest.raises(TypeError, match="`x`"):
        block([[0.0] * 16], FullGraph(1))
    with pytest.raises(ValueError, match="edge_attr"):
        block(torch.randn(5, 16), FullGraph(5), edge_attr=torch.randn(25, 2))
