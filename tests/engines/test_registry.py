"""The engine registry: one structure, its order, and refusals that give every engine's
reasons (as xformers' dispatcher does)."""

from __future__ import annotations

import pytest
import torch

from graphattn import EdgeList, FullGraph, MultiHeadAttentionConv, WindowGraph
from graphattn.engines import (
    AttentionRequest,
    Engine,
    available_engines,
    engine_reasons,
    explain_engines,
    registry,
    resolve_engine,
    scatter,
    scatter_attention,
)

EDGES = EdgeList(torch.tensor([[0, 1, 2], [1, 2, 0]]), 3)


def request(graph, **kwargs) -> AttentionRequest:
    return AttentionRequest(graph=graph, device=torch.device("cpu"), dtype=torch.float32, **kwargs)


def test_the_order_is_read_from_the_registry_itself(monkeypatch):
    """Registering, replacing or removing an engine changes the order ``auto`` tries at once:
    there is no second structure to fall out of step with the first."""
    monkeypatch.setattr(registry, "_ENGINES", dict(registry._ENGINES))
    before = available_engines()
    early = Engine("early", scatter_attention, scatter.supports, priority=15)
    registry.register_engine(early)
    assert available_engines() == (before[0], "early", *before[1:])
    assert resolve_engine("auto", request(EDGES)) is early  # supports and prefers everything
    registry.register_engine(Engine("early", scatter_attention, scatter.supports, priority=5000))
    assert available_engines() == (*before, "early")  # replaced: one entry, its new rank
    assert resolve_engine("auto", request(EDGES)).name == "scatter"
    registry._ENGINES.pop("early")
    assert available_engines() == before
    with pytest.raises(TypeError, match="`engine` must be an Engine"):
        registry.register_engine("scatter")


def test_an_engine_gives_every_reason_it_declines():
    reasons = engine_reasons(request(EDGES, has_relations=True, message_passing=True))
    assert list(reasons) == list(available_engines())
    blocked = reasons["blocked"]
    assert "it needs a ChunkedGraph" in blocked
    assert "edge features or relation types" in blocked
    assert "PyG's message passing" in blocked
    assert reasons["scatter"] is None


def test_a_forced_engine_that_cannot_run_gives_every_engines_reasons():
    with pytest.raises(ValueError) as err:
        resolve_engine("dense", request(EDGES, has_relations=True))
    message = str(err.value)
    first, *lines = message.splitlines()
    assert first.startswith("`engine`='dense' cannot run this call: it needs a FullGraph")
    assert "edge features or relation types" in first  # the forced engine's every reason
    said = dict(line.strip().split(": ", 1) for line in lines[1:])
    assert list(said) == list(available_engines())
    assert said["blocked"].startswith("cannot: it needs a ChunkedGraph")
    assert "relation types" in said["blocked"]
    assert said["scatter"] == "can run it"


def test_auto_refuses_with_every_engines_reasons_when_none_can_run(monkeypatch):
    monkeypatch.delitem(registry._ENGINES, "scatter")  # the reference serves everything
    with pytest.raises(ValueError) as err:
        resolve_engine("auto", request(EDGES, message_passing=True))
    first, _, *lines = str(err.value).splitlines()
    assert first == "no registered engine can run this call (engine='auto')"
    assert [line.split(":")[0].strip() for line in lines] == list(available_engines())
    assert all("cannot: " in line for line in lines)
    assert all("PyG's message passing" in line for line in lines)


def test_explanations_name_the_engine_forward_runs():
    torch.manual_seed(0)
    conv = MultiHeadAttentionConv(8, 8, heads=2)
    x = torch.randn(12, 8)
    for nodes, graph in ((x, FullGraph(12)), (x, WindowGraph(12, radius=2)), (x[:3], EDGES)):
        chosen = conv.engine_for(nodes, graph)
        head, *lines = conv.explain_engine(nodes, graph).splitlines()
        assert head.startswith(f"engine='auto' runs {chosen!r} on this call")
        assert [line.split(":")[0].strip() for line in lines] == list(available_engines())
        assert [line for line in lines if line.endswith("(chosen)")] == [
            f"  {chosen}: can run it (chosen)"
        ]
    conv.engine = "dense"
    text = conv.explain_engine(x[:3], EDGES)
    assert text.startswith("engine='dense' cannot run this call")
    assert "\n  dense: cannot: it needs a FullGraph" in text


def test_explain_engines_marks_what_auto_passed_over(monkeypatch):
    """An engine that can run a call but ranks before the chosen one was passed over because
    it does not prefer the call; one ranked after it was simply not reached."""
    monkeypatch.setattr(registry, "_ENGINES", dict(registry._ENGINES))
    shy = Engine("shy", scatter_attention, scatter.supports, 1, prefers=lambda r: False)
    registry.register_engine(shy)
    lines = explain_engines(request(FullGraph(3))).splitlines()
    assert "  shy: can run it, but 'auto' does not prefer it here" in lines
    assert "  dense: can run it (chosen)" in lines
    assert "  scatter: can run it" in lines
