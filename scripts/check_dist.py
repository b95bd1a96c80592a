"""Check the sdist and wheel that ``make dist`` built: what a package index and its users get.

``python scripts/check_dist.py dist`` exits 1, naming every problem, unless the folder holds
exactly one sdist and one wheel of the version in ``pyproject.toml``, both carry the licence
file, the wheel's metadata names the licence, the authors, the Python floor, classifiers and a
markdown description, and that description has no relative links or images (they break on an
index's page). ``twine check --strict`` (run by ``make dist`` first) checks that it renders.
"""

from __future__ import annotations

import argparse
import re
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# a markdown link or image whose target is neither absolute (scheme://) nor an anchor (#...)
RELATIVE_LINK = re.compile(r"!?\[[^\]]*\]\((?![a-z][a-z0-9+.-]*://|#|mailto:)([^)\s]+)")
REQUIRED = ("Name", "Version", "Summary", "Author", "License-Expression", "Requires-Python")


def check_wheel(path: Path, version: str) -> list[str]:
    problems = []
    with zipfile.ZipFile(path) as wheel:
        names = wheel.namelist()
        info = f"graphattn-{version}.dist-info"
        if f"{info}/licenses/LICENSE" not in names:
            problems.append(f"{path.name}: no {info}/licenses/LICENSE")
        meta = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
    for field in REQUIRED:
        if not meta.get(field):
            problems.append(f"{path.name}: metadata lacks {field}")
    if meta.get("License-Expression") != "MIT":
        problems.append(f"{path.name}: License-Expression is {meta.get('License-Expression')!r}")
    if "LICENSE" not in (meta.get_all("License-File") or []):
        problems.append(f"{path.name}: metadata names no License-File LICENSE")
    if not meta.get_all("Classifier"):
        problems.append(f"{path.name}: no classifiers")
    if not (meta.get("Description-Content-Type") or "").startswith("text/markdown"):
        problems.append(f"{path.name}: the description is not declared as markdown")
    description = meta.get_payload() or ""
    if len(description.strip()) < 200:
        problems.append(f"{path.name}: the long description is missing or a stub")
    for target in RELATIVE_LINK.findall(description):
        problems.append(f"{path.name}: relative link or image in the description: {target}")
    return problems


def check_sdist(path: Path, version: str) -> list[str]:
    with tarfile.open(path) as sdist:
        names = set(sdist.getnames())
    top = f"graphattn-{version}"
    want = ["LICENSE", "pyproject.toml", "docs/pypi.md", "graphattn/__init__.py"]
    return [f"{path.name}: no {top}/{name}" for name in want if f"{top}/{name}" not in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where `python -m build` wrote the files")
    args = parser.parse_args(argv)
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is Python 3.11+)
    version = re.search(r'^version = "(.+)"', pyproject, re.M)[1]
    wheels = sorted(args.folder.glob("graphattn-*.whl"))
    sdists = sorted(args.folder.glob("graphattn-*.tar.gz"))
    problems = []
    if [w.name.split("-")[1] for w in wheels] != [version]:
        problems.append(f"expected one wheel of {version}, found {[w.name for w in wheels]}")
    if [s.name.removesuffix(".tar.gz").split("-")[1] for s in sdists] != [version]:
        problems.append(f"expected one sdist of {version}, found {[s.name for s in sdists]}")
    for wheel in wheels:
        problems += check_wheel(wheel, version)
    for sdist in sdists:
        problems += check_sdist(sdist, version)
    for problem in problems:
        print(f"check_dist: {problem}", file=sys.stderr)
    if not problems:
        sizes = ", ".join(f"{p.name} ({p.stat().st_size // 1024} KiB)" for p in wheels + sdists)
        print(f"check_dist: {sizes}: licence, metadata and description in order")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
