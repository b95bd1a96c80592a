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
from pathlib import Path

PACKAGES = ("graphattn", "torch", "torch_geometric")
OPTIONAL = ("numba", "networkx", "matplotlib", "tqdm", "scipy", "sklearn")


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
    from graphattn.experiments.cli import ScriptParser, int_at_least, output_folder

    parser = ScriptParser(doc=__doc__)
    parser.add_argument(
        "--repeats",
        type=int_at_least(1),
        default=None,
        help="fresh interpreters (median; default 5, quick 1)",
    )
    parser.add_argument("--out", type=output_folder, default=Path("outputs/import_time"))
    parser.add_argument("--quick", action="store_true", help="one interpreter")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    from graphattn.experiments import RunFolder, machine_line, print_table, write_table

    folder = RunFolder(args.out)  # writable? checked now, before the compute

    print(machine_line())
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
    print_table(rows, title=f"import graphattn (median of {args.repeats} fresh interpreters)")
    with folder:
        path = write_table(args.out / "import_time.csv", rows, settings=vars(args))
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
