"""Measure five claims about transformer blocks with graphattn.nn (issue 5).

Subcommands (each prints its settings and table, and writes CSV + PNG into --out):

  variance    (a) output variance of the attention layer at init for 1..16 heads, fixed d_model
  params      (b) parameter count of the attention layer (and block) for those head counts
  logits      (c) attention-logit variance for head sizes 16..256, with and without 1/sqrt(d_h)
  depth       (d) Pre-LN vs Post-LN at depth 24: gradient norms of the first and last block at
              init, and the loss after a fixed number of training steps
  memory      (e) activation checkpointing: the longest sequence whose forward + backward fits a
              memory budget, with and without checkpointing, per engine
  all         every claim in turn

Examples::

    PYTHONPATH=. python examples/transformer_claims.py all --quick
    PYTHONPATH=. python examples/transformer_claims.py memory --budget-mb 128

Memory method (e): every trial runs in a fresh subprocess (``_trial``) with glibc's mmap threshold
fixed at 64 KiB (``MALLOC_MMAP_THRESHOLD_``), so freed tensors go back to the OS and the resident
set tracks live memory. The child builds the model, runs a small warm-up forward + backward, frees
the gradients, reads its resident set (``/proc/self/statm``) as the baseline, resets the kernel's
peak counter (``echo 5 > /proc/self/clear_refs``), runs one forward + backward at the trial length
and reads the peak (``VmHWM`` in ``/proc/self/status``). The measured cost is peak - baseline: every
activation, workspace and gradient (parameter gradients included) that forward + backward needs,
but not the parameters, the inputs or the Python/torch runtime. Where ``clear_refs`` is not
writable the child falls back to ``ru_maxrss`` (a peak over the whole process life; the CSV says
which method ran).
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from graphattn import ChunkedGraph, FullGraph, MultiHeadAttentionConv, available_engines
from graphattn.nn import GraphTransformer, GraphTransformerBlock, GraphTransformerConfig

HEADS = (1, 2, 4, 8, 16)
HEAD_DIMS = (16, 32, 64, 128, 256)


# ---- helpers ----------------------------------------------------------------------------------
def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")


def print_table(rows: list[dict], title: str) -> None:
    print(f"\n{title}")
    keys = list(rows[0])
    cells = [[_fmt(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print("  ".join(k.rjust(w) for k, w in zip(keys, widths, strict=True)))
    for c in cells:
        print("  ".join(v.rjust(w) for v, w in zip(c, widths, strict=True)))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _plot(path: Path, title: str, draw) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    draw(ax)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


# ---- (a) output variance at init --------------------------------------------------------------
def measure_output_variance(
    heads_list=HEADS,
    d_model: int = 256,
    num_nodes: int = 256,
    seeds: int = 20,
) -> list[dict]:
    """Variance of ``MultiHeadAttentionConv(d, d, heads)(x)`` at init for ``x ~ N(0, 1)``,
    full attention over ``num_nodes`` tokens, over ``seeds`` fresh layers and inputs."""
    rows = []
    for heads in tqdm(heads_list, desc="(a) variance", leave=False):
        values = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            conv = MultiHeadAttentionConv(d_model, d_model, heads)
            x = torch.randn(num_nodes, d_model)
            with torch.no_grad():
                values.append(conv(x, FullGraph(num_nodes)).var().item())
        t = torch.tensor(values)
        rows.append(
            {
                "heads": heads,
                "head_dim": d_model // heads,
                "output_var_mean": t.mean().item(),
                "output_var_std": t.std().item(),
                "seeds": seeds,
            }
        )
    return rows


# ---- (b) parameter count ----------------------------------------------------------------------
def attention_param_counts(heads_list=HEADS, d_model: int = 256) -> list[dict]:
    rows = []
    for heads in heads_list:
        conv = MultiHeadAttentionConv(d_model, d_model, heads)
        block = GraphTransformerBlock(d_model, heads)
        rows.append(
            {
                "heads": heads,
                "head_dim": d_model // heads,
                "attention_params": sum(p.numel() for p in conv.parameters()),
                "formula_4(d^2+d)": 4 * (d_model**2 + d_model),
                "block_params": sum(p.numel() for p in block.parameters()),
            }
        )
    return rows


# ---- (c) logit variance -----------------------------------------------------------------------
def measure_logit_variance(
    head_dims=HEAD_DIMS,
    d_model: int = 256,
    num_nodes: int = 256,
    seeds: int = 10,
) -> list[dict]:
    """Variance of ``<q_i, k_j>`` (and of the same divided by sqrt(d_h)) from a layer's own
    projections at init, ``heads = d_model / d_h``, plus what it does to the softmax."""
    rows = []
    for dim in tqdm(head_dims, desc="(c) logits", leave=False):
        heads = d_model // dim
        raw_var, stats = [], {True: [], False: []}
        for seed in range(seeds):
            torch.manual_seed(seed)
            conv = MultiHeadAttentionConv(d_model, d_model, heads)
            x = torch.randn(num_nodes, d_model)
            with torch.no_grad():
                q = conv.lin_query(x).view(-1, heads, dim)  # (N, H, D)
                k = conv.lin_key(x).view(-1, heads, dim)  # (N, H, D)
                logits = torch.einsum("ihd,jhd->hij", q, k)  # (H, N, N), unscaled
            raw_var.append(logits.var().item())
            for scaled in (True, False):
                p = (logits / math.sqrt(dim) if scaled else logits).softmax(-1)
                entropy = -(p * p.clamp_min(1e-30).log()).sum(-1)  # (H, N)
                stats[scaled].append(
                    (entropy.mean().item() / math.log(num_nodes), p.amax(-1).mean().item())
                )
        raw = torch.tensor(raw_var).mean().item()
        row = {
            "head_dim": dim,
            "heads": heads,
            "logit_var_unscaled": raw,
            "logit_var_scaled": raw / dim,
        }
        for scaled, name in ((False, "unscaled"), (True, "scaled")):
            ent, top = torch.tensor(stats[scaled]).mean(0).tolist()
            row[f"entropy/logN_{name}"] = ent
            row[f"max_weight_{name}"] = top
        rows.append(row)
    return rows


# ---- (d) Pre-LN vs Post-LN at depth -----------------------------------------------------------
def mean_max_task(generator: torch.Generator, num_graphs: int = 16, in_channels: int = 3):
    """Node target: mean of feature 0 over the node's graph; graph target: max of feature 1."""
    sizes = torch.randint(4, 12, (num_graphs,), generator=generator).tolist()
    pattern = FullGraph.from_sizes(sizes)
    x = torch.randn(pattern.num_nodes, in_channels, generator=generator)
    batch = pattern.batch()
    counts = torch.bincount(batch).float()
    mean = torch.zeros(num_graphs).index_add_(0, batch, x[:, 0]) / counts
    top = torch.full((num_graphs,), -1e9).scatter_reduce(0, batch, x[:, 1], "amax")
    return x, pattern, mean[batch].unsqueeze(1), top.unsqueeze(1)


