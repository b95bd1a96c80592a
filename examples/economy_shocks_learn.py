"""A graph transformer learns the shock cascade: predicted vs true losses, and attention vs
input shares.

Training data: scenarios of every kind with random parameters
(:func:`graphattn.economy.random_scenarios`) on several economies, each a sample of
:func:`graphattn.economy.shock_sample` (agents' features and shocks in, their output loss
``--horizon`` steps later out, persistent shocks; the log input share as an edge feature unless
``--no-edge-share``). A :class:`graphattn.nn.GraphTransformer` with relation types is trained
full-batch and predicts every agent's loss in held-out scenarios on an unseen economy:
predicted vs true per tier, and each customer's attention over its suppliers of one relation
against the true input shares (every layer, trained beside untrained). (The scenarios
themselves are ``economy_shocks.py``; the theory, ``economy_shocks_theory.py``.)

Run::

    python examples/economy_shocks_learn.py --quick
    python examples/economy_shocks_learn.py --out results/economy_shocks   # the recorded run

Writes ``learn_tiers.csv``, ``attention_vs_shares.csv`` and two figures into ``--out``
(default ``outputs/economy_shocks/``).
"""

from __future__ import annotations

import copy
import math
import time
from functools import partial

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from graphattn.economy import (
    MAX_STEPS,
    RELATION_NAMES,
    economy_data,
    random_scenarios,
    shock_sample,
)
from graphattn.experiments import Run, cli, fit, normalised_mse, print_table, seed_everything
from graphattn.experiments.plots import panels, series_styles
from graphattn.nn import GraphTransformer, GraphTransformerConfig

PRESETS = {
    "full": dict(learn_agents=200, train_economies=12, train_scenarios=6, test_scenarios=16,
                 steps=300),
    "quick": dict(learn_agents=100, train_economies=4, train_scenarios=5, test_scenarios=10,
                  steps=60),
}  # fmt: skip


def parse_args(argv: list[str]):
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="examples/economy_shocks_learn.py")
    count = cli.int_at_least(1)
    p.add_run_options("outputs/economy_shocks", seed=0)
    p.add_argument("--relations", type=cli.int_in(3, len(RELATION_NAMES)), default=3,
                   help="relation types (>= 3)")  # fmt: skip
    p.add_argument("--learn-agents", type=cli.int_at_least(10), help="agents per economy")
    p.add_argument("--train-economies", type=count, help="training economies")
    p.add_argument("--train-scenarios", type=count, help="scenarios per training economy")
    p.add_argument("--test-scenarios", type=count, help="held-out scenarios, unseen economy")
    p.add_argument("--steps", type=count, help="full-batch optimiser steps")
    p.add_argument("--horizon", type=cli.int_in(1, MAX_STEPS), default=3,
                   help="predict the loss after H steps")  # fmt: skip
    p.add_argument("--layers", type=count, default=3, help="transformer blocks")
    p.add_argument("--d-model", type=count, default=32)
    p.add_argument("--heads", type=count, default=4)
    p.add_argument("--lr", type=cli.float_in(0, None, low_open=True), default=5e-3)
    p.add_argument("--no-edge-share", action="store_true",
                   help="do not give the model the log input share as an edge feature")  # fmt: skip
    p.add_argument("--engine", default="scatter",
                   help="attention engine ('scatter': fastest on these small graphs)")  # fmt: skip
    args = p.parse_args(argv)
    p.check_divides(args, "heads", "d_model")
    return args


def forward(model: GraphTransformer, batch: Data, **kwargs):
    edge_attr = batch.edge_attr if model.config.edge_dim else None
    return model(batch.x, batch.edge_index, edge_attr=edge_attr, edge_type=batch.edge_type,
                 batch=batch.batch, **kwargs)  # fmt: skip


def supplier_groups(econ: Data) -> tuple[Tensor, int, Tensor, Tensor]:
    """Each edge's (customer, relation) group, the number of groups, the true input shares
    renormalised within each group, and whether an edge's group has two suppliers or more."""
    group = econ.edge_index[1] * len(econ.relation_names) + econ.edge_type
    groups, inverse = torch.unique(group, return_inverse=True)
    share = econ.edge_weight.double()
    share = (
        share / torch.zeros(len(groups), dtype=torch.float64).index_add_(0, inverse, share)[inverse]
    )
    return inverse, len(groups), share, torch.bincount(inverse)[inverse] >= 2


