"""The fused engine's Triton kernels (its CUDA implementation), against the reference.

Without a GPU they run on CPU tensors through Triton's interpreter (the repository's root
``conftest.py`` sets ``TRITON_INTERPRET=1`` before Triton is imported): inside
:func:`~graphattn.engines.fused.triton_ops.interpreted_on_cpu` the custom ops' CPU
implementations are the Triton ones, so these tests run the same ops, autograd formula, fake
implementations and CSR builder (torch ops) as CUDA does; only the device differs. With a GPU
they run on CUDA tensors, compiled. The interpreter runs every program in Python, so the graphs
are the small catalogue ones, mostly with large blocks (few programs); the tests with the
default block sizes cover many programs per launch and nodes whose edges take several steps.
"""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch

from graphattn import EdgeList, MultiHeadAttentionConv
from graphattn.engines import AttentionCall, get_engine
from graphattn.engines.fused import csr_for, fused_attention
from graphattn.engines.fused import triton_ops as T
from graphattn.engines.fused.csr import numba_group_edges, torch_group_edges
from graphattn.engines.scatter import scatter_attention
from graphattn.testing import assert_matches_reference

from ..conftest import CATALOGUE, FAST_GRADCHECK, HEAD_DIM, HEADS, IN_CHANNELS, OUT_CHANNELS
from .fused_common import (
    assert_layer_with_edge_terms_matches_scatter,
    gradcheck_op,
    random_terms,
)

pytest.importorskip("triton", reason="Triton (the `gpu` extra) is not installed")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(autouse=True)
def triton_kernels():
    """The Triton implementations serve the ops: on CUDA as registered, on the CPU through
    the interpreter."""
    with contextlib.nullcontext() if DEVICE == "cuda" else T.interpreted_on_cpu():
        yield


@pytest.fixture
def large_blocks(monkeypatch):
    """Blocks of up to 64 nodes: one program per launch on the catalogue's graphs."""
    monkeypatch.setattr(T, "TILE_ELEMENTS", 1 << 16)


def _mask_keeping_one(edge_index, generator):
    """A random half of the edges masked, but every target's first edge: the layer's masks
    (replaced self-loops) leave every target at least one edge (a target whose edges are all
    masked is NaN on the reference, zero on the fused engine)."""
    num_edges = edge_index.size(1)
    edge_ids = torch.arange(num_edges, device=edge_index.device)
    first = torch.full((int(edge_index.max()) + 1,), num_edges, device=edge_index.device)
    first = first.scatter_reduce(0, edge_index[1], edge_ids, "amin")
    mask = (torch.rand(num_edges, generator=generator) < 0.5).to(edge_index.device)
    mask[first[first < num_edges]] = False
    assert mask.any()
    return mask


def _qkv(num_nodes, dtype, generator, heads=HEADS, dim=HEAD_DIM):
    """q, k, v as engines receive them (q scaled by D ** -0.5): leaves on the test device."""
    q, k, v = (
        torch.randn(num_nodes, heads, dim, dtype=dtype, generator=generator) for _ in range(3)
    )
    q = q * dim**-0.5
    return tuple(t.to(DEVICE).requires_grad_() for t in (q, k, v))


# ---- the catalogue: outputs, weights and gradients against the reference ------------------
@pytest.mark.parametrize("kind", [pytest.param("none", marks=pytest.mark.slow), "both"])
def test_matches_reference_on_catalogue(graph_case, kind, generator, large_blocks):
    q, k, v = _qkv(graph_case.num_nodes, torch.float32, generator)
    terms = (
        None
        if kind == "none"
        else random_terms(kind, graph_case.num_edges, torch.float32, generator, device=DEVICE)
    )
    edge_index = graph_case.edge_index.to(DEVICE)
    assert_matches_reference("fused", q, k, v, edge_index, terms=terms)


