"""The engine contract: what every engine receives, returns and declares.

An engine is a pure function with no parameters that takes one :class:`AttentionCall`::

    engine(call) -> (out, weights)

- ``call.q``: ``[N_dst, H, D]`` queries of the target nodes, ``call.k``: ``[N_src, H, D]``
  and ``call.v``: ``[N_src, H, Dv]`` keys and values of the source nodes, in the compute
  dtype (float32 or float64; the layer upcasts float16/bfloat16, except for an engine that
  declares ``half_rows``). ``q`` is already multiplied by ``D ** -0.5``: engines take plain
  dot products.
- ``call.graph``: a :class:`~graphattn.patterns.Pattern` (``N_src == N_dst``) or an
  :class:`~graphattn.patterns.EdgeList` whose ``edge_index`` points source -> target.
- ``call.terms``: :class:`EdgeTerms` (edge features and relation embeddings added to each
  edge's key and value) or :obj:`None`.
- ``call.dropout``: probability of dropping an attention weight (0 outside training).
- ``call.need_weights``: also return the attention weights ``[E, H]``, taken before dropout,
  in the order of the graph's edges (a pattern's materialized ``edge_index``). When ``q`` or
  ``k`` require gradients (and grad mode is on) the weights must carry gradients too.
- ``call.module``: a :class:`~torch_geometric.nn.conv.MessagePassing` whose ``propagate`` an
  engine that runs PyG's message passing uses (the layer passes itself, so that PyG's hooks
  and explainers see its messages); other engines ignore it.
- ``out``: ``[N_dst, H, Dv]``; a node with no incoming edge gets zeros.

The layer builds one :class:`AttentionCall` per forward and hands it to the engine it chose;
:func:`graphattn.testing.assert_matches_reference` hands one call to an engine and to the
``scatter`` reference. One record rather than a signature repeated in every engine (as
xformers' ``fmha`` ops take one ``Inputs``): an option added to the contract is added here.

Next to its function every engine module defines ``supports(request)``, which returns
:obj:`None` when the engine can serve an :class:`AttentionRequest` or, when it cannot, every
reason why (short clauses joined by ``"; "``, see :func:`reasons`), and ``prefers(request)``,
which says whether ``engine="auto"`` should pick it for a request it supports (an engine may
support small graphs but not be worth it there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import MessagePassing

from .._runtime import static_mode
from ..patterns import EdgeList, Pattern

__all__ = [
    "AttentionCall",
    "AttentionRequest",
    "EdgeTerms",
    "Engine",
    "block_attention",
    "cpu_only",
    "empty_attention",
    "joint_columns",
    "reasons",
]

Graph = Pattern | EdgeList


@dataclass(frozen=True)
class EdgeTerms:
    """Per-edge additions to the key and value of edge ``j -> i``.

    ``k_ij = k_j + key[e] + rel_key[edge_type[e]]`` and likewise for values. Relation
    embeddings are kept per relation (``[R, H, D]``) so that an engine can index them per edge
    without an ``E x H x D`` tensor.

    ``mask`` marks edges that take no part at all (weight 0): the layer uses it for the
    self-loops of an input edge list that it replaces by its own (``add_self_loops``), which
    keeps every shape independent of the data (so ``torch.compile`` needs no dynamic shapes).

    Args:
        key, value: ``[E, H, D]`` edge-feature terms, or :obj:`None`.
        rel_key, rel_value: ``[R, H, D]`` relation embeddings, or :obj:`None`.
        edge_type: int64 ``[E]`` relation of each edge; given with ``rel_key``/``rel_value``.
        mask: bool ``[E]``, true for an edge that takes no part, or :obj:`None`. Every target
            must keep at least one edge, or have none.
    """

    key: Tensor | None = None
    value: Tensor | None = None
    rel_key: Tensor | None = None
    rel_value: Tensor | None = None
    edge_type: Tensor | None = None
    mask: Tensor | None = None

    @property
    def empty(self) -> bool:
        """No key/value terms and no mask."""
        return (
            self.key is None and self.value is None and self.rel_key is None and self.mask is None
        )

    def materialize(self) -> tuple[Tensor | None, Tensor | None]:
        """The total ``[E, H, D]`` key and value additions (``None`` where there are none)."""
        key, value = self.key, self.value
        if self.rel_key is not None:
            assert self.edge_type is not None and self.rel_value is not None
            rk = self.rel_key[self.edge_type]
            rv = self.rel_value[self.edge_type]
            key = rk if key is None else key + rk
            value = rv if value is None else value + rv
        return key, value


@dataclass(frozen=True)
class AttentionRequest:
    """What an engine must serve: the graph and the options of one forward call."""

    graph: Graph
    device: torch.device
    dtype: torch.dtype  # the compute dtype (float32 or float64)
    has_edge_features: bool = False
    has_relations: bool = False
    need_weights: bool = False
    dropout: float = 0.0
    message_passing: bool = False  # PyG hooks or an explainer must see message/propagate

    @property
    def has_edge_terms(self) -> bool:
        return self.has_edge_features or self.has_relations

    @property
    def num_edges(self) -> int:
        return self.graph.num_edges


@dataclass(frozen=True)
class AttentionCall:
    """One attention computation: the inputs and options every engine function takes (the
    fields are described in the module docstring, :mod:`graphattn.engines.base`).

    >>> from graphattn.patterns import WindowGraph
    >>> from graphattn.engines import get_engine
    >>> q, k, v = torch.randn(3, 10, 2, 4).unbind(0)  # (N, H, D) each
    >>> call = AttentionCall(q, k, v, WindowGraph(10, radius=2), need_weights=True)
    >>> out, weights = get_engine("blocked")(call)
    >>> out.shape, weights.shape  # 10 nodes with 5, 4 or 3 neighbours each: 44 edges
    (torch.Size([10, 2, 4]), torch.Size([44, 2]))
    >>> torch.allclose(out, get_engine("scatter")(call)[0], atol=1e-6)
    True
    """

    q: Tensor  # (N_dst, H, D), pre-scaled
    k: Tensor  # (N_src, H, D)
    v: Tensor  # (N_src, H, Dv)
    graph: Graph
    terms: EdgeTerms | None = None
    dropout: float = 0.0
    need_weights: bool = False
    module: MessagePassing | None = None  # whose propagate runs, for engines that run it


EngineFn = Callable[[AttentionCall], tuple[Tensor, "Tensor | None"]]


def _always(request: AttentionRequest) -> bool:
    return True


@dataclass(frozen=True)
class Engine:
    """A named engine: its function, what it supports, and its rank for ``"auto"``.

    ``"auto"`` tries engines by increasing ``priority`` and takes the first that supports a
    request and prefers it; if none prefers it, the first that supports it. An engine with
    ``half_rows`` takes float16/bfloat16 ``q``, ``k``, ``v`` as they are (and accumulates in
    float32); the layer upcasts them for the others. An engine with ``strided_rows`` reads
    ``q``, ``k``, ``v`` that are column slices of one ``[N, 3C]`` product as they are (the
    built-in ``dense``, ``blocked`` and ``scatter``); the layer gives the others (``fused``,
    and any engine registered without the flag) three separate contiguous products.
    """

    name: str
    fn: EngineFn
    supports: Callable[[AttentionRequest], str | None]
    priority: int
    prefers: Callable[[AttentionRequest], bool] = _always
    half_rows: bool = False
    strided_rows: bool = False

    def __call__(self, call: AttentionCall) -> tuple[Tensor, Tensor | None]:
        return self.fn(call)


def cpu_only(obj):
    """Mark a function or class that works only on CPU tensors (numba kernels, NumPy views,
    private ATen CPU kernels).

    A marker, read by the test suite's static check of the engines' CUDA paths
    (``tests/engines/test_devices.py``): every use of a marked object must sit in another
    CPU-only function, in a CPU implementation of a custom op, or behind a test of the
    device type (``x.device.type == "cpu"``), and no CPU-only call may appear anywhere else.
    At run time it only sets ``__cpu_only__`` on ``obj``.
    """
    obj.__cpu_only__ = True
    return obj


def joint_columns(*tensors: Tensor) -> Tensor | None:
    """The ``[N, C_1 + ... + C_k]`` tensor whose consecutive column blocks are ``tensors``, or
    :obj:`None` when they are not laid out that way.

    ``tensors`` are row views (``[N, C_i]``, or ``[N, H, D_i]`` with the inner dimensions
    contiguous) that share one storage, dtype and row stride ``C_1 + ... + C_k``, each
    starting where the previous one ends: the q, k, v columns of one stacked projection, or
    gradients an engine wrote into one buffer. Such views are one tensor already, so a
    concatenation can be skipped. Never under ``torch.compile`` or ``torch.func``, nor for
    tensor subclasses (the fake tensors of a trace): no addresses there.
    """
    if not tensors or static_mode() or any(t.dim() == 0 or t.is_sparse for t in tensors):
        return None
    if any(type(t) not in (Tensor, torch.nn.Parameter) for t in tensors):
        return None  # a tensor subclass (fake, functional: traced) may have no address
    first = tensors[0]
    rows = first.size(0)
    if rows < 2 or any(t.size(0) != rows for t in tensors):
        return None  # one row: its stride says nothing about the layout
    widths = [t[0].numel() for t in tensors]
    total = sum(widths)
    storage, address = first.untyped_storage().data_ptr(), first.data_ptr()
    for t, width in zip(tensors, widths, strict=True):
        if (
            t.layout != torch.strided
            or t.dtype != first.dtype
            or t.device != first.device
            or t.stride(0) != total
            or not t[0].is_contiguous()
            or t.untyped_storage().data_ptr() != storage
            or t.data_ptr() != address
        ):
            return None
        address += width * first.element_size()
    return first.as_strided((rows, total), (total, 1))


#: The reason of an engine that does not run PyG's ``propagate``.
NO_MESSAGE_PASSING = "it does not run PyG's message passing (hooks or an explainer are active)"


def reasons(*checks: tuple[bool, str]) -> str | None:
    """What ``supports`` returns: every reason whose condition holds, joined by ``"; "``, or
    :obj:`None` when none does.

    >>> reasons((True, "it needs a pattern"), (False, "no edge terms"), (True, "no hooks"))
    'it needs a pattern; no hooks'
    """
    found = [reason for failed, reason in checks if failed]
    return "; ".join(found) if found else None


def pattern_supports(patterns: tuple[type, ...], needs: str):
    """``supports`` of an engine that serves only ``patterns``, without edge terms or PyG's
    message-passing hooks."""

    def supports(request: AttentionRequest) -> str | None:
        """Every reason this engine cannot serve ``request``, or :obj:`None` when it can."""
        return reasons(
            (not isinstance(request.graph, patterns), f"it needs {needs}"),
            (request.has_edge_terms, "it does not take edge features or relation types"),
            (request.message_passing, NO_MESSAGE_PASSING),
        )

    return supports


def block_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    mask: Tensor | None,
    dropout: float,
    need_probs: bool,
    is_causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Attention inside dense blocks ``[B, H, L, D]`` (``q`` pre-scaled), for the block engines.

    ``mask`` is boolean, broadcastable to ``[B, H, Lq, Lk]`` and true where a query may attend
    (or :obj:`None`); ``is_causal`` adds the causal mask. Without ``need_probs`` this is one
    :func:`~torch.nn.functional.scaled_dot_product_attention` call; with it the softmax is
    computed explicitly so that the probabilities, taken before dropout, can be returned.

    Returns ``(out [B, H, Lq, Dv], probs [B, H, Lq, Lk] or None)``.
    """
    if not need_probs:
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout, scale=1.0, is_causal=is_causal
        )
        return out, None
    logits = q @ k.transpose(-1, -2)  # (B, H, Lq, Lk)
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    if is_causal:
        lq, lk = logits.shape[-2:]
        future = torch.ones(lq, lk, dtype=torch.bool, device=q.device).triu(1)
        logits = logits.masked_fill(future, float("-inf"))
    probs = logits.softmax(dim=-1)
    dropped = F.dropout(probs, p=dropout, training=True) if dropout > 0.0 else probs
    return dropped @ v, probs


def empty_attention(
    q: Tensor, k: Tensor, v: Tensor, need_weights: bool
) -> tuple[Tensor, Tensor | None]:
    """The result of a call without nodes: ``[0, H, Dv]`` and ``[0, H]`` zeros, tied to
    ``q``, ``k`` and ``v`` so that their gradients are zeros, as the reference's, not
    :obj:`None`."""
    anchor = (q.sum() + k.sum()) * 0  # a zero that depends on q and k
    out = v[:0] * 0 + anchor  # (0, H, Dv)
    return out, (q.new_zeros(0, q.size(1)) + anchor if need_weights else None)
