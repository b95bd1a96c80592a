"""Measure five claims about transformer blocks with graphattn.nn.

Subcommands (each prints its settings and table, writes CSV + PNG into --out, and a verdict
computed from the numbers by the rule in its ``*_verdict`` function, in ``<claim>_verdict.csv``):

  variance    (a) output variance of the attention layer at init for 1..16 heads, fixed d_model
  params      (b) parameter count of the attention layer (and block) for those head counts
  logits      (c) attention-logit variance for head sizes 16..256, with and without 1/sqrt(d_h)
  depth       (d) Pre-LN vs Post-LN at depth 24: gradient norms of the first and last block at
              init, and the loss after a fixed number of training steps
  memory      (e) activation checkpointing: the longest sequence whose forward + backward fits a
              memory budget, with and without checkpointing, per engine
  all         every claim in turn

Examples::

    python examples/transformer_claims.py all --quick
    python examples/transformer_claims.py memory --budget-mb 128

Tables, figures, the machine line and isolated trials come from :mod:`graphattn.experiments`;
``examples/claims_table.py`` collects the verdicts into ``results/claims/claims.csv``.

Memory method (e): every trial runs in a fresh process (``run_isolated``) with glibc's mmap
threshold fixed at 64 KiB (``MALLOC_MMAP_THRESHOLD_``), so freed tensors go back to the OS and the
resident set tracks live memory. The child builds the model, runs a small warm-up forward +
backward, frees the gradients, then measures one forward + backward at the trial length with
``PeakMemory``: the kernel's peak counter is reset (``echo 5 > /proc/self/clear_refs``), the
resident set taken as the baseline, and the peak (``VmHWM``) read afterwards. The measured cost is
peak - baseline: every activation, workspace and gradient (parameter gradients included) that
forward + backward needs, but not the parameters, the inputs or the Python/torch runtime. Where
``clear_refs`` is not writable the child falls back to ``ru_maxrss`` (a peak over the whole process
life; the CSV says which method ran).
"""

from __future__ import annotations

import argparse
import gc
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

from graphattn import ChunkedGraph, FullGraph, MultiHeadAttentionConv, available_engines
from graphattn.experiments import (
    PeakMemory,
    RunFolder,
    machine_line,
    print_table,
    progress,
    run_isolated,
    write_table,
)
from graphattn.experiments.cli import (
    VOCABULARY,
    ScriptParser,
    float_in,
    int_at_least,
    output_folder,
)
from graphattn.experiments.plots import figure
from graphattn.nn import GraphTransformer, GraphTransformerBlock, GraphTransformerConfig

HEADS = (1, 2, 4, 8, 16)
HEAD_DIMS = (16, 32, 64, 128, 256)


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
    for heads in progress(heads_list, "(a) variance"):
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
    for dim in progress(head_dims, "(c) logits"):
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


