"""Depth vs hops and width vs relation types: graph transformers on supply-chain shocks.

Three experiments on economies from :mod:`graphattn.economy`, with ground truth from its shock
simulation (see ``docs/economy.md``), each sample built by
:func:`~graphattn.economy.shock_sample`:

a. **depth vs hops.** Target: the impulse response ``1 - y_i(k)`` of every agent's output
   ``k`` steps after one-off shocks (k = 1..4), which reads the shocks up to ``k`` upstream
   hops away; with self-loops an ``L``-layer model sees exactly the ``L``-hop upstream
   neighbourhood. One model per depth ``L`` predicts every horizon ``k`` at once; error
   against ``(L, k)``. Next to it the **out-of-reach share**: the share of the target's
   first-order response to the shocks that comes from shocks more than ``L`` hops upstream,
   ``sum_{d(j, i) > L} J_ij^2 / sum_j J_ij^2`` pooled over agents (``J``: the Jacobian of the
   simulated response, by autograd). Shocks are independent, so to first order no depth-``L``
   model gets its normalised MSE below this share; it is 0 for ``L >= k``.
b. **width vs relation types.** Economies with K = 1..4 relation types; target: the output
   deviation one step after the shocks, ``1 - prod_r u^r_i``, a product of K separate
   per-relation aggregates (all elasticities 1, so every relation weighs the same). One
   layer, fixed d_model, H heads; error against H for every K.
c. **which heads attend to which relation.** For the (b) models with the most heads, the
   share of every head's attention mass on each relation type, next to each relation's share
   of the edges.

Models: :class:`graphattn.nn.GraphTransformer` with ``edge_type`` and the log input share as
an edge feature; inputs per agent: one-hot tier, log size and its K shocks. Many shock
scenarios on several economies, tested on other economies and shocks; mini-batches of
scenarios, AdamW with a one-cycle schedule. Error: normalised MSE (1 = predicting the mean).

Run::

    python examples/economy_study.py --quick     # the small setting (make demo's)
    python examples/economy_study.py             # the full setting

Writes ``depth_vs_hops``, ``width_vs_relations`` and ``head_relation_share`` (CSV and heat
map) into ``--out`` (default ``outputs/economy_study/``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Batch, Data

from graphattn.analysis import relation_shares
from graphattn.economy import (
    RELATION_NAMES,
    ShockDynamics,
    economy_data,
    random_shocks,
    shock_sample,
    simulate,
)
from graphattn.experiments import Run, cli, fit_batches, normalised_mse, print_grid, seed_everything
from graphattn.nn import GraphTransformer, GraphTransformerConfig

PRESETS = {
    "full": dict(agents=150, train_economies=32, train_scenarios=8, batch=8, steps=1200,
                 depths=[1, 2, 3, 4, 5, 6], hops=[1, 2, 3, 4], heads=[1, 2, 3, 4, 6, 8],
                 relations=[1, 2, 3, 4], width_steps=400),
    "quick": dict(agents=100, train_economies=16, train_scenarios=8, batch=4, steps=400,
                  depths=[1, 2, 3, 4], hops=[1, 2, 3], heads=[1, 2, 4], relations=[2, 4],
                  width_steps=200),
}  # fmt: skip
DATA = "agents train_economies train_scenarios test_economies test_scenarios density".split()
DEPTH = [*DATA, *"batch d_model lr depths hops steps depth_heads reach_graphs seed".split()]
WIDTH = [*DATA, *"width_batch width_d_model width_lr heads relations width_steps seed".split()]


def parse_args(argv: list[str]):
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="examples/economy_study.py")
    count = cli.int_at_least(1)
    positive = cli.float_in(0, None, low_open=True)
    p.add_run_options("outputs/economy_study", seed=0)
    p.add_argument("--agents", type=cli.int_at_least(10), help="agents per economy")
    p.add_argument("--only", choices=["depth", "width"], help="run only (a), or only (b) + (c)")
    p.add_argument("--train-economies", type=count, help="training economies")
    p.add_argument("--train-scenarios", type=count, help="scenarios per economy")
    p.add_argument("--test-economies", type=count, default=4, help="test economies")
    p.add_argument("--test-scenarios", type=count, default=4, help="per test economy")
    p.add_argument("--density", type=cli.float_in(0, 1, low_open=True), default=0.3,
                   help="share of (agent, relation) hit")  # fmt: skip
    p.add_argument("--batch", type=count, help="scenarios per training step")
    p.add_argument("--d-model", type=count, default=32, help="width of the depth models")
    p.add_argument("--lr", type=positive, default=5e-3)
    g = p.add_argument_group("(a) depth vs hops")
    g.add_argument("--depths", type=count, nargs="+", help="depths L")
    g.add_argument("--hops", type=count, nargs="+", help="horizons (hops) k")
    g.add_argument("--steps", type=count, help="training steps per depth model")
    g.add_argument("--depth-heads", type=count, default=4, help="heads of (a) models")
    g.add_argument("--reach-graphs", type=count, default=4, help="scenarios for reach")
    g = p.add_argument_group("(b) width vs relation types")
    g.add_argument("--heads", type=count, nargs="+", help="heads H (divide the width)")
    g.add_argument("--relations", type=cli.int_in(1, len(RELATION_NAMES)), nargs="+",
                   help="relation counts K")  # fmt: skip
    g.add_argument("--width-steps", type=count, help="training steps per width model")
    g.add_argument("--width-batch", type=count, default=8, help="scenarios per step")
    g.add_argument("--width-d-model", type=count, default=24, help="width of (b) models")
    g.add_argument("--width-lr", type=positive, default=1e-2, help="peak learning rate of (b)")
    args = p.parse_args(argv)
    p.check_divides(args, "depth_heads", "d_model")
    p.check_divides(args, "heads", "width_d_model")
    return args


# ---- data, models, training ------------------------------------------------------------------
def make_graphs(num_agents, num_relations, economies, scenarios, *, seed, density, steps,
                dynamics: ShockDynamics | None = None) -> list[Data]:  # fmt: skip
    """``scenarios`` impulse-shock scenarios on each of ``economies`` economies (seeds
    ``seed * 1000 + e``): ``y[:, k - 1]`` is the loss ``k`` steps after the shocks; every
    sample keeps its ``shocks`` and its ``economy`` for the reach analysis."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    out = []
    for e in range(economies):
        econ = economy_data(num_agents, num_relations=num_relations, seed=seed * 1000 + e,
                            dtype=torch.float64)  # fmt: skip
        for _ in range(scenarios):
            shocks = random_shocks(econ.num_nodes, num_relations, density=density, generator=gen)
            sample = shock_sample(econ, shocks, range(1, steps + 1), persistent=False,
                                  dynamics=dynamics)  # fmt: skip
            sample.shocks, sample.economy = shocks, econ
            out.append(sample)
    return out


