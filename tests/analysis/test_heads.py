"""mask_heads, head_importance, top_heads_mask and orthogonality_penalty."""

from __future__ import annotations

import copy

import pytest
import torch

from graphattn import FullGraph, MultiHeadAttentionConv, WindowGraph
from graphattn.analysis import (
    head_importance,
    mask_heads,
    orthogonality_penalty,
    top_heads_mask,
)
from graphattn.engines.fused import numba_available
from graphattn.nn import GraphTransformer, GraphTransformerConfig


def _model(**kwargs):
    torch.manual_seed(0)
    config = dict(in_channels=3, channels=12, heads=3, num_layers=2, engine="scatter")
    return GraphTransformer(GraphTransformerConfig(**{**config, **kwargs}))


def _loss(model, data):
    x, graph, y = data
    return torch.nn.functional.mse_loss(model(x, graph).node, y)


def _data(n=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g), WindowGraph(n, radius=3), torch.randn(n, 1, generator=g)


@pytest.mark.parametrize("engine", ["scatter", "blocked"])  # the layer applies the mask
def test_mask_heads_equals_the_models_head_mask_on_every_engine(engine):
    model = _model(engine=engine)
    x, graph, _ = _data()
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.5, 1.0]])
    with mask_heads(model, mask):
        masked = model(x, graph).node
    torch.testing.assert_close(masked, model(x, graph, head_mask=mask).node)
    assert not torch.allclose(masked, model(x, graph).node)  # the hooks are gone afterwards
    with mask_heads(model, torch.ones(2, 3)):  # combined with a caller's mask: a product
        torch.testing.assert_close(model(x, graph, head_mask=mask).node, masked)


@pytest.mark.parametrize(
    ("engine", "graph"),
    [
        ("scatter", torch.tensor([[0, 1, 2, 3, 4, 5, 6, 1], [1, 2, 3, 4, 5, 6, 0, 1]])),
        ("fused", torch.tensor([[0, 1, 2, 3, 4, 5, 6, 1], [1, 2, 3, 4, 5, 6, 0, 1]])),
        ("dense", FullGraph.from_sizes([3, 4])),
        ("blocked", WindowGraph(7, radius=2)),
    ],
    ids=["scatter", "fused", "dense", "blocked"],
)
def test_every_engine_honours_the_layers_head_mask(engine, graph):
    """A head masked to 0 is the head whose W_O columns are 0; a factor scales its share."""
    if engine == "fused" and not numba_available():
        pytest.skip("numba is not installed")
    torch.manual_seed(0)
    conv = MultiHeadAttentionConv(5, 12, heads=3, engine=engine)
    x = torch.randn(7, 5, dtype=torch.float32)
    mask = torch.tensor([1.0, 0.0, 0.5])
    got = conv(x, graph, head_mask=mask)
    cut = copy.deepcopy(conv)
    with torch.no_grad():  # heads are 4-channel slices of W_O's input
        cut.lin_out.weight[:, 4:8] = 0
        cut.lin_out.weight[:, 8:12] *= 0.5
    torch.testing.assert_close(got, cut(x, graph), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got, conv(x, graph), atol=1e-3)


def test_head_importance_is_zero_for_an_unused_head_and_for_a_masked_one():
    model = _model()
    with torch.no_grad():  # W_O ignores head 1 of the first layer: removing it changes nothing
        model.blocks[0].attn.lin_out.weight[:, 4:8] = 0
    data = _data()
    scores = head_importance(model, data, _loss)
    assert scores.shape == (2, 3)
    assert scores[0, 1] == 0.0
    assert (scores.flatten()[[0, 2, 3, 4, 5]] != 0).all()
    # a head the mask already removed scores exactly 0; the others are measured against the
    # masked model
    base = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    pruned = head_importance(model, data, _loss, head_mask=base)
    assert pruned[1, 1] == 0.0
    with mask_heads(model, base), torch.no_grad():
        reference = float(_loss(model, data))
    base2 = base.clone()
    base2[0, 0] = 0
    with mask_heads(model, base2), torch.no_grad():
        expected = float(_loss(model, data)) - reference
    assert float(pruned[0, 0]) == pytest.approx(expected, rel=1e-6)
    assert model.training  # restored


def test_top_heads_mask_and_errors():
    importance = torch.tensor([[0.2, -0.1, 0.9], [0.2, 0.0, 0.5]])
    assert top_heads_mask(importance, 3).tolist() == [[1, 0, 1], [0, 0, 1]]
    assert top_heads_mask(importance, 0).sum() == 0
    with pytest.raises(ValueError, match="`keep`"):
        top_heads_mask(importance, 7)
    model = _model()
    with pytest.raises(ValueError, match="`head_mask`"):
        with mask_heads(model, torch.ones(3, 2)):
            pass
    with pytest.raises(TypeError, match="`loss_fn`"):
        head_importance(model, _data(), "mse")


def test_orthogonality_penalty_known_answers():
    conv = MultiHeadAttentionConv(12, 12, heads=3)
    q, _ = torch.linalg.qr(torch.randn(12, 12))
    with torch.no_grad():
        conv.lin_query.weight.copy_(q.t())  # orthonormal rows: orthogonal head subspaces
        conv.lin_key.weight.copy_(q.t()[torch.randperm(12)])
    assert float(orthogonality_penalty(conv)) == pytest.approx(0.0, abs=1e-10)
    block = torch.randn(4, 12)
    rot, _ = torch.linalg.qr(torch.randn(4, 4))
    with torch.no_grad():  # three copies of one head: rotated and rescaled
        copies = torch.cat([block, 3 * rot @ block, -0.5 * block])
        conv.lin_query.weight.copy_(copies)
        conv.lin_key.weight.copy_(copies)
    assert float(orthogonality_penalty(conv)) == pytest.approx(1.0, rel=1e-5)
    assert float(orthogonality_penalty(MultiHeadAttentionConv(4, 4, heads=1))) == 0.0


class _Penalty(torch.nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self):
        return orthogonality_penalty(self.conv)


def test_orthogonality_penalty_is_differentiable_and_descends_to_zero():
    torch.manual_seed(5)
    conv = MultiHeadAttentionConv(8, 8, heads=2).double()
    penalty = _Penalty(conv)

    def of(wq, wk):
        weights = {"conv.lin_query.weight": wq, "conv.lin_key.weight": wk}
        return torch.func.functional_call(penalty, weights, ())

    start = [conv.lin_query.weight.detach().clone(), conv.lin_key.weight.detach().clone()]
    assert torch.autograd.gradcheck(of, [w.requires_grad_() for w in start])
    params = [conv.lin_query.weight, conv.lin_key.weight]
    opt = torch.optim.Adam(params, lr=0.05)
    initial = float(penalty().detach())
    for _ in range(40):
        opt.zero_grad()
        penalty().backward()
        opt.step()
    assert initial > 0.05 and float(penalty().detach()) < 0.01 * initial


def test_config_adds_the_penalty_through_regularization():
    plain = _model()
    assert float(plain.regularization()) == 0.0
    model = _model(orthogonality=0.5)
    torch.testing.assert_close(model.regularization(), 0.5 * orthogonality_penalty(model))
    model.regularization().backward()
    assert model.blocks[0].attn.lin_query.weight.grad.abs().sum() > 0
    for bad, err in ((-1.0, ValueError), ("high", TypeError), (True, TypeError)):
        with pytest.raises(err, match="`orthogonality`"):
            GraphTransformerConfig(in_channels=3, orthogonality=bad)
