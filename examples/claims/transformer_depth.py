"""Claim (d): at depth 24, Pre-LN trains without warm-up where Post-LN struggles.

Two sub-claims on a stack of ``--layers`` graph-transformer blocks (4 heads, 64 channels) and a
small task (node target: the mean of feature 0 over the node's graph; graph target: the max of
feature 1): the gradient norm of every block at initialisation, Post-LN against Pre-LN; and the
held-out loss after a fixed number of Adam steps without warm-up, per learning rate and seed.
:func:`depth_verdicts` states both verdicts. Writes ``d_grad_norms.csv``, ``d_training.csv``,
``depth_verdict.csv`` and ``d_grad_norms.png``.

    python examples/claims/transformer_depth.py --quick
    python examples/claims/transformer_depth.py --out results/transformer_claims/full
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from graphattn import FullGraph
from graphattn.experiments import Run, Verdict, cli, print_table
from graphattn.experiments.plots import figure, finish_axes
from graphattn.nn import GraphTransformer, GraphTransformerConfig

CLAIMS = {
    "grad": "(d) at depth 24, Post-LN gradients grow towards the output at init",
    "train": "(d) Pre-LN trains a 24-block stack without warm-up better than Post-LN",
}
PRESETS = {
    "full": dict(steps=200, seeds=3, lrs=[1e-3, 3e-4]),
    "quick": dict(steps=30, seeds=1, lrs=[1e-3]),
}
CHANNELS = 64


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


def task_loss(model, x, pattern, node_y, graph_y):
    out = model(x, pattern)
    return F.mse_loss(out.node, node_y) + F.mse_loss(out.graph, graph_y)


def depth_model(norm: str, depth: int, channels: int) -> GraphTransformer:
    return GraphTransformer(
        GraphTransformerConfig(
            in_channels=3, channels=channels, heads=4, num_layers=depth, out_channels=1,
            norm=norm, pool="max", engine="dense",
        )
    )  # fmt: skip


def gradient_norms_at_init(norm: str, depth: int = 24, channels: int = CHANNELS, seed: int = 0):
    """Gradient norm of every block's parameters for one batch at initialisation."""
    torch.manual_seed(seed)
    model = depth_model(norm, depth, channels)
    task_loss(model, *mean_max_task(torch.Generator().manual_seed(1000 + seed))).backward()
    return [
        torch.sqrt(sum(p.grad.square().sum() for p in block.parameters())).item()
        for block in model.blocks
    ]


def train_steps(norm: str, lr: float, steps: int, depth: int, channels: int, seed: int) -> dict:
    """Held-out loss before and after ``steps`` Adam steps (no warm-up) on 8 fixed batches."""
    torch.manual_seed(seed)
    model = depth_model(norm, depth, channels)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    data = [mean_max_task(gen) for _ in range(8)]
    held_out = mean_max_task(torch.Generator().manual_seed(12345))
    with torch.no_grad():
        initial = task_loss(model.eval(), *held_out).item()
    model.train()
    for step in range(steps):
        loss = task_loss(model, *data[step % len(data)])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = task_loss(model.eval(), *held_out).item()
    return {"initial_loss": initial, "final_loss": final}


def depth_verdicts(grad_rows: list[dict], train_rows: list[dict]) -> list[Verdict]:
    """Rules. Gradients: confirmed when Post-LN's first/last block gradient ratio at init is
    below 0.5 (gradients grow towards the output) and Pre-LN's is not; partly when Post-LN's
    ratio is below Pre-LN's (and below 1) but not below 0.5; refuted otherwise. Training:
    confirmed when Post-LN's held-out loss is at least twice Pre-LN's at every learning rate;
    partly when at some; refuted when at none."""
    ratio = {r["norm"]: r["ratio_first/last"] for r in grad_rows}
    post, pre = ratio["post"], ratio["pre"]
    g_number = f"first/last block gradient at init: Post-LN {post:.2f}, Pre-LN {pre:.2f}"
    if post < 0.5 and pre >= 0.5:
        g = Verdict(g_number, "confirmed", "Post-LN gradients grow towards the output")
    elif post < min(1.0, pre):
        g = Verdict(g_number, "partly", "Post-LN gradients grow towards the output, but by < 2x")
    else:
        g = Verdict(g_number, "refuted", "Post-LN gradients do not grow towards the output")
    losses = {}
    for r in train_rows:
        losses.setdefault(r["lr"], {})[r["norm"]] = r["final_loss_mean"]
    wins = [lr for lr, v in losses.items() if v["post"] / v["pre"] >= 2]
    t_number = "; ".join(
        f"lr {lr:g}: Pre-LN {losses[lr]['pre']:.3f}, Post-LN {losses[lr]['post']:.3f}"
        for lr in sorted(losses, reverse=True)
    )
    if len(wins) == len(losses):
        t = Verdict(t_number, "confirmed", "Post-LN ends >= 2x worse at every learning rate")
    elif wins:
        lrs = ", ".join(f"{lr:g}" for lr in sorted(wins, reverse=True))
        t = Verdict(t_number, "partly", f"Post-LN ends >= 2x worse only at lr {lrs}")
    else:
        t = Verdict(t_number, "refuted", "Post-LN trains as well as Pre-LN here")
    return [g, t]


