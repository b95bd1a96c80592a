"""Results as data: the machine, CSV tables with their settings, and printed tables.

Every study and benchmark writes its measurements with :func:`write_table`: a CSV whose first
lines are ``# key: value`` comments naming the machine, the command and the settings, so a
number can always be traced to the run that produced it. :func:`read_table` reads one back
(the comment lines become a dict). The README's and docs' tables are generated from these
files by :mod:`graphattn.experiments.tables`.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import platform
import re
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .files import write_text

__all__ = [
    "format_value",
    "machine_info",
    "machine_line",
    "print_grid",
    "print_table",
    "read_table",
    "write_table",
]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        return None
    return None


def machine_info() -> dict[str, str]:
    """What the numbers were measured on: CPU, cores, memory, torch's threads and versions,
    and the load average when asked (a busy machine gives slower, noisier timings)."""
    import torch

    info = {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "os": f"{platform.system()} {platform.release()}",
    }
    mem = _memory_gib()
    if mem is not None:
        info["memory_gib"] = f"{mem:.0f}"
    try:
        info["load_average"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    try:
        import torch_geometric

        info["torch_geometric"] = torch_geometric.__version__
    except ImportError:  # pragma: no cover - a dependency
        pass
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        pass
    return info


def _describe(info: dict[str, str], name: str = "info") -> str:
    if not isinstance(info, dict):
        raise TypeError(f"`{name}` must be a dict like machine_info()'s, got {type(info).__name__}")
    missing = [k for k in ("cpu", "cores", "torch", "torch_threads") if k not in info]
    if missing:
        raise ValueError(f"`{name}` lacks {missing}: pass what machine_info() returns")
    mem = f", {info['memory_gib']} GiB" if "memory_gib" in info else ""
    load = f", load {info['load_average']}" if "load_average" in info else ""
    return (
        f"{info['cpu']}, {info['cores']} cores{mem}, torch {info['torch']} "
        f"({info['torch_threads']} threads){load}"
    )


def machine_line(info: dict[str, str] | None = None) -> str:
    """One line naming the machine, for the top of a script's output."""
    return "machine: " + _describe(machine_info() if info is None else info)


def format_value(value: object, fmt: str = ".4g") -> str:
    """A cell for printing: floats with ``fmt``, everything else as ``str``."""
    if isinstance(value, float):
        return format(value, fmt)
    return str(value)


def write_table(
    path: str | Path,
    rows: Sequence[dict],
    *,
    settings: dict | None = None,
    machine: dict[str, str] | None = None,
    command: str | None = None,
) -> Path:
    """Write ``rows`` (dicts with the same keys) as a CSV with ``# key: value`` header lines:
    the date, the command (default: this process's command line), the machine and the
    settings (as JSON). Returns the path."""
    if isinstance(rows, (str, bytes, dict)) or not isinstance(rows, Sequence):
        raise TypeError(f"`rows` must be a sequence of dicts, got {type(rows).__name__}")
    if not rows:
        raise ValueError("`rows` is empty: nothing to write")
    if not all(isinstance(row, dict) for row in rows):
        raise TypeError("`rows` must hold dicts (column -> value)")
    if settings is not None and not isinstance(settings, dict):
        raise TypeError(f"`settings` must be a dict, got {type(settings).__name__}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"`path` {str(path)!r} is a folder; give the CSV file's path")
    machine = machine_info() if machine is None else machine
    if command is None:  # quoted, as a shell takes it back
        command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    header = {
        "date": datetime.date.today().isoformat(),
        "command": command,
        "machine": _describe(machine, "machine"),
    }
    if settings:
        header["settings"] = json.dumps(settings, sort_keys=True, default=str)
    fields = list(rows[0])
    buffer = io.StringIO()
    for key, value in header.items():
        buffer.write(f"# {key}: {value}\n")
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        if list(row) != fields:
            raise ValueError(f"every row needs the columns {fields}, got {list(row)}")
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return write_text(path, buffer.getvalue())  # atomic: the old file or the new, never half


def _cell(value: object) -> object:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # shortest round-trip form (numpy scalars too)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|inf)")


def _parse(text: str) -> object:
    """A cell as an int or float when it is written as one (as :func:`write_table` writes
    numbers: no ``_`` separators, no spaces), else as the text itself."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def read_table(path: str | Path) -> tuple[list[dict], dict[str, str]]:
    """The rows of a table written by :func:`write_table` (numbers parsed) and its header.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = write_table(p, [{"n": 1, "t": 0.5}], machine={"cpu": "x", "cores": "2",
    ...     "torch": "2", "torch_threads": "2"}, command="demo")
    >>> rows, meta = read_table(p)
    >>> rows, meta["command"]
    ([{'n': 1, 't': 0.5}], 'demo')
    """
    text = Path(path).read_text()
    meta: dict[str, str] = {}
    start = 0
    while text.startswith("# ", start):  # the header comments, then the CSV itself
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        key, _, value = text[start + 2 : end].partition(": ")
        meta[key] = value
        start = end + 1
    reader = csv.DictReader(io.StringIO(text[start:], newline=""))
    if not reader.fieldnames:
        raise ValueError(f"`path` {str(path)!r} holds no table (no header row): empty or cut")
    rows = [{k: _parse(v) for k, v in row.items()} for row in reader]
    return rows, meta


def print_table(
    rows: Sequence[dict],
    columns: Sequence[str] | None = None,
    *,
    title: str | None = None,
    fmt: str = ".4g",
) -> None:
    """Print rows as an aligned text table."""
    if not rows:
        return
    columns = list(rows[0]) if columns is None else list(columns)
    missing = [c for c in columns if not any(c in r for r in rows)]
    if missing:
        raise ValueError(f"`columns` {missing} are in none of the rows")
    cells = [[format_value(r.get(c, ""), fmt) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    if title:
        print(f"\n{title}")
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


def print_grid(
    rows: Iterable[dict], row: str, col: str, value: str, *, title: str | None = None,
    fmt: str = ".3f",
) -> None:  # fmt: skip
    """Print ``value`` as a grid over the distinct ``row`` and ``col`` values."""
    rows = list(rows)
    rks = sorted({r[row] for r in rows})
    cks = sorted({r[col] for r in rows})
    cell = {(r[row], r[col]): r[value] for r in rows}
    grid = [{row: rk, **{f"{col}={ck}": cell.get((rk, ck), "") for ck in cks}} for rk in rks]
    print_table(grid, title=title or f"{value} (rows {row}, columns {col})", fmt=fmt)


class Goal(NamedTuple):
    """A target on one column of a result row: ``at_most`` for times and ratios that must stay
    below it, else the value must reach it."""

    column: str
    target: float
    text: str
    at_most: bool = False


def judge_goals(row: dict, goals: Sequence[Goal], **keys: object) -> list[dict]:
    """One row per goal whose column ``row`` has: ``keys`` (e.g. the graph), the goal, its
    column, target, the measured value and whether it is met; for a benchmark's ``goals.csv``.

    >>> judge_goals({"speedup": 7.0}, [Goal("speedup", 6.0, ">= 6x"), Goal("t", 1.0, "t")])
    [{'goal': '>= 6x', 'column': 'speedup', 'target': 6.0, 'measured': 7.0, 'met': True}]
    """
    out = []
    for goal in goals:
        value = row.get(goal.column)
        if value is None:
            continue
        met = value <= goal.target if goal.at_most else value >= goal.target
        out.append({**keys, "goal": goal.text, "column": goal.column, "target": goal.target,
                    "measured": value, "met": bool(met)})  # fmt: skip
    return out
