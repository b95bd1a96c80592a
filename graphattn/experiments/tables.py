"""Markdown tables and figures-in-prose generated from result CSVs, and a check that they match.

Measured numbers live in CSV files under ``results/`` (written by
:func:`~graphattn.experiments.report.write_table`); markdown files refer to them with markers,
and this module fills the markers in::

    <!-- table: results/economy/depth.csv | pivot: L, k, test_nmse | fmt: .3f -->
    (generated)
    <!-- end table -->

    <!-- table: results/bench/scaling.csv | columns: N, engine, time_s | where: N=100000 -->
    (generated)
    <!-- end table -->

    fused is <!-- value: results/bench/scaling.csv | where: N=100000, engine=fused |
    column: speedup | fmt: .2f -->4.45<!-- end value -->x faster

Options (separated by ``|``):

- ``columns: a, b, c``: a table of these columns (``labels: a=Nodes, b=...`` renames them);
- ``pivot: row, col, value``: ``value`` in a grid of the distinct ``row`` x ``col`` values;
- ``where: key=value, ...``: keep matching rows only;
- ``fmt: .3f`` for every number, or ``fmt: a=.0f, b=.2f`` per column (default ``.4g``);
- ``column: name`` (values only): the cell of the single matching row;
- ``note: text`` (tables only): added to the caption, e.g. that the recording predates a change.

Under every table comes a caption line generated from its CSV's header: the date and the
machine of the recording and the file (``<sub>Recorded 2026-12-02 on <machine>;
results/bench/scaling.csv</sub>``), so a reader never takes one machine's numbers for another's.

``python -m graphattn.experiments.tables README.md docs/*.md`` rewrites the generated parts;
with ``--check`` it only reports (and exits 1) where a file differs from its CSVs, which the
test-suite runs so that prose and data cannot drift apart.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from .files import write_text
from .report import read_table

__all__ = ["caption", "check", "render", "render_file"]

_TABLE = re.compile(r"(<!-- table: (?P<spec>.*?) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S)
_VALUE = re.compile(r"(<!-- value: (?P<spec>.*?) -->)(?P<body>.*?)(<!-- end value -->)", re.S)


def _options(spec: str) -> tuple[str, dict[str, str]]:
    parts = [p.strip() for p in " ".join(spec.split()).split("|")]
    path, options = parts[0], {}
    for part in parts[1:]:
        key, sep, value = part.partition(":")
        if not sep:
            raise ValueError(f"bad option {part!r} in marker {spec!r} (expected `key: value`)")
        options[key.strip()] = value.strip()
    unknown = set(options) - {"columns", "pivot", "where", "fmt", "labels", "column", "note"}
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} in marker {spec!r}")
    return path, options


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _load(root: Path, path: str, options: dict[str, str]) -> tuple[list[dict], dict[str, str]]:
    rows, meta = read_table(root / path)
    where = _pairs(options.get("where", ""))
    for key in where:
        if rows and key not in rows[0]:
            raise ValueError(f"{path} has no column {key!r} (in `where`)")
    return [r for r in rows if all(str(r[k]) == v for k, v in where.items())], meta


def caption(path: str, meta: dict[str, str], note: str | None = None) -> str:
    """The line under a generated table: when and on what its CSV was recorded, and where it
    is (``meta``: the CSV's ``# key: value`` header, as :func:`read_table` returns it).

    >>> caption("results/a.csv", {"date": "2026-12-02", "machine": "AMD EPYC, 2 cores"})
    '<sub>Recorded 2026-12-02 on AMD EPYC, 2 cores; `results/a.csv`.</sub>'
    """
    date = meta.get("date", "on an unrecorded date")
    machine = meta.get("machine", "an unrecorded machine")
    text = f"Recorded {date} on {machine}; `{path}`."
    if note:
        text += f" {note.rstrip('.')}."
    return f"<sub>{text}</sub>"


def _formatter(options: dict[str, str]):
    fmt = options.get("fmt", ".4g")
    per_column = _pairs(fmt) if "=" in fmt else {}

    def cell(column: str, value: object) -> str:
        spec = per_column.get(column, fmt if not per_column else ".4g")
        if isinstance(value, float) or (isinstance(value, int) and column in per_column):
            return format(value, spec)
        return str(value)

    return cell


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _table(root: Path, spec: str) -> str:
    path, options = _options(spec)
    rows, meta = _load(root, path, options)
    # a blank line ends the table (a line right under it would be read as one more row)
    body = _table_body(spec, path, options, rows)
    return body + "\n" + caption(path, meta, options.get("note")) + "\n"


def _table_body(spec: str, path: str, options: dict[str, str], rows: list[dict]) -> str:
    if not rows:
        raise ValueError(f"marker {spec!r} selects no rows of {path}")
    cell = _formatter(options)
    if "pivot" in options:
        names = _names(options["pivot"])
        if len(names) != 3:
            raise ValueError(f"`pivot` needs `row, col, value`, got {options['pivot']!r}")
        row, col, value = names
        rks = list(dict.fromkeys(sorted(r[row] for r in rows)))
        cks = list(dict.fromkeys(sorted(r[col] for r in rows)))
        grid = {(r[row], r[col]): r[value] for r in rows}
        header = [f"{row} \\ {col}", *(f"{col} = {c}" for c in cks)]
        body = [
            [str(rk), *(cell(value, grid[rk, ck]) if (rk, ck) in grid else "" for ck in cks)]
            for rk in rks
        ]
        return _markdown(header, body)
    columns = _names(options.get("columns", "")) or list(rows[0])
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise ValueError(f"{path} has no column(s) {missing}")
    labels = _pairs(options.get("labels", ""))
    header = [labels.get(c, c) for c in columns]
    return _markdown(header, [[cell(c, r[c]) for c in columns] for r in rows])


def _value(root: Path, spec: str) -> str:
    path, options = _options(spec)
    rows, _ = _load(root, path, options)
    if len(rows) != 1:
        raise ValueError(f"value marker {spec!r} must select exactly one row, got {len(rows)}")
    column = options.get("column")
    if not column or column not in rows[0]:
        raise ValueError(f"value marker {spec!r} needs a `column` of {path}")
    return _formatter(options)(column, rows[0][column])


def render(text: str, root: str | Path = ".") -> str:
    """``text`` with every table and value marker filled in from its CSV (paths relative to
    ``root``)."""
    root = Path(root)
    text = _TABLE.sub(lambda m: m.group(1) + _table(root, m.group("spec")) + m.group(4), text)
    return _VALUE.sub(lambda m: m.group(1) + _value(root, m.group("spec")) + m.group(4), text)


def render_file(path: str | Path, root: str | Path = ".", *, write: bool = True) -> bool:
    """Re-render one markdown file; returns whether it changed (written if ``write``)."""
    path = Path(path)
    old = path.read_text()
    new = render(old, root)
    if new != old and write:
        write_text(path, new)  # atomic: a failed write leaves the old file whole
    return new != old


def check(paths: Sequence[str | Path], root: str | Path = ".") -> list[str]:
    """The files among ``paths`` whose generated parts differ from their CSVs."""
    return [str(p) for p in paths if render_file(p, root, write=False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--root", type=Path, default=Path("."), help="where result paths start")
    parser.add_argument("--check", action="store_true", help="report differences, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        stale = check(args.files, args.root)
        for name in stale:
            print(f"{name}: tables differ from their CSVs (run without --check to update)")
        return 1 if stale else 0
    for path in args.files:
        if render_file(path, args.root):
            print(f"updated {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
