"""Run every command and code block of the README, examples/README.md, benchmarks/README.md and
docs/*.md as a reader would: after the two set-up commands, from the repository root, with
``.venv/bin`` on the PATH (the README's "activate" step). Exit 0 only if every one succeeds.

What it runs, in the documents' order:

- every fenced shell block (no language, or ``bash``/``sh``/``shell``/``console``), line by line
  (``\\`` continues a line; ``# ...`` comments are dropped);
- every inline code span that is a command (it starts with ``python``, ``make``, ``torchrun``,
  ``pytest``, ``pip``, ``.venv/bin/...``, after optional ``VAR=value`` settings, and has an
  argument); spans with ``<placeholders>`` or ``...`` are templates, listed but not run;
- every ``python`` block, each file's blocks in order in one interpreter (a later block may use
  an earlier one's names), unless the line before it is ``<!-- not run: <reason> -->``.

Long commands run in their quick form, by the substitution table :data:`SUBSTITUTIONS` below
(each entry says why); a few cannot run here at all and say why. Any ``--out results/...`` is
redirected into a scratch folder, so a check never overwrites a recorded result. A command run
twice in the documents runs once.

    python3 scripts/check_docs_commands.py --list        # the plan: what runs, and how
    nice python3 scripts/check_docs_commands.py          # run it all (hours on 2 cores)
    python3 scripts/check_docs_commands.py --only karate  # the items whose text matches

Run it in a fresh clone (``git clone <repo> /tmp/g && cd /tmp/g``) to check what a new user
meets. It needs only Python's standard library; the commands it runs set up ``.venv``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the documents, in the order they are checked (globs: files added later are covered too)
DOCUMENTS = ("README.md", "examples/README.md", "benchmarks/README.md", "docs/*.md")
SHELL_LANGS = ("", "bash", "sh", "shell", "console")
COMMAND = re.compile(
    r"^(?:[A-Z_][A-Z0-9_]*=\S+\s+)*(?:python3?|make|torchrun|pytest|pip|\.venv/bin/\S+)\s+\S"
)
NOT_RUN = re.compile(r"<!--\s*not run:(.*?)-->\s*$")
FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")  # may wrap onto the next line


@dataclass(frozen=True)
class Sub:
    """What to run for a documented command: ``run`` (None: nothing, ``why`` says why), and
    output that counts as the documented outcome even with a non-zero exit (``accept``)."""

    run: str | None
    why: str
    accept: str | None = None


#: documented command -> what this script runs instead, and why. An entry whose command is no
#: longer in the documents is an error (the table stays true).
SUBSTITUTIONS: dict[str, Sub] = {
    "python3 scripts/check_docs_commands.py": Sub(None, "this check itself"),
    "torchrun --standalone --nproc_per_node 2": Sub(
        None, "a fragment: the options the text is about (the whole command runs above)"
    ),
    'pip install "graphattn[all]"': Sub(
        None, "graphattn is not on a package index yet (README: Install)"
    ),
    "torchrun --nnodes 2 --nproc_per_node 4 --rdzv-backend c10d --rdzv-endpoint "
    "host0.example.org:29400 --rdzv-id graphattn-run1 examples/distributed_training.py --cache "
    "/shared/graphattn-cache": Sub(None, "needs two machines and a rendezvous host"),
    'make test TORCH="torch==2.5.1"': Sub(
        'make test TORCH="torch==2.5.1"',
        "switches .venv to another PyTorch build; where neither this machine's disk nor "
        "PyTorch's CPU index has it, the documented refusal is the outcome",
        accept=r"error: could not install torch==2\.5\.1",
    ),
    "make test PYTHON=python3.12": Sub(
        "make test PYTHON=python3.12",
        "makes .venv anew with Python 3.12; where python3.12 is not installed, the documented "
        "refusal is the outcome",
        accept=r"error: PYTHON=python3\.12 does not run a Python interpreter here",
    ),
    "make record-quick": Sub(
        "make -n record-quick",
        "re-records the quick tables into results/ (half an hour or more): printed, not "
        "run; it runs the same scripts this check runs",
    ),
    "python examples/distributed_training.py": Sub(
        "python examples/distributed_training.py --quick", "1M agents: the quick form (20k)"
    ),
    "torchrun --standalone --nproc_per_node 2 examples/distributed_training.py": Sub(
        "torchrun --standalone --nproc_per_node 2 examples/distributed_training.py --quick",
        "1M agents: the quick form (20k)",
    ),
    "python examples/economy_shocks_theory.py --out results/economy_shocks": Sub(
        "python examples/economy_shocks_theory.py --quick --out results/economy_shocks",
        "the recorded setting takes most of an hour: the quick form",
    ),
    "python benchmarks/distributed_scaling.py --out results/distributed_bench": Sub(
        "python benchmarks/distributed_scaling.py --quick --out results/distributed_bench",
        "1M agents, four process layouts: the quick form (20k)",
    ),
    "python benchmarks/dense_vs_sparse.py": Sub(
        "python benchmarks/dense_vs_sparse.py --quick", "the full sweep: the quick form"
    ),
    "python benchmarks/dense_vs_sparse.py --sizes 2048 8192 --rounds 3": Sub(
        "python benchmarks/dense_vs_sparse.py --quick", "three rounds up to N = 8192: quick"
    ),
    "python benchmarks/dense_vs_sparse.py --sizes 2048 8192 --rounds 3 --out "
    "results/dense_vs_sparse": Sub(
        "python benchmarks/dense_vs_sparse.py --quick --out results/dense_vs_sparse",
        "three rounds up to N = 8192: quick",
    ),
    "python benchmarks/distributed_scaling.py --steps 4 --out results/distributed_bench "
    "--runs-out results/distributed": Sub(
        "python benchmarks/distributed_scaling.py --quick --out results/distributed_bench "
        "--runs-out results/distributed",
        "1M agents, four process layouts: the quick form (20k)",
    ),
    "python examples/economy_shocks.py --agents 1000000": Sub(
        "python examples/economy_shocks.py --agents 100000",
        "1M agents is run once, by docs/economy_shocks.md's command; here 100k",
    ),
    "python benchmarks/dense_vs_sparse.py --sizes 8192 --rounds 3": Sub(
        "python benchmarks/dense_vs_sparse.py --quick", "three rounds at N = 8192: quick"
    ),
    "python benchmarks/citation.py --only recipe --datasets Cora --out results/citation/Cora": Sub(
        "python benchmarks/citation.py --only recipe --datasets Cora --seeds 2 --steps 2 "
        "--out results/citation/Cora",
        "10 seeds of 200 epochs for five layers (half an hour): 2 seeds of 2 epochs (--steps)",
    ),
    "python benchmarks/citation.py --only recipe --datasets CiteSeer --workers 2 --out "
    "results/citation/CiteSeer": Sub(
        "python benchmarks/citation.py --only recipe --datasets CiteSeer --seeds 2 --steps 2 "
        "--workers 2 --out results/citation/CiteSeer",
        "10 seeds of 200 epochs for five layers (40 minutes on 2 cores): 2 seeds of 2 epochs",
    ),
    "python benchmarks/citation.py --only attention --datasets CiteSeer --workers 2 --out "
    "results/citation_attention": Sub(
        "python benchmarks/citation.py --only attention --datasets CiteSeer --seeds 2 --steps 2 "
        "--out results/citation_attention",
        "10 seeds of 200 epochs for four models (25 minutes on 2 cores): 2 seeds of 2 epochs",
    ),
    "python benchmarks/citation.py --only draws --datasets CiteSeer --workers 2 --out "
    "results/citation_draws": Sub(
        "python benchmarks/citation.py --only draws --datasets CiteSeer --seeds 2 --steps 2 "
        "--workers 2 --out results/citation_draws",
        "10 seeds of 200 epochs for four models (25 minutes on 2 cores): 2 seeds of 2 epochs",
    ),
    "python benchmarks/citation.py --only scores --datasets CiteSeer --workers 2 --out "
    "results/citation_scores": Sub(
        "python benchmarks/citation.py --only scores --datasets CiteSeer --seeds 2 --steps 2 "
        "--workers 2 --out results/citation_scores",
        "10 seeds of 200 epochs for two models (13 minutes on 2 cores): 2 seeds of 2 epochs",
    ),
    "python benchmarks/citation.py --only recipe --datasets CiteSeer --models GATConv "
    "'graphattn, out_projection=False' --seeds 30 --workers 2 --out results/citation_seeds30": Sub(
        "python benchmarks/citation.py --only recipe --datasets CiteSeer --models GATConv "
        "'graphattn, out_projection=False' --seeds 2 --steps 2 --workers 2 "
        "--out results/citation_seeds30",
        "30 seeds of 200 epochs for two layers (40 minutes on 2 cores): 2 seeds of 2 epochs",
    ),
    "python benchmarks/citation.py --only ablation --datasets Cora --seeds 5 --out "
    "results/citation_ablation": Sub(
        "python benchmarks/citation.py --only ablation --datasets Cora --seeds 2 --steps 2 "
        "--out results/citation_ablation",
        "5 seeds of 200 epochs for eight models (half an hour): 2 seeds of 2 epochs (--steps)",
    ),
    "python benchmarks/citation.py --only minibatch --workers 2 --out "
    "results/citation_minibatch": Sub(
        "python benchmarks/citation.py --only minibatch --seeds 2 --steps 2 --workers 2 "
        "--out results/citation_minibatch",
        "10 seeds of 200 mini-batch epochs on both data sets (8 minutes): 2 seeds of 2 epochs",
    ),
    "python benchmarks/sparse_scaling.py": Sub(
        "python benchmarks/sparse_scaling.py --quick", "up to N = 100k with three peers: quick"
    ),
    "python benchmarks/sparse_scaling.py --graphs random economy --rounds 3": Sub(
        "python benchmarks/sparse_scaling.py --graphs random economy --quick",
        "three rounds up to N = 100k: the quick form",
    ),
    "python benchmarks/sparse_scaling.py --sizes 1000000 --degree 64 --engines fused": Sub(
        "python benchmarks/sparse_scaling.py --quick --engines fused",
        "64M edges: the quick form of the fused-only run",
    ),
    "python benchmarks/ordering.py": Sub(
        "python benchmarks/ordering.py --quick", "1M agents, four orderings: quick"
    ),
    "python benchmarks/ordering.py --out results/ordering": Sub(
        "python benchmarks/ordering.py --quick --out results/ordering",
        "1M agents, four orderings: quick",
    ),
    "python benchmarks/precision.py": Sub(
        "python benchmarks/precision.py --quick", "N = 100k: the quick form"
    ),
    "python benchmarks/precision.py --out results/precision": Sub(
        "python benchmarks/precision.py --quick --out results/precision", "N = 100k: quick"
    ),
    "python benchmarks/fused_kernels.py": Sub(
        "python benchmarks/fused_kernels.py --quick", "N = 100k, two rounds: quick"
    ),
    "python examples/claims/heads_copy.py --out results/head_claims": Sub(
        "python examples/claims/heads_copy.py --quick --out results/head_claims",
        "the full setting takes hours: the quick form",
    ),
    "python examples/neighbors_match.py --out results/neighbors_match": Sub(
        "python examples/neighbors_match.py --quick --out results/neighbors_match",
        "the recorded run takes over an hour of CPU (480 s per configuration): the quick form",
    ),
    "python examples/sequence_study.py --out results/sequence_study/full": Sub(
        "python examples/sequence_study.py --quick --out results/sequence_study/full",
        "the full setting takes hours: the quick form",
    ),
    "python examples/economy_shocks_learn.py --no-edge-share --out "
    "results/economy_shocks_noshare": Sub(
        "python examples/economy_shocks_learn.py --quick --no-edge-share --out "
        "results/economy_shocks_noshare",
        "the full learning setting: the quick form",
    ),
    "python examples/economy_shocks.py --agents 1000000 --sim-steps 20 --out "
    "results/economy_shocks_1m": Sub(
        "python examples/economy_shocks.py --agents 100000 --sim-steps 20 --out "
        "results/economy_shocks_1m",
        "1M agents is run once, by the same command without --out; here 100k",
    ),
}


@dataclass(frozen=True)
class Item:
    """One thing to check: a shell ``command`` or a ``python`` block, where it is written."""

    kind: str  # "shell", "python" or "template"
    source: str  # file:line
    text: str
    not_run: str | None = None  # why a python block is not run (its marker's reason)


def documents(root: Path = ROOT) -> list[Path]:
    out: list[Path] = []
    for pattern in DOCUMENTS:
        out += sorted(root.glob(pattern)) if "*" in pattern else [root / pattern]
    return [p for p in out if p.exists()]


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _commands(block: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments dropped."""
    out, current = [], ""
    for raw in block.splitlines():
        line = re.sub(r"(^|\s)#\s.*$", "", raw).rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            out.append(" ".join(current.split()))
        current = ""
    return out


