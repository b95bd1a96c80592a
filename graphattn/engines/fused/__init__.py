"""The fused engine: sparse attention without per-edge tensors (numba on the CPU, Triton on CUDA).

The forward walks a CSR of incoming edges per target node with an online softmax
(FlashAttention's idea applied to graphs) and keeps only a per-(node, head) log-sum-exp. The
backward recomputes the scores: a pass by target gives ``dq`` and the gradients of the edge
terms, a pass by source (a CSR by source, a permutation of the same edges) gives ``dk`` and
``dv``; every output row is written by one thread (one program on a GPU), so there are no
races and no atomics (but for per-relation gradients on a GPU). Nothing of size ``E x H x D``
is ever allocated (unless edge-feature terms, which are themselves ``E x H x D``, need
gradients, or weights with gradients are asked for).

The package is split by concern: :mod:`.csr` groups the edges (a counting sort on the CPU, a
stable sort on CUDA; cached on the graph object), :mod:`.ops` registers the pure
``torch.library`` custom ops that take the CSR as explicit inputs (so
``torch.library.opcheck`` and ``torch.compile(fullgraph=True)`` work) with their CPU
implementations over the numba kernels of :mod:`.kernels`, and :mod:`.triton_ops` registers
their CUDA implementations over the Triton kernels of :mod:`.triton_kernels`. numba (the
``fused`` extra) and Triton (the ``gpu`` extra) are optional: without the one a device needs,
this engine declines calls there and ``engine="auto"`` uses another.

Dropout is applied inside the kernels with a counter-based hash of ``(seed, edge, head)``
(the seed is drawn from torch's CPU generator, so ``torch.manual_seed`` makes it reproducible,
and a seed gives the same mask on both devices), which lets the backward recompute the mask
instead of storing it. Its masks differ from those of :func:`torch.nn.functional.dropout` in
the ``scatter`` engine, with the same distribution.

Attention weights (``need_weights``) are recomputed from the saved log-sum-exp by a kernel;
when ``q`` or ``k`` require gradients they are computed by differentiable torch operations
from the same log-sum-exp instead, so that a loss on the weights reaches the parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._runtime import transforms_active
from ...patterns import EdgeList, Pattern
from ..base import (
    NO_MESSAGE_PASSING,
    AttentionCall,
    AttentionRequest,
    EdgeTerms,
    Engine,
    cpu_only,
    reasons,
)
from .csr import CSR, MAX_INDEX, csr_for

# importing triton_ops registers the custom ops (.ops: CPU) and their CUDA implementations
from .triton_ops import triton_available

__all__ = ["AUTO_MIN_EDGES", "CSR", "ENGINE", "csr_for", "fused_attention", "prefers", "supports"]

_FLOATS = (torch.float32, torch.float64)
_HALF = (torch.float16, torch.bfloat16)
_DEVICES = ("cpu", "cuda")

AUTO_MIN_EDGES = 65536
"""On the CPU ``engine="auto"`` prefers ``scatter`` on graphs with fewer edges than this,
where the kernels' fixed costs outweigh what they save; on CUDA it always prefers this engine.
The edge count from which ``fused`` was faster at every larger size in the committed
``results/auto_crossover/auto_crossover.csv`` (``benchmarks/auto_crossover.py``);
``tests/test_results.py`` keeps the two equal."""


_NUMBA: list[bool] = []  # memo of numba_available()

_NO_NUMBA = "numba is not installed (pip install 'graphattn[fused]')"
_NO_TRITON = "Triton is not installed (pip install 'graphattn[gpu]')"
_NO_JIT_TRACE = (
    "torch.jit.trace would record its CSR for the example graph's node count only; traces run "
    "'scatter' (torch.export and torch.compile record the fused ops)"
)
_NO_TRANSFORMS_HERE = "it does not run under torch.func transforms (grad, vmap, ...); use 'scatter'"
_TOO_LARGE = f"it holds at most {MAX_INDEX} nodes and edges (int32 indices)"

_NO_TRANSFORMS = (
    "the fused engine does not run under torch.func transforms (grad, vmap, jacrev, ...): "
    "its custom op has no functorch rules; use engine='scatter' (or 'dense'/'blocked' on "
    "their patterns), which torch.func differentiates"
)


@cpu_only
@torch.compiler.assume_constant_result
def numba_available() -> bool:
    """Whether numba can be imported (the ``fused`` extra); imports it on first use."""
    if not _NUMBA:
        try:
            import numba  # noqa: F401
        except ImportError:
            _NUMBA.append(False)
        else:
            _NUMBA.append(True)
    return _NUMBA[0]


def _requires_grad(*tensors: Tensor | None) -> bool:
    return any(t is not None and t.requires_grad for t in tensors)


def fused_attention(call: AttentionCall) -> tuple[Tensor, Tensor | None]:
    """Sparse attention over incoming edges with the fused kernels (see :mod:`..base`).

    ``call`` is an :class:`~graphattn.engines.base.AttentionCall` whose

    - ``q`` ``[N_dst, H, D]``, ``k`` ``[N_src, H, D]`` and ``v`` ``[N_src, H, Dv]`` are
      float32 or float64 tensors on the CPU (numba kernels) or on CUDA (Triton kernels), ``q``
      pre-scaled; or float16/bfloat16 "16-bit rows", read in 16 bits and accumulated in
      float32 (outputs, weights and edge terms are float32 then);
    - ``graph`` is an :class:`~graphattn.patterns.EdgeList` or a
      :class:`~graphattn.patterns.Pattern`;
    - ``terms`` (edge features and relation embeddings) may be given, ``dropout`` is applied
      in the kernel, and ``need_weights`` also returns the ``[E, H]`` weights (before
      dropout).

    >>> import torch
    >>> from graphattn.engines import AttentionCall
    >>> from graphattn.patterns import EdgeList
    >>> q, k, v = torch.randn(3, 4, 3, 5).unbind(0)
    >>> edges = EdgeList(torch.tensor([[0, 1, 2, 2], [1, 1, 0, 2]]), 4)
    >>> out, w = fused_attention(AttentionCall(q, k, v, edges, need_weights=True))
    >>> out.shape, w.shape
    (torch.Size([4, 3, 5]), torch.Size([4, 3]))
    >>> torch.allclose(w[:2].sum(0), torch.ones(3))  # node 1's two incoming edges
    True
    """
    q, k, v, graph, dropout = call.q, call.k, call.v, call.graph, call.dropout
    if transforms_active():
        raise ValueError(_NO_TRANSFORMS)
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _FLOATS + _HALF:
            raise TypeError(
                f"`{name}` must be float32, float64, float16 or bfloat16 (fused engine), "
                f"got {t.dtype}"
            )
        if t.device.type not in _DEVICES or t.device != q.device:
            raise ValueError(
                f"the fused engine runs on the CPU or on CUDA, all of `q`, `k`, `v` on one "
                f"device; `{name}` is on {t.device}"
            )
        if t.dim() != 3:
            raise ValueError(f"`{name}` must have shape [N, H, D], got {list(t.shape)}")
    same_dtype = q.dtype == k.dtype == v.dtype
    if k.shape[1:] != q.shape[1:] or v.shape[:2] != k.shape[:2] or not same_dtype:
        raise ValueError(
            "`q` [N_dst, H, D], `k` [N_src, H, D] and `v` [N_src, H, Dv] must share one dtype, "
            f"got {list(q.shape)} {q.dtype}, {list(k.shape)} {k.dtype}, {list(v.shape)} {v.dtype}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1), got {dropout}")
    if isinstance(graph, Pattern):
        edges = graph.edge_list(q.device)
    elif isinstance(graph, EdgeList):
        edges = graph
    else:
        raise TypeError(f"`graph` must be an EdgeList or a Pattern, got {type(graph).__name__}")
    if (edges.num_dst, edges.num_src) != (q.size(0), k.size(0)):
        raise ValueError(
            f"`graph` has {edges.num_src} sources and {edges.num_dst} targets, but `k` has "
            f"{k.size(0)} rows and `q` {q.size(0)}"
        )

    t = call.terms if call.terms is not None else EdgeTerms()
    edge_type = None if t.rel_key is None else t.edge_type
    grad = torch.is_grad_enabled()
    by_target = csr_for(edges, "target")
    if grad and _requires_grad(q, k, v):
        by_source = csr_for(edges, "source")
    else:  # the backward, which alone reads it, will not run
        by_source = CSR(
            *(
                torch.empty(0, dtype=d, device=q.device)
                for d in (torch.long, torch.int32, torch.int32)
            )
        )
    # the seed is drawn on (and stays on) the CPU: the kernels take it as a number
    if dropout > 0.0:
        seed = torch.randint(0, 2**62, (), dtype=torch.long)
    else:
        seed = torch.zeros((), dtype=torch.long)
    out, lse = torch.ops.graphattn.fused_attention(
        q, k, v, *by_target.as_tuple(), *by_source.as_tuple(), t.key, t.value, t.rel_key,
        t.rel_value, edge_type, t.mask, float(dropout), seed,
    )  # fmt: skip
    if not call.need_weights:
        return out, None
    if grad and _requires_grad(q, k, t.key, t.rel_key):  # weights with gradients
        src, dst = edges.edge_index.to(q.device, torch.long)
        key = k[src].to(lse.dtype)  # (E, H, D)
        edge_key, _ = t.materialize()
        if edge_key is not None:
            key = key + edge_key
        logits = (q[dst].to(lse.dtype) * key).sum(-1)  # (E, H)
        if t.mask is not None:
            logits = logits.masked_fill(t.mask.unsqueeze(-1), float("-inf"))
        return out, torch.exp(logits - lse[dst])
    weights = torch.ops.graphattn.fused_attention_weights(
        q.detach(), k.detach(), *by_target.as_tuple(), _detach(t.key), _detach(t.rel_key),
        edge_type, t.mask, lse.detach(),
    )  # fmt: skip
    return out, weights


def _detach(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.detach()


def supports(request: AttentionRequest) -> str | None:
    """Every reason this engine cannot serve ``request``, or :obj:`None` when it can."""
    device = request.device.type
    graph = request.graph
    sizes = (graph.num_nodes,) if isinstance(graph, Pattern) else (graph.num_src, graph.num_dst)
    traced = torch.jit.is_tracing()  # sizes are tensors there: no comparisons on them
    return reasons(
        (device == "cpu" and not numba_available(), _NO_NUMBA),
        (device == "cuda" and not triton_available(), _NO_TRITON),
        (
            device not in _DEVICES,
            f"it runs on the CPU (numba) or on CUDA (Triton), not on {request.device}",
        ),
        (request.dtype not in _FLOATS, f"it computes in float32 or float64, not {request.dtype}"),
        (request.message_passing, NO_MESSAGE_PASSING),
        (transforms_active(), _NO_TRANSFORMS_HERE),
        (traced, _NO_JIT_TRACE),
        (not traced and max(*sizes, request.num_edges) > MAX_INDEX, _TOO_LARGE),
    )


def prefers(request: AttentionRequest) -> bool:
    """Whether ``engine="auto"`` takes this engine for a request it supports."""
    # On CUDA always: `scatter` holds several E x H x D tensors, and GPU memory is where
    # attention over large graphs breaks first (the speed crossover there is not measured).
    # Under torch.compile the choice must not depend on sizes (no recompile per size).
    return (
        request.device.type == "cuda"
        or torch.compiler.is_compiling()
        or request.num_edges >= AUTO_MIN_EDGES
    )


#: The engine as the registry holds it: its function, what it supports, its rank for "auto".
ENGINE = Engine("fused", fused_attention, supports, priority=100, prefers=prefers, half_rows=True)