def draw(ax, norms: dict, depth: int) -> None:
    for n, marker in (("pre", "o"), ("post", "s")):
        ax.plot(range(1, depth + 1), norms[n], marker + "-", ms=3, label=f"{n}-LN")
    finish_axes(ax, "block", "gradient norm at init", legend="medium", yscale="log")


def main(argv: list[str] | None = None) -> list[Verdict]:
    p = cli.ScriptParser(
        doc=__doc__, presets=PRESETS, script="examples/claims/transformer_depth.py"
    )
    count = cli.int_at_least(1)
    positive = cli.float_in(0, None, low_open=True)
    p.add_run_options("outputs/transformer_claims", progress=False)
    p.add_argument("--layers", dest="depth", metavar="LAYERS", type=count, default=24)
    p.add_argument("--steps", type=count)
    p.add_argument("--seeds", type=count)
    p.add_argument("--lrs", type=positive, nargs="+",
                   help="learning rates, each trained without warm-up")  # fmt: skip
    args = p.parse_args(argv)
    depth, seeds = args.depth, list(range(args.seeds))
    settings = {"quick": args.preset == "quick", "depth": depth, "channels": CHANNELS, "heads": 4,
                "steps": args.steps, "lrs": args.lrs, "seeds": seeds}  # fmt: skip
    with Run.from_args(args, settings=settings) as run:
        print("(d) Pre-LN vs Post-LN, Adam without warm-up; 16 graphs of 4-11 nodes per batch")
        grad_rows, norms = [], {}
        for norm in ("pre", "post"):
            per_seed = [gradient_norms_at_init(norm, depth, CHANNELS, s) for s in seeds]
            norms[norm] = torch.tensor(per_seed).mean(0).tolist()
            ratios = [g[0] / g[-1] for g in per_seed]
            grad_rows.append({
                "norm": norm, "grad_first_block": norms[norm][0],
                "grad_last_block": norms[norm][-1], "ratio_first/last": sum(ratios) / len(ratios),
                "seeds": len(seeds),
            })  # fmt: skip
        print_table(grad_rows, title=f"(d) gradient norms at init, depth {depth}")
        runs = [(n, lr, s) for n in ("pre", "post") for lr in args.lrs for s in seeds]
        results = {
            (norm, lr, seed): train_steps(norm, lr, args.steps, depth, CHANNELS, seed)
            for norm, lr, seed in run.progress(runs, "(d) training")
        }
        train_rows = []
        for norm in ("pre", "post"):
            for lr in args.lrs:
                rs = [results[(norm, lr, s)] for s in seeds]
                finals = [r["final_loss"] for r in rs]
                train_rows.append({
                    "norm": norm, "lr": lr, "steps": args.steps,
                    "initial_loss": sum(r["initial_loss"] for r in rs) / len(rs),
                    "final_loss_mean": sum(finals) / len(finals), "final_loss_min": min(finals),
                    "final_loss_max": max(finals), "seeds": len(seeds),
                })  # fmt: skip
        print_table(train_rows, title=f"(d) held-out loss after {args.steps} steps, depth {depth}")
        per_block = [
            {"norm": f"{n}-block{i}", "grad_first_block": g, "grad_last_block": "",
             "ratio_first/last": "", "seeds": len(seeds)}
            for n in norms
            for i, g in enumerate(norms[n])
        ]  # fmt: skip
        run.table("d_grad_norms", grad_rows + per_block)
        run.table("d_training", train_rows)
        figure(args.out / "d_grad_norms.png", lambda ax: draw(ax, norms, depth), footer=run.footer,
               title=f"(d) gradient norm per block at init, depth {depth}")  # fmt: skip
        verdicts = depth_verdicts(grad_rows, train_rows)
        run.verdicts("depth", list(zip(CLAIMS.values(), verdicts, strict=True)))
    return verdicts


if __name__ == "__main__":
    main()
