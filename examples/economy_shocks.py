"""Named shock scenarios on a supply-chain economy: losses by tier over time, the most-affected
agents, and the shocked neighbourhood as GraphML.

Generates an economy (:func:`graphattn.economy.economy_data`, 1k agents by default, up to 1M
with ``--agents``), applies named scenarios (:func:`graphattn.economy.scenario`:
``supplier-failure``, the largest supplier of ``--tier`` fails; ``credit-crunch``, the largest
lenders cut credit; ``labour-shortage``; ``random-failures``, a random 1 % of firms fail) and
shocks given as ``--shock AGENT:RELATION:SIZE`` (:func:`~graphattn.economy.custom_scenario`),
simulates ``--sim-steps`` steps (persistent shocks, or one-off with ``--one-off``) and writes:
the aggregate and per-tier output loss over time (CSV, line plots), the distribution of agents'
losses (log-scale histogram), the most-affected agents with their hop distance from the shock
(CSV, printed), and the shocked neighbourhood as GraphML (networkx) for Gephi or similar tools.
The theory behind the simulator is checked by ``economy_shocks_theory.py``; a graph transformer
learns the cascade in ``economy_shocks_learn.py``. 1,000 agents take seconds, so ``--quick``
changes nothing here.

Run::

    python examples/economy_shocks.py
    python examples/economy_shocks.py --agents 1000000 --sim-steps 20
    python examples/economy_shocks.py --scenarios supplier-failure --tier manufacturer \\
        --shock 5:goods:0.5 --one-off

Writes ``scenario_losses.csv``, ``scenario_summary.csv``, ``top_agents.csv``, three figures and
``neighbourhood_<scenario>.graphml`` into ``--out`` (default ``outputs/economy_shocks/``); the
files of an earlier run of this script that this run did not write (a scenario no longer run)
are removed.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import subgraph

from graphattn.economy import (
    DEFAULT_TIERS,
    MAX_STEPS,
    RELATION_NAMES,
    SCENARIOS,
    aggregate_loss,
    custom_scenario,
    economy_data,
    from_data,
    hop_distance,
    scenario,
    simulate,
    tier_losses,
)
from graphattn.experiments import Run, atomic_path, cli, print_table
from graphattn.experiments.plots import finish_axes, lines, panels, series_styles


def parse_shock(text: str) -> tuple[int, str, float]:
    """``AGENT:RELATION:SIZE`` -> ``(agent, relation, size)``: an agent id >= 0, a relation
    name (checked against ``--relations`` after parsing) and a size in (0, 1]."""
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"--shock must be AGENT:RELATION:SIZE, got {text!r}")
    try:
        agent, size = int(parts[0]), float(parts[2])
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"--shock must be AGENT:RELATION:SIZE with an int agent and a float size, got {text!r}"
        ) from err
    if agent < 0 or not 0.0 < size <= 1.0:
        raise argparse.ArgumentTypeError(
            f"--shock needs an agent >= 0 and a size in (0, 1] (0 is no shock), got {text!r}"
        )
    return agent, parts[1], size


def parse_args(argv: list[str]):
    p = cli.ScriptParser(
        doc=__doc__, presets={"full": {}, "quick": {}}, script="examples/economy_shocks.py"
    )
    count = cli.int_at_least(1)
    p.add_run_options("outputs/economy_shocks", seed=0)
    p.add_argument("--agents", type=cli.int_in(10, 1_000_000), default=1000, help="<= 1M")
    p.add_argument("--relations", type=cli.int_in(3, len(RELATION_NAMES)), default=3,
                   help="relation types (>= 3)")  # fmt: skip
    p.add_argument("--sim-steps", type=cli.int_in(1, MAX_STEPS), default=10, help="steps T")
    p.add_argument("--one-off", action="store_true", help="one-off shocks (default persistent)")
    p.add_argument("--scenarios", nargs="*", choices=SCENARIOS, default=list(SCENARIOS),
                   help="named scenarios to run (none: only --shock)")  # fmt: skip
    p.add_argument("--tier", default="supplier", choices=DEFAULT_TIERS[:-1],
                   help="tier of the failing supplier (a firm tier)")  # fmt: skip
    p.add_argument("--shock", type=parse_shock, action="append", default=[],
                   metavar="AGENT:RELATION:SIZE",
                   help="a custom shock (repeatable; together: the scenario 'custom')")  # fmt: skip
    p.add_argument("--top", type=count, default=20, help="most-affected agents listed")
    p.add_argument("--graphml-hops", type=cli.int_at_least(0), default=2, help="hops exported")
    p.add_argument("--graphml-max-nodes", type=count, default=500, help="agents exported at most")
    args = p.parse_args(argv)
    relations = RELATION_NAMES[: args.relations]
    for agent, relation, _ in args.shock:
        if agent >= args.agents or relation not in relations:
            p.error(f"--shock {agent}:{relation}: the agent must be < --agents {args.agents} "
                    f"and the relation one of {list(relations)}")  # fmt: skip
    if not args.scenarios and not args.shock:
        p.error("no scenario: give --scenarios names or --shock AGENT:RELATION:SIZE")
    return args


def run_scenario(data: Data, sc, args) -> dict:
    """Simulate one scenario; its rows for the tables, its losses and its GraphML file."""
    tiers = list(data.tier_names)
    output = simulate(data, sc.shocks, args.sim_steps, persistent=not args.one_off).output
    agg = aggregate_loss(data, output)  # (T + 1,)
    by_tier = tier_losses(data, output)  # (T + 1, tiers)
    cumulative = (1.0 - output).sum(0)  # (N,) output lost over the horizon, in steady-state steps
    final = 1.0 - output[-1]  # (N,)
    hops = hop_distance(data, sc.origin)
    losses = [{"scenario": sc.name, "step": t, "aggregate": float(agg[t]),
               **{name: float(by_tier[t, i]) for i, name in enumerate(tiers)}}
              for t in range(args.sim_steps + 1)]  # fmt: skip
    affected = cumulative > 1e-9
    summary = {
        "scenario": sc.name, "description": sc.description, "agents_shocked": sc.origin.numel(),
        "agents_affected": int(affected.sum()),
        "max_hops": int(hops[affected].max()) if affected.any() else 0,
        "peak_loss": float(agg.max()), "final_loss": float(agg[-1]),
        "cumulative_loss": float(agg.sum()),
    }  # fmt: skip
    order = torch.argsort(-cumulative, stable=True)[: args.top].tolist()
    top = [{"scenario": sc.name, "rank": rank, "agent": agent,
            "tier": tiers[int(data.tier[agent])], "hops": int(hops[agent]),
            "cumulative_loss": float(cumulative[agent]), "final_loss": float(final[agent])}
           for rank, agent in enumerate(order, 1)]  # fmt: skip
    path = write_graphml(data, sc, cumulative, final, hops, args)
    return {"losses": losses, "summary": summary, "top": top, "graphml": path.name,
            "hist": cumulative[affected].numpy(), "aggregate": agg.tolist(),
            "tiers": by_tier}  # fmt: skip


def write_graphml(data, sc, cumulative, final, hops, args) -> Path:
    """The agents within ``--graphml-hops`` downstream hops of the shock (the most affected
    first, at most ``--graphml-max-nodes``), with their losses, as GraphML."""
    import networkx as nx

    near = ((hops >= 0) & (hops <= args.graphml_hops)).nonzero().flatten()
    order = np.lexsort((-cumulative[near].numpy(), hops[near].numpy()))  # by hops, then loss
    keep = near[torch.from_numpy(order[: args.graphml_max_nodes])].sort().values
    edge_index, _, mask = subgraph(keep, data.edge_index, relabel_nodes=True,
                                   num_nodes=data.num_nodes, return_edge_mask=True)  # fmt: skip
    sub = Data(edge_index=edge_index, edge_type=data.edge_type[mask],
               edge_weight=data.edge_weight[mask], tier=data.tier[keep],
               agent_size=data.agent_size[keep], num_nodes=keep.numel())  # fmt: skip
    sub.relation_names, sub.tier_names = list(data.relation_names), list(data.tier_names)
    sub.node_names = keep.tolist()
    g = from_data(sub)
    origin = set(sc.origin.tolist())
    for agent in keep.tolist():
        g.nodes[agent].update({"cumulative_loss": float(cumulative[agent]),
                               "final_loss": float(final[agent]), "hops": int(hops[agent]),
                               "shocked": agent in origin})  # fmt: skip
    g.graph = {"scenario": sc.name, "description": sc.description}
    path = args.out / f"neighbourhood_{sc.name}.graphml"
    with atomic_path(path) as tmp:  # complete or absent, staged with the run's other files
        nx.write_graphml(g, tmp)
    return path


def draw_tiers(ax, name: str, series: dict) -> None:
    for (tier, (x, y)), style in zip(series.items(), series_styles(len(series)), strict=True):
        ax.plot(x, y, markersize=3, label=tier, **style)
    ax.set_title(name, fontsize=9)
    finish_axes(ax, "step", "output loss", legend=7)


def draw_histogram(ax, hists: dict[str, np.ndarray], sim_steps: int) -> None:
    values = [v for v in hists.values() if v.size]
    lo = max(min(float(v.min()) for v in values), 1e-9)
    bins = np.logspace(np.log10(lo), np.log10(max(float(v.max()) for v in values)) + 1e-9, 40)
    for name, v in hists.items():
        ax.hist(v, bins=bins, histtype="step", label=f"{name} ({v.size:,} agents)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"cumulative output loss over {sim_steps} steps (agents with loss > 0)")
    ax.set_ylabel("agents")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    kind = "one-off" if args.one_off else "persistent"
    # the folder holds one run of this script: its files land together at the end (nothing if
    # the run fails), and files of its previous run that this one did not write are removed
    with Run.from_args(args, exclusive=True) as run:
        print(f"{args.agents:,} agents, {args.sim_steps} steps, {kind} shocks; generating the "
              f"economy (seed {args.seed}) ...", flush=True)  # fmt: skip
        t0 = time.perf_counter()
        data = economy_data(args.agents, num_relations=args.relations, seed=args.seed,
                            dtype=torch.float64)  # fmt: skip
        print(f"economy: {data.num_nodes:,} agents, {data.num_edges:,} edges, tiers "
              f"{data.tier_names}, relations {data.relation_names} "
              f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
        scenarios = [scenario(data, name, seed=args.seed,
                              **({"tier": args.tier} if name == "supplier-failure" else {}))
                     for name in args.scenarios]  # fmt: skip
        if args.shock:
            scenarios.append(custom_scenario(data, args.shock))
        steps = list(range(args.sim_steps + 1))
        losses, summary, top, hists, series, tier_series = [], [], [], {}, {}, {}
        for sc in run.progress(scenarios, "scenarios"):
            t1 = time.perf_counter()
            r = run_scenario(data, sc, args)  # one at a time: its [T + 1, N, K] states are freed
            losses += r["losses"]
            summary.append(r["summary"])
            top += r["top"]
            hists[sc.name], series[sc.name] = r["hist"], (steps, r["aggregate"])
            tier_series[sc.name] = {n: (steps, r["tiers"][:, i].tolist())
                                    for i, n in enumerate(data.tier_names)}  # fmt: skip
            print(f"  {sc.name}: {sc.description} ({time.perf_counter() - t1:.1f} s; "
                  f"{r['graphml']})")  # fmt: skip
        run.table("scenario_losses", losses)
        run.table("scenario_summary", summary)
        run.table("top_agents", top)
        print_table(summary, title="aggregate output loss (size-weighted, 1 = everything lost)")
        for name in series:
            rows = [r for r in top if r["scenario"] == name]
            print_table(rows, title=f"the {len(rows)} most-affected agents: {name}")
        lines(args.out / "aggregate_loss.png", series, xlabel="step",
              ylabel="aggregate output loss", footer=run.footer,
              title=f"Aggregate output loss, {kind} shocks ({args.agents:,} agents)")  # fmt: skip
        draws = [partial(draw_tiers, name=name, series=s) for name, s in tier_series.items()]
        panels(args.out / "tier_loss.png", draws, footer=run.footer,
               title=f"Output loss per tier (size-weighted), {kind} shocks")  # fmt: skip
        if any(v.size for v in hists.values()):
            run.figure("loss_distribution", lambda ax: draw_histogram(ax, hists, args.sim_steps),
                       title="Distribution of agents' losses", size=(7.0, 4.5))  # fmt: skip
    return {"summary": summary, "losses": losses, "top": top}


if __name__ == "__main__":
    main()
