"""Depth vs hops and width vs relation types: graph transformers on supply-chain shocks.

Three experiments on economies from :mod:`graphattn.graphs.economy`, with ground truth from the
shock simulation in :mod:`graphattn.economy` (see ``docs/issue6-economy.md``):

a. **depth vs hops.** Target: the impulse response ``1 - y_i(k)`` of every agent's output
   ``k`` steps after one-off shocks (k = 1..4), which depends on the shocks ``k`` upstream
   hops away. Models of depth L = 1..6; error against L for every k (expected: a sharp drop
   once L >= k).
b. **width vs relation types.** Economies with K = 1..4 relation types; target: the output
   deviation one step after the shocks, ``1 - prod_r u^r_i``, a product of K separate
   per-relation aggregates of the suppliers' relation-specific shocks (all elasticities 1 so
   that every relation weighs the same). One layer, fixed d_model, H heads (the divisors of
   d_model up to 8); error against H for every K (expected: lower once H >= K).
c. **which heads attend to which relation.** For the (b) models, the share of every head's
   attention mass that falls on each relation type (heat maps).

Models: :class:`graphattn.nn.GraphTransformer` with ``edge_type`` (``num_relations=K``) and the
log input share as a 1-d edge feature. Training: one shock scenario on each of several
economies (different seeds), tested on other economies and shocks (inductive). Error: normalised MSE
(MSE / variance of the test target; 1 = predicting the mean).

Run::

    PYTHONPATH=. python examples/economy_study.py --quick     # a few minutes on 2 cores
    PYTHONPATH=. python examples/economy_study.py             # the full setting

Writes ``depth_vs_hops.csv``, ``width_vs_relations.csv``, ``head_relation_share.csv`` and the
PNG heat maps ``depth_vs_hops.png``, ``width_vs_relations.png``, ``head_relation_share.png``
into ``--out`` (default ``outputs/economy_study/``).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from tqdm.auto import tqdm

from graphattn.economy import RELATION_NAMES, ShockDynamics, economy_data, random_shocks, simulate
from graphattn.nn import GraphTransformer, GraphTransformerConfig

# quick: k <= 3 and L <= 4 to fit a few minutes on 2 busy cores; full: the whole grid
QUICK = dict(
    agents=150,
    scenarios=16,
    test_scenarios=4,
    epochs=200,
    d_model=24,
    depths=[1, 2, 3, 4],
    hops=[1, 2, 3],
    heads=[1, 2, 3, 4, 8],
    relations=[1, 2, 3, 4],
)
FULL = dict(
    agents=200,
    scenarios=16,
    test_scenarios=4,
    epochs=300,
    d_model=24,
    depths=[1, 2, 3, 4, 5, 6],
    hops=[1, 2, 3, 4],
    heads=[1, 2, 3, 4, 6, 8],
    relations=[1, 2, 3, 4],
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small setting (a few minutes)")
    p.add_argument("--out", type=Path, default=Path("outputs/economy_study"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--agents", type=int, help="agents per economy")
    p.add_argument("--scenarios", type=int, help="training shock scenarios")
    p.add_argument("--test-scenarios", type=int, help="test shock scenarios")
    p.add_argument("--epochs", type=int, help="full-batch training steps per model")
    p.add_argument("--d-model", type=int, help="model width (fixed across heads)")
    p.add_argument("--depths", type=int, nargs="+", help="depths L for (a)")
    p.add_argument("--hops", type=int, nargs="+", help="hops k for (a)")
    p.add_argument("--heads", type=int, nargs="+", help="heads H for (b); must divide d_model")
    p.add_argument("--relations", type=int, nargs="+", help="relation counts K for (b)")
    p.add_argument("--density", type=float, default=0.3, help="share of (agent, relation) hit")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 is fastest for these small graphs on a busy machine)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.add_argument(
        "--only", choices=["depth", "width"], help="run only (a) depth vs hops, or only (b) + (c)"
    )
    args = p.parse_args(argv)
    base = QUICK if args.quick else FULL
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    bad = [h for h in args.heads if args.d_model % h]
    if bad:
        p.error(f"--heads {bad} do not divide --d-model {args.d_model}")
    if min(args.relations) < 1 or min(args.hops) < 1 or min(args.depths) < 1:
        p.error("--relations, --hops and --depths must be >= 1")
    return args


# ---- data ------------------------------------------------------------------------------------
@dataclass
class Split:
    """One economy with several shock scenarios, batched as a disjoint union of copies."""

    batch: Data  # x, edge_index, edge_attr (log share), edge_type; nodes = copies x agents
    targets: dict[str, Tensor]  # name -> [nodes] float32


def make_split(
    num_agents: int,
    num_relations: int,
    scenarios: int,
    *,
    seed: int,
    density: float,
    steps: int,
    dynamics: ShockDynamics | None = None,
) -> Split:
    """Simulate impulse shocks on ``scenarios`` economies (seeds ``seed * 1000 + s``), one
    shock scenario each; targets ``hop{k}`` = 1 - y(k)."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    graphs, targets = [], {f"hop{k}": [] for k in range(1, steps + 1)}
    for s in range(scenarios):
        econ = economy_data(
            num_agents, num_relations=num_relations, seed=seed * 1000 + s, dtype=torch.float64
        )
        shocks = random_shocks(econ.num_nodes, num_relations, density=density, generator=gen)
        result = simulate(econ, shocks, steps, persistent=False, dynamics=dynamics)
        for k in range(1, steps + 1):
            targets[f"hop{k}"].append((1.0 - result.output[k]).float())
        x = torch.cat([econ.x, shocks], dim=1).float()  # (N, tiers + 1 + K)
        graphs.append(
            Data(
                x=x,
                edge_index=econ.edge_index,
                edge_type=econ.edge_type,
                edge_attr=econ.edge_weight.log().float().unsqueeze(1),
                num_nodes=econ.num_nodes,
            )
        )
    batch = Batch.from_data_list(graphs)
    return Split(batch, {name: torch.cat(parts) for name, parts in targets.items()})


