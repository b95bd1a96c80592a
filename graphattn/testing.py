"""Property checkers that the test-suite (and engine authors) call.

``assert_matches_reference`` runs an engine and the ``scatter`` reference on the same inputs
and compares outputs, attention weights and the gradients of ``q``, ``k``, ``v`` and the edge
terms.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .engines import (
    AttentionCall,
    AttentionRequest,
    EdgeTerms,
    Engine,
    resolve_engine,
    scatter_attention,
)
from .patterns import EdgeList, Pattern

__all__ = ["assert_matches_reference", "random_qkv"]


def random_qkv(
    num_nodes: int,
    heads: int,
    dim: int,
    *,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor, Tensor]:
    """Random ``q, k, v`` of shape ``[N, H, D]`` that require gradients."""
    return tuple(  # type: ignore[return-value]
        torch.randn(num_nodes, heads, dim, dtype=dtype, generator=generator)
        .to(device)
        .requires_grad_()
        for _ in range(3)
    )


def _tolerances(dtype: torch.dtype) -> dict[str, float]:
    if dtype == torch.float64:
        return {"atol": 1e-10, "rtol": 1e-8}
    return {"atol": 1e-5, "rtol": 1e-4}


def assert_matches_reference(
    engine: str | Engine,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    graph: Tensor | Pattern | EdgeList,
    *,
    terms: EdgeTerms | None = None,
    need_weights: bool = True,
    backward: bool = True,
    atol: float | None = None,
    rtol: float | None = None,
) -> None:
    """Assert that ``engine`` (a registered name, or an :class:`~graphattn.engines.Engine`
    being written) equals the ``scatter`` reference on these inputs.

    Compares outputs, weights (if ``need_weights``) and, if ``backward``, the gradients of
    every input that requires them, for a seeded random upstream gradient (the same on every
    call). Default tolerances: ``atol=1e-5`` in float32, ``1e-10`` in float64; for a gradient
    the default ``atol`` is scaled by its largest reference entry when that exceeds 1, since a
    gradient sums many terms and an entry that is exactly 0 in the reference (a node with one
    incoming edge: softmax over one logit) comes out of any other summation order as a rounding
    residue of that size. ``graph`` may be an ``edge_index`` tensor (``k.size(0)`` sources,
    ``q.size(0)`` targets), a pattern or an edge list.
    """
    if isinstance(graph, Tensor):
        graph = EdgeList(graph, k.size(0), q.size(0))
    tol = _tolerances(q.dtype)
    scale_grad_atol = atol is None
    if atol is not None:
        tol["atol"] = atol
    if rtol is not None:
        tol["rtol"] = rtol
    request = AttentionRequest(
        graph=graph,
        device=q.device,
        dtype=q.dtype,
        has_edge_features=terms is not None and terms.key is not None,
        has_relations=terms is not None and terms.edge_type is not None,
        need_weights=need_weights,
    )
    fn = resolve_engine(engine, request)  # a name, or an Engine (registered or not)
    engine = fn.name
    inputs = [t for t in (q, k, v) if t.requires_grad]
    if terms is not None:
        inputs += [
            t
            for t in (terms.key, terms.value, terms.rel_key, terms.rel_value)
            if t is not None and t.requires_grad
        ]

    call = AttentionCall(q, k, v, graph, terms=terms, need_weights=need_weights)
    out, weights = fn(call)
    ref, ref_weights = scatter_attention(call)
    assert out.shape == ref.shape, f"{engine}: output shape {out.shape} != {ref.shape}"
    assert out.dtype == ref.dtype, f"{engine}: output dtype {out.dtype} != {ref.dtype}"
    assert torch.isfinite(out).all(), f"{engine}: non-finite output"
    torch.testing.assert_close(out, ref, **tol, msg=lambda m: f"{engine} output: {m}")
    if need_weights:
        assert weights is not None and ref_weights is not None
        torch.testing.assert_close(
            weights, ref_weights, **tol, msg=lambda m: f"{engine} weights: {m}"
        )

    if backward and inputs and out.numel() > 0:
        gen = torch.Generator(device=ref.device).manual_seed(0)
        grad = torch.randn(ref.shape, generator=gen, dtype=ref.dtype, device=ref.device)
        got = torch.autograd.grad(out, inputs, grad, allow_unused=True)
        want = torch.autograd.grad(ref, inputs, grad, allow_unused=True)
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            g = torch.zeros_like(inputs[i]) if g is None else g
            w = torch.zeros_like(inputs[i]) if w is None else w
            assert torch.isfinite(g).all(), f"{engine}: non-finite gradient of input {i}"
            gtol = dict(tol)
            if scale_grad_atol and w.numel():
                gtol["atol"] = tol["atol"] * max(1.0, float(w.abs().max()))
            torch.testing.assert_close(g, w, **gtol, msg=lambda m, i=i: f"{engine} grad {i}: {m}")