def extract(path: Path, root: Path = ROOT) -> list[Item]:
    """The checkable items of one markdown file, in order."""
    text = path.read_text()
    name = str(path.relative_to(root))
    items: list[tuple[int, Item]] = []
    fenced = []
    for m in FENCE.finditer(text):
        fenced.append((m.start(), m.end()))
        lang, body, line = m.group(1), m.group(2), _line(text, m.start())
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NOT_RUN.search(before)
        if lang == "python":
            reason = marker.group(1).strip() if marker else None
            items.append((m.start(), Item("python", f"{name}:{line}", body, reason)))
        elif lang in SHELL_LANGS:
            for command in _commands(body):
                items.append((m.start(), Item("shell", f"{name}:{line}", command)))
    prose = list(text)
    for a, b in fenced:  # blank the fenced blocks out (keeping offsets and line numbers)
        prose[a:b] = [c if c == "\n" else " " for c in text[a:b]]
    for m in SPAN.finditer("".join(prose)):
        if "\n\n" in m.group(1):
            continue  # not a span: backticks in different paragraphs
        span = " ".join(m.group(1).split())
        if not COMMAND.match(span):
            continue
        kind = "template" if re.search(r"<[a-z_]+>|\.\.\.", span) else "shell"
        items.append((m.start(), Item(kind, f"{name}:{_line(text, m.start())}", span)))
    return [item for _, item in sorted(items, key=lambda pair: pair[0])]


