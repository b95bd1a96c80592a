"""The README's usage example and every docstring example run as written."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import graphattn

ROOT = Path(__file__).resolve().parents[1]


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_has_usage_example():
    assert readme_python_blocks(), "README.md lost its ```python usage example"


@pytest.mark.parametrize("index", range(len(readme_python_blocks())))
def test_readme_example_runs(index):
    code = readme_python_blocks()[index]
    exec(compile(code, f"README.md[python block {index}]", "exec"), {"__name__": "readme"})


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
    import re
    from pathlib import Path

    import graphattn

    root = Path(__file__).resolve().parents[1]
    project = re.search(r'^version = "(.+)"', (root / "pyproject.toml").read_text(), re.M)
    changelog = re.search(r"^## (?!Unreleased)(\S+)", (root / "CHANGELOG.md").read_text(), re.M)
    assert project[1] == graphattn.__version__ == changelog[1]
