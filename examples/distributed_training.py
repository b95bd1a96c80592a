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

import gc
import os
import statistics
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch_geometric.data import Data

from graphattn.distributed import (
    PARTITION_METHODS,
    all_reduce_max,
    all_reduce_sum,
    distribute_model,
    init_distributed,
    owned_mean_loss,
    rank_subgraph,
    reduce_mean,
    shared_partition,
)
from graphattn.economy import RELATION_NAMES, economy_data, random_shocks, shock_sample
from graphattn.experiments import (
    PeakMemory,
    Run,
    atomic_path,
    cache_key,
    cli,
    machine_line,
    process_peak_mb,
    split_indices,
)
from graphattn.experiments.plots import lines
from graphattn.nn import GraphTransformer, GraphTransformerConfig

PRESETS = {"full": dict(agents=1_000_000, steps=12), "quick": dict(agents=20_000, steps=30)}
TEST_FRACTION = 0.2


def parse_args(argv: list[str]):
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="examples/distributed_training.py")
    count = cli.int_at_least(1)
    p.add_run_options("outputs/distributed_training", threads=None, progress=False, seed=0)
    p.add_argument("--agents", type=cli.int_at_least(10), help="agents in the economy")
    p.add_argument("--steps", type=count, help="full-batch training steps")
    p.add_argument("--relations", type=cli.int_in(3, len(RELATION_NAMES)), default=3,
                   help="relation types K")  # fmt: skip
    p.add_argument("--layers", type=count, default=2, help="model depth L = hops of the target")
    p.add_argument("--d-model", type=count, default=32)
    p.add_argument("--heads", type=count, default=4)
    p.add_argument("--lr", type=cli.float_in(0, None, low_open=True), default=3e-3)
    p.add_argument("--density", type=cli.probability, default=0.3,
                   help="share of (agent, relation) hit")  # fmt: skip
    p.add_argument("--partition", choices=PARTITION_METHODS, default="metis")
    p.add_argument("--threads", type=count, help="torch threads per process (cores / processes)")
    p.add_argument("--checkpoint", action="store_true", help="recompute blocks in the backward")
    p.add_argument("--backend", choices=["gloo", "nccl"],
                   help="under torchrun; default: nccl on GPUs, else gloo")  # fmt: skip
    p.add_argument("--tag", help="file name prefix (default: np<processes>[-<partition>])")
    p.add_argument("--cache", type=cli.output_folder,
                   default=Path("outputs/distributed_training/cache"))  # fmt: skip
    args = p.parse_args(argv)
    p.check_divides(args, "heads", "d_model")
    if args.backend is not None and "WORLD_SIZE" not in os.environ:
        p.error("--backend applies to a process group: run under torchrun, or leave it out")
    if args.backend == "nccl" and not torch.cuda.is_available():
        p.error("--backend nccl needs CUDA GPUs, and none is available: use gloo")
    if args.tag is not None and (not args.tag or "/" in args.tag or args.tag.startswith(".")):
        p.error(f"--tag must be a plain file name prefix, got {args.tag!r}")
    return args


# ---- data -----------------------------------------------------------------------------------
def build_economy(args) -> Data:
    """The economy with inputs ``x``, the standardised target ``y`` and the train/test masks:
    :func:`~graphattn.economy.shock_sample` of one-off random shocks at horizon ``--layers``."""
    econ = economy_data(args.agents, num_relations=args.relations, seed=args.seed,
                        dtype=torch.float64)  # fmt: skip
    shocks = random_shocks(econ.num_nodes, args.relations, density=args.density, seed=args.seed + 1)
    sample = shock_sample(econ, shocks, args.layers, persistent=False, dtype=torch.float64)
    train, _ = split_indices(econ.num_nodes, TEST_FRACTION, seed=args.seed)
    train_mask = torch.zeros(econ.num_nodes, dtype=torch.bool)
    train_mask[train] = True
    mean, std = sample.y[train].mean(), sample.y[train].std().clamp_min(1e-12)
    return Data(x=sample.x.float(), y=((sample.y - mean) / std).float(), train_mask=train_mask,
                test_mask=~train_mask, edge_index=sample.edge_index, edge_type=sample.edge_type,
                num_nodes=econ.num_nodes)  # fmt: skip


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
    return GraphTransformer(GraphTransformerConfig(
        in_channels=in_channels, channels=args.d_model, heads=args.heads, num_layers=args.layers,
        out_channels=1, ffn_ratio=2, num_relations=args.relations, checkpoint=args.checkpoint,
    ))  # fmt: skip


def _predict(model, local: Data) -> torch.Tensor:
    out = model(local.x, local.edge_index, edge_type=local.edge_type).node
    return out[: local.batch_size, 0]  # the owned nodes


def train(model, local: Data, args, ctx, num_edges: int, say) -> tuple[list, float, PeakMemory]:
    """Full-batch AdamW steps on the owned nodes (the loss of the whole graph, shared by the
    ranks); the steps, the peak memory of the set-up and that of training."""
    owned = local.batch_size
    train_mask, y = local.train_mask[:owned], local.y[:owned]
    num_train = all_reduce_sum(train_mask.sum())
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
            slowest = float(all_reduce_max(elapsed))  # the step ends with the slowest rank
            steps.append(dict(step=step + 1, loss=loss_value, step_s=slowest))
            say(f"step {step + 1:3d}/{args.steps}  loss {loss_value:.4f}  {slowest:.2f} s  "
                f"{num_edges / slowest:,.0f} graph edges/s", flush=True)  # fmt: skip
    model.eval()
    del opt
    return steps, setup_peak_mb, mem