def plan(root: Path = ROOT) -> tuple[list[tuple[Item, Sub | None]], list[str]]:
    """Every item of every document with what will be run for it (deduplicated), and the
    substitution table's entries that no document uses any more."""
    out, seen, used = [], set(), set()
    for path in documents(root):
        for item in extract(path, root):
            sub = SUBSTITUTIONS.get(item.text) if item.kind == "shell" else None
            if sub is not None:
                used.add(item.text)
            key = (item.kind, sub.run if sub else item.text)
            if item.kind != "python" and key in seen:
                continue
            seen.add(key)
            out.append((item, sub))
    return out, sorted(set(SUBSTITUTIONS) - used)


def redirect(command: str, scratch: Path) -> str:
    """``--out results/...`` (a recorded result; also ``--runs-out``) -> the same path under
    ``scratch``. Inputs read from ``results/`` stay."""
    return re.sub(r"(--(?:out|runs-out)\s+)(results/\S*)",
                  lambda m: m.group(1) + str(scratch / m.group(2)), command)  # fmt: skip


_PYTHON_RUNNER = """
import json, sys, traceback
blocks = json.load(sys.stdin)
namespace = {"__name__": "__docs__"}
for source, code in blocks:
    print(f"  python block {source}", flush=True)
    exec(compile(code, source, "exec"), namespace)
"""