SUBSET = {c.name: c for c in CATALOGUE if c.name in ("isolated", "duplicate-edges", "window-batch")}
_FAST_FLOAT64 = {("duplicate-edges", "relations"), ("window-batch", "features")}  # the rest: slow
FLOAT64_CASES = [
    pytest.param(name, kind, marks=() if (name, kind) in _FAST_FLOAT64 else pytest.mark.slow)
    for name in SUBSET
    for kind in ("features", "relations")
]


@pytest.mark.parametrize("name,kind", FLOAT64_CASES)
def test_float64_with_masked_edges(name, kind, generator, large_blocks):
    graph = SUBSET[name]
    edge_index = graph.edge_index.to(DEVICE)
    q, k, v = _qkv(graph.num_nodes, torch.float64, generator)
    terms = random_terms(kind, graph.num_edges, torch.float64, generator, device=DEVICE)
    terms = dataclasses.replace(terms, mask=_mask_keeping_one(edge_index, generator))
    assert_matches_reference("fused", q, k, v, edge_index, terms=terms)


def test_default_blocks_many_programs_and_steps(generator):
    """With the default block sizes: many programs per launch, and a hub whose edges take
    several steps while its block's other nodes have few (keys grow with the source id, so
    later steps raise the running maximum)."""
    n, hub = 21, 13  # mean degree 2: 2 edges per step, 16 nodes per program
    src = torch.cat([torch.arange(hub) % 20 + 1, torch.randint(0, n, (30,), generator=generator)])
    dst = torch.cat(
        [torch.zeros(hub, dtype=torch.long), torch.randint(1, n, (30,), generator=generator)]
    )
    edge_index = torch.stack([src, dst]).to(DEVICE)
    blocks = T.block_sizes(HEADS, HEAD_DIM, HEAD_DIM, n, edge_index.size(1))
    assert blocks["BLOCK_N"] < n and blocks["BLOCK_E"] < hub  # several programs and steps
    q, k, v = _qkv(n, torch.float32, generator)
    with torch.no_grad():
        k.mul_(0.1).add_(torch.arange(n, device=DEVICE).view(-1, 1, 1) * 0.05)
        q.abs_()
    terms = random_terms("both", edge_index.size(1), torch.float32, generator, device=DEVICE)
    terms = dataclasses.replace(terms, mask=_mask_keeping_one(edge_index, generator))
    assert_matches_reference("fused", q, k, v, edge_index, terms=terms)


def test_value_width_differs_and_bipartite(generator, large_blocks):
    """7 sources, 4 targets (target 3 without edges), values of 7 channels, keys of 3."""
    edge_index = torch.stack(
        [
            torch.randint(0, 7, (25,), generator=generator),
            torch.randint(0, 3, (25,), generator=generator),
        ]
    ).to(DEVICE)
    q = torch.randn(4, 2, 3, dtype=torch.float64, generator=generator).to(DEVICE).requires_grad_()
    k = torch.randn(7, 2, 3, dtype=torch.float64, generator=generator).to(DEVICE).requires_grad_()
    v = torch.randn(7, 2, 7, dtype=torch.float64, generator=generator).to(DEVICE).requires_grad_()
    assert_matches_reference("fused", q, k, v, EdgeList(edge_index, 7, 4))


# ---- 16-bit rows ----------------------------------------------------------------------------
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "name", ["duplicate-edges", pytest.param("isolated", marks=pytest.mark.slow)]
)
def test_16_bit_rows_match_the_upcast_reference(half, name, generator, large_blocks):
    """16-bit q, k, v are read as they are and accumulated in float32: outputs and weights
    equal the float32 reference on the same (upcast) values to float32 precision; gradients
    come back 16-bit, equal to the reference's rounded to 16 bits."""
    graph = SUBSET[name]
    edges = EdgeList(graph.edge_index.to(DEVICE), graph.num_nodes)
    q16, k16, v16 = (
        t.detach().to(half).requires_grad_()
        for t in _qkv(graph.num_nodes, torch.float32, generator)
    )
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q16, k16, v16))
    terms = random_terms("both", graph.num_edges, torch.float32, generator, device=DEVICE)
    terms = dataclasses.replace(terms, mask=_mask_keeping_one(edges.edge_index, generator))
    out, w = fused_attention(AttentionCall(q16, k16, v16, edges, terms=terms, need_weights=True))
    ref, ref_w = scatter_attention(
        AttentionCall(q32, k32, v32, edges, terms=terms, need_weights=True)
    )
    assert out.dtype == w.dtype == torch.float32
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(w, ref_w, atol=1e-5, rtol=1e-4)
    grad = torch.randn(ref.shape, generator=generator).to(DEVICE)
    got = torch.autograd.grad(out, (q16, k16, v16), grad)
    want = torch.autograd.grad(ref, (q32, k32, v32), grad)
    for g, r in zip(got, want, strict=True):
        assert g.dtype == half
        torch.testing.assert_close(g, r.to(half))