def test_nmse(model, local: Data) -> float:
    """Normalised MSE on the test nodes of all ranks."""
    owned = local.batch_size
    test_mask, y = local.test_mask[:owned], local.y[:owned]
    with torch.no_grad():
        pred = _predict(model, local)
    parts = [((pred[test_mask] - y[test_mask]) ** 2).sum(), y[test_mask].sum(),
             (y[test_mask] ** 2).sum(), test_mask.sum().to(y.dtype)]  # fmt: skip
    sse, s1, s2, count = all_reduce_sum(torch.stack(parts).double()).tolist()
    return sse / (s2 - s1 * s1 / count)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    threads = args.threads or max(1, (os.cpu_count() or 1) // local_world)
    torch.set_num_threads(threads)
    ctx = init_distributed(args.backend)
    say = print if ctx.is_main else (lambda *a, **k: None)
    tag = args.tag or ("np1" if ctx.world_size == 1 else f"np{ctx.world_size}-{args.partition}")
    settings = {**vars(args), "out": str(args.out), "cache": str(args.cache)}
    settings.update(world_size=ctx.world_size, threads=threads, backend=ctx.backend)
    del settings["command"]
    # the output folder is checked (and created) now, before any compute, by the writing rank
    run = Run.from_args(args, settings=settings) if ctx.is_main else None
    say(f"distributed training: {ctx.world_size} process(es) "
        f"({ctx.backend or 'no process group'}), {threads} thread(s) each")  # fmt: skip
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
    held = all_reduce_sum(torch.tensor([local.num_nodes, local.num_edges], dtype=torch.float64))
    rep_nodes, rep_edges = float(held[0]) / num_nodes, float(held[1]) / num_edges
    partition = args.partition if ctx.world_size > 1 else "none"
    say(f"partition ({partition}) and halo: {time.perf_counter() - t0:.1f} s; replication "
        f"factor nodes {rep_nodes:.3f}, edges {rep_edges:.3f}")  # fmt: skip

    model = distribute_model(
        build_model(args, local.num_features), ctx, find_unused_parameters=True
    )  # the graph-level head is unused
    steps, setup_peak_mb, mem = train(model, local, args, ctx, num_edges, say)
    nmse = test_nmse(model, local)
    step_s = statistics.median(s["step_s"] for s in steps[1:] or steps)  # the first warms up
    row = dict(
        world_size=ctx.world_size, rank=ctx.rank, partition=partition, threads=threads,
        owned_nodes=local.batch_size, held_nodes=local.num_nodes, held_edges=local.num_edges,
        step_s=step_s, graph_edges_per_s=num_edges / step_s,
        held_edges_per_s=local.num_edges / step_s, setup_peak_mb=setup_peak_mb,
        train_peak_mb=mem.peak_mb, train_extra_mb=mem.extra_mb,
    )  # fmt: skip
    rows = [row]
    if ctx.world_size > 1:
        rows = [None] * ctx.world_size
        dist.all_gather_object(rows, row)
    summary = dict(
        agents=num_nodes, edges=num_edges, layers=args.layers, world_size=ctx.world_size,
        partition=partition, threads=threads, replication_nodes=rep_nodes,
        replication_edges=rep_edges, step_s=step_s, graph_edges_per_s=num_edges / step_s,
        max_train_peak_mb=max(r["train_peak_mb"] for r in rows),
        max_setup_peak_mb=max(r["setup_peak_mb"] for r in rows),
        first_loss=steps[0]["loss"], final_loss=steps[-1]["loss"], test_nmse=nmse,
    )  # fmt: skip
    if ctx.is_main:
        report(args, run, tag, rows, steps, summary)
    if ctx.world_size > 1:
        # Free DDP (and its reducer) while the process group is still registered, then
        # destroy the group. Otherwise the reducer, freed with this frame, holds the group's
        # last reference and runs gloo's destructor while holding the GIL; that destructor
        # joins gloo's threads, one of which may still be freeing a Python-owned tensor of the
        # all_gather above and waits for the GIL forever (seen here: a rank hung at exit after
        # writing its results, in about half of the two-process runs; the same stack as
        # pytorch/pytorch#190489). The group's own Python binding releases the GIL when it
        # is destroyed.
        del model
        gc.collect()
        dist.destroy_process_group()
    return summary


def report(args, run: Run, tag: str, rows: list[dict], steps: list[dict], summary: dict) -> None:
    """Print the ranks and the summary; write the three tables and the loss curve."""
    print(f"per rank: {[(r['rank'], r['owned_nodes'], r['held_nodes']) for r in rows]} "
          "(rank, owned, held nodes)")  # fmt: skip
    for r in rows:
        print(f"rank {r['rank']}: {r['held_edges']:,} edges held, {r['held_edges_per_s']:,.0f} "
              f"edges/s, peak memory setup {r['setup_peak_mb']:,.0f} MB, training "
              f"{r['train_peak_mb']:,.0f} MB (+{r['train_extra_mb']:,.0f} MB)")  # fmt: skip
    print(f"median step {summary['step_s']:.2f} s: {summary['graph_edges_per_s']:,.0f} graph "
          f"edges/s; loss {steps[0]['loss']:.4f} -> {steps[-1]['loss']:.4f}; test normalised "
          f"MSE {summary['test_nmse']:.4f}")  # fmt: skip
    with run:  # the four files land together (staged until the end of the block)
        run.table(f"{tag}-ranks", rows)
        run.table(f"{tag}-steps", steps)
        run.table(f"{tag}-summary", [summary])
        title = f"{summary['agents']:,} agents, {summary['world_size']} process(es)"
        curve = {tag: ([s["step"] for s in steps], [s["loss"] for s in steps])}
        lines(args.out / f"{tag}-loss.png", curve, xlabel="step", title=title,
              ylabel="training loss (standardised MSE)", footer=run.footer)  # fmt: skip


if __name__ == "__main__":
    main()