def layer_attention(model, test: Data, econ: Data, copies: int) -> list[Tensor]:
    """Per layer, every economy edge's attention ``[E, H]``, averaged over the test scenarios
    (``copies`` copies of ``econ``)."""
    with torch.no_grad():
        attention = forward(model, test, return_attention=True).attention
    out = []
    for a in attention:  # the layer appends one self-loop per node after the caller's edges
        assert torch.equal(a.edge_index[:, : test.num_edges], test.edge_index)
        out.append(a.weights[: test.num_edges].double().view(copies, econ.num_edges, -1).mean(0))
    return out


def compare(att: Tensor, share: Tensor, inverse: Tensor, num_groups: int, multi: Tensor) -> dict:
    """Attention renormalised over each customer's suppliers of one relation against the true
    shares, over customers with two suppliers or more: Pearson correlation per customer, and
    the KL divergence of shares from attention (and from uniform attention)."""

    def per_group(v):  # sum over the edges of every group
        return torch.zeros(num_groups, dtype=torch.float64).index_add_(0, inverse, v)

    p_att = att / per_group(att)[inverse]
    count = torch.bincount(inverse, minlength=num_groups).double()
    kl = per_group(share * (share / p_att).log())
    kl_u = per_group(share * (share / (1.0 / count[inverse])).log())  # uniform attention
    a_c = p_att - (per_group(p_att) / count)[inverse]
    s_c = share - (per_group(share) / count)[inverse]
    cov, va, vs = per_group(a_c * s_c), per_group(a_c**2), per_group(s_c**2)
    ok = torch.zeros(num_groups, dtype=torch.bool).index_fill_(0, inverse[multi], True)
    ok &= (va > 1e-18) & (vs > 1e-18)
    corr = cov[ok] / (va[ok] * vs[ok]).sqrt()
    return {"customers": int(ok.sum()), "corr_mean": float(corr.mean()),
            "corr_median": float(corr.median()), "kl": float(kl[ok].mean()),
            "kl_uniform": float(kl_u[ok].mean()),
            "closer_than_uniform": float((kl[ok] < kl_u[ok]).double().mean())}  # fmt: skip


def run_model(args, train: Batch, test: Batch, unseen: Data, copies: int, run: Run) -> dict:
    """Train, then compare predictions and attention with the truth on the unseen economy."""
    seed_everything(args.seed)
    model = GraphTransformer(GraphTransformerConfig(
        in_channels=train.x.size(1), channels=args.d_model, heads=args.heads,
        num_layers=args.layers, ffn_ratio=2, edge_dim=None if args.no_edge_share else 1,
        num_relations=args.relations, engine=args.engine,
    ))  # fmt: skip
    untrained = copy.deepcopy(model)

    def loss_fn(m, batch):
        return torch.nn.functional.mse_loss(forward(m, batch).node.squeeze(-1), batch.y)

    t1 = time.perf_counter()
    history = fit(model, loss_fn, lambda epoch: [train], epochs=args.steps, lr=args.lr,
                  desc="train", show_progress=not args.no_progress)  # fmt: skip
    print(f"trained {args.steps} steps in {time.perf_counter() - t1:.1f} s; "
          f"train MSE {history[0]:.2e} -> {history[-1]:.2e}")  # fmt: skip
    with torch.no_grad():
        pred = forward(model, test).node.squeeze(-1)
    true, tier_rows = test.y, []
    for t, name in [(-1, "all"), *enumerate(unseen.tier_names)]:
        m = torch.ones_like(true, dtype=torch.bool) if t < 0 else test.tier == t
        p, y = pred[m], true[m]
        tier_rows.append({
            "tier": name, "agents": int(m.sum()), "true_mean": float(y.mean()),
            "pred_mean": float(p.mean()), "nmse": normalised_mse(p, y) if y.var() > 0 else math.nan,
            "corr": float(torch.corrcoef(torch.stack([p, y]))[0, 1]) if y.std() > 0 else math.nan,
        })  # fmt: skip
    run.table("learn_tiers", tier_rows)
    print_table(tier_rows, title="held-out scenarios, unseen economy: predicted vs true loss",
                fmt=".3f")  # fmt: skip
    draws = [partial(draw_prediction, pred=pred, true=true, tier=test.tier, t=t, name=name)
             for t, name in enumerate(unseen.tier_names)]  # fmt: skip
    panels(args.out / "learn_pred_vs_true.png", draws, ncols=3, footer=run.footer,
           title="Held-out scenarios on an unseen economy, per tier")  # fmt: skip

    inverse, num_groups, share, multi = supplier_groups(unseen)
    att_rows, panels_att = [], []
    for label, m in (("trained", model), ("untrained", untrained)):
        for layer, w in enumerate(layer_attention(m, test, unseen, copies), start=1):
            for head in ["mean", *range(w.shape[1])]:
                wh = w.mean(1) if head == "mean" else w[:, head]
                att_rows.append({"model": label, "layer": layer, "head": head,
                                 **compare(wh, share, inverse, num_groups, multi)})  # fmt: skip
            mean = w.mean(1)
            p = (
                mean
                / torch.zeros(num_groups, dtype=torch.float64).index_add_(0, inverse, mean)[inverse]
            )
            panels_att.append((layer, label, p[multi]))
    run.table("attention_vs_shares", att_rows)
    title = "customer attention over suppliers vs true input shares (head mean)"
    print_table([r for r in att_rows if r["head"] == "mean"], title=title, fmt=".3f")
    nmse = tier_rows[0]["nmse"]
    caveat = (
        f"{args.steps} steps on {train.num_graphs} scenarios; held-out normalised MSE {nmse:.2f}"
    )
    if args.quick:
        caveat += (" (quick setting: the model has barely learned, so its attention says little;"
                   " the full setting is the run to read)")  # fmt: skip
    panels_att.sort(key=lambda r: r[0])  # layer by layer, trained beside untrained
    draws = [partial(draw_attention, econ=unseen, share=share[multi], multi=multi, layer=layer,
                     label=label, p=p) for layer, label, p in panels_att]  # fmt: skip
    panels(args.out / "attention_vs_shares.png", draws, ncols=2, panel_size=(4.5, 3.6),
           title=f"Customers' attention over suppliers vs input shares\n{caveat}",
           footer=run.footer)  # fmt: skip
    return {"tiers": tier_rows, "attention": att_rows, "history": history}