@pytest.mark.slow
def test_16_bit_layer_matches_scatter(generator, large_blocks):
    torch.manual_seed(0)
    conv = MultiHeadAttentionConv(IN_CHANNELS, OUT_CHANNELS, HEADS, engine="fused")
    ref = MultiHeadAttentionConv(IN_CHANNELS, OUT_CHANNELS, HEADS, engine="scatter")
    ref.load_state_dict(conv.state_dict())
    conv, ref = conv.to(DEVICE, torch.bfloat16), ref.to(DEVICE, torch.bfloat16)
    x = torch.randn(17, IN_CHANNELS, generator=generator).to(DEVICE, torch.bfloat16)
    edge_index = torch.randint(0, 17, (2, 60), generator=generator).to(DEVICE)
    out, att = conv(x, edge_index, return_attention=True)
    want, want_att = ref(x, edge_index, return_attention=True)
    assert out.dtype == torch.bfloat16 and att.weights.dtype == torch.float32
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(att.weights, want_att.weights)
    out.float().sum().backward()
    want.float().sum().backward()
    torch.testing.assert_close(conv.lin_key.weight.grad, ref.lin_key.weight.grad)


# ---- dropout: the numba kernels' mask ------------------------------------------------------
def _op_args(num_nodes, num_edges, *, dropout, generator, heads=2, dim=3, dtype=torch.float64):
    """The op's arguments on the test device (the seed stays on the CPU, as the engine's)."""
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=generator)
    edges = EdgeList(edge_index.to(DEVICE), num_nodes)
    q, k, v = _qkv(num_nodes, dtype, generator, heads, dim)
    t = random_terms("both", num_edges, dtype, generator, heads, dim, masked=True, device=DEVICE)
    by_target, by_source = csr_for(edges, "target"), csr_for(edges, "source")
    return (
        q, k, v, *by_target.as_tuple(), *by_source.as_tuple(), t.key, t.value, t.rel_key,
        t.rel_value, t.edge_type, t.mask, dropout, torch.tensor(-8_765_432_109_876),
    )  # fmt: skip


def _run_op(args):
    out, lse = torch.ops.graphattn.fused_attention(*args)
    grad = torch.ones_like(out)
    grads = torch.autograd.grad(
        out, [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad], grad
    )
    return (out, lse, *grads)


@pytest.mark.xdist_group("fused-builds")  # the numba builds load (or compile) on one worker
@pytest.mark.parametrize(
    "dtype", [torch.float32, pytest.param(torch.float64, marks=pytest.mark.slow)]
)
def test_dropout_mask_equals_the_numba_kernels(dtype, generator, large_blocks):
    """One seed (a negative one, taken as uint64 by both) gives the same mask on both
    implementations: equal outputs and gradients of every input (the numba kernels run on
    CPU copies of the inputs)."""
    args = _op_args(9, 40, dropout=0.4, generator=generator, dtype=dtype)
    got = _run_op(args)
    cpu_args = tuple(
        a.detach().cpu().requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a
        for a in args
    )
    # on the CPU, leave the interpreted context for a moment: numba serves the ops
    with _numba_ops() if DEVICE == "cpu" else contextlib.nullcontext():
        want = _run_op(cpu_args)
    tol = {"atol": 1e-12, "rtol": 1e-10} if dtype == torch.float64 else {"atol": 1e-6, "rtol": 1e-5}
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g.cpu(), w, **tol)
    no_dropout = _run_op(args[:-2] + (0.0, args[-1]))
    assert not torch.allclose(got[0], no_dropout[0])  # something was dropped


