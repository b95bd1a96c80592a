"""1 vs 2 processes on torch.distributed: throughput, peak memory per rank, halo replication.

Two parts, both on a generated economy (default 1M agents):

- **replication**: for METIS and random partitions into ``--partitions`` parts and ``--hops``
  hops, the nodes and edges all ranks hold together over the graph's
  (:func:`graphattn.distributed.replication_factor`), and the share of edges the partition
  cuts. One process; no training.
- **throughput**: ``examples/distributed_training.py`` run as it would be by a user: one
  process without ``torchrun`` (all cores, and one thread: ``np1-t1``), and
  ``torchrun --standalone --nproc_per_node 2`` with a METIS and with a random partition
  (cores / 2 threads each), every configuration in its own processes.
  Per rank: median step time, graph edges per second (the whole graph's edges over the step
  time), peak resident memory during training, nodes and edges held.

Run::

    python benchmarks/distributed_scaling.py --quick      # 20k agents
    python benchmarks/distributed_scaling.py              # 1M agents (long: both process counts)

Writes ``replication.csv``, ``throughput.csv``, ``replication.png`` and ``throughput.png``
into ``--out`` (default ``outputs/distributed_scaling/``); the example's own CSVs go to
``--runs-out`` (default ``<out>/runs``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

from graphattn.distributed import partition_nodes, replication_factor
from graphattn.economy import economy_data
from graphattn.experiments import Run, print_table, read_table
from graphattn.experiments.cli import ScriptParser, int_at_least, output_folder
from graphattn.experiments.plots import lines

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "distributed_training.py"


PRESETS = {"full": dict(agents=1_000_000, steps=8), "quick": dict(agents=20_000, steps=6)}
PARTS = ["replication", "throughput"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    count = int_at_least(1)
    p = ScriptParser(doc=__doc__, presets=PRESETS, script="benchmarks/distributed_scaling.py")
    p.add_argument("--agents", type=int_at_least(10))
    p.add_argument("--steps", type=count, help="training steps per run")
    p.add_argument("--layers", type=count, default=2, help="model depth for the throughput runs")
    p.add_argument("--partitions", type=count, nargs="+", default=[2, 4, 8],
                   help="part counts of the replication table")  # fmt: skip
    p.add_argument("--hops", type=count, nargs="+", default=[1, 2, 3],
                   help="halo depths of the replication table")  # fmt: skip
    p.add_argument("--only", nargs="+", choices=PARTS, default=PARTS, help="run only these parts")
    p.add_run_options("outputs/distributed_scaling", threads=None, progress=False, seed=0)
    p.add_argument(
        "--runs-out", type=output_folder, help="the example's output folder (<out>/runs)"
    )
    p.add_argument(
        "--cache", type=output_folder, default=Path("outputs/distributed_training/cache")
    )
    args = p.parse_args(argv)
    if args.runs_out is None:
        args.runs_out = args.out / "runs"
    return args


def replication(args: argparse.Namespace) -> list[dict]:
    t0 = time.perf_counter()
    data = economy_data(args.agents, seed=args.seed)
    edge_index, n, e = data.edge_index, data.num_nodes, data.num_edges
    print(f"economy: {n:,} agents, {e:,} edges ({time.perf_counter() - t0:.1f} s)", flush=True)
    rows = []
    for parts in args.partitions:
        for method in ("metis", "random"):
            t0 = time.perf_counter()
            assign = partition_nodes(edge_index, n, parts, method=method, seed=args.seed)
            seconds = time.perf_counter() - t0
            cut = float((assign[edge_index[0]] != assign[edge_index[1]]).float().mean())
            for hops in args.hops:
                factor = replication_factor(edge_index, assign, hops, n)
                rows.append(
                    dict(
                        agents=n,
                        edges=e,
                        method=method,
                        parts=parts,
                        hops=hops,
                        replication_nodes=factor.nodes,
                        replication_edges=factor.edges,
                        cut_share=cut,
                        partition_s=seconds,
                    )
                )
                print(
                    f"{method:6s} {parts} parts, {hops} hops: nodes x{factor.nodes:.3f}, "
                    f"edges x{factor.edges:.3f} (cut {cut:.1%}, partition {seconds:.1f} s)",
                    flush=True,
                )
    return rows


def throughput(args: argparse.Namespace) -> list[dict]:
    common = [
        "--agents",
        str(args.agents),
        "--steps",
        str(args.steps),
        "--layers",
        str(args.layers),
        "--seed",
        str(args.seed),
        "--out",
        str(args.runs_out),
        "--cache",
        str(args.cache),
    ]
    runs = [
        ("np1", [sys.executable, str(EXAMPLE), *common]),
        ("np1-t1", [sys.executable, str(EXAMPLE), "--threads", "1", "--tag", "np1-t1", *common]),
        *[
            (
                f"np2-{method}",
                [
                    sys.executable,
                    "-m",
                    "torch.distributed.run",
                    "--standalone",  # a free port: two runs at once do not meet on 29500
                    "--nproc_per_node",
                    "2",
                    str(EXAMPLE),
                    "--partition",
                    method,
                    *common,
                ],
            )
            for method in ("metis", "random")
        ],
    ]
    rows = []
    for tag, cmd in runs:
        print(
            f"\n$ {' '.join(Path(c).name if c == sys.executable else c for c in cmd)}", flush=True
        )
        done = subprocess.run(cmd, cwd=ROOT)
        if done.returncode != 0:
            raise RuntimeError(f"{tag} failed with exit code {done.returncode}")
        ranks, _ = read_table(args.runs_out / f"{tag}-ranks.csv")
        summary, _ = read_table(args.runs_out / f"{tag}-summary.csv")
        for r in ranks:
            rows.append(
                dict(
                    config=tag,
                    world_size=r["world_size"],
                    partition=r["partition"],
                    threads=r["threads"],
                    rank=r["rank"],
                    owned_nodes=r["owned_nodes"],
                    held_nodes=r["held_nodes"],
                    held_edges=r["held_edges"],
                    replication_edges=summary[0]["replication_edges"],
                    step_s=r["step_s"],
                    graph_edges_per_s=summary[0]["graph_edges_per_s"],
                    train_peak_mb=r["train_peak_mb"],
                    setup_peak_mb=r["setup_peak_mb"],
                )
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with Run.from_args(args) as run:  # the files land together at the end
        if "replication" in args.only:
            rows = replication(args)
            run.table("replication", rows)
            print_table(
                rows,
                ["method", "parts", "hops", "replication_nodes", "replication_edges", "cut_share"],
                title="replication (all ranks' share over the graph)",
            )
            series = {
                f"{m}, {h} hop{'s' * (h > 1)}": (
                    [r["parts"] for r in rows if r["method"] == m and r["hops"] == h],
                    [r["replication_edges"] for r in rows if r["method"] == m and r["hops"] == h],
                )
                for h in args.hops
                for m in ("metis", "random")
            }
            lines(
                args.out / "replication.png",
                series,
                xlabel="parts (ranks)",
                ylabel="edges held by all ranks / graph edges",
                title=f"halo replication, economy of {args.agents:,} agents",
                footer=run.footer,
                logx=True,
            )
        if "throughput" in args.only:
            rows = throughput(args)
            run.table("throughput", rows)
            print_table(
                rows,
                [
                    "config",
                    "rank",
                    "threads",
                    "held_edges",
                    "step_s",
                    "graph_edges_per_s",
                    "train_peak_mb",
                ],
                title="throughput",
            )

            def draw(ax):
                labels = [f"{r['config']}\nrank {r['rank']}" for r in rows]
                ax.bar(range(len(rows)), [r["train_peak_mb"] / 1e3 for r in rows], color="tab:blue")
                ax.set_xticks(range(len(rows)), labels, fontsize=7)
                ax.set_xlabel("process layout and rank")
                ax.set_ylabel("peak memory per rank, training (GB)", color="tab:blue")
                twin = ax.twinx()
                twin.plot(
                    range(len(rows)),
                    [r["graph_edges_per_s"] / 1e6 for r in rows],
                    "o",
                    color="tab:red",
                )
                twin.set_ylabel("graph edges / s (millions)", color="tab:red")
                twin.set_ylim(bottom=0)

            run.figure(
                "throughput",
                draw,
                size=(7.0, 4.0),
                title=f"1 vs 2 processes, economy of {args.agents:,} agents, {args.layers} layers",
            )


if __name__ == "__main__":
    main()
