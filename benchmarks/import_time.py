"""What ``import graphattn`` costs, and which heavy packages it pulls in.

Runs ``python -X importtime -c "import graphattn"`` in fresh interpreters (``--repeats`` times,
median), and reports the cumulative import time of graphattn and of the packages it imports
at the top level (torch, torch_geometric), and whether the optional ones (numba, networkx,
matplotlib, tqdm, scipy, sklearn) were imported at all, and whether ``import torch_geometric``
alone imports them too (PyG imports numba and tqdm itself where they are installed).

    python benchmarks/import_time.py --out results/import_time
    python benchmarks/import_time.py --quick   # one interpreter
"""

from __future__ import annotations

import math
import statistics
import subprocess
import sys

PACKAGES = ("graphattn", "torch", "torch_geometric")
OPTIONAL = ("numba", "networkx", "matplotlib", "tqdm", "scipy", "sklearn")
PRESETS = {"full": dict(repeats=5), "quick": dict(repeats=1)}


def parse(stderr: str) -> dict[str, float]:
    """Top-level package -> cumulative import time (s), from ``-X importtime`` output."""
    cumulative: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cum, name = line.split("|")
        name = name.strip()
        if "." not in name:  # top-level packages only
            cumulative[name] = int(cum) / 1e6
    return cumulative


def importtime(module: str = "graphattn") -> dict[str, float]:
    """Top-level package -> cumulative import time (s) in a fresh interpreter."""
    cmd = [sys.executable, "-X", "importtime", "-c", f"import {module}"]
    return parse(subprocess.run(cmd, capture_output=True, text=True, check=True).stderr)


def main(argv: list[str] | None = None) -> list[dict]:
    from graphattn.experiments import Run, cli

    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="benchmarks/import_time.py")
    p.add_argument("--repeats", type=cli.int_at_least(1), help="fresh interpreters (median)")
    p.add_run_options("outputs/import_time", threads=None, progress=False)
    args = p.parse_args(argv)
    with Run.from_args(args) as run:
        print(f"timing `import graphattn` in {args.repeats} fresh interpreters", flush=True)
        runs = [importtime() for _ in range(args.repeats)]
        pyg = importtime("torch_geometric")  # what PyG imports by itself
        rows = [
            {"package": name, "imported": True, "also_by_pyg_alone": name in pyg,
             "cumulative_s": statistics.median(run.get(name, 0.0) for run in runs)}
            for name in PACKAGES
        ] + [
            {"package": name, "imported": any(name in run for run in runs),
             "also_by_pyg_alone": name in pyg, "cumulative_s": math.nan}
            for name in OPTIONAL
        ]  # fmt: skip
        title = f"import graphattn (median of {args.repeats} fresh interpreters)"
        run.table("import_time", rows, title=title)
    return rows


if __name__ == "__main__":
    main()