@contextlib.contextmanager
def _numba_ops():
    for op, _, cpu_impl in T._IMPLEMENTATIONS:
        op.register_kernel("cpu", cpu_impl)
    try:
        yield
    finally:
        for op, triton_impl, _ in T._IMPLEMENTATIONS:
            op.register_kernel("cpu", triton_impl)


def test_gradcheck_with_dropout_mask_and_terms(generator, large_blocks):
    args = _op_args(6, 17, dropout=0.3, generator=generator)
    assert gradcheck_op(args, **FAST_GRADCHECK)


# ---- the op: opcheck, weights with gradients -------------------------------------------------
@pytest.mark.parametrize("dropout", [pytest.param(0.0, marks=pytest.mark.slow), 0.3])
def test_opcheck(dropout, generator, large_blocks):
    """``torch.library.opcheck`` on ``graphattn::fused_attention`` served by the Triton
    implementation: schema, autograd registration, fake tensors, AOT dispatch."""
    args = _op_args(7, 19, dropout=dropout, generator=generator)
    torch.library.opcheck(torch.ops.graphattn.fused_attention.default, args)


def test_opcheck_weights_and_csr(generator, large_blocks):
    args = _op_args(7, 19, dropout=0.0, generator=generator)
    q, k, tp, ti, te = args[0], args[1], *args[3:6]
    lse = torch.ops.graphattn.fused_attention(*args)[1].detach()
    weights_args = (q.detach(), k.detach(), tp, ti, te, args[9].detach(), args[11].detach(),
                    args[13], args[14], lse)  # fmt: skip
    torch.library.opcheck(torch.ops.graphattn.fused_attention_weights.default, weights_args)
    edge_index = torch.randint(0, 6, (2, 15), generator=generator).to(DEVICE)
    torch.library.opcheck(
        torch.ops.graphattn.group_edges.default, (edge_index[1], edge_index[0], 8, 6)
    )


def test_weights_carry_gradients(generator, large_blocks):
    """A loss on the returned weights reaches q and k through the saved log-sum-exp's
    gradient, as on the reference."""
    edges = EdgeList(torch.randint(0, 9, (2, 40), generator=generator).to(DEVICE), 9)
    q, k, v = _qkv(9, torch.float64, generator, heads=2, dim=3)
    grads = []
    for engine in ("fused", "scatter"):
        _, w = get_engine(engine)(AttentionCall(q, k, v, edges, need_weights=True))
        entropy = -(w * w.clamp_min(1e-12).log()).sum()
        grads.append(torch.autograd.grad(entropy, (q, k)))
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want)


def test_layer_with_edge_features_and_relations(generator, large_blocks):
    assert_layer_with_edge_terms_matches_scatter(generator, DEVICE)


# ---- the CSR builder by torch ops, and the wrapper's checks ----------------------------------
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_torch_group_edges_equals_the_numba_sort(dtype, generator):
    edge_index = torch.randint(0, 9, (2, 50), generator=generator).to(dtype)
    got = torch_group_edges(edge_index[1], edge_index[0], 11, 9)  # 2 nodes without edges
    want = numba_group_edges(edge_index[1], edge_index[0], 11, 9)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and torch.equal(g, w)
    empty = torch.empty(0, dtype=dtype)
    assert torch_group_edges(empty, empty, 3, 3)[0].tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match=r"edge 1 \(0 -> 5\)"):
        torch_group_edges(torch.tensor([1, 5]), torch.tensor([0, 0]), 5, 3)


