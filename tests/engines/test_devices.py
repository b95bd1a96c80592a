"""Every engine on CUDA: what ``auto`` plans there, and a static check that no CPU-only call
(numba, NumPy views of tensors, private ATen CPU kernels, moving data to the host) sits on a
path that CUDA tensors take.

No GPU is needed: the plan is a function of the request's device, and the check reads the
engines' source. The rules of the static check:

1. A CPU-only construct (``.numpy()``, ``.cpu()``, a use of numba, an import of a module that
   imports numba, ``torch.ops.aten.<...cpu...>`` or ``getattr(torch.ops.aten, "...cpu...")``)
   appears only inside a CPU scope: a function or class marked ``@cpu_only``
   (:func:`graphattn.engines.base.cpu_only`), or a function registered as a custom op's CPU
   implementation (``device_types="cpu"``, ``register_kernel("cpu")``), or a module that
   imports numba (all of it runs on the CPU).
2. A call of a ``@cpu_only`` function (or of a method of a ``@cpu_only`` class) sits in a CPU
   scope, or behind a device test: in the body of an ``if`` (or after an ``and``) whose
   condition compares something with ``"cpu"``, or calls a guard function whose return value
   is such a comparison joined by ``and``.
3. No ``@cpu_only`` function is registered as a kernel for another device.
4. At run time: every ``graphattn::`` custom op that has a CPU kernel has a CUDA kernel.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import torch

import graphattn.engines
import graphattn.engines.fused as fused
from graphattn import ChunkedGraph, EdgeList, FullGraph, GridGraph, WindowGraph
from graphattn.engines import AttentionRequest, resolve_engine

ENGINES = Path(graphattn.engines.__file__).resolve().parent
CUDA = torch.device("cuda")


# ---- planning on CUDA ------------------------------------------------------------------------
def _request(graph, device=CUDA, **options):
    return AttentionRequest(graph=graph, device=device, dtype=torch.float32, **options)


@pytest.mark.parametrize(
    "graph,engine",
    [
        (FullGraph(64), "dense"),
        (FullGraph.from_sizes([3, 5]), "dense"),
        (WindowGraph(8192, radius=64), "blocked"),
        (ChunkedGraph.from_sizes([7, 12], chunk_size=3), "blocked"),
        (GridGraph(4, 5, radius=1), "blocked"),
        (EdgeList(torch.tensor([[0, 1], [1, 2]]), 3), "fused"),  # any size: no crossover on CUDA
    ],
    ids=["full", "full-batch", "window", "chunked", "grid", "edge-list"],
)
def test_auto_on_cuda(graph, engine):
    assert resolve_engine("auto", _request(graph)).name == engine


def test_auto_on_cuda_edge_terms_and_fallbacks(monkeypatch):
    edges = EdgeList(torch.tensor([[0, 1], [1, 2]]), 3)
    # edge features on a pattern: the SDPA engines decline, the fused engine takes it
    pattern = _request(WindowGraph(20, radius=2), has_edge_features=True)
    assert resolve_engine("auto", pattern).name == "fused"
    assert resolve_engine("auto", _request(edges, has_relations=True)).name == "fused"
    # PyG hooks or explainers: only scatter runs PyG's message passing
    assert resolve_engine("auto", _request(edges, message_passing=True)).name == "scatter"
    # without Triton the fused engine declines CUDA, with the reason
    monkeypatch.setattr(fused, "triton_available", lambda: False)
    assert resolve_engine("auto", _request(edges)).name == "scatter"
    with pytest.raises(ValueError, match="Triton is not installed"):
        resolve_engine("fused", _request(edges))


def test_fused_declines_other_devices_and_takes_float64_on_cuda():
    edges = EdgeList(torch.tensor([[0], [1]]), 2)
    for device in ("meta", "mps"):
        reason = fused.supports(_request(edges, device=torch.device(device)))
        assert reason is not None and "CUDA (Triton)" in reason
    float64 = AttentionRequest(graph=edges, device=CUDA, dtype=torch.float64)
    assert fused.supports(float64) is None


def test_every_custom_op_has_a_cuda_kernel():
    ops = [n for n in torch._C._dispatch_get_all_op_names() if n.startswith("graphattn::")]
    assert len(ops) >= 4  # fused_attention, its backward, its weights, group_edges
    for name in ops:
        if torch._C._dispatch_has_kernel_for_dispatch_key(name, "CPU"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(name, "CUDA"), name


# ---- the static check ------------------------------------------------------------------------
def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _ancestors(node, parents):
    while node in parents:
        node = parents[node]
        yield node


def _name(node) -> str | None:
    """``f`` for ``f`` or ``x.f``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _imports_numba(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "numba" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "numba":
            return True
    return False


class Module:
    def __init__(self, path: Path):
        self.path = path
        self.name = path.relative_to(ENGINES.parent).with_suffix("").as_posix().replace("/", ".")
        self.tree = ast.parse(path.read_text(), str(path))
        self.parents = _parents(self.tree)
        self.cpu_module = _imports_numba(self.tree)
        self.strings = {  # module-level string constants
            t.id: n.value.value
            for n in self.tree.body
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
            and isinstance(n.value.value, str)
            for t in n.targets
            if isinstance(t, ast.Name)
        }  # fmt: skip

    def defs(self):
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield node


def _marked_cpu_only(node) -> bool:
    return any(_name(d) == "cpu_only" for d in getattr(node, "decorator_list", ()))


def _registered_for_cpu(node) -> bool:
    """A def decorated as a custom op's CPU implementation."""
    for d in getattr(node, "decorator_list", ()):
        if not isinstance(d, ast.Call):
            continue
        for kw in d.keywords:
            if kw.arg == "device_types" and _is_cpu_constant(kw.value):
                return True
        if _name(d.func) == "register_kernel" and d.args and _is_cpu_constant(d.args[0]):
            return True
    return False


def _is_cpu_constant(node) -> bool:
    return isinstance(node, ast.Constant) and node.value == "cpu"


def _cpu_scope(node, module: Module) -> bool:
    return module.cpu_module or any(
        _marked_cpu_only(a) or _registered_for_cpu(a) for a in _ancestors(node, module.parents)
    )


def _string_value(node, module: Module) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return module.strings.get(node.id, "")
    if isinstance(node, ast.BinOp):
        return _string_value(node.left, module) + _string_value(node.right, module)
    return ""


def _cpu_constructs(module: Module, cpu_modules: set[str]):
    """``(node, what)`` for every CPU-only construct of ``module`` (rule 1)."""
    package = module.name.rpartition(".")[0]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("numpy", "cpu") and not node.args:
                yield node, f".{node.func.attr}()"
        if isinstance(node, ast.Call) and _name(node.func) == "getattr" and len(node.args) >= 2:
            if _dotted(node.args[0]) == "torch.ops.aten" and "cpu" in _string_value(
                node.args[1], module
            ):
                yield node, "getattr(torch.ops.aten, <a CPU kernel>)"
        if isinstance(node, ast.Attribute) and _dotted(node.value) == "torch.ops.aten":
            if "cpu" in node.attr:
                yield node, f"torch.ops.aten.{node.attr}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "numba":
                    yield node, "import numba"
        if isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative: resolve against this package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names = [f"{base}.{target}".rstrip(".")] if target else []
                names += [f"{base}.{a.name}" for a in node.names] if not target else []
            else:
                names = [target]
            if target.split(".")[0] == "numba" or any(n in cpu_modules for n in names):
                yield node, f"import of {', '.join(names)} (numba)"
        if isinstance(node, ast.Name) and node.id in ("numba", "njit"):
            yield node, node.id


def _checks_cpu(expr, guards: set[str]) -> bool:
    """Whether ``expr`` tests for the CPU: ``... == "cpu"`` or a call of a guard function."""
    for node in ast.walk(expr):
        if isinstance(node, ast.Compare) and any(isinstance(o, ast.Eq) for o in node.ops):
            if any(_is_cpu_constant(c) for c in [node.left, *node.comparators]):
                return True
        if isinstance(node, ast.Call) and _name(node.func) in guards:
            return True
    return False


def _guards(modules: list[Module]) -> set[str]:
    """Functions whose every return value is an ``and`` of conditions, one a CPU test."""
    found = set()
    for module in modules:
        for node in module.defs():
            if isinstance(node, ast.ClassDef):
                continue
            returns = [n for n in ast.walk(node) if isinstance(n, ast.Return) and n.value]
            if returns and all(
                isinstance(r.value, ast.BoolOp)
                and isinstance(r.value.op, ast.And)
                and any(_checks_cpu(v, set()) for v in r.value.values)
                for r in returns
            ):
                found.add(node.name)
    return found


def _guarded(node, module: Module, guards: set[str]) -> bool:
    child = node
    for parent in _ancestors(node, module.parents):
        if isinstance(parent, ast.If) and child in parent.body and _checks_cpu(parent.test, guards):
            return True
        if isinstance(parent, ast.BoolOp) and isinstance(parent.op, ast.And):
            earlier = parent.values[: parent.values.index(child)]
            if any(_checks_cpu(v, guards) for v in earlier):
                return True
        child = parent
    return False


def _engine_modules() -> list[Module]:
    return [Module(p) for p in sorted(ENGINES.rglob("*.py"))]


def _violations(modules: list[Module]) -> list[str]:
    cpu_modules = {m.name for m in modules if m.cpu_module}
    cpu_only = {n.name for m in modules for n in m.defs() if _marked_cpu_only(n)}
    guards = _guards(modules)
    found = []
    for module in modules:
        where = module.path.relative_to(ENGINES.parent)
        # rule 1: CPU-only constructs only in CPU scopes
        for node, what in _cpu_constructs(module, cpu_modules):
            if not _cpu_scope(node, module):
                found.append(f"{where}:{node.lineno}: {what} outside a CPU scope")
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = _name(func)
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if func.value.id in cpu_only:  # a method of a @cpu_only class
                    called = func.value.id
            # rule 2: calls of @cpu_only functions in CPU scopes or behind a device test
            if called in cpu_only:
                if not (_cpu_scope(node, module) or _guarded(node, module, guards)):
                    found.append(f"{where}:{node.lineno}: call of @cpu_only {called} unguarded")
            # rule 3: no @cpu_only function registered for another device (or for all)
            if _name(func) in ("register_kernel", "custom_op"):
                if _name(func) == "custom_op":
                    devices = [k.value for k in node.keywords if k.arg == "device_types"]
                else:
                    devices = node.args[:1]
                passed = {_name(a) for a in node.args} & cpu_only
                if passed and not (devices and all(_is_cpu_constant(d) for d in devices)):
                    found.append(f"{where}:{node.lineno}: {passed} registered off the CPU")
    return found


def test_no_cpu_only_call_on_a_cuda_path():
    modules = _engine_modules()
    assert any(m.cpu_module for m in modules)  # the numba kernels are seen as CPU-only
    assert _violations(modules) == []


def test_static_check_finds_cpu_only_calls(tmp_path, monkeypatch):
    """The check fails on each kind of CPU-only call placed on a CUDA path."""
    source = """
import numpy as np
import torch
from .base import cpu_only
from . import kernels
_FLASH = "_scaled_dot_product_flash_attention_for_cpu"

@cpu_only
def numba_thing(x):
    return x.numpy()

def is_cpu(x):
    return x.dim() > 0 and x.device.type == "cpu"

def fine(x):
    if x.device.type == "cpu":
        numba_thing(x)
    if is_cpu(x):
        return numba_thing(x)
    return x.device.type == "cpu" and numba_thing(x)

def leaks(x):
    a = x.numpy()
    b = x.cpu()
    c = getattr(torch.ops.aten, _FLASH)
    d = torch.ops.aten._foo_for_cpu(x)
    numba_thing(x)
    if x.device.type != "cpu":
        numba_thing(x)
    x.register_kernel("cuda", numba_thing)
"""
    (tmp_path / "engines").mkdir()
    (tmp_path / "engines" / "bad.py").write_text(source)
    (tmp_path / "engines" / "kernels.py").write_text("from numba import njit\n")
    monkeypatch.setattr(sys.modules[__name__], "ENGINES", tmp_path / "engines")
    modules = [Module(p) for p in sorted((tmp_path / "engines").glob("*.py"))]
    found = _violations(modules)
    lines = source.splitlines()  # line i + 1 of bad.py is lines[i]

    def at(text, start=0):
        return f"engines/bad.py:{lines.index(text, start) + 1}:"

    for text in [
        "from . import kernels",  # a module that imports numba
        "    a = x.numpy()",
        "    b = x.cpu()",
        "    c = getattr(torch.ops.aten, _FLASH)",
        "    d = torch.ops.aten._foo_for_cpu(x)",
        '    x.register_kernel("cuda", numba_thing)',
    ]:
        assert sum(v.startswith(at(text)) for v in found) == 1, (text, found)
    leak = lines.index("def leaks(x):")
    calls = [v for v in found if "call of @cpu_only numba_thing" in v]
    assert len(calls) == 2, found  # the calls in `fine` are guarded
    assert calls[0].startswith(at("    numba_thing(x)", leak))  # no guard
    assert calls[1].startswith(at("        numba_thing(x)", leak))  # `!= "cpu"` is no guard
    assert len(found) == 8, found
