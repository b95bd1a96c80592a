"""Partitioned training on torch.distributed: a graph transformer on a 1M-agent economy.

Task (node regression): the impulse response ``1 - y_i(L)`` of every agent's output ``L``
steps after random one-off shocks (:func:`graphattn.economy.simulate`), which depends exactly
on the agent's ``L``-hop upstream neighbourhood. Inputs: tier, log size and the agent's own
shocks; edges carry their relation type. Model: a :class:`graphattn.nn.GraphTransformer` of
``L`` layers, so each rank needs exactly its part plus the ``L``-hop halo.

Every rank: joins the process group that ``torchrun`` describes (none without ``torchrun``),
loads the economy (rank 0 generates and caches it), takes its part of a METIS or random
partition plus the exact halo (:func:`graphattn.distributed.rank_subgraph`), and trains a
DDP-wrapped model full-batch on it with the loss on its owned nodes
(:func:`graphattn.distributed.owned_mean_loss`): the gradients equal one process's on the
whole graph.

Run (from the repository root)::

    torchrun --standalone --nproc_per_node 2 examples/distributed_training.py  # 2 processes
    python examples/distributed_training.py                           # 1 process
    python examples/distributed_training.py --quick   # 20k agents, 30 steps (about a minute)

Writes into ``--out`` (default ``outputs/distributed_training/``), with ``TAG`` = ``np1`` or
``np<world>-<partition>`` (or ``--tag``): ``TAG-ranks.csv`` (per rank: nodes and edges held,
step time, throughput, peak memory), ``TAG-steps.csv`` (loss and time per step), ``TAG-summary.csv``
(one row) and ``TAG-loss.png``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch_geometric.data import Data

from graphattn.distributed import (
    PARTITION_METHODS,
    all_reduce_sum,
    distribute_model,
    init_distributed,
    owned_mean_loss,
    rank_subgraph,
    reduce_mean,
    shared_partition,
)
from graphattn.economy import RELATION_NAMES, economy_data, random_shocks, simulate
from graphattn.experiments import (
    PeakMemory,
    RunFolder,
    atomic_path,
    cache_key,
    machine_line,
    process_peak_mb,
    split_indices,
    write_table,
)
from graphattn.experiments.cli import (
    ScriptParser,
    float_in,
    int_at_least,
    int_in,
    output_folder,
    probability,
)
from graphattn.experiments.plots import lines
from graphattn.nn import GraphTransformer, GraphTransformerConfig

QUICK = dict(agents=20_000, steps=30)
TEST_FRACTION = 0.2
FULL = dict(agents=1_000_000, steps=12)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ScriptParser(doc=__doc__)
    p.add_argument("--quick", action="store_true", help="20k agents, 30 steps")
    p.add_argument(
        "--agents", type=int_at_least(10), help="agents in the economy (default 1,000,000)"
    )
    p.add_argument("--steps", type=int_at_least(1), help="full-batch training steps (default 12)")
    p.add_argument(
        "--relations", type=int_in(3, len(RELATION_NAMES)), default=3, help="relation types K"
    )
    p.add_argument(
        "--layers", type=int_at_least(1), default=2, help="model depth L = hops of the target"
    )
    p.add_argument("--d-model", type=int_at_least(1), default=32)
    p.add_argument("--heads", type=int_at_least(1), default=4)
    p.add_argument("--lr", type=float_in(0, None, low_open=True), default=3e-3)
    p.add_argument(
        "--density", type=probability, default=0.3, help="share of (agent, relation) hit"
    )
    p.add_argument("--partition", choices=PARTITION_METHODS, default="metis")
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument(
        "--threads",
        type=int_at_least(1),
        help="torch threads per process (default: cores / processes)",
    )
    p.add_argument("--checkpoint", action="store_true", help="recompute blocks in the backward")
    p.add_argument(
        "--backend",
        choices=["gloo", "nccl"],
        help="under torchrun; default: nccl on GPUs, else gloo",
    )
    p.add_argument("--out", type=output_folder, default=Path("outputs/distributed_training"))
    p.add_argument("--tag", help="file name prefix (default: np<processes>[-<partition>])")
    p.add_argument(
        "--cache",
        type=output_folder,
        default=Path("outputs/distributed_training/cache"),
        help="where the generated economy and partitions are kept between runs",
    )
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.d_model % args.heads:
        p.error(f"--heads {args.heads} must divide --d-model {args.d_model}")
    if args.backend is not None and "WORLD_SIZE" not in os.environ:
        p.error("--backend applies to a process group: run under torchrun, or leave it out")
    if args.backend == "nccl" and not torch.cuda.is_available():
        p.error("--backend nccl needs CUDA GPUs, and none is available: use gloo")
    if args.tag is not None and (not args.tag or "/" in args.tag or args.tag.startswith(".")):
        p.error(f"--tag must be a plain file name prefix, got {args.tag!r}")
    return args


# ---- data -----------------------------------------------------------------------------------
def build_economy(args: argparse.Namespace) -> Data:
    """The economy with inputs ``x``, the standardised target ``y`` and the train/test masks."""
    econ = economy_data(
        args.agents, num_relations=args.relations, seed=args.seed, dtype=torch.float64
    )
    shocks = random_shocks(econ.num_nodes, args.relations, density=args.density, seed=args.seed + 1)
    target = 1.0 - simulate(econ, shocks, args.layers, persistent=False).output[args.layers]
    train, test = split_indices(econ.num_nodes, TEST_FRACTION, seed=args.seed)
    train_mask = torch.zeros(econ.num_nodes, dtype=torch.bool)
    train_mask[train] = True
    mean, std = target[train].mean(), target[train].std().clamp_min(1e-12)
    return Data(
        x=torch.cat([econ.x, shocks], dim=1).float(),  # (N, tiers + 1 + K)
        y=((target - mean) / std).float(),
        train_mask=train_mask,
        test_mask=~train_mask,
        edge_index=econ.edge_index,
        edge_type=econ.edge_type,
        num_nodes=econ.num_nodes,
    )


def _save(value: object, path: Path) -> None:
    with atomic_path(path) as tmp:  # a reader never sees half a file
        torch.save(value, tmp)


def _economy_settings(args) -> dict:
    """Every setting that shapes the cached economy (inputs, target, split)."""
    return dict(
        kind="economy", agents=args.agents, relations=args.relations, layers=args.layers,
        density=args.density, seed=args.seed, test_fraction=TEST_FRACTION,
    )  # fmt: skip


def _all(flag: bool) -> bool:
    """``flag`` holds on every rank."""
    return bool(all_reduce_sum(torch.tensor(int(not flag))) == 0)


def load_data(args, ctx) -> Data:
    """The economy, generated once per machine (by its local rank 0) and cached in ``--cache``;
    a rank that cannot see the file afterwards (a machine without it) generates it too."""
    key = cache_key(_economy_settings(args))  # every data-shaping setting + the versions
    path = args.cache / f"economy-n{args.agents}-{key}.pt"
    if ctx.local_rank == 0 and not path.exists():
        _save(build_economy(args), path)
    if ctx.world_size > 1:
        dist.barrier()
    return torch.load(path, weights_only=False) if path.exists() else build_economy(args)


def load_partition(args, ctx, data: Data) -> torch.Tensor:
    """The partition: from the cache if every rank has it, else computed on rank 0 and
    broadcast (:func:`graphattn.distributed.shared_partition`), then cached."""
    if ctx.world_size == 1:
        return torch.zeros(data.num_nodes, dtype=torch.long)
    settings = dict(
        _economy_settings(args), kind="partition", method=args.partition,
        parts=ctx.world_size,
    )  # fmt: skip
    path = args.cache / f"parts-n{args.agents}-p{ctx.world_size}-{cache_key(settings)}.pt"
    if _all(path.exists()):  # decided together, before anyone writes
        return torch.load(path)
    parts = shared_partition(
        data.edge_index, data.num_nodes, ctx, method=args.partition, seed=args.seed
    )
    if ctx.local_rank == 0:
        _save(parts, path)
    return parts


# ---- training -------------------------------------------------------------------------------
def build_model(args, in_channels: int) -> GraphTransformer:
    torch.manual_seed(args.seed)
    return GraphTransformer(
        GraphTransformerConfig(
            in_channels=in_channels,
            channels=args.d_model,
            heads=args.heads,
            num_layers=args.layers,
            out_channels=1,
            ffn_ratio=2,
            num_relations=args.relations,
            checkpoint=args.checkpoint,
        )
    )


def _predict(model, local: Data) -> torch.Tensor:
    out = model(local.x, local.edge_index, edge_type=local.edge_type).node
    return out[: local.batch_size, 0]  # the owned nodes


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    # the command that reproduces this run, also when main() is called from Python
    command = " ".join(
        ["examples/distributed_training.py", *(sys.argv[1:] if argv is None else argv)]
    )
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    threads = args.threads or max(1, (os.cpu_count() or 1) // local_world)
    torch.set_num_threads(threads)
    ctx = init_distributed(args.backend)
    # the output folder is checked (and created) now, before any compute, by the writing rank
    folder = RunFolder(args.out) if ctx.is_main else None
    say = print if ctx.is_main else (lambda *a, **k: None)
    tag = args.tag or ("np1" if ctx.world_size == 1 else f"np{ctx.world_size}-{args.partition}")
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    settings.update(world_size=ctx.world_size, threads=threads, backend=ctx.backend)
    say(
        f"distributed training: {ctx.world_size} process(es) "
        f"({ctx.backend or 'no process group'}), {threads} thread(s) each"
    )
    say(f"settings: {settings}")
    say(machine_line())

    t0 = time.perf_counter()
    data = load_data(args, ctx)
    num_nodes, num_edges = data.num_nodes, data.num_edges
    say(f"economy: {num_nodes:,} agents, {num_edges:,} edges ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    parts = load_partition(args, ctx, data)
    local = rank_subgraph(data, parts, ctx.rank, args.layers)
    del data, parts  # each rank keeps only its part and halo
    local = local.to(ctx.device)
    owned = local.batch_size
    held = torch.tensor([local.num_nodes, local.num_edges], dtype=torch.float64)
    total_held = all_reduce_sum(held)
    rep_nodes, rep_edges = float(total_held[0]) / num_nodes, float(total_held[1]) / num_edges
    say(
        f"partition ({args.partition if ctx.world_size > 1 else 'none'}) and halo: "
        f"{time.perf_counter() - t0:.1f} s; replication factor nodes {rep_nodes:.3f}, "
        f"edges {rep_edges:.3f}"
    )

    train_mask = local.train_mask[:owned]
    test_mask = local.test_mask[:owned]
    y = local.y[:owned]
    num_train = all_reduce_sum(train_mask.sum())
    model = distribute_model(
        build_model(args, local.num_features), ctx, find_unused_parameters=True
    )  # the graph-level head is unused
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    setup_peak_mb = process_peak_mb()
    steps = []
    model.train()
    with PeakMemory() as mem:
        for step in range(args.steps):
            start = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            pred = _predict(model, local)
            loss = owned_mean_loss((pred[train_mask] - y[train_mask]) ** 2, num_train)
            loss.backward()
            opt.step()
            elapsed = time.perf_counter() - start
            loss_value = float(reduce_mean(loss.detach()))  # the full-graph training loss
            slowest = _max(elapsed, ctx.device)  # the step ends with the slowest rank
            steps.append(dict(step=step + 1, loss=loss_value, step_s=slowest))
            say(
                f"step {step + 1:3d}/{args.steps}  loss {loss_value:.4f}  {slowest:.2f} s  "
                f"{num_edges / slowest:,.0f} graph edges/s",
                flush=True,
            )
    model.eval()
    with torch.no_grad():
        pred = _predict(model, local)
    # normalised MSE on the test nodes of all ranks
    sums = all_reduce_sum(
        torch.stack(
            [
                ((pred[test_mask] - y[test_mask]) ** 2).sum(),
                y[test_mask].sum(),
                (y[test_mask] ** 2).sum(),
                test_mask.sum().to(y.dtype),
            ]
        ).double()
    )
    sse, s1, s2, count = sums.tolist()
    test_nmse = sse / (s2 - s1 * s1 / count)

    step_s = statistics.median(s["step_s"] for s in steps[1:] or steps)  # the first step warms up
    row = dict(
        world_size=ctx.world_size,
        rank=ctx.rank,
        partition=args.partition if ctx.world_size > 1 else "none",
        threads=threads,
        owned_nodes=owned,
        held_nodes=local.num_nodes,
        held_edges=local.num_edges,
        step_s=step_s,
        graph_edges_per_s=num_edges / step_s,
        held_edges_per_s=local.num_edges / step_s,
        setup_peak_mb=setup_peak_mb,
        train_peak_mb=mem.peak_mb,
        train_extra_mb=mem.extra_mb,
    )
    rows = [row]
    if ctx.world_size > 1:
        rows = [None] * ctx.world_size
        dist.all_gather_object(rows, row)
    summary = dict(
        agents=num_nodes,
        edges=num_edges,
        layers=args.layers,
        world_size=ctx.world_size,
        partition=row["partition"],
        threads=threads,
        replication_nodes=rep_nodes,
        replication_edges=rep_edges,
        step_s=step_s,
        graph_edges_per_s=num_edges / step_s,
        max_train_peak_mb=max(r["train_peak_mb"] for r in rows),
        max_setup_peak_mb=max(r["setup_peak_mb"] for r in rows),
        first_loss=steps[0]["loss"],
        final_loss=steps[-1]["loss"],
        test_nmse=test_nmse,
    )
    if ctx.is_main:
        print(
            f"per rank: {[(r['rank'], r['owned_nodes'], r['held_nodes']) for r in rows]} "
            "(rank, owned, held nodes)"
        )
        for r in rows:
            print(
                f"rank {r['rank']}: {r['held_edges']:,} edges held, "
                f"{r['held_edges_per_s']:,.0f} edges/s, peak memory setup "
                f"{r['setup_peak_mb']:,.0f} MB, training {r['train_peak_mb']:,.0f} MB "
                f"(+{r['train_extra_mb']:,.0f} MB)"
            )
        print(
            f"median step {step_s:.2f} s: {num_edges / step_s:,.0f} graph edges/s; "
            f"loss {steps[0]['loss']:.4f} -> {steps[-1]['loss']:.4f}; "
            f"test normalised MSE {test_nmse:.4f}"
        )
        with folder:  # the four files land together (staged until the end of the block)
            out = args.out
            write_table(out / f"{tag}-ranks.csv", rows, settings=settings, command=command)
            write_table(out / f"{tag}-steps.csv", steps, settings=settings, command=command)
            write_table(out / f"{tag}-summary.csv", [summary], settings=settings, command=command)
            lines(
                out / f"{tag}-loss.png",
                {tag: ([s["step"] for s in steps], [s["loss"] for s in steps])},
                xlabel="step",
                ylabel="training loss (standardised MSE)",
                title=f"{num_nodes:,} agents, {ctx.world_size} process(es)",
                footer=machine_line(),
            )
        print(f"wrote {args.out}/{tag}-{{ranks,steps,summary}}.csv and {tag}-loss.png")
    if ctx.world_size > 1:
        # Free DDP (and its reducer) while the process group is still registered, then
        # destroy the group. Otherwise the reducer, freed with this frame, holds the group's
        # last reference and runs gloo's destructor while holding the GIL; that destructor
        # joins gloo's threads, one of which may still be freeing a Python-owned tensor of the
        # all_gather above and waits for the GIL forever (seen here: a rank hung at exit after
        # writing its results, in about half of the two-process runs; the same stack as
        # pytorch/pytorch#190489). The group's own Python binding releases the GIL when it
        # is destroyed.
        del model, opt
        gc.collect()
        dist.destroy_process_group()
    return summary


def _max(value: float, device: torch.device) -> float:
    """The largest ``value`` over all ranks."""
    t = torch.tensor(value, dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t)


if __name__ == "__main__":
    main()