def memory_trial(spec: dict) -> dict:
    """One forward + backward at ``spec["length"]``, measured with
    :class:`~graphattn.experiments.PeakMemory`; runs in a fresh process
    (:func:`_spawn_trial`)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    variant = spec["variant"]
    engine = {"dense-math": "dense"}.get(variant, variant)
    config = GraphTransformerConfig(
        in_channels=spec["channels"],
        channels=spec["channels"],
        heads=spec["heads"],
        num_layers=spec["layers"],
        checkpoint=spec["checkpoint"],
        engine=engine,
    )
    model = GraphTransformer(config)

    def graph(n):
        if variant in ("dense", "dense-math"):
            return FullGraph(n)
        return ChunkedGraph(n, chunk_size=spec["window"])

    def step(n):
        x = torch.randn(n, spec["channels"])
        g = graph(n)
        if variant == "dense-math":
            with sdpa_kernel([SDPBackend.MATH]):
                out = model(x, g)
                (out.node.sum() + out.graph.sum()).backward()
        else:
            out = model(x, g)
            (out.node.sum() + out.graph.sum()).backward()

    length = spec["length"]
    step(min(length, 2 * spec["window"]))  # warm-up: kernels, thread pools, allocator
    model.zero_grad(set_to_none=True)
    x = torch.randn(length, spec["channels"])
    g = graph(length)  # inputs exist before the baseline (edge lists are input, too)
    del x, g
    gc.collect()
    with PeakMemory() as mem:
        start = time.perf_counter()
        step(length)
        seconds = time.perf_counter() - start
    return {
        "peak_extra_bytes": int(mem.extra_mb * 1e6),
        "seconds": seconds,
        "method": mem.method,
    }


def _spawn_trial(args, variant: str, checkpoint: bool, length: int, timeout: float) -> dict:
    """:func:`memory_trial` in a fresh process with glibc's mmap threshold at 64 KiB."""
    spec = {
        "variant": variant,
        "length": length,
        "checkpoint": checkpoint,
        **{k: getattr(args, k) for k in ("channels", "heads", "layers", "window", "threads")},
    }
    try:
        result = run_isolated(
            f"{Path(__file__).resolve()}:memory_trial", spec, timeout=timeout,
            env={"MALLOC_MMAP_THRESHOLD_": "65536"},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"status": "timeout"}
    except RuntimeError as err:
        tail = str(err).strip().splitlines()[-1:] or ["?"]
        return {"status": f"error: {tail[0]}"}
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


# ---- verdicts ----------------------------------------------------------------------------------
def variance_verdict(rows: list[dict]) -> tuple[str, str, str]:
    """Rule: confirmed when the largest mean output variance over the head counts is within
    10% of the smallest, partly within 50%, refuted otherwise."""
    values = [r["output_var_mean"] for r in rows]
    ratio = max(values) / min(values)
    heads = " / ".join(str(r["heads"]) for r in rows)
    number = (
        f"Var(out) {min(values):.4g} .. {max(values):.4g} for {heads} heads: max/min {ratio:.3f}"
    )
    if ratio <= 1.1:
        return number, "confirmed", "the spread over head counts is within 10%"
    if ratio <= 1.5:
        return number, "partly", "the variance drifts with the head count by 10-50%"
    return number, "refuted", "the variance depends on the head count"


def params_verdict(rows: list[dict]) -> tuple[str, str, str]:
    """Rule: confirmed when every head count has exactly 4(d^2 + d) attention parameters."""
    counts = {r["attention_params"] for r in rows}
    formula = rows[0]["formula_4(d^2+d)"]
    shown = ", ".join(f"{c:,}" for c in sorted(counts))
    number = f"{shown} for heads {rows[0]['heads']}..{rows[-1]['heads']}"
    if counts == {formula}:
        return number, "confirmed", f"= 4(d^2 + d) = {formula:,} for every head count"
    return number, "refuted", "the count changes with the head count"


def logits_verdict(rows: list[dict]) -> tuple[str, str, str]:
    """Rule: confirmed when, at every head size, the logit variance is within [0.8, 1.25] with
    the 1/sqrt(d_h) scale and within [0.8, 1.25] x d_h without it; partly when only the scaled
    variance stays near 1; refuted otherwise."""
    scaled = [r["logit_var_scaled"] for r in rows]
    per_dim = [r["logit_var_unscaled"] / r["head_dim"] for r in rows]
    number = (
        f"Var(logit) without the scale {rows[0]['logit_var_unscaled']:.4g} .. "
        f"{rows[-1]['logit_var_unscaled']:.4g} for d_h = {rows[0]['head_dim']} .. "
        f"{rows[-1]['head_dim']}; with it {min(scaled):.3f} .. {max(scaled):.3f}"
    )
    scaled_ok = all(0.8 <= v <= 1.25 for v in scaled)
    if scaled_ok and all(0.8 <= v <= 1.25 for v in per_dim):
        return number, "confirmed", "unscaled variance = d_h; the scale brings it to 1"
    if scaled_ok:
        return number, "partly", "the scaled variance is ~1, but the unscaled one is not ~d_h"
    return number, "refuted", "the scaled variance is not ~1"