def collate(graphs: list[Data]) -> Batch:
    """A disjoint union of scenario graphs (what the model needs only)."""
    keep = ("x", "edge_index", "edge_type", "edge_attr", "y")
    return Batch.from_data_list([Data(**{k: g[k] for k in keep}) for g in graphs])


def build_model(in_channels, *, d_model, heads, layers, num_relations, out_channels=1):
    return GraphTransformer(
        GraphTransformerConfig(
            in_channels=in_channels, channels=d_model, heads=heads, num_layers=layers,
            out_channels=out_channels, ffn_ratio=2, edge_dim=1, num_relations=num_relations,
        )
    )  # fmt: skip


def predict(model: GraphTransformer, data: Data, **kwargs):
    out = model(data.x, data.edge_index, edge_attr=data.edge_attr, edge_type=data.edge_type,
                batch=data.batch, **kwargs)  # fmt: skip
    return out if kwargs else out.node


def train(model, graphs: list[Data], columns: list[int], *, steps, batch, lr, generator):
    """Mini-batches of ``batch`` scenarios, MSE on the targets ``y[:, columns]`` standardised
    per column. Returns the loss history, the standardisation (mean, std) and the seconds."""
    y = torch.cat([g.y[:, columns] for g in graphs])
    mean, std = y.mean(0), y.std(0).clamp_min(1e-8)
    picks = [torch.randint(len(graphs), (batch,), generator=generator) for _ in range(steps)]

    def loss_fn(m, pick):
        data = collate([graphs[i] for i in pick.tolist()])
        return F.mse_loss(predict(m, data), (data.y[:, columns] - mean) / std)

    history, seconds = fit_batches(model, loss_fn, picks, lr=lr, weight_decay=1e-4)
    return history, mean, std, round(seconds, 1)


