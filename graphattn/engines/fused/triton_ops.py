"""The fused engine's custom ops on CUDA: checks, then launches of the Triton kernels.

:func:`forward`, :func:`backward` and :func:`weights` take exactly the arguments of the custom
ops of :mod:`.ops` (``graphattn::fused_attention``, ``..._backward``, ``..._weights``) and are
registered as their CUDA implementations when this module is imported, so the layer,
``torch.library.opcheck`` and ``torch.compile`` see one op on every device: numba on the CPU,
Triton on CUDA, one autograd formula and one fake implementation. They check shapes, dtypes
and devices; the kernels of :mod:`.triton_kernels` (imported on first use, so that importing
graphattn never needs Triton) trust them.

The kernels also run on CPU tensors through Triton's interpreter, which is how the test suite
checks them on machines without a GPU: with ``TRITON_INTERPRET=1`` set before Triton is first
imported, :func:`interpreted_on_cpu` makes them (and the torch-ops CSR builder) the CPU
implementations of the ops for the duration of a ``with`` block.

Dropout draws the same counter-based mask as the numba kernels (a hash of the seed, the edge id
and the head), so a seed gives the same mask on both devices. The per-relation gradients are
summed with atomic adds, whose order varies from run to run on a GPU (the last bits of
``rel_key``/``rel_value`` gradients may then differ between runs); everything else is written
by exactly one program.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import numpy as np
import torch
from torch import Tensor

from . import csr, ops
from .ops import _check_terms, accumulate_dtype

__all__ = [
    "backward",
    "block_sizes",
    "forward",
    "interpreted_on_cpu",
    "triton_available",
    "weights",
]

_ROWS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_TRITON: list[bool] = []  # memo of triton_available()

#: Elements of one ``[BLOCK_N, BLOCK_E, BLOCK_H, BLOCK_D]`` tile a program holds (with four
#: warps, 8 per thread and tile): :func:`block_sizes` fills it. Chosen so that the kernels
#: compiled for sm_90 (offline, by ptxas: ``tests/engines/test_fused_triton.py``) keep their
#: tiles in registers at 8 heads of 16 or 32 channels with every option on, float32 and
#: float64 (with 4096, kilobytes spilled to the stack); its speed is not measured yet.
TILE_ELEMENTS = 1024
#: Most nodes per program.
MAX_BLOCK_N = 64


@torch.compiler.assume_constant_result
def triton_available() -> bool:
    """Whether Triton can be imported (the engine's CUDA kernels need it)."""
    if not _TRITON:
        try:
            import triton  # noqa: F401
        except ImportError:
            _TRITON.append(False)
        else:
            _TRITON.append(True)
    return _TRITON[0]


def _triton_kernels() -> ModuleType:
    try:
        return importlib.import_module(f"{__package__}.triton_kernels")
    except ImportError as err:
        raise RuntimeError(
            "the fused engine on CUDA needs Triton (pip install triton, or 'graphattn[gpu]')"
        ) from err


def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def block_sizes(heads: int, dim: int, dim_v: int, nodes: int, edges: int) -> dict[str, int]:
    """The kernels' block sizes for a CSR of ``nodes`` nodes and ``edges`` edges, ``heads``
    heads of ``dim`` (keys) and ``dim_v`` (values) channels: powers of two that cover the
    heads and channels, as many edges per step as the mean degree (at most 64) and as many
    nodes per program as :data:`TILE_ELEMENTS` then allows (at most :data:`MAX_BLOCK_N`).
    Sizes known from the shapes alone, so no host synchronisation.

    >>> block_sizes(3, 11, 11, nodes=100, edges=1600)
    {'BLOCK_N': 1, 'BLOCK_E': 16, 'BLOCK_H': 4, 'BLOCK_D': 16, 'BLOCK_DV': 16}
    >>> block_sizes(8, 16, 16, nodes=100_000, edges=600_000)
    {'BLOCK_N': 1, 'BLOCK_E': 8, 'BLOCK_H': 8, 'BLOCK_D': 16, 'BLOCK_DV': 16}
    >>> block_sizes(2, 8, 8, nodes=1000, edges=3000)
    {'BLOCK_N': 16, 'BLOCK_E': 4, 'BLOCK_H': 2, 'BLOCK_D': 8, 'BLOCK_DV': 8}
    """
    bh, bd, bdv = _pow2(heads), _pow2(dim), _pow2(dim_v)
    width = bh * max(bd, bdv)
    degree = -(-edges // max(nodes, 1))  # the mean degree, rounded up
    be = max(1, min(_pow2(degree), 64, TILE_ELEMENTS // width))
    bn = max(1, min(MAX_BLOCK_N, TILE_ELEMENTS // (be * width), _pow2(nodes)))
    return {"BLOCK_N": bn, "BLOCK_E": be, "BLOCK_H": bh, "BLOCK_D": bd, "BLOCK_DV": bdv}


def _grid(nodes: int, blocks: dict[str, int]) -> tuple[int]:
    return (-(-nodes // blocks["BLOCK_N"]),)


# ---- checks: the kernels trust what passes them --------------------------------------------
def _check_rows(q: Tensor, k: Tensor, v: Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dtype not in _ROWS or t.dim() != 3:
            raise ValueError(
                f"`{name}` must be a float16, bfloat16, float32 or float64 [N, H, D] tensor, "
                f"got {t.dtype} of shape {list(t.shape)}"
            )
    if (
        k.shape[1:] != q.shape[1:]
        or v.shape[:2] != k.shape[:2]
        or not q.dtype == k.dtype == v.dtype
    ):
        raise ValueError(
            "`q` [N_dst, H, D], `k` [N_src, H, D] and `v` [N_src, H, Dv] must share one dtype, "
            f"got {list(q.shape)} {q.dtype}, {list(k.shape)} {k.dtype}, {list(v.shape)} {v.dtype}"
        )


def _check_csr(name: str, ptr: Tensor, idx: Tensor, eid: Tensor, nodes: int) -> None:
    if ptr.dtype != torch.long or ptr.shape != (nodes + 1,):
        raise ValueError(f"`{name}_ptr` must be int64 of shape [{nodes + 1}], got {ptr.dtype} "
                         f"{list(ptr.shape)}")  # fmt: skip
    if idx.dtype != torch.int32 or eid.dtype != torch.int32 or idx.shape != eid.shape:
        raise ValueError(f"`{name}_idx` and `{name}_eid` must be int32 of one shape [E]")


def _check_devices(device: torch.device, **tensors: Tensor | None) -> None:
    for name, t in tensors.items():
        if t is not None and t.device != device:
            raise ValueError(f"`{name}` is on {t.device}, but `q` on {device}")


def _check_launch(kernels: ModuleType, device: torch.device) -> None:
    if device.type == "cuda" or (device.type == "cpu" and kernels.INTERPRETED):
        return
    raise ValueError(
        "the fused engine's Triton kernels run on CUDA tensors (or on CPU tensors through "
        f"Triton's interpreter: interpreted_on_cpu()), got tensors on {device}"
    )


def _check_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1), got {dropout}")


# ---- arguments of the kernels ----------------------------------------------------------------
def _term_args(q, ek, ev, rk, rv, et, mask) -> tuple[tuple, dict]:
    """The kernels' edge-term tensors (``q`` stands in for an absent one: never read) and
    their ``HAS_*`` flags."""
    tensors = (
        q if ek is None else ek.contiguous(),
        q if ev is None else ev.contiguous(),
        q if rk is None else rk.contiguous(),
        q if rv is None else rv.contiguous(),
        q if et is None else et.long().contiguous(),
        q if mask is None else mask.contiguous().view(torch.uint8),
    )
    flags = {
        "HAS_EK": ek is not None,
        "HAS_EV": ev is not None,
        "HAS_REL": rk is not None,
        "HAS_MASK": mask is not None,
    }
    return tensors, flags


def _dropout_args(dropout: float, seed: Tensor, acc: torch.dtype, q: Tensor) -> tuple:
    """``(keep, seed, thresh, DROPOUT)``: ``keep`` holds ``1 / (1 - p)`` in the compute dtype
    (rounded from float64, as the numba kernels' scale), ``thresh = ceil(p * 2**53)`` (exact:
    ``p * 2**53`` is a float64 product by a power of two)."""
    if dropout <= 0.0:
        return q, 0, 0, False
    keep = torch.full((1,), 1.0 / (1.0 - dropout), dtype=acc, device=q.device)
    return keep, int(seed), math.ceil(dropout * 2.0**53), True


def _rows(t: Tensor) -> Tensor:
    return t.detach().contiguous()


# ---- the ops' CUDA implementations -----------------------------------------------------------
def forward(
    q, k, v, t_ptr, t_idx, t_eid, s_ptr, s_idx, s_eid, edge_key, edge_value, rel_key, rel_value,
    edge_type, edge_mask, dropout, seed,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``graphattn::fused_attention`` with the Triton kernels: ``(out [N_dst, H, Dv],
    lse [N_dst, H])`` (see :func:`.ops.numba_forward`)."""
    _check_rows(q, k, v)
    n, heads, dim = q.shape
    dim_v = v.size(2)
    _check_csr("t", t_ptr, t_idx, t_eid, n)
    terms = (edge_key, edge_value, rel_key, rel_value, edge_type, edge_mask)
    _check_devices(q.device, k=k, v=v, t_ptr=t_ptr, t_idx=t_idx, t_eid=t_eid, edge_key=edge_key,
                   edge_value=edge_value, rel_key=rel_key, rel_value=rel_value,
                   edge_type=edge_type, edge_mask=edge_mask)  # fmt: skip
    _check_terms(q, v, t_idx.numel(), *terms)
    _check_dropout(dropout)
    kernels = _triton_kernels()
    _check_launch(kernels, q.device)
    acc = accumulate_dtype(q.dtype)
    out = q.new_empty(n, heads, dim_v, dtype=acc)
    lse = q.new_empty(n, heads, dtype=acc)
    if n == 0:
        return out, lse
    term_tensors, flags = _term_args(q, *terms)
    keep, seed_value, thresh, drop = _dropout_args(dropout, seed, acc, q)
    blocks = block_sizes(heads, dim, dim_v, n, t_idx.numel())
    kernels.forward_kernel[_grid(n, blocks)](
        _rows(q), _rows(k), _rows(v), t_ptr, t_idx, t_eid, *term_tensors, keep, out, lse,
        seed_value, thresh, n, heads, dim, dim_v, **flags, DROPOUT=drop, **blocks,
    )  # fmt: skip
    return out, lse


def backward(
    grad_out, grad_lse, q, k, v, t_ptr, t_idx, t_eid, s_ptr, s_idx, s_eid, edge_key, edge_value,
    rel_key, rel_value, edge_type, edge_mask, out, lse, dropout, seed, need_qkv, need_edge_key,
    need_edge_value, need_rel,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """``graphattn::fused_attention_backward`` with the Triton kernels: ``(dq, dk, dv,
    d edge_key, d edge_value, d rel_key, d rel_value)``, empty where not needed (see
    :func:`.ops.numba_backward`)."""
    _check_rows(q, k, v)
    n, heads, dim = q.shape
    num_src, dim_v = k.size(0), v.size(2)
    acc = accumulate_dtype(q.dtype)
    _check_csr("t", t_ptr, t_idx, t_eid, n)
    if need_qkv:
        if s_ptr.numel() != num_src + 1:
            raise RuntimeError(
                "the fused engine's forward ran without the CSR by source, which the backward needs"
            )
        _check_csr("s", s_ptr, s_idx, s_eid, num_src)
    terms = (edge_key, edge_value, rel_key, rel_value, edge_type, edge_mask)
    num_edges = t_idx.numel()
    _check_terms(q, v, num_edges, *terms)
    _check_dropout(dropout)
    for name, t, shape in (
        ("grad_out", grad_out, (n, heads, dim_v)),
        ("out", out, (n, heads, dim_v)),
        ("lse", lse, (n, heads)),
        ("grad_lse", grad_lse, (n, heads)),
    ):
        if t is not None and (t.dtype != acc or t.shape != shape):
            raise ValueError(f"`{name}` must be {acc} of shape {list(shape)}, got {t.dtype} "
                             f"{list(t.shape)}")  # fmt: skip
    _check_devices(q.device, k=k, v=v, t_ptr=t_ptr, t_idx=t_idx, t_eid=t_eid,
                   s_ptr=s_ptr if need_qkv else None, s_idx=s_idx if need_qkv else None,
                   s_eid=s_eid if need_qkv else None, edge_key=edge_key, edge_value=edge_value,
                   rel_key=rel_key, rel_value=rel_value, edge_type=edge_type,
                   edge_mask=edge_mask, grad_out=grad_out, grad_lse=grad_lse, out=out,
                   lse=lse)  # fmt: skip
    need_edge_key = need_edge_key and edge_key is not None
    need_edge_value = need_edge_value and edge_value is not None
    need_rel = need_rel and rel_key is not None
    kernels = _triton_kernels()
    _check_launch(kernels, q.device)

    glse = lse.new_zeros(n, heads) if grad_lse is None else grad_lse.contiguous()
    delta = lse.new_empty(n, heads)
    dq = q.new_empty(n, heads, dim, dtype=acc)  # the kernel writes every row
    dek = lse.new_empty(num_edges, heads, dim) if need_edge_key else lse.new_empty(0)
    dev = lse.new_empty(num_edges, heads, dim_v) if need_edge_value else lse.new_empty(0)
    drk = lse.new_zeros(rel_key.shape) if need_rel else lse.new_empty(0)
    drv = lse.new_zeros(rel_value.shape) if need_rel else lse.new_empty(0)
    term_tensors, flags = _term_args(q, *terms)
    keep, seed_value, thresh, drop = _dropout_args(dropout, seed, acc, q)
    rows = (_rows(q), _rows(k), _rows(v))
    gout = grad_out.contiguous()
    if n > 0:
        blocks = block_sizes(heads, dim, dim_v, n, num_edges)
        kernels.backward_target_kernel[_grid(n, blocks)](
            *rows, t_ptr, t_idx, t_eid, *term_tensors, keep, gout, out.contiguous(),
            lse.contiguous(), glse, delta, dq, dek if need_edge_key else q,
            dev if need_edge_value else q, drk if need_rel else q, drv if need_rel else q,
            seed_value, thresh, n, heads, dim, dim_v, **flags, DROPOUT=drop,
            NEED_DEK=need_edge_key, NEED_DEV=need_edge_value, NEED_REL=need_rel, **blocks,
        )  # fmt: skip
    if not need_qkv:
        dq, dk, dv = q.new_empty(0), q.new_empty(0), q.new_empty(0)
        return dq, dk, dv, dek, dev, drk, drv
    dk = k.new_empty(k.shape, dtype=acc)  # the kernel writes every row
    dv = v.new_empty(v.shape, dtype=acc)
    if num_src > 0:
        blocks = block_sizes(heads, dim, dim_v, num_src, num_edges)
        kernels.backward_source_kernel[_grid(num_src, blocks)](
            *rows, s_ptr, s_idx, s_eid, *term_tensors, keep, gout, lse.contiguous(), delta,
            dk, dv, seed_value, thresh, num_src, heads, dim, dim_v, **flags, DROPOUT=drop,
            **blocks,
        )  # fmt: skip
    # gradients of 16-bit rows come back in their dtype (accumulated in float32)
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), dek, dev, drk, drv


def weights(q, k, t_ptr, t_idx, t_eid, edge_key, rel_key, edge_type, edge_mask, lse) -> Tensor:
    """``graphattn::fused_attention_weights`` with the Triton kernels: ``[E, H]`` (see
    :func:`.ops.numba_weights`)."""
    _check_rows(q, k, k)
    n, heads, dim = q.shape
    _check_csr("t", t_ptr, t_idx, t_eid, n)
    num_edges = t_idx.numel()
    _check_terms(q, q, num_edges, edge_key, None, rel_key, rel_key, edge_type, edge_mask)
    acc = accumulate_dtype(q.dtype)
    if lse.dtype != acc or lse.shape != (n, heads):
        raise ValueError(f"`lse` must be {acc} of shape [{n}, {heads}], got {lse.dtype} "
                         f"{list(lse.shape)}")  # fmt: skip
    _check_devices(q.device, k=k, t_ptr=t_ptr, t_idx=t_idx, t_eid=t_eid, edge_key=edge_key,
                   rel_key=rel_key, edge_type=edge_type, edge_mask=edge_mask, lse=lse)  # fmt: skip
    kernels = _triton_kernels()
    _check_launch(kernels, q.device)
    w = lse.new_empty(num_edges, heads)
    if n == 0:
        return w
    term_tensors, flags = _term_args(q, edge_key, None, rel_key, None, edge_type, edge_mask)
    blocks = block_sizes(heads, dim, dim, n, num_edges)
    del blocks["BLOCK_DV"], flags["HAS_EV"]
    kernels.weights_kernel[_grid(n, blocks)](
        _rows(q), _rows(k), t_ptr, t_idx, t_eid, term_tensors[0], term_tensors[2],
        term_tensors[4], term_tensors[5], lse.contiguous(), w, n, heads, dim, **flags,
        **blocks,
    )  # fmt: skip
    return w


# ---- registration ------------------------------------------------------------------------------
#: (custom op, its Triton implementation, its CPU implementation)
_IMPLEMENTATIONS = (
    (ops.fused_attention_op, forward, ops.numba_forward),
    (ops.backward_op, backward, ops.numba_backward),
    (ops.weights_op, weights, ops.numba_weights),
    (csr.group_edges, csr.torch_group_edges, csr.numba_group_edges),
)

for _op, _triton_impl, _ in _IMPLEMENTATIONS:
    _op.register_kernel("cuda", _triton_impl)


@contextmanager
def interpreted_on_cpu() -> Iterator[None]:
    """Inside the block the fused engine's custom ops run their CUDA implementations on CPU
    tensors: the Triton kernels through Triton's interpreter, the CSR by torch ops.

    For tests and kernel development on machines without a GPU (the interpreter runs each
    program in Python: slow; use small graphs). The interpreter must have been switched on
    before Triton was first imported (``TRITON_INTERPRET=1`` in the process's environment):
    ``@triton.jit`` reads the setting when a kernel is defined, Triton's own language
    functions included, and ``import graphattn`` imports Triton already (through
    torch_geometric and ``torch._dynamo``) where it is installed. On exit the numba
    implementations come back. NumPy's warnings about the IEEE arithmetic the kernels rely
    on (``-inf - -inf`` in a masked lane, ``log(0)``) are silenced inside, as a GPU does not
    raise them. Not thread-safe: it changes process-wide registrations.
    """
    if not _triton_kernels().INTERPRETED:
        raise RuntimeError(
            "Triton's interpreter is off: set TRITON_INTERPRET=1 in the environment before "
            "Triton is first imported (importing graphattn or torch_geometric imports it)"
        )
    try:
        for op, triton_impl, _ in _IMPLEMENTATIONS:
            op.register_kernel("cpu", triton_impl)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            yield
    finally:
        for op, _, cpu_impl in _IMPLEMENTATIONS:
            op.register_kernel("cpu", cpu_impl)