def depth_verdicts(grad_rows: list[dict], train_rows: list[dict]) -> list[tuple[str, ...]]:
    """Rules. Gradients: confirmed when Post-LN's first/last block gradient ratio at init is
    below 0.5 (gradients grow towards the output) and Pre-LN's is not; partly when Post-LN's
    ratio is below Pre-LN's (and below 1) but not below 0.5; refuted otherwise. Training:
    confirmed when Post-LN's held-out loss is at least twice Pre-LN's at every learning rate;
    partly when at some; refuted when at none."""
    ratio = {r["norm"]: r["ratio_first/last"] for r in grad_rows}
    post, pre = ratio["post"], ratio["pre"]
    g_number = f"first/last block gradient at init: Post-LN {post:.2f}, Pre-LN {pre:.2f}"
    if post < 0.5 and pre >= 0.5:
        g = (g_number, "confirmed", "Post-LN gradients grow towards the output")
    elif post < min(1.0, pre):
        g = (g_number, "partly", "Post-LN gradients grow towards the output, but by < 2x")
    else:
        g = (g_number, "refuted", "Post-LN gradients do not grow towards the output")
    losses = {}
    for r in train_rows:
        losses.setdefault(r["lr"], {})[r["norm"]] = r["final_loss_mean"]
    ratios = {lr: v["post"] / v["pre"] for lr, v in losses.items()}
    t_number = "; ".join(
        f"lr {lr:g}: Pre-LN {losses[lr]['pre']:.3f}, Post-LN {losses[lr]['post']:.3f}"
        for lr in sorted(losses, reverse=True)
    )
    wins = [lr for lr, r in ratios.items() if r >= 2]
    if len(wins) == len(ratios):
        t = (t_number, "confirmed", "Post-LN ends >= 2x worse at every learning rate")
    elif wins:
        lrs = ", ".join(f"{lr:g}" for lr in sorted(wins, reverse=True))
        t = (t_number, "partly", f"Post-LN ends >= 2x worse only at lr {lrs}")
    else:
        t = (t_number, "refuted", "Post-LN trains as well as Pre-LN here")
    return [g, t]


def memory_verdict(rows: list[dict]) -> tuple[str, str, str]:
    """Rule (the claim: "up to about 70x longer sequences for dense attention"): confirmed when
    checkpointing lets dense attention fit at least 35x longer sequences, partly when at least
    2x, refuted otherwise."""
    gains = {
        (r["variant"], r["checkpoint"]): r for r in rows if r["variant"] in ("dense", "blocked")
    }
    dense = gains[("dense", True)]["gain_vs_no_checkpoint"]
    parts = []
    for variant in ("dense", "dense-math", "blocked"):
        pair = [r for r in rows if r["variant"] == variant]
        if len(pair) == 2:
            plain, ck = sorted(pair, key=lambda r: r["checkpoint"])
            parts.append(
                f"{variant} {plain['longest_fitting']} -> {ck['longest_fitting']} "
                f"({ck['gain_vs_no_checkpoint']:.1f}x)"
            )
    number = f"within {rows[0]['budget_mb']:g} MiB: " + "; ".join(parts)
    if dense >= 35:
        return number, "confirmed", "checkpointing buys tens of times longer sequences"
    if dense >= 2:
        reason = (
            "CPU SDPA never stores the L x L matrix, so memory is already linear in L; "
            "checkpointing saves only the per-block activations"
        )
        return number, "partly", reason
    return number, "refuted", "checkpointing does not lengthen the sequence that fits"


