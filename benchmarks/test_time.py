"""How long ``make test`` takes on a fresh clone, cold (empty numba cache) and warm, and
how long ``make demo`` takes after it.

Clones this repository into a temporary folder, runs ``make test`` there twice (the first run
also creates the clone's ``.venv`` and compiles the numba kernels; the second reuses both) and
records pytest's own wall time and the test counts from its summary line. With ``--demo`` it
then runs ``make demo`` in the same clone (set-up done, as the README's budget assumes) and
records its wall time. Each make run's output streams through as it comes. It has no
``--quick``: it measures ``make test`` and ``make demo`` themselves, which take minutes.

    python benchmarks/test_time.py --demo --out results/test_time
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"(\d+) passed(?:, (\d+) skipped)?.* in ([\d.]+)s")


def _make(target: str, clone: Path) -> tuple[str, float]:
    """Run ``make target`` in ``clone``, passing its output through as it comes (these runs
    take minutes): its output and wall seconds (an error if it fails)."""
    print(f"--- make {target} in {clone} (started {time.strftime('%H:%M:%S')})", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["make", target], cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    chunks = []
    while chunk := os.read(proc.stdout.fileno(), 4096):  # pytest's dots as they are printed
        chunks.append(chunk)
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    proc.wait()
    total = time.perf_counter() - t0
    output = b"".join(chunks).decode(errors="replace")
    print(f"--- make {target}: {total:.0f} s, exit status {proc.returncode}", flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"make {target} failed:\n{output[-5000:]}")
    return output, total


def run_make_test(clone: Path) -> dict:
    stdout, total = _make("test", clone)
    match = None
    for line in stdout.splitlines():
        match = SUMMARY.search(line) or match
    if match is None:
        raise RuntimeError("no pytest summary line in the output of make test")
    return {"passed": int(match[1]), "skipped": int(match[2] or 0),
            "pytest_s": float(match[3]), "make_test_s": total}  # fmt: skip


def run_make_demo(clone: Path) -> dict:
    return {"target": "make demo", "seconds": _make("demo", clone)[1]}


def main(argv: list[str] | None = None) -> list[dict]:
    from graphattn.experiments.cli import ScriptParser, output_folder

    parser = ScriptParser(doc=__doc__)
    parser.add_argument("--out", type=output_folder, default=Path("outputs/test_time"))
    parser.add_argument("--demo", action="store_true", help="also time `make demo` afterwards")
    args = parser.parse_args(argv)

    from graphattn.experiments import RunFolder, machine_line, print_table, write_table

    folder = RunFolder(args.out)  # writable? checked now, before the timings
    print(machine_line())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "graphattn"
        print(f"cloning {ROOT} (its last commit) into {clone}", flush=True)
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        for run in ("cold", "warm"):
            rows.append({"run": run, **run_make_test(clone)})
            print(f"{run}: {rows[-1]}", flush=True)
        demo = [run_make_demo(clone)] if args.demo else []
    print_table(rows, title="make test on a fresh clone (cold: new .venv, empty numba cache)")
    with folder:  # both CSVs land together
        path = write_table(args.out / "test_time.csv", rows, settings=vars(args))
        print(f"wrote {path}")
        if demo:
            print_table(demo, title="make demo after set-up")
            path = write_table(args.out / "demo_time.csv", demo, settings=vars(args))
            print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