def evaluate(model, data: Data, columns: list[int], mean: Tensor, std: Tensor) -> list[float]:
    """Normalised MSE of every target column."""
    with torch.no_grad():
        pred = predict(model, data) * std + mean
    return [normalised_mse(pred[:, i], data.y[:, c]) for i, c in enumerate(columns)]


# ---- (a) depth vs hops -----------------------------------------------------------------------
def upstream_hops(edge_index: Tensor, num_nodes: int) -> np.ndarray:
    """``d[i, j]``: hops from ``j`` to ``i`` along the edges (``inf`` where ``j`` does not
    reach ``i``)."""
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


def run_depth(args, run: Run) -> list[dict]:
    """(a): one model per depth L for all horizons k; test error and the out-of-reach share."""
    kw = dict(density=args.density, steps=max(args.hops))
    train_graphs = make_graphs(args.agents, 3, args.train_economies, args.train_scenarios,
                               seed=args.seed, **kw)  # fmt: skip
    test_graphs = make_graphs(args.agents, 3, args.test_economies, args.test_scenarios,
                              seed=args.seed + 1, **kw)  # fmt: skip
    test, train_part = collate(test_graphs), collate(train_graphs[: len(test_graphs)])
    # one scenario per test economy first, so that the reach covers several economies
    order = sorted(range(len(test_graphs)), key=lambda i: i % args.test_scenarios)
    reach_graphs = [test_graphs[i] for i in order[: args.reach_graphs]]
    reach = out_of_reach(reach_graphs, args.hops, args.depths)
    columns, rows = [k - 1 for k in args.hops], []
    for layers in run.progress(args.depths, "(a) depth vs hops"):
        gen = seed_everything(args.seed + 100 * layers)
        model = build_model(train_graphs[0].x.size(1), d_model=args.d_model,
                            heads=args.depth_heads, layers=layers, num_relations=3,
                            out_channels=len(columns))  # fmt: skip
        _, mean, std, seconds = train(model, train_graphs, columns, steps=args.steps,
                                      batch=args.batch, lr=args.lr, generator=gen)  # fmt: skip
        errors = evaluate(model, test, columns, mean, std)
        train_errors = evaluate(model, train_part, columns, mean, std)
        for k, err, train_err in zip(args.hops, errors, train_errors, strict=True):
            rows.append({"hops_k": k, "depth_L": layers, "test_nmse": round(err, 4),
                         "train_nmse": round(train_err, 4),
                         "out_of_reach": round(reach[k, layers], 4),
                         "seconds": seconds})  # fmt: skip
    run.table("depth_vs_hops", rows, cli.settings_of(args, *DEPTH))
    title = f"(a) impulse response at horizon k vs depth L (d_model={args.d_model}): test nmse"
    run.heatmap("depth_vs_hops", rows, "depth_L", "hops_k", "test_nmse", title=title, vmin=0.0,
                vmax=1.0, cmap="viridis_r")  # fmt: skip
    print_grid(rows, "depth_L", "hops_k", "test_nmse", title="(a) depth vs hops: test nmse")
    title = "    out-of-reach share (linearised: no depth-L model goes below it)"
    print_grid(rows, "depth_L", "hops_k", "out_of_reach", title=title)
    return rows