CLAIM_TEXT = {
    "variance": "(a) the attention output's variance at init does not depend on the head count",
    "params": "(b) the attention parameter count does not depend on the head count",
    "logits": "(c) the 1/sqrt(d_h) scale keeps the logit variance at 1 for every head size",
    "depth-grad": "(d) at depth 24, Post-LN gradients grow towards the output at init",
    "depth-train": "(d) Pre-LN trains a 24-block stack without warm-up better than Post-LN",
    "memory": "(e) activation checkpointing fits ~70x longer sequences (dense attention)",
}


def claim_command(args, name: str) -> str:
    """The command that measures claim ``name`` with this run's options (``all`` -> ``name``,
    ``--out`` left out)."""
    argv = list(args.argv)
    if argv and argv[0] in ("all", name):
        argv[0] = name
    if "--out" in argv:
        i = argv.index("--out")
        del argv[i : i + 2]
    return " ".join(["python examples/transformer_claims.py", *argv])


def save(args, name: str, rows: list[dict], settings: dict | None = None) -> None:
    path = write_table(
        args.out / name, rows, settings={"quick": args.quick, **(settings or {})},
        command=" ".join(["python examples/transformer_claims.py", *args.argv]),
    )  # fmt: skip
    print(f"wrote {path}")


def save_verdicts(args, name: str, verdicts: list[tuple[str, tuple[str, str, str]]]) -> None:
    rows = []
    for key, (number, verdict, reason) in verdicts:
        print(f"verdict {key}: {verdict} -- {number}; {reason}")
        rows.append(
            {
                "claim": CLAIM_TEXT[key],
                "command": claim_command(args, name),
                "number": number,
                "verdict": verdict,
                "reason": reason,
            }
        )
    save(args, f"{name}_verdict.csv", rows)


def plot(args, name: str, title: str, draw) -> None:
    def with_grid(ax):
        draw(ax)
        ax.grid(alpha=0.3)

    print(f"wrote {figure(args.out / name, with_grid, title=title, footer=machine_line())}")


# ---- subcommands --------------------------------------------------------------------------------
def cmd_variance(args) -> None:
    settings = dict(
        d_model=args.d_model, num_nodes=64 if args.quick else 256, seeds=5 if args.quick else 20
    )
    print(f"(a) output variance at init; {settings}; graph: FullGraph; x ~ N(0, 1)")
    rows = measure_output_variance(HEADS, **settings)
    print_table(rows, title="(a) output variance at init")
    spread = max(r["output_var_mean"] for r in rows) / min(r["output_var_mean"] for r in rows)
    print(f"max/min variance over head counts: {spread:.3f}")
    save(args, "a_variance.csv", rows, settings)
    save_verdicts(args, "variance", [("variance", variance_verdict(rows))])
    plot(
        args,
        "a_variance.png",
        f"(a) output variance at init, d_model={args.d_model}",
        lambda ax: (
            ax.errorbar(
                [r["heads"] for r in rows],
                [r["output_var_mean"] for r in rows],
                [r["output_var_std"] for r in rows],
                marker="o",
                capsize=3,
                label="mean over seeds, bars: +- 1 s.d.",
            ),
            ax.legend(),
            ax.set_xscale("log", base=2),
            ax.set_xlabel("heads"),
            ax.set_ylabel("Var(output)"),
            ax.set_ylim(bottom=0),
        ),
    )


