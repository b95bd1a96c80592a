"""The docs run as written: every ``python`` block of the README and of ``docs/``, every
docstring example, and the command checker's plan (``scripts/check_docs_commands.py``, which
runs every shell command too, outside the test suite: they take hours) covers every command."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
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
    """docs/economy.md named test files that did not exist."""
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


def test_public_names():
    for name in graphattn.__all__:
        assert hasattr(graphattn, name), name


def test_the_version_is_one_number_everywhere():
    project = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    # the newest released version (an "Unreleased" section may stand above it)
    changelog = re.search(r"^## (?!Unreleased)(\S+)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert project[1] == graphattn.__version__ == changelog[1]
