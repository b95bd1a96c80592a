"""What the fused engine's numba (``test_fused.py``) and Triton (``test_fused_triton.py``)
tests share: random edge terms, the gradient check of its custom op, the layer-level check."""

from __future__ import annotations

import torch

from graphattn import MultiHeadAttentionConv
from graphattn.engines import EdgeTerms

from ..conftest import HEAD_DIM, HEADS, IN_CHANNELS, OUT_CHANNELS

NUM_RELATIONS = 4

#: Positions of the differentiable arguments of ``graphattn::fused_attention``: q, k, v, the
#: edge-feature key and value, the relation key and value.
DIFFERENTIABLE = (0, 1, 2, 9, 10, 11, 12)


def random_terms(
    kind, num_edges, dtype, generator, heads=HEADS, dim=HEAD_DIM, *, masked=False, device="cpu"
):
    """Edge-feature (``kind`` "features") and/or relation ("relations", "both") terms that
    require gradients, leaves on ``device``; ``masked`` also masks a random quarter of the
    edges."""

    def rand(*shape):
        return torch.randn(*shape, dtype=dtype, generator=generator).to(device).requires_grad_()

    key = value = rel_key = rel_value = edge_type = mask = None
    if kind in ("features", "both"):
        key, value = rand(num_edges, heads, dim), rand(num_edges, heads, dim)
    if kind in ("relations", "both"):
        rel_key, rel_value = rand(NUM_RELATIONS, heads, dim), rand(NUM_RELATIONS, heads, dim)
        edge_type = torch.randint(0, NUM_RELATIONS, (num_edges,), generator=generator)
        edge_type = edge_type.to(device)
    if masked:
        mask = (torch.rand(num_edges, generator=generator) < 0.25).to(device)
    return EdgeTerms(key, value, rel_key, rel_value, edge_type, mask)


def gradcheck_op(args: tuple, **options) -> bool:
    """``torch.autograd.gradcheck`` of the op's output with respect to its
    :data:`DIFFERENTIABLE` arguments, the others (CSRs, edge types, mask, dropout, seed) held
    as in ``args``."""

    def output(*inputs):
        full = list(args)
        for position, t in zip(DIFFERENTIABLE, inputs, strict=True):
            full[position] = t
        return torch.ops.graphattn.fused_attention(*full)[0]

    return torch.autograd.gradcheck(output, tuple(args[i] for i in DIFFERENTIABLE), **options)


def assert_layer_with_edge_terms_matches_scatter(generator, device="cpu"):
    """A layer with edge features and relation types on ``engine="fused"`` equals the same
    layer on ``scatter`` on ``device``: outputs and every parameter's gradient."""
    torch.manual_seed(0)
    kwargs = dict(edge_dim=2, num_relations=NUM_RELATIONS)
    conv = MultiHeadAttentionConv(IN_CHANNELS, OUT_CHANNELS, HEADS, engine="fused", **kwargs)
    ref = MultiHeadAttentionConv(IN_CHANNELS, OUT_CHANNELS, HEADS, engine="scatter", **kwargs)
    ref.load_state_dict(conv.state_dict())
    conv, ref = conv.to(device), ref.to(device)
    x = torch.randn(14, IN_CHANNELS, generator=generator).to(device)
    edge_index = torch.randint(0, 14, (2, 45), generator=generator).to(device)
    edge_attr = torch.randn(45, 2, generator=generator).to(device)
    edge_type = torch.randint(0, NUM_RELATIONS, (45,), generator=generator).to(device)
    out = conv(x, edge_index, edge_attr=edge_attr, edge_type=edge_type)
    want = ref(x, edge_index, edge_attr=edge_attr, edge_type=edge_type)
    torch.testing.assert_close(out, want)
    out.square().sum().backward()
    want.square().sum().backward()
    for (name, p), r in zip(conv.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, r.grad, msg=lambda m, name=name: f"{name}: {m}")