# ---- training --------------------------------------------------------------------------------
def build_model(
    in_channels: int, *, d_model: int, heads: int, layers: int, num_relations: int
) -> GraphTransformer:
    return GraphTransformer(
        GraphTransformerConfig(
            in_channels=in_channels,
            channels=d_model,
            heads=heads,
            num_layers=layers,
            out_channels=1,
            ffn_ratio=2,
            edge_dim=1,
            num_relations=num_relations,
        )
    )


def _forward(model: GraphTransformer, data: Data) -> Tensor:
    out = model(
        data.x,
        data.edge_index,
        edge_attr=data.edge_attr,
        edge_type=data.edge_type,
        batch=data.batch,
    )
    return out.node.squeeze(-1)  # (N,)


def train_and_eval(
    model: GraphTransformer,
    train: Split,
    test: Split,
    target: str,
    *,
    epochs: int,
    lr: float,
) -> tuple[float, float]:
    """Full-batch Adam on standardised targets; return (train, test) normalised MSE."""
    y_train, y_test = train.targets[target], test.targets[target]
    mean, std = y_train.mean(), y_train.std().clamp_min(1e-8)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(epochs, 1))
    model.train()
    for _ in range(epochs):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(_forward(model, train.batch), (y_train - mean) / std)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        pred_train = _forward(model, train.batch) * std + mean
        pred_test = _forward(model, test.batch) * std + mean
    nmse_train = float(((pred_train - y_train) ** 2).mean() / y_train.var().clamp_min(1e-12))
    nmse_test = float(((pred_test - y_test) ** 2).mean() / y_test.var().clamp_min(1e-12))
    return nmse_train, nmse_test


def head_relation_share(model: GraphTransformer, data: Data, num_relations: int) -> np.ndarray:
    """Share of every head's attention mass on each relation: ``[layers, heads, K]``.

    The mass of head h on relation r is the sum of its weights over edges of type r, divided
    by its mass on all relations (the self-loops the layers add are left out).
    """
    with torch.no_grad():
        out = model(
            data.x, data.edge_index, edge_attr=data.edge_attr, edge_type=data.edge_type,
            batch=data.batch, return_attention=True,
        )  # fmt: skip
    num_edges = data.edge_type.numel()
    shares = []
    for att in out.attention:
        weights = att.weights[:num_edges]  # the economy has no self-loops: added ones come last
        mass = torch.zeros(num_relations, weights.size(1), dtype=weights.dtype)
        mass.index_add_(0, data.edge_type, weights)  # (K, H)
        shares.append((mass / mass.sum(0, keepdim=True)).t().numpy())  # (H, K)
    return np.stack(shares)


# ---- output ----------------------------------------------------------------------------------
def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def print_table(title: str, rows: list[dict], row_key: str, col_key: str, value: str) -> None:
    rks = sorted({r[row_key] for r in rows})
    cks = sorted({r[col_key] for r in rows})
    cell = {(r[row_key], r[col_key]): r[value] for r in rows}
    print(f"\n{title}  ({value}; rows {row_key}, columns {col_key})")
    print(f"{row_key:>6} | " + " ".join(f"{col_key}={c:<4}" for c in cks))
    for rk in rks:
        vals = " ".join(
            f"{cell[rk, c]:<{len(col_key) + 5}.3f}" if (rk, c) in cell else " " * (len(col_key) + 5)
            for c in cks
        )
        print(f"{rk:>6} | {vals}")


