"""cka, head_outputs and head_similarity on inputs with known answers."""

from __future__ import annotations

import pytest
import torch

from graphattn import FullGraph, MultiHeadAttentionConv
from graphattn.analysis import attention_layers, cka, head_outputs, head_similarity
from graphattn.nn import GraphTransformer, GraphTransformerConfig


def _kernel_cka(a: torch.Tensor, b: torch.Tensor) -> float:
    """CKA through centred Gram matrices (HSIC form), an independent formula."""
    n = a.size(0)
    h = torch.eye(n, dtype=torch.float64) - 1.0 / n
    k, l_ = h @ a.double() @ a.double().t() @ h, h @ b.double() @ b.double().t() @ h
    return float((k * l_).sum() / (k.norm() * l_.norm()))


def test_cka_is_one_for_identical_rescaled_rotated_and_shifted_copies():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(40, 6, generator=g)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    for b in (a, -5.0 * a, a @ q.float(), 0.1 * a @ q.float() + 3.0):
        assert float(cka(a, b)) == pytest.approx(1.0, abs=1e-9)


def test_cka_matches_the_kernel_formula_and_is_small_for_independent_features():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(30, 5, generator=g), torch.randn(30, 3, generator=g)
    mixed = a[:, :3] + 0.5 * b
    for x, y in ((a, b), (a, mixed), (mixed, b)):
        assert float(cka(x, y)) == pytest.approx(_kernel_cka(x, y), rel=1e-9)
        assert float(cka(x, y)) == pytest.approx(float(cka(y, x)), rel=1e-12)
    big = torch.randn(4000, 4, generator=g), torch.randn(4000, 4, generator=g)
    assert float(cka(*big)) < 0.01
    assert float(cka(torch.arange(10.0), torch.arange(10.0) ** 3)) < 1.0  # 1-D inputs


def test_cka_errors_name_the_argument():
    with pytest.raises(ValueError, match="`b` is constant"):
        cka(torch.randn(5, 2), torch.ones(5, 2))
    with pytest.raises(ValueError, match="same examples"):
        cka(torch.randn(5, 2), torch.randn(6, 2))
    with pytest.raises(TypeError, match="`a`"):
        cka(torch.arange(5), torch.randn(5))
    with pytest.raises(ValueError, match="`head_out`"):
        head_similarity(torch.randn(5, 2))


def _identical_heads_conv(heads=3, dim=4, in_channels=5):
    conv = MultiHeadAttentionConv(in_channels, heads * dim, heads)
    with torch.no_grad():
        for lin in (conv.lin_query, conv.lin_key, conv.lin_value):
            lin.weight.copy_(lin.weight[:dim].repeat(heads, 1))
            lin.bias.copy_(lin.bias[:dim].repeat(heads))
    return conv


def test_head_outputs_are_the_weighted_values_and_identical_heads_have_cka_one():
    torch.manual_seed(2)
    conv = _identical_heads_conv()
    x = torch.randn(9, 5)
    pattern = FullGraph.from_sizes([4, 5])
    (out,) = head_outputs(conv, x, pattern)
    _, att = conv(x, pattern, return_attention=True)
    v = conv.lin_value(x).view(9, 3, 4)
    src, dst = att.edge_index
    expected = torch.zeros(9, 3, 4).index_add_(0, dst, att.weights.unsqueeze(-1) * v[src])
    torch.testing.assert_close(out, expected.detach())
    torch.testing.assert_close(head_similarity(out), torch.ones(3, 3, dtype=torch.float64))


def test_a_head_masked_to_zero_has_an_undefined_similarity():
    torch.manual_seed(3)
    conv = MultiHeadAttentionConv(5, 12, heads=3)
    x = torch.randn(8, 5)
    (out,) = head_outputs(conv, x, FullGraph(8), head_mask=torch.tensor([1.0, 0.0, 1.0]))
    assert (out[:, 1] == 0).all()
    sim = head_similarity(out)
    assert sim[1].isnan().all() and sim[:, 1].isnan().all()
    assert sim[0, 0] == pytest.approx(1.0) and 0 <= sim[0, 2] <= 1


def test_head_outputs_of_a_model_follow_its_layers():
    torch.manual_seed(4)
    model = GraphTransformer(GraphTransformerConfig(in_channels=3, channels=12, heads=3))
    outs = head_outputs(model, torch.randn(7, 3), FullGraph(7))
    assert len(outs) == len(attention_layers(model)) == 2
    assert all(o.shape == (7, 3, 4) for o in outs)
    with pytest.raises(ValueError, match="no MultiHeadAttentionConv"):
        head_outputs(torch.nn.Linear(2, 2), torch.randn(1, 2))
    with pytest.raises(TypeError, match="`module`"):
        attention_layers("model")


def test_head_outputs_without_an_output_projection_are_the_layer_output():
    conv = MultiHeadAttentionConv(5, 6, heads=2, out_projection=False)
    x, edge_index = torch.randn(4, 5), torch.tensor([[0, 1, 3], [1, 2, 2]])
    (captured,) = head_outputs(conv, x, edge_index)
    assert captured.shape == (4, 2, 3)
    torch.testing.assert_close(captured.reshape(4, 6), conv(x, edge_index))
