"""Depth vs hops and width vs relation types: graph transformers on supply-chain shocks.

Three experiments on economies from :mod:`graphattn.economy`, with ground truth from its shock
simulation (see ``docs/economy.md``):

a. **depth vs hops.** Target: the impulse response ``1 - y_i(k)`` of every agent's output
   ``k`` steps after one-off shocks (k = 1..4). Its computation reads the shocks ``k``
   upstream hops away (and, through cycles of the economy, nearer ones along longer walks),
   and with self-loops an ``L``-layer model sees exactly the ``L``-hop upstream
   neighbourhood. One model per depth ``L`` predicts every horizon ``k`` at once; error
   against ``(L, k)``. Next to it, measured on the test economies, the **out-of-reach
   share**: the share of the target's first-order (linearised) response to the shocks that
   comes from shocks more than ``L`` hops upstream, ``sum_{d(j, i) > L} J_ij^2 /
   sum_j J_ij^2`` pooled over agents, with ``J`` the Jacobian of the simulated response with
   respect to the shocks (autograd through :func:`~graphattn.economy.simulate`). Shocks are
   independent, so to first order no depth-``L`` model can get its normalised MSE below this
   share; it is 0 for ``L >= k``.
b. **width vs relation types.** Economies with K = 1..4 relation types; target: the output
   deviation one step after the shocks, ``1 - prod_r u^r_i``, a product of K separate
   per-relation aggregates of the suppliers' relation-specific shocks (all elasticities 1 so
   that every relation weighs the same). One layer, fixed d_model, H heads (divisors of
   d_model up to 8); error against H for every K.
c. **which heads attend to which relation.** For the (b) models with the most heads, the
   share of every head's attention mass that falls on each relation type (a heat map, next
   to each relation's share of the edges).

Models: :class:`graphattn.nn.GraphTransformer` with ``edge_type`` (``num_relations=K``) and the
log input share as a 1-d edge feature; inputs per agent: one-hot tier, log size and its K
shocks. Data: many shock scenarios on each of several economies (the simulation is cheap),
tested on other economies and shocks (inductive); mini-batches of scenarios, AdamW with a
one-cycle schedule. Error: normalised MSE (MSE / variance of the test target; 1 = predicting
the mean).

Run::

    python examples/economy_study.py --quick     # the small setting (make demo's)
    python examples/economy_study.py             # the full setting

Writes ``depth_vs_hops.csv``, ``width_vs_relations.csv``, ``head_relation_share.csv`` and the
heat maps ``depth_vs_hops.png``, ``width_vs_relations.png``, ``head_relation_share.png`` into
``--out`` (default ``outputs/economy_study/``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Batch, Data

from graphattn.analysis import relation_shares
from graphattn.economy import RELATION_NAMES, ShockDynamics, economy_data, random_shocks, simulate
from graphattn.experiments import (
    RunFolder,
    fit,
    machine_info,
    machine_line,
    normalised_mse,
    print_grid,
    progress,
    seed_everything,
    write_table,
)
from graphattn.experiments.cli import ScriptParser, float_in, int_at_least, int_in, output_folder
from graphattn.experiments.files import staged
from graphattn.experiments.plots import heatmap
from graphattn.nn import GraphTransformer, GraphTransformerConfig

QUICK = dict(
    agents=100,
    train_economies=16,
    train_scenarios=8,
    batch=4,
    steps=400,
    depths=[1, 2, 3, 4],
    hops=[1, 2, 3],
    heads=[1, 2, 4],
    relations=[2, 4],
    width_steps=200,
)
FULL = dict(
    agents=150,
    train_economies=32,
    train_scenarios=8,
    batch=8,
    steps=1200,
    depths=[1, 2, 3, 4, 5, 6],
    hops=[1, 2, 3, 4],
    heads=[1, 2, 3, 4, 6, 8],
    relations=[1, 2, 3, 4],
    width_steps=400,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ScriptParser(doc=__doc__)
    p.add_argument("--quick", action="store_true", help="the small setting (make demo's)")
    p.add_argument("--out", type=output_folder, default=Path("outputs/economy_study"))
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--only", choices=["depth", "width"], help="run only (a), or only (b) + (c)")
    p.add_argument("--agents", type=int_at_least(10), help="agents per economy")
    p.add_argument("--train-economies", type=int_at_least(1), help="training economies")
    p.add_argument(
        "--train-scenarios", type=int_at_least(1), help="shock scenarios per training economy"
    )
    p.add_argument("--test-economies", type=int_at_least(1), default=4, help="test economies")
    p.add_argument(
        "--test-scenarios", type=int_at_least(1), default=4, help="scenarios per test economy"
    )
    p.add_argument(
        "--density",
        type=float_in(0, 1, low_open=True),
        default=0.3,
        help="share of (agent, relation) hit",
    )
    p.add_argument("--batch", type=int_at_least(1), help="scenarios per training step")
    p.add_argument("--d-model", type=int_at_least(1), default=32, help="width of the depth models")
    p.add_argument(
        "--lr",
        type=float_in(0, None, low_open=True),
        default=5e-3,
        help="peak learning rate (one-cycle)",
    )
    g = p.add_argument_group("(a) depth vs hops")
    g.add_argument("--depths", type=int_at_least(1), nargs="+", help="depths L")
    g.add_argument("--hops", type=int_at_least(1), nargs="+", help="horizons (hops) k")
    g.add_argument("--steps", type=int_at_least(1), help="training steps per depth model")
    g.add_argument(
        "--depth-heads", type=int_at_least(1), default=4, help="heads of the depth models"
    )
    g.add_argument(
        "--reach-graphs", type=int_at_least(1), default=4, help="test scenarios for the reach"
    )
    g = p.add_argument_group("(b) width vs relation types")
    g.add_argument(
        "--heads", type=int_at_least(1), nargs="+", help="heads H; must divide --d-model"
    )
    g.add_argument(
        "--relations", type=int_in(1, len(RELATION_NAMES)), nargs="+", help="relation counts K"
    )
    g.add_argument("--width-steps", type=int_at_least(1), help="training steps per width model")
    g.add_argument(
        "--width-batch", type=int_at_least(1), default=8, help="scenarios per training step"
    )
    g.add_argument(
        "--width-d-model", type=int_at_least(1), default=24, help="width of the (b) models"
    )
    g.add_argument(
        "--width-lr", type=float_in(0, None, low_open=True), default=1e-2, help="peak learning rate"
    )
    p.add_argument("--threads", type=int_at_least(1), default=1, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = p.parse_args(argv)
    base = QUICK if args.quick else FULL
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for name in (
        "agents",
        "train_economies",
        "train_scenarios",
        "test_economies",
        "test_scenarios",
        "batch",
        "d_model",
        "steps",
        "depth_heads",
        "reach_graphs",
        "width_steps",
        "width_batch",
        "width_d_model",
    ):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if min(args.relations) < 1 or min(args.hops) < 1 or min(args.depths) < 1:
        p.error("--relations, --hops and --depths must be >= 1")
    if max(args.relations) > len(RELATION_NAMES):
        p.error(f"--relations must be <= {len(RELATION_NAMES)}")
    if args.d_model % args.depth_heads:
        p.error(f"--depth-heads {args.depth_heads} does not divide --d-model {args.d_model}")
    bad = [h for h in args.heads if args.width_d_model % h]
    if bad:
        p.error(f"--heads {bad} do not divide --width-d-model {args.width_d_model}")
    if not 0.0 < args.density <= 1.0:
        p.error("--density must be in (0, 1]")
    return args


# ---- data ------------------------------------------------------------------------------------
def make_graphs(
    num_agents: int,
    num_relations: int,
    economies: int,
    scenarios: int,
    *,
    seed: int,
    density: float,
    steps: int,
    dynamics: ShockDynamics | None = None,
) -> list[Data]:
    """``scenarios`` impulse-shock scenarios on each of ``economies`` economies (seeds
    ``seed * 1000 + e``), one ``Data`` per scenario with ``y[:, k - 1] = 1 - y(k)``.

    Every ``Data`` keeps its ``shocks`` ``[N, K]`` and the economy (``economy``) for the
    reach analysis.
    """
    gen = torch.Generator().manual_seed(10_000 + seed)
    out = []
    for e in range(economies):
        econ = economy_data(
            num_agents, num_relations=num_relations, seed=seed * 1000 + e, dtype=torch.float64
        )
        edge_attr = econ.edge_weight.log().float().unsqueeze(1)
        for _ in range(scenarios):
            shocks = random_shocks(econ.num_nodes, num_relations, density=density, generator=gen)
            result = simulate(econ, shocks, steps, persistent=False, dynamics=dynamics)
            y = (1.0 - result.output[1:]).t().float()  # (N, steps): horizon k in column k - 1
            out.append(
                Data(
                    x=torch.cat([econ.x, shocks], dim=1).float(),  # (N, tiers + 1 + K)
                    edge_index=econ.edge_index,
                    edge_type=econ.edge_type,
                    edge_attr=edge_attr,
                    y=y,
                    shocks=shocks,
                    economy=econ,
                    num_nodes=econ.num_nodes,
                )
            )
    return out


def collate(graphs: list[Data]) -> Batch:
    """A disjoint union of scenario graphs (what the model needs only)."""
    keep = ("x", "edge_index", "edge_type", "edge_attr", "y")
    return Batch.from_data_list([Data(**{k: g[k] for k in keep}) for g in graphs])


# ---- models and training ---------------------------------------------------------------------
def build_model(
    in_channels: int,
    *,
    d_model: int,
    heads: int,
    layers: int,
    num_relations: int,
    out_channels: int = 1,
) -> GraphTransformer:
    return GraphTransformer(
        GraphTransformerConfig(
            in_channels=in_channels,
            channels=d_model,
            heads=heads,
            num_layers=layers,
            out_channels=out_channels,
            ffn_ratio=2,
            edge_dim=1,
            num_relations=num_relations,
        )
    )


def predict(model: GraphTransformer, data: Data) -> Tensor:
    return model(
        data.x,
        data.edge_index,
        edge_attr=data.edge_attr,
        edge_type=data.edge_type,
        batch=data.batch,
    ).node


def train(
    model: GraphTransformer,
    graphs: list[Data],
    columns: list[int],
    *,
    steps: int,
    batch: int,
    lr: float,
    generator: torch.Generator,
) -> tuple[list[float], Tensor, Tensor]:
    """Mini-batches of ``batch`` scenarios, MSE on the targets ``y[:, columns]`` standardised
    per column. Returns the loss history and the standardisation (mean, std)."""
    y = torch.cat([g.y[:, columns] for g in graphs])
    mean, std = y.mean(0), y.std(0).clamp_min(1e-8)
    picks = [torch.randint(len(graphs), (batch,), generator=generator) for _ in range(steps)]

    def loss_fn(m, pick):
        data = collate([graphs[i] for i in pick.tolist()])
        return F.mse_loss(predict(m, data), (data.y[:, columns] - mean) / std)

    history = fit(model, loss_fn, lambda e: [picks[e]], epochs=steps, lr=lr, weight_decay=1e-4)
    return history, mean, std


def evaluate(model, data: Data, columns: list[int], mean: Tensor, std: Tensor) -> list[float]:
    """Normalised MSE of every target column."""
    with torch.no_grad():
        pred = predict(model, data) * std + mean
    return [normalised_mse(pred[:, i], data.y[:, c]) for i, c in enumerate(columns)]


# ---- (a) depth vs hops -----------------------------------------------------------------------
def upstream_hops(edge_index: Tensor, num_nodes: int) -> np.ndarray:
    """``d[i, j]``: the number of hops from ``j`` to ``i`` along the edges (``inf`` where ``j``
    does not reach ``i``)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import shortest_path

    src, dst = edge_index.numpy()
    adj = coo_matrix((np.ones(len(src)), (src, dst)), shape=(num_nodes, num_nodes)).tocsr()
    return shortest_path(adj, unweighted=True, directed=True).T  # [i, j]


