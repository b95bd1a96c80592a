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
    from graphattn.experiments import Run, cli

    p = cli.ScriptParser(doc=__doc__, script="benchmarks/test_time.py")
    p.add_argument("--demo", action="store_true", help="also time `make demo` afterwards")
    p.add_run_options("outputs/test_time", threads=None, progress=False)
    args = p.parse_args(argv)
    with Run.from_args(args) as run, tempfile.TemporaryDirectory() as tmp:  # CSVs land together
        clone = Path(tmp) / "graphattn"
        print(f"cloning {ROOT} (its last commit) into {clone}", flush=True)
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        rows = []
        for name in ("cold", "warm"):
            rows.append({"run": name, **run_make_test(clone)})
            print(f"{name}: {rows[-1]}", flush=True)
        demo = [run_make_demo(clone)] if args.demo else []
        title = "make test on a fresh clone (cold: new .venv, empty numba cache)"
        run.table("test_time", rows, title=title)
        if demo:
            run.table("demo_time", demo, title="make demo after set-up")
    return rows


if __name__ == "__main__":
    main()