def heatmap(
    path: Path,
    rows: list[dict],
    row_key: str,
    col_key: str,
    value: str,
    title: str,
    xlabel: str,
    ylabel: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rks = sorted({r[row_key] for r in rows})
    cks = sorted({r[col_key] for r in rows})
    grid = np.full((len(rks), len(cks)), np.nan)
    for r in rows:
        grid[rks.index(r[row_key]), cks.index(r[col_key])] = r[value]
    fig, ax = plt.subplots(figsize=(1.1 * len(cks) + 2.5, 0.7 * len(rks) + 1.8))
    top = float(np.nanmax(grid)) if np.isfinite(grid).any() else 1.0
    top = top if top > 0 else 1.0  # colour scale up to the worst cell, so small errors differ
    im = ax.imshow(grid, cmap="viridis_r", vmin=0, vmax=top, aspect="auto")
    for i in range(len(rks)):
        for j in range(len(cks)):
            ax.text(
                j,
                i,
                f"{grid[i, j]:.3f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if grid[i, j] > 0.5 * top else "black",
            )
    ax.set_xticks(range(len(cks)), [str(c) for c in cks])
    ax.set_yticks(range(len(rks)), [str(r) for r in rks])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="test normalised MSE")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def share_figure(
    path: Path,
    shares: dict[int, np.ndarray],
    names: list[str],
    edge_share: dict[int, np.ndarray],
    heads: int,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = sorted(shares)
    fig, axes = plt.subplots(
        1, len(ks), figsize=(2.0 + 1.6 * len(ks) * 1.2, 0.35 * heads + 2.2), squeeze=False
    )
    for ax, k in zip(axes[0], ks, strict=True):
        grid = shares[k][0]  # (H, K) of the single layer
        ax.imshow(grid, cmap="magma", vmin=0, vmax=1, aspect="auto")
        for h in range(grid.shape[0]):
            for r in range(grid.shape[1]):
                ax.text(
                    r,
                    h,
                    f"{grid[h, r]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if grid[h, r] > 0.5 else "white",
                )
        ax.set_xticks(range(k), names[:k], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(grid.shape[0]), [f"head {h}" for h in range(grid.shape[0])], fontsize=8)
        base = ", ".join(f"{s:.2f}" for s in edge_share[k])
        ax.set_title(f"K={k}\nedge shares: {base}", fontsize=8)
    fig.suptitle(
        f"share of each head's attention mass per relation (H={heads}, 1 layer)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---- main ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    machine = (
        f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cpus, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads)"
    )
    print("economy study:", "quick" if args.quick else "full", "setting")
    print(f"  machine: {machine}")
    for key in (
        "agents",
        "scenarios",
        "test_scenarios",
        "epochs",
        "d_model",
        "depths",
        "hops",
        "heads",
        "relations",
        "density",
        "lr",
        "seed",
        "out",
    ):
        print(f"  {key}: {getattr(args, key)}")
    started = time.perf_counter()
    progress = not args.no_progress

    depth_rows: list[dict] = []
    width_rows: list[dict] = []
    share_rows: list[dict] = []
    if args.only != "width":
        depth_rows = run_depth(args, progress)
    if args.only != "depth":
        width_rows, share_rows, shares, edge_share = run_width(args, progress)
    names = list(RELATION_NAMES)

    if depth_rows:
        print_table(
            "(a) depth vs hops: test normalised MSE", depth_rows, "depth_L", "hops_k", "test_nmse"
        )
    if width_rows:
        print_table(
            "(b) width vs relation types: test normalised MSE",
            width_rows,
            "heads_H",
            "relations_K",
            "test_nmse",
        )
        print(
            f"\n(c) head -> relation attention shares (H={max(args.heads)}, 1 layer): "
            "largest share any head puts on a relation (its share of edges in brackets)"
        )
        for num_rel, s in shares.items():
            best = s[0].max(axis=0)  # (K,)
            cells = "  ".join(
                f"{names[r]} {best[r]:.2f} ({edge_share[num_rel][r]:.2f})" for r in range(num_rel)
            )
            print(f"  K={num_rel}: {cells}")
    print(f"\nwrote {', '.join(sorted(p.name for p in args.out.iterdir()))} into {args.out}/")
    print(f"total {time.perf_counter() - started:.0f} s on {machine}")
    return {"depth": depth_rows, "width": width_rows, "shares": share_rows}