def out_of_reach(graphs: list[Data], hops: list[int], depths: list[int]) -> dict:
    """``{(k, L): share}``: the share of the linearised response at horizon ``k`` that comes
    from shocks more than ``L`` hops upstream (pooled over the agents of ``graphs``)."""
    far = {(k, L): 0.0 for k in hops for L in depths}
    total = dict.fromkeys(hops, 0.0)
    for g in graphs:
        econ, shocks = g.economy, g.shocks
        dist = upstream_hops(econ.edge_index, econ.num_nodes)  # (N, N)
        for k in hops:

            def response(s, k=k, econ=econ):
                return 1.0 - simulate(econ, s, k, persistent=False).output[k]

            jac = torch.autograd.functional.jacobian(response, shocks)  # (N, N, K)
            weight = (jac**2).sum(-1).numpy()  # (i, j): first-order sensitivity
            total[k] += float(weight.sum())
            for L in depths:
                far[k, L] += float(weight[dist > L].sum())
    return {key: value / total[key[0]] for key, value in far.items()}


def run_depth(args: argparse.Namespace, info: dict, show: bool) -> list[dict]:
    """(a): one model per depth L for all horizons k; test error and the out-of-reach share."""
    max_hop = max(args.hops)
    kw = dict(density=args.density, steps=max_hop)
    train_graphs = make_graphs(
        args.agents, 3, args.train_economies, args.train_scenarios, seed=args.seed, **kw
    )
    test_graphs = make_graphs(
        args.agents, 3, args.test_economies, args.test_scenarios, seed=args.seed + 1, **kw
    )
    test = collate(test_graphs)
    # one scenario per test economy first, so that the reach covers several economies
    order = sorted(range(len(test_graphs)), key=lambda i: i % args.test_scenarios)
    reach = out_of_reach(
        [test_graphs[i] for i in order[: args.reach_graphs]], args.hops, args.depths
    )
    columns = [k - 1 for k in args.hops]
    rows = []
    for layers in progress(args.depths, "(a) depth vs hops", enable=show):
        gen = seed_everything(args.seed + 100 * layers)
        model = build_model(
            train_graphs[0].x.size(1),
            d_model=args.d_model,
            heads=args.depth_heads,
            layers=layers,
            num_relations=3,
            out_channels=len(columns),
        )
        t0 = time.perf_counter()
        history, mean, std = train(
            model,
            train_graphs,
            columns,
            steps=args.steps,
            batch=args.batch,
            lr=args.lr,
            generator=gen,
        )
        seconds = time.perf_counter() - t0
        errors = evaluate(model, test, columns, mean, std)
        train_errors = evaluate(
            model, collate(train_graphs[: len(test_graphs)]), columns, mean, std
        )
        for k, err, train_err in zip(args.hops, errors, train_errors, strict=True):
            rows.append(
                {
                    "hops_k": k,
                    "depth_L": layers,
                    "test_nmse": round(err, 4),
                    "train_nmse": round(train_err, 4),
                    "out_of_reach": round(reach[k, layers], 4),
                    "seconds": round(seconds, 1),
                }
            )
    settings = _settings(
        args,
        "agents",
        "train_economies",
        "train_scenarios",
        "test_economies",
        "test_scenarios",
        "density",
        "batch",
        "d_model",
        "lr",
        "depths",
        "hops",
        "steps",
        "depth_heads",
        "reach_graphs",
        "seed",
    )
    write_table(args.out / "depth_vs_hops.csv", rows, settings=settings, machine=info)
    heatmap(
        args.out / "depth_vs_hops.png",
        rows,
        "depth_L",
        "hops_k",
        "test_nmse",
        title=f"(a) impulse response at horizon k vs depth L (d_model={args.d_model}): "
        "test normalised MSE",
        vmin=0.0,
        vmax=1.0,
        cmap="viridis_r",
        footer=machine_line(info),
    )
    return rows