def _task_loss(model, x, pattern, node_y, graph_y):
    out = model(x, pattern)
    return torch.nn.functional.mse_loss(out.node, node_y) + torch.nn.functional.mse_loss(
        out.graph, graph_y
    )


def _depth_config(norm: str, depth: int, channels: int) -> GraphTransformerConfig:
    return GraphTransformerConfig(
        in_channels=3,
        channels=channels,
        heads=4,
        num_layers=depth,
        out_channels=1,
        norm=norm,
        pool="max",
        engine="dense",
    )


def gradient_norms_at_init(norm: str, depth: int = 24, channels: int = 64, seed: int = 0):
    """Gradient norm of every block's parameters for one batch at initialisation."""
    torch.manual_seed(seed)
    model = GraphTransformer(_depth_config(norm, depth, channels))
    batch = mean_max_task(torch.Generator().manual_seed(1000 + seed))
    _task_loss(model, *batch).backward()
    return [
        torch.sqrt(sum(p.grad.square().sum() for p in block.parameters())).item()
        for block in model.blocks
    ]


def train_steps(
    norm: str, lr: float, steps: int, depth: int = 24, channels: int = 64, seed: int = 0
) -> dict:
    torch.manual_seed(seed)
    model = GraphTransformer(_depth_config(norm, depth, channels))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    data = [mean_max_task(gen) for _ in range(8)]
    held_out = mean_max_task(torch.Generator().manual_seed(12345))
    with torch.no_grad():
        initial = _task_loss(model.eval(), *held_out).item()
    model.train()
    for step in range(steps):
        loss = _task_loss(model, *data[step % len(data)])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = _task_loss(model.eval(), *held_out).item()
    return {"initial_loss": initial, "final_loss": final}


