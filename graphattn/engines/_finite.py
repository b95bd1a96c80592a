"""Non-finite values in the block engines, and their first-order-only backward (private).

**Locality.** The block engines (``dense`` on causal graphs, ``blocked`` on windows and grids)
compute attention on dense blocks in which a query also meets keys that are *not* its
neighbours, with weight exactly 0. A NaN or ``inf`` in such a key (or value) would still
reach the query through ``0 * nan = nan`` in the block products, forward and backward, and
poison nodes that never attend to it. :func:`guarded_attention` keeps every engine exact
instead, with the semantics of the ``scatter`` reference:

- the block computation runs on inputs whose non-finite entries are replaced by 0, so that no
  non-finite value meets a zero weight;
- a target row (node and head) is set to NaN when its own query, or the key or value of a node
  it attends to, is non-finite (the reference gives NaN or ``inf`` there);
- in the backward, a row whose output is non-finite, or whose upstream gradient is, passes
  no gradient into the block computation (where it would leak the same way); instead its
  query and the keys and values of the nodes it attends to get a NaN gradient, as the
  reference's chain rule gives them (``0 * nan``);
- returned attention weights of a row with a non-finite logit are those of the raw inputs.

Finite rows are computed exactly as without the guard. In eager mode a cheap check
(:func:`all_finite`: one sum per tensor) skips the repair when every value is finite (the
backward likewise checks its upstream gradient with one sum); under ``torch.compile`` and
``torch.func`` transforms, where a branch on values would break the graph, the repair runs
unconditionally, with static shapes.

**Double backward.** :func:`first_order` marks the inputs of a computation whose backward
(PyTorch's fused SDPA kernels) has no derivative, so that differentiating it twice raises a
clear error naming the engine and the alternative instead of a torch-internal one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor

from .._runtime import static_mode, transforms_active

__all__ = ["Neighbours", "all_finite", "first_order", "guarded_attention"]

_NAN = float("nan")


def all_finite(*tensors: Tensor | None) -> bool:
    """True only if every value is finite: a NaN or ``inf`` makes a tensor's sum non-finite.

    (A sum can also overflow on huge finite values; that only sends the call down the exact
    repair path, never the other way.)
    """
    total = None
    for t in tensors:
        if t is not None and t.numel() > 0:
            s = t.sum(dtype=torch.float64 if t.dtype == torch.float64 else torch.float32)
            total = s if total is None else total + s
    return total is None or bool(torch.isfinite(total))


def row_flags(t: Tensor) -> Tensor:
    """``[N, H]`` bool: true where a row of ``t [N, H, D]`` holds a NaN or ``inf``."""
    return ~torch.isfinite(t).all(dim=-1)


class Neighbours(Protocol):
    """The graph of a block engine call, as the guard needs it."""

    def reach(self, bad: Tensor) -> Tensor:
        """``[N, H]`` bool: the targets with an incoming edge from a ``bad`` source."""
        ...

    def sources(self, rows: Tensor) -> Tensor:
        """``[N, H]`` bool: the sources with an edge into one of the target ``rows``."""
        ...

    def edge_targets(self) -> Tensor:
        """int64 ``[E]``: the target of every edge, in the order of returned weights."""
        ...


#: ``attend(q, k, v, need_weights, weights_only=False) -> (out, weights)``: the block
#: computation (``weights_only``: no dropout, the output is not used).
Attend = Callable[..., "tuple[Tensor, Tensor | None]"]


def guarded_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attend: Attend,
    neighbours: Neighbours,
    *,
    need_weights: bool,
) -> tuple[Tensor, Tensor | None]:
    """Run ``attend`` with the locality of non-finite values of the reference (see above)."""
    static = static_mode()
    if not static and all_finite(q, k, v):
        out, weights = attend(q, k, v, need_weights)
        return _guard(out, weights, q, k, v, None, None, None, neighbours, static)
    bad_q, bad_k, bad_v = row_flags(q), row_flags(k), row_flags(v)
    logits_bad = bad_q | neighbours.reach(bad_k)  # (N, H): a non-finite logit in the row
    rows = logits_bad | neighbours.reach(bad_v)  # (N, H): a non-finite output
    clean = [torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0) for t in (q, k, v)]
    out, weights = attend(*clean, need_weights)
    raw = edge_bad = None
    if weights is not None:  # rows with a non-finite logit: the weights of the raw inputs
        with torch.no_grad():
            _, raw = attend(q, k, v, True, True)
        edge_bad = logits_bad[neighbours.edge_targets()]  # (E, H)
    return _guard(out, weights, q, k, v, rows, raw, edge_bad, neighbours, static)


def _guard(out, weights, q, k, v, rows, raw, edge_bad, neighbours, static):
    if transforms_active():
        # torch.func (jacfwd, hessian, vmap of grad...): plain differentiable operations,
        # which every transform composes. The set rows are constants, so no gradient reaches
        # the block computation through them; unlike the eager backward, the inputs of a
        # non-finite row get a zero gradient there instead of the reference's NaN.
        if rows is not None:
            out = out.masked_fill(rows.unsqueeze(-1), _NAN)
        if raw is not None and weights is not None:
            weights = torch.where(edge_bad, raw, weights)
        return out, weights
    placeholder = weights is None
    if placeholder:
        weights = out.new_empty(0)
    out, weights = _Guard.apply(out, weights, q, k, v, rows, raw, edge_bad, neighbours, static)
    return out, None if placeholder else weights


class _Guard(torch.autograd.Function):
    """``(out, weights)`` with non-finite rows set, and the backward described above."""

    generate_vmap_rule = True

    @staticmethod
    def forward(out, weights, q, k, v, rows, raw, edge_bad, neighbours, static):
        if rows is not None:
            out = out.masked_fill(rows.unsqueeze(-1), _NAN)
        else:
            out = out.view_as(out)
        if raw is not None:
            weights = torch.where(edge_bad, raw, weights)
        else:
            weights = weights.view_as(weights)
        return out, weights

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, weights, q, k, v, rows, _, _, neighbours, static = inputs
        ctx.neighbours = neighbours
        ctx.static = static
        ctx.has_weights = weights.dim() > 1  # not the 1-D placeholder
        ctx.shapes = (q.shape, k.shape, v.shape)
        ctx.save_for_backward(rows)

    @staticmethod
    def backward(ctx, grad_out, grad_weights):
        (rows,) = ctx.saved_tensors
        weighted = ctx.has_weights and grad_weights is not None
        if not ctx.static and rows is None:
            if all_finite(grad_out, grad_weights if weighted else None):
                return grad_out, grad_weights, None, None, None, None, None, None, None, None
        nb = ctx.neighbours
        bad = row_flags(grad_out)  # (N, H)
        if weighted:
            edge = (~torch.isfinite(grad_weights)).to(grad_out.dtype)  # (E, H)
            count = torch.zeros(bad.shape, dtype=grad_out.dtype, device=bad.device)
            bad = bad | (count.index_add(0, nb.edge_targets(), edge) > 0)
        if rows is not None:
            bad = bad | rows
        if not ctx.static and not bool(bad.any()):
            return grad_out, grad_weights, None, None, None, None, None, None, None, None
        grad_out = grad_out.masked_fill(bad.unsqueeze(-1), 0.0)
        if weighted:
            grad_weights = grad_weights.masked_fill(bad[nb.edge_targets()], 0.0)
        src = nb.sources(bad)  # (N_src, H)
        q_shape, k_shape, v_shape = ctx.shapes

        def poison(flags: Tensor, shape) -> Tensor:
            fill = torch.zeros(flags.shape, dtype=grad_out.dtype, device=grad_out.device)
            return fill.masked_fill(flags, _NAN).unsqueeze(-1).expand(shape)

        dq, dk, dv = poison(bad, q_shape), poison(src, k_shape), poison(src, v_shape)
        return grad_out, grad_weights, dq, dk, dv, None, None, None, None, None


def first_order(engine: str, *tensors: Tensor) -> tuple[Tensor, ...]:
    """Mark ``tensors`` so that a second derivative through them raises a clear error.

    A no-op under ``torch.compile`` (which has no double backward of its own) and for
    tensors that do not require gradients (outside ``torch.func`` transforms). A
    forward-mode derivative through them (``torch.func.jvp``, ``jacfwd``, ``hessian``) raises
    the same kind of error.
    """
    if torch.compiler.is_compiling() or not torch.is_grad_enabled():
        return tensors
    # under torch.func transforms a tensor may carry a forward-mode tangent (jacfwd, jvp)
    # without requiring gradients: mark it too, so forward mode gets the same clear error
    marked = transforms_active()
    return tuple(_FirstOrder.apply(t, engine) if marked or t.requires_grad else t for t in tensors)


class _EngineMark(torch.autograd.Function):
    """An identity that carries an engine's name, for the errors its derivatives raise."""

    generate_vmap_rule = True

    @staticmethod
    def forward(t, engine):
        return t.view_as(t)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.engine = inputs[1]


class _FirstOrder(_EngineMark):
    @staticmethod
    def backward(ctx, grad):
        return _NoSecondDerivative.apply(grad, ctx.engine), None

    @staticmethod
    def jvp(ctx, tangent, _):
        raise RuntimeError(
            f"the {ctx.engine!r} engine has no forward-mode derivative (PyTorch's fused "
            "attention kernels have none): torch.func.jvp, jacfwd and hessian need "
            "engine='scatter', or return_attention=True (an explicit softmax)"
        )


class _NoSecondDerivative(_EngineMark):  # applied to the gradient of a _FirstOrder mark
    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError(
            f"the {ctx.engine!r} engine has no second derivative (PyTorch's fused attention "
            "kernels have none): double backward (create_graph=True, torch.func.hessian, "
            "nested torch.func.grad) needs engine='scatter', or return_attention=True, "
            "whose explicit softmax is twice differentiable"
        )