# ---- (b) width vs relation types and (c) head shares -----------------------------------------
def head_relation_share(model: GraphTransformer, data: Data, num_relations: int) -> np.ndarray:
    """Share of every head's attention mass on each relation: ``[layers, heads, K]``.

    The mass of head h on relation r is the sum of its weights over edges of type r, divided
    by its mass on all relations (:func:`graphattn.analysis.relation_shares`; the self-loops
    the layers add carry no type and are left out).
    """
    with torch.no_grad():
        out = model(
            data.x,
            data.edge_index,
            edge_attr=data.edge_attr,
            edge_type=data.edge_type,
            batch=data.batch,
            return_attention=True,
        )
    shares = [relation_shares(att, data.edge_type, num_relations) for att in out.attention]
    return torch.stack(shares).numpy()  # (layers, H, K)


def run_width(args: argparse.Namespace, info: dict, show: bool) -> tuple[list[dict], list[dict]]:
    """(b) and (c): K relation aggregates against heads H, and per-head relation shares."""
    equal = ShockDynamics(elasticity={}, default_elasticity=1.0)
    names = list(RELATION_NAMES)
    rows, share_rows = [], []
    for num_rel in progress(args.relations, "(b) width vs relations", enable=show):
        kw = dict(density=args.density, steps=1, dynamics=equal)
        train_graphs = make_graphs(
            args.agents,
            num_rel,
            args.train_economies,
            args.train_scenarios,
            seed=args.seed + 2,
            **kw,
        )
        test = collate(
            make_graphs(
                args.agents,
                num_rel,
                args.test_economies,
                args.test_scenarios,
                seed=args.seed + 3,
                **kw,
            )
        )
        for heads in args.heads:
            gen = seed_everything(args.seed + 1000 * num_rel + heads)
            model = build_model(
                train_graphs[0].x.size(1),
                d_model=args.width_d_model,
                heads=heads,
                layers=1,
                num_relations=num_rel,
            )
            t0 = time.perf_counter()
            history, mean, std = train(
                model,
                train_graphs,
                [0],
                steps=args.width_steps,
                batch=args.width_batch,
                lr=args.width_lr,
                generator=gen,
            )
            seconds = time.perf_counter() - t0
            (err,) = evaluate(model, test, [0], mean, std)
            rows.append(
                {
                    "relations_K": num_rel,
                    "heads_H": heads,
                    "test_nmse": round(err, 4),
                    "final_train_loss": round(history[-1], 4),
                    "seconds": round(seconds, 1),
                }
            )
            if heads != max(args.heads):
                continue
            shares = head_relation_share(model, test, num_rel)  # (layers, H, K)
            counts = torch.bincount(test.edge_type, minlength=num_rel).double()
            edge_share = (counts / counts.sum()).tolist()
            for layer in range(shares.shape[0]):
                for head in range(shares.shape[1]):
                    for r in range(num_rel):
                        share_rows.append(
                            {
                                "relations_K": num_rel,
                                "layer": layer,
                                "head": head,
                                "relation": names[r],
                                "share": round(float(shares[layer, head, r]), 4),
                                "edge_share": round(edge_share[r], 4),
                            }
                        )
    settings = _settings(
        args,
        "agents",
        "train_economies",
        "train_scenarios",
        "test_economies",
        "test_scenarios",
        "density",
        "width_batch",
        "width_d_model",
        "width_lr",
        "heads",
        "relations",
        "width_steps",
        "seed",
    )
    write_table(args.out / "width_vs_relations.csv", rows, settings=settings, machine=info)
    heatmap(
        args.out / "width_vs_relations.png",
        rows,
        "heads_H",
        "relations_K",
        "test_nmse",
        title=f"(b) K relation aggregates vs heads H (1 layer, d_model={args.width_d_model})",
        vmin=0.0,
        cmap="viridis_r",
        footer=machine_line(info),
    )
    write_table(args.out / "head_relation_share.csv", share_rows, settings=settings, machine=info)
    labelled = [{**r, "model, head": f"K={r['relations_K']}, head {r['head']}"} for r in share_rows]
    heatmap(
        args.out / "head_relation_share.png",
        labelled,
        "model, head",
        "relation",
        "share",
        title=f"(c) share of each head's attention mass per relation (H={max(args.heads)})",
        vmin=0.0,
        vmax=1.0,
        cmap="magma",
        footer=machine_line(info),
    )
    return rows, share_rows