def _environment(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    venv = root / ".venv"
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"  # `. .venv/bin/activate`
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONHOME", None)
    return env


def _run(args: list[str], root: Path, timeout: float, log: Path, stdin: str | None = None):
    """Run a command in its own process group, its output going to ``log`` as it comes (``tail
    -f`` it to follow a long command); on a timeout the whole group is stopped. Returns the
    exit status, the output and the seconds taken."""
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            args, cwd=root, env=_environment(root), text=True, start_new_session=True,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            proc.communicate(stdin, timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the command and everything it started
            proc.wait()
            code = 124
    output = log.read_text(errors="replace")
    return (
        code,
        output + (f"\n[timed out after {timeout:.0f} s]" if code == 124 else ""),
        (time.perf_counter() - t0),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--list", action="store_true", help="print the plan; run nothing")
    parser.add_argument("--only", help="run only the items whose text contains this")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per command")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository to check")
    parser.add_argument("--log", type=Path, help="also write each command's output here")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    items, stale = plan(root)
    if stale:
        print("substitution entries no document uses any more (remove them):", file=sys.stderr)
        for text in stale:
            print(f"  {text}", file=sys.stderr)
        return 1
    # the python blocks of one file run together, where the file's first block stands
    steps: list[tuple[str, str, list[Item], Sub | None]] = []
    by_file: dict[str, list[Item]] = {}
    for item, sub in items:
        if item.kind == "python":
            file = item.source.rsplit(":", 1)[0]
            if file not in by_file:
                by_file[file] = []
                steps.append(("python", file, by_file[file], None))
            by_file[file].append(item)
        else:
            steps.append((item.kind, item.source, [item], sub))
    if args.only:
        steps = [s for s in steps if any(args.only in i.text for i in s[2])]
    scratch = Path("<scratch>") if args.list else Path(tempfile.mkdtemp(prefix="check-docs-"))
    results = []
    for number, (kind, source, group, sub) in enumerate(steps, start=1):
        head = f"[{number}/{len(steps)}] {source}"
        if kind == "template":
            print(f"{head}  template, not run: {group[0].text}")
            results.append((head, "template", 0.0))
            continue
        if kind == "python":
            run = [i for i in group if i.not_run is None]
            for i in group:
                if i.not_run is not None:
                    print(f"{head}  python block {i.source}: not run ({i.not_run})")
            if not run:
                continue
            print(f"{head}  {len(run)} python block(s)", flush=True)
            if args.list:
                continue
            blocks = json.dumps([(i.source, i.text) for i in run])
            py = str(root / ".venv" / "bin" / "python")
            log = scratch / f"{number:03d}.log"
            print(f"    (output: {log})", flush=True)
            code, output, seconds = _run(
                [py, "-c", _PYTHON_RUNNER], root, args.timeout, log, blocks
            )
            accepted = False
        else:
            text = group[0].text
            if sub is not None and sub.run is None:
                print(f"{head}  not run: {text}  ({sub.why})")
                results.append((head, "not run", 0.0))
                continue
            command = redirect(sub.run if sub else text, scratch)
            note = f"  [instead of: {text}; {sub.why}]" if sub else ""
            print(f"{head}  $ {command}{note}", flush=True)
            if args.list:
                continue
            log = scratch / f"{number:03d}.log"
            print(f"    (output: {log})", flush=True)
            code, output, seconds = _run(["bash", "-c", command], root, args.timeout, log)
            accepted = bool(sub and sub.accept and re.search(sub.accept, output))
        if args.log:
            with args.log.open("a") as log:
                log.write(f"\n===== {head} (exit {code}, {seconds:.0f} s)\n{output}")
        status = "ok" if code == 0 else "accepted" if accepted else f"FAILED (exit {code})"
        print(f"    -> {status} in {seconds:.0f} s", flush=True)
        if code != 0 and not accepted:
            print("    " + "\n    ".join(output.rstrip().splitlines()[-25:]), flush=True)
        results.append((head, status, seconds))
    if args.list:
        return 0
    failed = [r for r in results if r[1].startswith("FAILED")]
    total = sum(r[2] for r in results)
    print(f"\n{len(results)} items, {len(failed)} failed, {total / 60:.0f} min; scratch {scratch}")
    for head, status, _ in failed:
        print(f"  {head}: {status}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