def test_wrapper_checks_name_the_argument(generator):
    args = list(_op_args(5, 12, dropout=0.0, generator=generator))
    bad = {
        0: (args[0].float(), "`q`"),  # q float32, k float64
        3: (args[3][:-1], "`t_ptr`"),
        4: (args[4].long(), "`t_idx`"),
        9: (args[9][:, :1], "`edge_key`"),
    }
    for position, (value, name) in bad.items():
        broken = list(args)
        broken[position] = value
        with pytest.raises(ValueError, match=name):
            T.forward(*[a.detach() if isinstance(a, torch.Tensor) else a for a in broken])
    with pytest.raises(ValueError, match="`dropout`"):
        T.forward(
            *[a.detach() if isinstance(a, torch.Tensor) else a for a in args[:-2]], 1.0, args[-1]
        )


def test_block_sizes_cover_the_shape():
    for heads, dim, dim_v, nodes, edges in [
        (1, 1, 1, 1, 0),
        (3, 11, 7, 23, 97),
        (8, 16, 16, 10**5, 16 * 10**5),
        (16, 64, 64, 10, 10**6),
    ]:
        b = T.block_sizes(heads, dim, dim_v, nodes, edges)
        assert b["BLOCK_H"] >= heads and b["BLOCK_D"] >= dim and b["BLOCK_DV"] >= dim_v
        for size in b.values():
            assert size >= 1 and size & (size - 1) == 0  # powers of two
        tile = b["BLOCK_N"] * b["BLOCK_E"] * b["BLOCK_H"] * max(b["BLOCK_D"], b["BLOCK_DV"])
        assert tile <= max(T.TILE_ELEMENTS, b["BLOCK_H"] * max(b["BLOCK_D"], b["BLOCK_DV"]))


# ---- compiled for a GPU, offline --------------------------------------------------------------
_COMPILE = r"""
import json, os, re, subprocess, sys, tempfile
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from graphattn.engines.fused import triton_kernels as K
from graphattn.engines.fused.triton_ops import block_sizes

assert not K.INTERPRETED
POINTERS = {"ptr": "*i64", "idx": "*i32", "eid": "*i32", "etype": "*i64", "emask": "*u8"}
SCALARS = {"seed": "i64", "thresh": "i64", "N": "i32", "H": "i32", "D": "i32", "DV": "i32"}
cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin/cuobjdump")
results = []
for kernel in (K.forward_kernel, K.weights_kernel, K.backward_target_kernel,
               K.backward_source_kernel):
    for rows, acc, flags in (("fp32", "fp32", True), ("fp64", "fp64", True),
                             ("bf16", "fp32", False)):
        blocks = block_sizes(8, 16, 16, 100_000, 1_600_000)
        signature, constants = {}, {}
        for name in kernel.arg_names:
            if name in blocks or name.startswith(("HAS_", "NEED_")) or name == "DROPOUT":
                signature[name] = "constexpr"
                constants[name] = blocks.get(name, flags)
            elif name in ("q", "k", "v"):
                signature[name] = "*" + rows
            else:
                signature[name] = POINTERS.get(name) or SCALARS.get(name) or "*" + acc
        compiled = triton.compile(ASTSource(kernel, signature, constants),
                                  target=GPUTarget("cuda", 90, 32))
        with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
            f.write(compiled.asm["cubin"])
        usage = subprocess.run([cuobjdump, "--dump-resource-usage", f.name],
                               capture_output=True, text=True).stdout
        os.unlink(f.name)
        stack = re.search(r"STACK:(\d+)", usage)
        results.append({"kernel": kernel.__name__, "rows": rows, "flags": flags,
                        "stack": int(stack[1]) if stack else None})
print(json.dumps(results))
"""


@pytest.mark.slow
def test_kernels_compile_for_sm90_without_spills():
    """Triton's own compiler and ptxas (bundled with Triton) build every kernel for sm_90
    offline, every option on (float32, float64) and off (bfloat16 rows), at the default block
    sizes of 8 heads of 16 channels, with at most 16 bytes of stack (ptxas may keep a value or
    two there; tiles of 4096 elements spilled kilobytes): what the interpreter cannot check (a
    kernel may run interpreted and still not compile)."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [sys.executable, "-c", _COMPILE], env=env, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(results) == 12
    for r in results:
        assert r["stack"] is not None and r["stack"] <= 16, r