# ---- main ------------------------------------------------------------------------------------
def _settings(args: argparse.Namespace, *names: str) -> dict:
    return {"setting": "quick" if args.quick else "full", **{n: getattr(args, n) for n in names}}


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    args = parse_args(argv)
    with RunFolder(args.out):  # writable? checked now; the files land together at the end
        return run(args)


def run(args: argparse.Namespace) -> dict[str, list[dict]]:
    torch.set_num_threads(args.threads)
    info = machine_info()
    print(f"economy study, {'quick' if args.quick else 'full'} setting")
    print(machine_line(info))
    for key, value in vars(args).items():
        print(f"  {key}: {value}")
    started = time.perf_counter()
    show = not args.no_progress
    result: dict[str, list[dict]] = {"depth": [], "width": [], "shares": []}
    if args.only != "width":
        result["depth"] = run_depth(args, info, show)
        print_grid(
            result["depth"],
            "depth_L",
            "hops_k",
            "test_nmse",
            title="(a) depth vs hops: test normalised MSE",
        )
        print_grid(
            result["depth"],
            "depth_L",
            "hops_k",
            "out_of_reach",
            title="    out-of-reach share (linearised: no depth-L model goes below it)",
        )
    if args.only != "depth":
        result["width"], result["shares"] = run_width(args, info, show)
        print_grid(
            result["width"],
            "heads_H",
            "relations_K",
            "test_nmse",
            title="(b) width vs relation types: test normalised MSE",
        )
        best = {}
        for r in result["shares"]:
            key = (r["relations_K"], r["relation"])
            best[key] = max(best.get(key, 0.0), r["share"])
        print(
            f"\n(c) largest share of attention mass any head (H={max(args.heads)}) puts on a "
            "relation (the relation's share of edges in brackets)"
        )
        edge_share = {(r["relations_K"], r["relation"]): r["edge_share"] for r in result["shares"]}
        for k in sorted({key[0] for key in best}):
            cells = [
                f"{name} {best[k, name]:.2f} ({edge_share[k, name]:.2f})"
                for name in RELATION_NAMES[:k]
            ]
            print(f"  K={k}: " + "  ".join(cells))
    print(
        f"\nwrote {', '.join(sorted(p.name for p in staged(args.out).iterdir()))} into {args.out}/"
    )
    print(f"total {time.perf_counter() - started:.0f} s")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