# ---- (e) checkpointing memory budget ----------------------------------------------------------
def memory_variants(window: int) -> list[tuple[str, str]]:
    """(variant, note) pairs to measure: dense full attention (SDPA's flash and math kernels)
    and chunked attention on the blocked engine."""
    return [
        ("dense", "FullGraph, SDPA (flash kernel on CPU: no L x L tensor)"),
        ("dense-math", "FullGraph, SDPA forced to the math kernel (stores L x L per layer)"),
        ("blocked", f"ChunkedGraph(chunk_size={window}) on the blocked engine"),
    ]


def _rss() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def run_trial(args) -> dict:
    """One forward + backward at ``args.length``; runs inside the child process."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    variant = args.variant
    engine = {"dense-math": "dense"}.get(variant, variant)
    config = GraphTransformerConfig(
        in_channels=args.channels,
        channels=args.channels,
        heads=args.heads,
        num_layers=args.layers,
        checkpoint=args.checkpoint,
        engine=engine,
    )
    model = GraphTransformer(config)

    def graph(n):
        if variant in ("dense", "dense-math"):
            return FullGraph(n)
        return ChunkedGraph(n, chunk_size=args.window)

    ctx = sdpa_kernel([SDPBackend.MATH]) if variant == "dense-math" else None

    def step(n):
        x = torch.randn(n, args.channels)
        g = graph(n)
        if ctx is not None:
            with sdpa_kernel([SDPBackend.MATH]):
                out = model(x, g)
                (out.node.sum() + out.graph.sum()).backward()
        else:
            out = model(x, g)
            (out.node.sum() + out.graph.sum()).backward()

    step(min(args.length, 2 * args.window))  # warm-up: kernels, thread pools, allocator
    model.zero_grad(set_to_none=True)
    x = torch.randn(args.length, args.channels)
    g = graph(args.length)  # inputs exist before the baseline (edge lists are input, too)
    del x, g
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        method = "VmHWM after clear_refs"
    except OSError:
        method = "ru_maxrss (whole process)"
    base = _rss()
    if method.startswith("VmHWM"):
        Path("/proc/self/clear_refs").write_text("5")
    start = time.perf_counter()
    step(args.length)
    seconds = time.perf_counter() - start
    if method.startswith("VmHWM"):
        peak = _hwm()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "peak_extra_bytes": peak - base,
        "baseline_bytes": base,
        "seconds": seconds,
        "method": method,
    }


def _spawn_trial(args, variant: str, checkpoint: bool, length: int, timeout: float) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "_trial",
        "--variant",
        variant,
        "--length",
        str(length),
        "--channels",
        str(args.channels),
        "--heads",
        str(args.heads),
        "--layers",
        str(args.layers),
        "--window",
        str(args.window),
        "--threads",
        str(args.threads),
    ] + (["--checkpoint"] if checkpoint else [])
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
    )
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"status": "timeout"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
        return {"status": f"error: {tail[0]}"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["status"] = "ok"
    return result


def _round(n: float, multiple: int) -> int:
    return max(multiple, int(round(n / multiple)) * multiple)


def longest_fitting(args, variant: str, checkpoint: bool, budget: int) -> dict:
    """Largest measured length whose forward + backward peak stays within ``budget`` bytes.

    Three cheap probes fit peak(L) = a + b L + c L^2 (least squares); the predicted length is
    then checked by real trials and refined by bisection until the fitting and failing lengths
    are within ``args.tolerance`` of each other (or ``args.max_trials`` is reached).
    """
    step = args.window
    probes = [step, 4 * step, 16 * step]
    trials = []
    for n in probes:
        r = _spawn_trial(args, variant, checkpoint, n, args.trial_timeout)
        trials.append((n, r))
        if r["status"] != "ok":
            break
    ok = [(n, r["peak_extra_bytes"]) for n, r in trials if r["status"] == "ok"]
    fits = [n for n, r in trials if r["status"] == "ok" and r["peak_extra_bytes"] <= budget]
    fails = [n for n, r in trials if r["status"] != "ok" or r["peak_extra_bytes"] > budget]
    if len(ok) == 3:
        ls = torch.tensor([[1.0, n, n * n] for n, _ in ok], dtype=torch.float64)
        ys = torch.tensor([m for _, m in ok], dtype=torch.float64)
        a, b, c = torch.linalg.lstsq(ls, ys.unsqueeze(1)).solution.squeeze(1).tolist()
        if c > 1e-9 * max(b, 1.0):
            guess = (-b + math.sqrt(max(b * b - 4 * c * (a - budget), 0.0))) / (2 * c)
        else:
            guess = (budget - a) / max(b, 1e-9)
        guess = _round(guess, step)
    else:
        a = b = c = float("nan")
        guess = probes[0]
    lo = max(fits, default=0)
    hi = min(fails, default=math.inf)
    n = guess
    for _ in range(args.max_trials):
        if not lo < n < hi:  # the fit points outside the measured bounds: step inside them
            n = (
                _round(lo * (1 + 2 * args.tolerance), step)
                if hi is math.inf
                else _round((lo + hi) / 2, step)
            )
            if not lo < n < hi:
                break
        r = _spawn_trial(args, variant, checkpoint, n, args.trial_timeout)
        trials.append((n, r))
        if r["status"] == "ok" and r["peak_extra_bytes"] <= budget:
            lo = n
        else:
            hi = n
        if hi <= lo * (1 + args.tolerance) + step:
            break
        n = (
            _round(n * (1 + 2 * args.tolerance), step)
            if hi is math.inf
            else _round((lo + hi) / 2, step)
        )
        if n in (lo, hi):
            break
    best = dict(trials)[lo] if lo else {}
    return {
        "longest_fitting": lo,
        "smallest_failing": hi if hi is not math.inf else "",
        "peak_at_longest_mb": best.get("peak_extra_bytes", 0) / 2**20,
        "seconds_at_longest": best.get("seconds", float("nan")),
        "fit_bytes_per_node": b,
        "fit_bytes_per_node2": c,
        "trials": len(trials),
        "method": best.get("method", ""),
    }


# ---- subcommands --------------------------------------------------------------------------------
def cmd_variance(args) -> None:
    settings = dict(
        d_model=args.d_model, num_nodes=64 if args.quick else 256, seeds=5 if args.quick else 20
    )
    print(f"(a) output variance at init; {settings}; graph: FullGraph; x ~ N(0, 1)")
    rows = measure_output_variance(HEADS, **settings)
    print_table(rows, "(a) output variance at init")
    spread = max(r["output_var_mean"] for r in rows) / min(r["output_var_mean"] for r in rows)
    print(f"max/min variance over head counts: {spread:.3f}")
    write_csv(args.out / "a_variance.csv", rows)
    _plot(
        args.out / "a_variance.png",
        f"(a) output variance at init, d_model={args.d_model}",
        lambda ax: (
            ax.errorbar(
                [r["heads"] for r in rows],
                [r["output_var_mean"] for r in rows],
                [r["output_var_std"] for r in rows],
                marker="o",
            ),
            ax.set_xscale("log", base=2),
            ax.set_xlabel("heads"),
            ax.set_ylabel("Var(output)"),
            ax.set_ylim(bottom=0),
        ),
    )


def cmd_params(args) -> None:
    print(f"(b) parameter count; d_model={args.d_model}")
    rows = attention_param_counts(HEADS, args.d_model)
    print_table(rows, "(b) parameters")
    write_csv(args.out / "b_params.csv", rows)
    _plot(
        args.out / "b_params.png",
        f"(b) parameters, d_model={args.d_model}",
        lambda ax: (
            ax.plot(
                [r["heads"] for r in rows],
                [r["attention_params"] for r in rows],
                "o-",
                label="attention",
            ),
            ax.plot(
                [r["heads"] for r in rows], [r["block_params"] for r in rows], "s-", label="block"
            ),
            ax.set_xscale("log", base=2),
            ax.set_xlabel("heads"),
            ax.set_ylim(bottom=0),
            ax.legend(),
        ),
    )


def cmd_logits(args) -> None:
    settings = dict(
        d_model=args.d_model, num_nodes=64 if args.quick else 256, seeds=3 if args.quick else 10
    )
    print(f"(c) logit variance; {settings}; heads = d_model / d_h; x ~ N(0, 1)")
    rows = measure_logit_variance(HEAD_DIMS, **settings)
    print_table(rows, "(c) logit variance and softmax saturation")
    write_csv(args.out / "c_logits.csv", rows)

    def draw(ax):
        dims = [r["head_dim"] for r in rows]
        ax.plot(dims, [r["logit_var_unscaled"] for r in rows], "o-", label="without 1/sqrt(d_h)")
        ax.plot(dims, [r["logit_var_scaled"] for r in rows], "s-", label="with 1/sqrt(d_h)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("head size d_h")
        ax.set_ylabel("Var(logit)")
        ax.legend()

    _plot(args.out / "c_logits.png", "(c) attention logit variance at init", draw)


def cmd_depth(args) -> None:
    torch.set_num_threads(1)  # tiny matmuls: one thread is fastest on a shared machine
    depth, channels = args.depth, 64
    steps = 30 if args.quick else args.steps
    seeds = [0] if args.quick else list(range(args.seeds))
    lrs = [1e-3] if args.quick else args.lrs
    print(
        f"(d) Pre-LN vs Post-LN; depth={depth}, channels={channels}, heads=4, steps={steps}, "
        f"lrs={lrs}, seeds={seeds}, Adam without warm-up; task: node = graph mean of x0, "
        "graph = max of x1 (16 graphs of 4-11 nodes per batch)"
    )
    grad_rows, norms = [], {}
    for norm in ("pre", "post"):
        per_seed = [gradient_norms_at_init(norm, depth, channels, s) for s in seeds]
        mean = torch.tensor(per_seed).mean(0).tolist()
        norms[norm] = mean
        ratios = [g[0] / g[-1] for g in per_seed]
        grad_rows.append(
            {
                "norm": norm,
                "grad_first_block": mean[0],
                "grad_last_block": mean[-1],
                "ratio_first/last": sum(ratios) / len(ratios),
                "seeds": len(seeds),
            }
        )
    print_table(grad_rows, f"(d) gradient norms at init, depth {depth}")
    train_rows = []
    runs = [(n, lr, s) for n in ("pre", "post") for lr in lrs for s in seeds]
    results = {}
    for norm, lr, seed in tqdm(runs, desc="(d) training"):
        results[(norm, lr, seed)] = train_steps(norm, lr, steps, depth, channels, seed)
    for norm in ("pre", "post"):
        for lr in lrs:
            rs = [results[(norm, lr, s)] for s in seeds]
            finals = [r["final_loss"] for r in rs]
            train_rows.append(
                {
                    "norm": norm,
                    "lr": lr,
                    "steps": steps,
                    "initial_loss": sum(r["initial_loss"] for r in rs) / len(rs),
                    "final_loss_mean": sum(finals) / len(finals),
                    "final_loss_min": min(finals),
                    "final_loss_max": max(finals),
                    "seeds": len(seeds),
                }
            )
    print_table(train_rows, f"(d) held-out loss after {steps} steps, depth {depth}")
    write_csv(
        args.out / "d_grad_norms.csv",
        grad_rows
        + [
            {
                "norm": f"{n}-block{i}",
                "grad_first_block": g,
                "grad_last_block": "",
                "ratio_first/last": "",
                "seeds": len(seeds),
            }
            for n in norms
            for i, g in enumerate(norms[n])
        ],
    )
    write_csv(args.out / "d_training.csv", train_rows)

    def draw(ax):
        for n, marker in (("pre", "o"), ("post", "s")):
            ax.plot(range(1, depth + 1), norms[n], marker + "-", ms=3, label=f"{n}-LN")
        ax.set_yscale("log")
        ax.set_xlabel("block")
        ax.set_ylabel("gradient norm at init")
        ax.legend()

    _plot(
        args.out / "d_grad_norms.png", f"(d) gradient norm per block at init, depth {depth}", draw
    )


def cmd_memory(args) -> None:
    budget = int(args.budget_mb * 2**20)
    variants = memory_variants(args.window)
    if getattr(args, "variants", None):
        variants = [(v, note) for v, note in variants if v in args.variants]
    print(
        f"(e) longest sequence whose forward + backward fits {args.budget_mb} MiB; model: "
        f"channels={args.channels}, heads={args.heads}, layers={args.layers}, ffn 4x, "
        f"float32, {args.threads} threads per trial; engines registered: {available_engines()}"
    )
    for variant, note in variants:
        print(f"  {variant}: {note}")
    rows = []
    jobs = [(v, ck) for v, _ in variants for ck in (False, True)]
    for variant, ckpt in tqdm(jobs, desc="(e) memory"):
        r = longest_fitting(args, variant, ckpt, budget)
        rows.append({"variant": variant, "checkpoint": ckpt, "budget_mb": args.budget_mb, **r})
    for variant, _ in variants:
        plain, ck = (r for r in rows if r["variant"] == variant)
        gain = ck["longest_fitting"] / plain["longest_fitting"] if plain["longest_fitting"] else 0
        ck["gain_vs_no_checkpoint"] = gain
        plain["gain_vs_no_checkpoint"] = 1.0
    print_table(rows, f"(e) longest fitting sequence, budget {args.budget_mb} MiB")
    write_csv(args.out / "e_memory.csv", rows)

    def draw(ax):
        names = [v for v, _ in variants]
        xs = range(len(names))
        for i, ckpt in enumerate((False, True)):
            vals = [
                next(
                    r["longest_fitting"]
                    for r in rows
                    if r["variant"] == v and r["checkpoint"] == ckpt
                )
                for v in names
            ]
            ax.bar(
                [x + 0.4 * i for x in xs],
                vals,
                0.4,
                label="checkpoint" if ckpt else "no checkpoint",
            )
        ax.set_xticks([x + 0.2 for x in xs], names)
        ax.set_yscale("log")
        ax.set_ylabel("longest sequence")
        ax.legend()

    _plot(
        args.out / "e_memory.png",
        f"(e) longest sequence within {args.budget_mb} MiB (fwd+bwd)",
        draw,
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quick", action="store_true", help="small settings (about a minute)")
    common.add_argument("--out", type=Path, default=Path("outputs/transformer_claims"))
    common.add_argument("--d-model", type=int, default=256, help="d_model for (a)-(c)")
    common.add_argument("--depth", type=int, default=24, help="blocks for (d)")
    common.add_argument("--steps", type=int, default=200, help="training steps for (d)")
    common.add_argument("--seeds", type=int, default=3, help="seeds for (d)")
    common.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-4], help="(d) lrs")
    common.add_argument(
        "--budget-mb",
        type=float,
        default=None,
        help="memory budget for (e) in MiB (default 128, quick 32)",
    )
    common.add_argument("--channels", type=int, default=128, help="(e) model width")
    common.add_argument("--heads", type=int, default=4, help="(e) heads")
    common.add_argument("--layers", type=int, default=12, help="(e) blocks (quick: 4)")
    common.add_argument(
        "--window",
        type=int,
        default=64,
        help="(e) chunk size of local attention; lengths are multiples of it (quick: 32)",
    )
    common.add_argument("--threads", type=int, default=2, help="(e) torch threads per trial")
    common.add_argument(
        "--tolerance",
        type=float,
        default=0.05,
        help="(e) stop when failing/fitting lengths are this close",
    )
    common.add_argument("--max-trials", type=int, default=6, help="(e) trials after the probes")
    common.add_argument("--trial-timeout", type=float, default=300.0, help="(e) seconds")
    common.add_argument(
        "--variants",
        nargs="+",
        choices=["dense", "dense-math", "blocked"],
        default=None,
        help="(e) measure only these variants (default: all)",
    )
    for name, fn in (
        ("variance", cmd_variance),
        ("params", cmd_params),
        ("logits", cmd_logits),
        ("depth", cmd_depth),
        ("memory", cmd_memory),
    ):
        sub.add_parser(name, parents=[common]).set_defaults(fn=fn)
    sub.add_parser("all", parents=[common]).set_defaults(fn=None)
    trial = sub.add_parser("_trial", help=argparse.SUPPRESS)
    trial.add_argument("--variant", required=True)
    trial.add_argument("--length", type=int, required=True)
    trial.add_argument("--checkpoint", action="store_true")
    for name in ("channels", "heads", "layers", "window", "threads"):
        trial.add_argument(f"--{name}", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "_trial":
        print(json.dumps(run_trial(args)))
        return
    if args.budget_mb is None:
        args.budget_mb = 32.0 if args.quick else 128.0
    if args.quick:
        args.tolerance, args.max_trials = max(args.tolerance, 0.25), min(args.max_trials, 3)
        args.layers, args.window = min(args.layers, 4), min(args.window, 32)
    print(f"machine: {machine()}; quick={args.quick}; output: {args.out}")
    args.out.mkdir(parents=True, exist_ok=True)
    fns = (
        [cmd_variance, cmd_params, cmd_logits, cmd_depth, cmd_memory]
        if args.fn is None
        else [args.fn]
    )
    for fn in fns:
        start = time.perf_counter()
        fn(args)
        print(f"[{fn.__name__} took {time.perf_counter() - start:.1f} s]")


if __name__ == "__main__":
    main()
