"""The docs run as written: every ``python`` block of the README and of ``docs/``, every
docstring example, and the command checker's plan (``scripts/check_docs_commands.py``, which
runs every shell command too, outside the test suite: they take hours) covers every command."""

from __future__ import annotations

import ast
import doctest
import functools
import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
from pathlib import Path

import pytest

import graphattn

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location(
        "check_docs_commands", ROOT / "scripts" / "check_docs_commands.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_docs_commands", module)
    spec.loader.exec_module(module)
    return module


checker = _checker()
DOCS = checker.documents(ROOT)
BLOCKS = {
    str(path.relative_to(ROOT)): [i for i in checker.extract(path, ROOT) if i.kind == "python"]
    for path in DOCS
}
WITH_BLOCKS = sorted(name for name, blocks in BLOCKS.items() if blocks)


def test_the_readme_and_docs_have_python_blocks():
    assert "README.md" in WITH_BLOCKS and any(n.startswith("docs/") for n in WITH_BLOCKS)


@pytest.mark.parametrize("name", WITH_BLOCKS)
def test_every_python_block_runs(name):
    """Each file's blocks in order, in one namespace (a block may use an earlier one's names,
    as a reader follows the page); a block marked ``<!-- not run: <reason> -->`` is left out
    and must say why."""
    namespace = {"__name__": "docs"}
    for block in BLOCKS[name]:
        if block.not_run is not None:
            assert len(block.not_run) >= 10, f"{block.source}: a not-run block must say why"
            continue
        exec(compile(block.text, block.source, "exec"), namespace)


def test_the_command_checker_knows_every_command():
    """Every shell command of the docs is run by scripts/check_docs_commands.py as written, in a
    quick form or not at all, each substitution saying why; no entry of its table is stale."""
    items, stale = checker.plan(ROOT)
    assert not stale, f"substitutions no document uses any more: {stale}"
    shell = [(item, sub) for item, sub in items if item.kind == "shell"]
    assert len(shell) > 40  # the README, both script indexes and docs/ hold dozens
    for item, sub in shell:
        assert sub is None or len(sub.why) >= 10, item
    commands = {item.text for item, _ in shell}
    assert {"make demo", "make test", "python examples/quickstart.py"} <= commands
    for item, sub in shell:  # a recorded result is never overwritten by the check
        command = checker.redirect(sub.run if sub and sub.run else item.text, Path("/scratch"))
        assert not re.search(r"--(out|runs-out)\s+results/", command), command


def test_extraction_reads_blocks_spans_markers_and_templates(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "Run `python a.py --quick` or `make x`; `python` alone and `--flag` are no commands,\n"
        "`python b.py <claim> ...` is a template and `pytest\ntests/x.py` wraps.\n\n"
        "```\nmake demo   # set up\npython c.py \\\n    --out results/c\n```\n\n"
        "<!-- not run: needs two machines -->\n```python\nx = 1\n```\n\n```python\ny = 2\n```\n"
    )
    items = checker.extract(doc, tmp_path)
    assert [(i.kind, i.text) for i in items if i.kind != "python"] == [
        ("shell", "python a.py --quick"),
        ("shell", "make x"),
        ("template", "python b.py <claim> ..."),
        ("shell", "pytest tests/x.py"),
        ("shell", "make demo"),
        ("shell", "python c.py --out results/c"),
    ]
    blocks = [i for i in items if i.kind == "python"]
    assert [(b.text, b.not_run) for b in blocks] == [
        ("x = 1\n", "needs two machines"),
        ("y = 2\n", None),
    ]


def test_the_test_files_the_docs_name_exist():
    """Every test file (and test) the docs name exists."""
    named = set()
    for path in DOCS:
        named |= set(re.findall(r"tests/[\w/]+\.py(?:::\w+)?", path.read_text()))
    assert named
    for ref in sorted(named):
        file, _, test = ref.partition("::")
        assert (ROOT / file).exists(), f"{ref}: no such file"
        if test:
            assert f"def {test}" in (ROOT / file).read_text(), f"{ref}: no such test"


MODULES = sorted(m.name for m in pkgutil.walk_packages(graphattn.__path__, prefix="graphattn."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


PUBLIC = ["graphattn"] + [m for m in MODULES if not any(p.startswith("_") for p in m.split("."))]


@functools.cache
def _documented_in_source(module_name: str) -> frozenset[str]:
    """Names a module's own source documents where it defines them: a ``def`` or ``class``
    with a docstring, or an assignment with a string after it or ``#:`` comments before it
    (what Sphinx's autodoc reads)."""
    source = inspect.getsource(importlib.import_module(module_name))
    lines, body = source.splitlines(), ast.parse(source).body
    found = set()
    for node, after in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node):
            found.add(node.name)
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        string_after = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
        comment_before = node.lineno > 1 and lines[node.lineno - 2].lstrip().startswith("#:")
        if string_after or comment_before:
            found.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(found)


def _documented(name: str, obj: object) -> bool:
    """A docstring of its own, or documented where a graphattn module defines it."""
    if inspect.isclass(obj):
        own = vars(obj).get("__doc__")
    elif inspect.isfunction(obj) or inspect.ismodule(obj):
        own = obj.__doc__
    else:
        own = None  # an instance's __doc__ is its class's
    if own and own.strip():
        return True
    return any(
        getattr(importlib.import_module(module), name, None) is obj
        and name in _documented_in_source(module)
        for module in PUBLIC + MODULES
    )


@pytest.mark.parametrize("module_name", PUBLIC)
def test_public_names_resolve_and_are_documented(module_name):
    """Every public module has a docstring and (every package) an ``__all__``; every name in
    an ``__all__`` exists, once, and is documented, so the API reference lists it."""
    module = importlib.import_module(module_name)
    assert (module.__doc__ or "").strip(), f"{module_name} has no docstring"
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert not hasattr(module, "__path__"), f"the package {module_name} has no __all__"
        return
    assert len(set(exported)) == len(exported), f"{module_name}.__all__ repeats a name"
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ names {name!r}, which is not there"
        obj = getattr(module, name)
        assert _documented(name, obj), f"{module_name}.{name} has no documentation"


def _resolve(dotted: str) -> object:
    """The object a dotted ``graphattn...`` name refers to (an ``AttributeError`` or
    ``ImportError`` when there is none)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_the_docs_name_only_what_the_package_has():
    """Every ``graphattn.<...>`` name the README and docs spell out in code exists."""
    names = set()
    for path in DOCS:
        names |= set(re.findall(r"`(graphattn(?:\.\w+)+)(?:\(\))?`", path.read_text()))
    assert len(names) > 10
    missing = []
    for dotted in sorted(names):
        try:
            _resolve(dotted)
        except (AttributeError, ImportError):
            missing.append(dotted)
    assert not missing, f"the docs name what graphattn does not have: {missing}"


def test_the_version_is_one_number_everywhere():
    project = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    # the newest released version (an "Unreleased" section may stand above it)
    changelog = re.search(r"^## (?!Unreleased)(\S+)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert project[1] == graphattn.__version__ == changelog[1]