# ---- (b) width vs relation types and (c) head shares -----------------------------------------
def run_width(args, run: Run) -> tuple[list[dict], list[dict]]:
    """(b) and (c): K relation aggregates against heads H, and per-head relation shares."""
    kw = dict(
        density=args.density, steps=1, dynamics=ShockDynamics(elasticity={}, default_elasticity=1.0)
    )
    rows, share_rows = [], []
    for num_rel in run.progress(args.relations, "(b) width vs relations"):
        train_graphs = make_graphs(args.agents, num_rel, args.train_economies,
                                   args.train_scenarios, seed=args.seed + 2, **kw)  # fmt: skip
        test = collate(make_graphs(args.agents, num_rel, args.test_economies,
                                   args.test_scenarios, seed=args.seed + 3, **kw))  # fmt: skip
        for heads in args.heads:
            gen = seed_everything(args.seed + 1000 * num_rel + heads)
            model = build_model(train_graphs[0].x.size(1), d_model=args.width_d_model,
                                heads=heads, layers=1, num_relations=num_rel)  # fmt: skip
            history, mean, std, seconds = train(model, train_graphs, [0], steps=args.width_steps,
                                                batch=args.width_batch, lr=args.width_lr,
                                                generator=gen)  # fmt: skip
            (err,) = evaluate(model, test, [0], mean, std)
            rows.append({"relations_K": num_rel, "heads_H": heads, "test_nmse": round(err, 4),
                         "final_train_loss": round(history[-1], 4),
                         "seconds": seconds})  # fmt: skip
            if heads == max(args.heads):  # (c): the share of each head's mass per relation
                with torch.no_grad():
                    attention = predict(model, test, return_attention=True).attention
                counts = torch.bincount(test.edge_type, minlength=num_rel).double()
                for layer, att in enumerate(attention):
                    shares = relation_shares(att, test.edge_type, num_rel)  # (H, K)
                    for head, r in np.ndindex(*shares.shape):
                        share_rows.append({
                            "relations_K": num_rel, "layer": layer, "head": head,
                            "relation": RELATION_NAMES[r],
                            "share": round(float(shares[head, r]), 4),
                            "edge_share": round(float(counts[r] / counts.sum()), 4),
                        })  # fmt: skip
    run.table("width_vs_relations", rows, cli.settings_of(args, *WIDTH))
    title = f"(b) K relation aggregates vs heads H (1 layer, d_model={args.width_d_model})"
    run.heatmap("width_vs_relations", rows, "heads_H", "relations_K", "test_nmse", title=title,
                vmin=0.0, cmap="viridis_r")  # fmt: skip
    run.table("head_relation_share", share_rows, cli.settings_of(args, *WIDTH))
    labelled = [{**r, "model, head": f"K={r['relations_K']}, head {r['head']}"} for r in share_rows]
    run.heatmap("head_relation_share", labelled, "model, head", "relation", "share", vmin=0.0,
                title=f"(c) share of each head's attention mass per relation (H={max(args.heads)})",
                vmax=1.0, cmap="magma")  # fmt: skip
    print_grid(rows, "heads_H", "relations_K", "test_nmse", title="(b) width vs relation types")
    print(f"\n(c) largest share of attention mass any head (H={max(args.heads)}) puts on a "
          "relation (the relation's share of edges in brackets)")  # fmt: skip
    for k in sorted({r["relations_K"] for r in share_rows}):
        mine = [r for r in share_rows if r["relations_K"] == k]
        cells = [f"{name} {max(r['share'] for r in mine if r['relation'] == name):.2f} "
                 f"({next(r['edge_share'] for r in mine if r['relation'] == name):.2f})"
                 for name in RELATION_NAMES[:k]]  # fmt: skip
        print(f"  K={k}: " + "  ".join(cells))
    return rows, share_rows


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    args = parse_args(argv)
    result: dict[str, list[dict]] = {"depth": [], "width": [], "shares": []}
    with Run.from_args(args) as run:
        if args.only != "width":
            result["depth"] = run_depth(args, run)
        if args.only != "depth":
            result["width"], result["shares"] = run_width(args, run)
    return result


if __name__ == "__main__":
    main()
