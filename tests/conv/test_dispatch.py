"""The engine registry and engine="auto"."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphattn import EdgeList, FullGraph, available_engines
from graphattn.engines import AttentionRequest, resolve_engine
from graphattn.testing import assert_matches_reference, random_qkv


def request(graph, **kwargs) -> AttentionRequest:
    return AttentionRequest(graph=graph, device=torch.device("cpu"), dtype=torch.float32, **kwargs)


def test_registry_lists_reference_last():
    names = available_engines()
    assert "dense" in names and names[-1] == "scatter"


def test_auto_prefers_dense_for_full_patterns_only():
    assert resolve_engine("auto", request(FullGraph(4))).name == "dense"
    assert resolve_engine("auto", request(FullGraph(4), has_relations=True)).name != "dense"
    edges = EdgeList(torch.zeros(2, 0, dtype=torch.long), 0)
    assert resolve_engine("auto", request(edges)).name != "dense"


def test_unknown_engine():
    with pytest.raises(ValueError, match="unknown `engine` 'nope'"):
        resolve_engine("nope", request(FullGraph(2)))


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 9), min_size=1, max_size=5),
    heads=st.integers(1, 3),
    dim=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_dense_matches_reference_on_random_batches(sizes, heads, dim, seed):
    pattern = FullGraph.from_sizes(sizes)
    g = torch.Generator().manual_seed(seed)
    q, k, v = random_qkv(pattern.num_nodes, heads, dim, dtype=torch.float64, generator=g)
    assert_matches_reference("dense", q, k, v, pattern)


@pytest.mark.parametrize("strided", [False, True])
def test_stacked_projection_reaches_only_engines_that_read_strided_rows(strided, monkeypatch):
    """q, k, v are views into one [N, 3C] product only for an engine registered with
    ``strided_rows``; any other engine gets contiguous rows, and both give the same result."""
    from graphattn import MultiHeadAttentionConv
    from graphattn.engines import Engine, registry, scatter, scatter_attention

    seen = []

    def fn(call):
        seen.append(all(t.is_contiguous() for t in (call.q, call.k, call.v)))
        return scatter_attention(call)

    engine = Engine("rows-test", fn, scatter.supports, priority=999, strided_rows=strided)
    monkeypatch.setitem(registry._ENGINES, engine.name, engine)
    torch.manual_seed(0)
    conv = MultiHeadAttentionConv(8, 8, heads=2, engine="rows-test", add_self_loops=False)
    x, edges = torch.randn(5, 8), torch.tensor([[0, 1, 2, 3, 4, 0], [1, 2, 3, 4, 0, 2]])
    out = conv(x, edges)
    assert seen == [not strided]
    conv.engine = "scatter"
    torch.testing.assert_close(out, conv(x, edges))
    pair = conv((x, x.clone()), edges)  # two tensors: three products, whatever the engine
    torch.testing.assert_close(out, pair)


@pytest.mark.parametrize("engine", ["blocked", "scatter"])
def test_key_and_value_modules_keep_their_hooks_pruning_and_replacements(engine):
    """The stacked product is only taken while lin_key / lin_value are plain Linear modules:
    a forward hook still fires, a pruned module (its weight recomputed in a pre-hook) trains
    step after step, and a replacement module's own forward is used."""
    from torch.nn.utils import prune

    from graphattn import MultiHeadAttentionConv, WindowGraph

    torch.manual_seed(0)
    graph = WindowGraph(12, radius=2)
    x = torch.randn(12, 8)
    conv = MultiHeadAttentionConv(8, 8, heads=2, engine=engine)
    fired = []
    handle = conv.lin_key.register_forward_hook(lambda *_: fired.append(1))
    conv(x, graph)
    assert fired
    handle.remove()

    prune.l1_unstructured(conv.lin_value, "weight", amount=0.5)
    opt = torch.optim.SGD(conv.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        conv(x, graph).pow(2).sum().backward()
        opt.step()
    prune.remove(conv.lin_value, "weight")

    class Doubled(torch.nn.Module):
        def __init__(self, lin):
            super().__init__()
            self.lin = lin

        def forward(self, t):
            return 2 * self.lin(t)

    before = conv(x, graph)
    conv.lin_value = Doubled(conv.lin_value)
    # values doubled: the attention output doubles, and so does the projected output less bias
    after = conv(x, graph)
    bias = conv.lin_out.bias
    torch.testing.assert_close(after - bias, 2 * (before - bias))


def test_joint_columns_finds_only_side_by_side_views():
    """Column blocks of one buffer, in order, are that buffer; anything else is not."""
    from graphattn.engines.base import joint_columns

    base = torch.randn(6, 12)
    q, k, v = base.split(4, dim=1)
    joint = joint_columns(q, k, v)
    assert joint is not None and joint.data_ptr() == base.data_ptr() and torch.equal(joint, base)
    rows = base.view(6, 3, 2, 2)  # [N, 3, H, D]: per-head views of the same columns
    assert torch.equal(joint_columns(rows[:, 0], rows[:, 1], rows[:, 2]), base)
    assert joint_columns(k, q, v) is None  # out of order
    assert joint_columns(q, k) is None  # a row is longer than the two blocks
    assert joint_columns(*(t.clone() for t in (q, k, v))) is None  # separate buffers
    assert joint_columns(*base[:1].split(4, dim=1)) is None  # one row: strides say nothing
    assert joint_columns(q, k, v.double()) is None


def test_joint_columns_of_fake_tensors_is_none():
    """A traced (fake) tensor has no address to compare: not one buffer, and no error."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from graphattn.engines.base import joint_columns

    with FakeTensorMode():
        base = torch.randn(6, 12)
        assert joint_columns(*base.split(4, dim=1)) is None


@pytest.mark.parametrize("engine", ["blocked", "scatter"])
def test_stacked_projection_gradients_with_and_without_one_buffer(engine, monkeypatch):
    """The blocked engine hands back dq, dk, dv side by side in one buffer, which the stacked
    projection's backward takes as it is; scatter's separate gradients are concatenated.
    Both give the gradients of three separate projections."""
    from graphattn import MultiHeadAttentionConv, WindowGraph, _projection
    from graphattn import conv as conv_module

    found = []
    real = conv_module.joint_columns
    for module in (conv_module, _projection):  # the forward's check, the projection's backward
        monkeypatch.setattr(
            module, "joint_columns", lambda *g: found.append(real(*g) is not None) or real(*g)
        )
    torch.manual_seed(0)
    graph = WindowGraph(70, radius=5)
    x = torch.randn(70, 8, dtype=torch.float64, requires_grad=True)
    conv = MultiHeadAttentionConv(8, 8, heads=2, engine=engine).double()
    loss = conv(x, graph).pow(2).sum()
    found.clear()  # the forward asks too (its logit-range check reads the stacked buffer)
    loss.backward()
    assert found == [engine == "blocked"]
    got = [x.grad, *(p.grad for p in conv.parameters())]

    x.grad = None
    conv.zero_grad()
    hook = conv.lin_key.register_forward_hook(lambda *_: None)  # three separate products
    found.clear()
    conv(x, graph).pow(2).sum().backward()
    hook.remove()
    assert found == [False]  # the forward's check only: no stacked product to split
    for a, b in zip(got, [x.grad, *(p.grad for p in conv.parameters())], strict=True):
        torch.testing.assert_close(a, b)