def run_depth(args: argparse.Namespace, progress: bool) -> list[dict]:
    """(a): impulse responses at horizons k against depth L; writes CSV and heat map."""
    max_hop = max(args.hops)
    kwargs = dict(density=args.density, steps=max_hop)
    train = make_split(args.agents, 3, args.scenarios, seed=args.seed, **kwargs)
    test = make_split(args.agents, 3, args.test_scenarios, seed=args.seed + 1, **kwargs)
    in_ch = train.batch.x.size(1)
    depth_rows = []
    runs = [(k, layers) for k in args.hops for layers in args.depths]
    for k, layers in tqdm(runs, desc="(a) depth vs hops", disable=not progress):
        torch.manual_seed(args.seed + 100 * k + layers)
        model = build_model(
            in_ch,
            d_model=args.d_model,
            heads=4 if args.d_model % 4 == 0 else 1,
            layers=layers,
            num_relations=3,
        )
        t0 = time.perf_counter()
        tr, te = train_and_eval(model, train, test, f"hop{k}", epochs=args.epochs, lr=args.lr)
        depth_rows.append(
            {
                "hops_k": k,
                "depth_L": layers,
                "train_nmse": round(tr, 4),
                "test_nmse": round(te, 4),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    write_csv(args.out / "depth_vs_hops.csv", depth_rows)
    heatmap(
        args.out / "depth_vs_hops.png",
        depth_rows,
        "depth_L",
        "hops_k",
        "test_nmse",
        f"(a) impulse response at horizon k vs depth L (d_model={args.d_model})",
        "hops k the target needs",
        "model depth L",
    )
    return depth_rows


def run_width(args: argparse.Namespace, progress: bool):
    """(b) and (c): K relation aggregates against heads H, and per-head relation shares."""
    equal = ShockDynamics(elasticity={}, default_elasticity=1.0)
    width_rows, shares, edge_share = [], {}, {}
    names = list(RELATION_NAMES)
    runs = [(k, h) for k in args.relations for h in args.heads]
    splits: dict[int, tuple[Split, Split]] = {}
    for num_rel, heads in tqdm(runs, desc="(b) width vs relations", disable=not progress):
        if num_rel not in splits:
            kw = dict(density=args.density, steps=1, dynamics=equal)
            splits[num_rel] = (
                make_split(args.agents, num_rel, args.scenarios, seed=args.seed + 2, **kw),
                make_split(args.agents, num_rel, args.test_scenarios, seed=args.seed + 3, **kw),
            )
        tr_split, te_split = splits[num_rel]
        torch.manual_seed(args.seed + 1000 * num_rel + heads)
        model = build_model(
            tr_split.batch.x.size(1),
            d_model=args.d_model,
            heads=heads,
            layers=1,
            num_relations=num_rel,
        )
        t0 = time.perf_counter()
        tr, te = train_and_eval(model, tr_split, te_split, "hop1", epochs=args.epochs, lr=args.lr)
        width_rows.append(
            {
                "relations_K": num_rel,
                "heads_H": heads,
                "train_nmse": round(tr, 4),
                "test_nmse": round(te, 4),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        if heads == max(args.heads):
            shares[num_rel] = head_relation_share(model, te_split.batch, num_rel)
            counts = torch.bincount(te_split.batch.edge_type, minlength=num_rel).double()
            edge_share[num_rel] = (counts / counts.sum()).numpy()
    write_csv(args.out / "width_vs_relations.csv", width_rows)
    heatmap(
        args.out / "width_vs_relations.png",
        width_rows,
        "heads_H",
        "relations_K",
        "test_nmse",
        f"(b) K separate relation aggregates vs heads H (1 layer, d_model={args.d_model})",
        "relation types K",
        "attention heads H",
    )

    share_rows = []
    for num_rel, s in shares.items():
        for layer in range(s.shape[0]):
            for head in range(s.shape[1]):
                row = {"relations_K": num_rel, "layer": layer, "head": head}
                row.update({names[r]: round(float(s[layer, head, r]), 4) for r in range(num_rel)})
                row.update(
                    {
                        f"edge_share_{names[r]}": round(float(edge_share[num_rel][r]), 4)
                        for r in range(num_rel)
                    }
                )
                share_rows.append(row)
    all_keys = list(dict.fromkeys(k for row in share_rows for k in row))
    share_rows = [{k: row.get(k, "") for k in all_keys} for row in share_rows]
    write_csv(args.out / "head_relation_share.csv", share_rows)
    share_figure(args.out / "head_relation_share.png", shares, names, edge_share, max(args.heads))
    return width_rows, share_rows, shares, edge_share


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