def draw_prediction(ax, pred: Tensor, true: Tensor, tier: Tensor, t: int, name: str) -> None:
    hi = float(max(true.max(), pred.max(), 1e-6))
    m = tier == t
    ax.scatter(true[m].numpy(), pred[m].numpy(), s=4, alpha=0.4, color=f"C{t}",
               label="agent in a scenario")  # fmt: skip
    ax.plot([0, hi], [0, hi], "k:", linewidth=1, label="predicted = true")
    ax.legend(fontsize=7, markerscale=2)
    ax.set_title(f"{name} ({int(m.sum()):,} agent-scenarios)", fontsize=9)
    ax.set_xlabel("true loss")
    ax.set_ylabel("predicted loss")
    ax.grid(alpha=0.3)


def draw_attention(ax, econ: Data, share: Tensor, multi: Tensor, layer: int, label: str,
                   p: Tensor) -> None:  # fmt: skip
    corr = float(torch.corrcoef(torch.stack([share, p]))[0, 1])
    styles = series_styles(len(econ.relation_names))
    for r, (name, style) in enumerate(zip(econ.relation_names, styles, strict=True)):
        m = econ.edge_type[multi] == r
        ax.scatter(share[m].numpy(), p[m].numpy(), s=5, alpha=0.4, label=name, **style)
    ax.plot([0, 1], [0, 1], "k:", linewidth=1, label="attention = share")
    ax.set_title(f"layer {layer}, {label} (correlation {corr:.2f})", fontsize=9)
    ax.set_xlabel("true input share")
    ax.set_ylabel("attention (head mean)")
    ax.legend(fontsize=6, markerscale=2)
    ax.grid(alpha=0.3)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with Run.from_args(args) as run:
        share = "without" if args.no_edge_share else "with"
        print(f"loss after {args.horizon} steps, persistent shocks, {args.layers} layers, "
              f"{share} the input share as edge feature")  # fmt: skip
        t0 = time.perf_counter()
        train = []
        for e in range(args.train_economies):
            econ = economy_data(args.learn_agents, num_relations=args.relations, seed=1000 + e,
                                dtype=torch.float64)  # fmt: skip
            train += [shock_sample(econ, sc.shocks, args.horizon)
                      for sc in random_scenarios(econ, args.train_scenarios, seed=e)]  # fmt: skip
        unseen = economy_data(args.learn_agents, num_relations=args.relations, seed=999_999,
                              dtype=torch.float64)  # fmt: skip
        tests = random_scenarios(unseen, args.test_scenarios, seed=123_456)
        train_batch = Batch.from_data_list(train)
        test = Batch.from_data_list([shock_sample(unseen, sc.shocks, args.horizon) for sc in tests])
        print(f"train: {len(train)} scenarios on {args.train_economies} economies "
              f"({train_batch.num_nodes:,} agent-scenarios); test: {len(tests)} scenarios on an "
              f"unseen economy ({time.perf_counter() - t0:.1f} s)")  # fmt: skip
        return run_model(args, train_batch, test, unseen, len(tests), run)


if __name__ == "__main__":
    main()