def cmd_params(args) -> None:
    print(f"(b) parameter count; d_model={args.d_model}")
    rows = attention_param_counts(HEADS, args.d_model)
    print_table(rows, title="(b) parameters")
    save(args, "b_params.csv", rows, {"d_model": args.d_model})
    save_verdicts(args, "params", [("params", params_verdict(rows))])
    plot(
        args,
        "b_params.png",
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
            ax.set_ylabel("parameters"),
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
    print_table(rows, title="(c) logit variance and softmax saturation")
    save(args, "c_logits.csv", rows, settings)
    save_verdicts(args, "logits", [("logits", logits_verdict(rows))])

    def draw(ax):
        dims = [r["head_dim"] for r in rows]
        ax.plot(dims, [r["logit_var_unscaled"] for r in rows], "o-", label="without 1/sqrt(d_h)")
        ax.plot(dims, [r["logit_var_scaled"] for r in rows], "s-", label="with 1/sqrt(d_h)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("head size d_h")
        ax.set_ylabel("Var(logit)")
        ax.legend()

    plot(args, "c_logits.png", "(c) attention logit variance at init", draw)


def cmd_depth(args) -> None:
    torch.set_num_threads(1)  # tiny matmuls: one thread is fastest on a shared machine
    depth, channels = args.depth, 64
    steps = 30 if args.quick else args.steps
    seeds = [0] if args.quick else list(range(args.seeds))
    lrs = [1e-3] if args.quick else args.lrs
    settings = dict(depth=depth, channels=channels, heads=4, steps=steps, lrs=lrs, seeds=seeds)
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
    print_table(grad_rows, title=f"(d) gradient norms at init, depth {depth}")
    train_rows = []
    runs = [(n, lr, s) for n in ("pre", "post") for lr in lrs for s in seeds]
    results = {}
    for norm, lr, seed in progress(runs, "(d) training"):
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
    print_table(train_rows, title=f"(d) held-out loss after {steps} steps, depth {depth}")
    save(
        args,
        "d_grad_norms.csv",
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
        settings,
    )
    save(args, "d_training.csv", train_rows, settings)
    grad, train = depth_verdicts(grad_rows, train_rows)
    save_verdicts(args, "depth", [("depth-grad", grad), ("depth-train", train)])

    def draw(ax):
        for n, marker in (("pre", "o"), ("post", "s")):
            ax.plot(range(1, depth + 1), norms[n], marker + "-", ms=3, label=f"{n}-LN")
        ax.set_yscale("log")
        ax.set_xlabel("block")
        ax.set_ylabel("gradient norm at init")
        ax.legend()

    plot(args, "d_grad_norms.png", f"(d) gradient norm per block at init, depth {depth}", draw)


def cmd_memory(args) -> None:
    budget = int(args.budget_mb * 2**20)
    variants = memory_variants(args.window)
    if getattr(args, "variants", None):
        variants = [(v, note) for v, note in variants if v in args.variants]
    settings = {
        k: getattr(args, k)
        for k in ("budget_mb", "channels", "heads", "layers", "window", "threads", "tolerance",
                  "max_trials")
    }  # fmt: skip
    print(
        f"(e) longest sequence whose forward + backward fits {args.budget_mb} MiB; model: "
        f"channels={args.channels}, heads={args.heads}, layers={args.layers}, ffn 4x, "
        f"float32, {args.threads} threads per trial; engines registered: {available_engines()}"
    )
    for variant, note in variants:
        print(f"  {variant}: {note}")
    rows = []
    jobs = [(v, ck) for v, _ in variants for ck in (False, True)]
    for variant, ckpt in progress(jobs, "(e) memory"):
        r = longest_fitting(args, variant, ckpt, budget)
        rows.append({"variant": variant, "checkpoint": ckpt, "budget_mb": args.budget_mb, **r})
    for variant, _ in variants:
        plain, ck = (r for r in rows if r["variant"] == variant)
        gain = ck["longest_fitting"] / plain["longest_fitting"] if plain["longest_fitting"] else 0
        ck["gain_vs_no_checkpoint"] = gain
        plain["gain_vs_no_checkpoint"] = 1.0
    print_table(rows, title=f"(e) longest fitting sequence, budget {args.budget_mb} MiB")
    save(args, "e_memory.csv", rows, settings)
    if any(r["variant"] == "dense" for r in rows):
        save_verdicts(args, "memory", [("memory", memory_verdict(rows))])

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
        ax.set_xticks([x + 0.2 for x in xs], names)  # bars from 0 on a linear axis
        ax.set_xlabel("attention variant")
        ax.set_ylabel("longest sequence that fits (tokens)")
        ax.legend()

    plot(args, "e_memory.png", f"(e) longest sequence within {args.budget_mb} MiB (fwd+bwd)", draw)


#: the sub-commands: one claim each
CLAIMS = {
    "variance": "(a) the attention output's variance at init vs the head count",
    "params": "(b) the attention parameter count vs the head count",
    "logits": "(c) the 1/sqrt(d_h) scale and the logit variance",
    "depth": "(d) Pre-LN vs Post-LN at depth: gradients at init, training without warm-up",
    "memory": "(e) activation checkpointing: the longest sequence within a memory budget",
}


def main(argv=None) -> None:
    parser = ScriptParser(doc=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quick", action="store_true", help="small settings")
    common.add_argument(
        "--out", type=output_folder, default=Path("outputs/transformer_claims"),
        help=VOCABULARY["--out"],
    )  # fmt: skip
    common.add_argument("--d-model", type=int_at_least(1), default=256, help="d_model for (a)-(c)")
    common.add_argument(
        "--layers",
        dest="depth",
        metavar="LAYERS",
        type=int_at_least(1),
        default=24,
        help="(d) blocks per stack",
    )
    common.add_argument("--steps", type=int_at_least(1), default=200, help="(d) training steps")
    common.add_argument("--seeds", type=int_at_least(1), default=3, help="(d) seeds per setting")
    common.add_argument(
        "--lrs",
        type=float_in(0, None, low_open=True),
        nargs="+",
        default=[1e-3, 3e-4],
        help="(d) learning rates, each trained without warm-up",
    )
    common.add_argument(
        "--budget-mb",
        type=float_in(0, None, low_open=True),
        default=None,
        help="memory budget for (e) in MiB (default 128, quick 32)",
    )
    common.add_argument(
        "--memory-d-model", dest="channels", metavar="D_MODEL", type=int_at_least(1), default=128,
        help="(e) model width d_model",
    )  # fmt: skip
    common.add_argument(
        "--memory-heads", dest="heads", type=int_at_least(1), default=4, help="(e) heads"
    )
    common.add_argument(
        "--memory-layers", dest="layers", type=int_at_least(1), default=12,
        help="(e) blocks (quick: 4)",
    )  # fmt: skip
    common.add_argument(
        "--window",
        type=int_at_least(1),
        default=64,
        help="(e) chunk size of local attention; lengths are multiples of it (quick: 32)",
    )
    common.add_argument(
        "--threads", type=int_at_least(1), default=2, help="(e) torch threads per trial"
    )
    common.add_argument(
        "--tolerance",
        type=float_in(0, None, low_open=True),
        default=0.05,
        help="(e) stop when failing/fitting lengths are this close",
    )
    common.add_argument(
        "--max-trials", type=int_at_least(1), default=6, help="(e) trials after the probes"
    )
    common.add_argument(
        "--trial-timeout", type=float_in(0, None, low_open=True), default=300.0, help="(e) seconds"
    )
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
        sub.add_parser(name, parents=[common], help=CLAIMS[name]).set_defaults(fn=fn)
    sub.add_parser("all", parents=[common], help="all five, in turn").set_defaults(fn=None)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.budget_mb is None:
        args.budget_mb = 32.0 if args.quick else 128.0
    if args.quick:
        args.tolerance, args.max_trials = max(args.tolerance, 0.25), min(args.max_trials, 3)
        args.layers, args.window = min(args.layers, 4), min(args.window, 32)
    print(f"{machine_line()}; quick={args.quick}; output: {args.out}")
    fns = (
        [cmd_variance, cmd_params, cmd_logits, cmd_depth, cmd_memory]
        if args.fn is None
        else [args.fn]
    )
    with RunFolder(args.out):  # writable? checked now; the files land together at the end
        for fn in fns:
            start = time.perf_counter()
            fn(args)
            print(f"[{fn.__name__} took {time.perf_counter() - start:.1f} s]")


if __name__ == "__main__":
    main()
