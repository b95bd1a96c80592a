"""Shocks on a supply-chain economy: named scenarios, cascades by tier, a classic result, and a
graph transformer that learns the cascade.

Three parts (``--only`` picks some, all by default):

1. **scenarios.** Generate an economy (1k agents by default, ``--agents`` up to 1M), apply
   named scenarios from :mod:`graphattn.economy.scenarios` (``supplier-failure``: the largest
   supplier of ``--tier`` fails; ``credit-crunch``: the largest lenders cut credit;
   ``labour-shortage``; ``random-failures``: a random 1 % of firms fail) and shocks given as
   ``--shock AGENT:RELATION:SIZE``, simulate ``--sim-steps`` steps (persistent shocks, or one-off
   with ``--one-off``) and write: the aggregate and per-tier output loss over time (CSV, line
   plots), the distribution of agents' losses (log-scale histogram), the 20 most-affected
   agents with their hop distance from the shock (CSV, printed), and the shocked
   neighbourhood as GraphML (networkx) for Gephi or similar tools.
2. **theory.** (a) The linear special case (one relation, elasticity 1): the simulator's loss
   after ``t`` steps against the closed form :math:`(I - (I - \\Sigma) A)^{-1} \\sigma` of a
   persistent shock and the Ghosh inverse :math:`(I - A)^{-1} \\sigma` of a one-off shock
   (:mod:`graphattn.economy.linear`). (b) Acemoglu, Carvalho, Ozdaglar and Tahbaz-Salehi
   (2012): with independent shocks, aggregate volatility falls like ``n^-1/2`` when supplier
   out-degrees are light-tailed and like ``n^-(1 - 1/shape)`` for a power law with shape in
   (1, 2). Volatility is measured two ways on one-relation economies of growing size: the
   norm of the influence vector (exact first order) and the standard deviation of simulated
   aggregate losses under independent shocks; the decay exponent is a log-log fit.
3. **learn.** A :class:`graphattn.nn.GraphTransformer` is trained on simulated scenarios of
   several economies and predicts every agent's loss in held-out scenarios on an unseen
   economy; predicted vs true per tier, and each customer's attention over its suppliers
   against the true input shares (trained and untrained model).

Run::

    python examples/economy_shocks.py --quick        # everything, small settings
    python examples/economy_shocks.py --only scenarios --agents 1000000 --sim-steps 20
    python examples/economy_shocks.py --only scenarios --scenarios supplier-failure \\
        --tier manufacturer --shock 5:goods:0.5 --one-off
    python examples/economy_shocks.py --out results/economy_shocks   # the recorded run

Writes CSVs, PNGs and ``neighbourhood_<scenario>.graphml`` into ``--out`` (default
``outputs/economy_shocks/``). Every random choice is seeded (``--seed``).
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.utils import subgraph

from graphattn.economy import (
    DEFAULT_TIERS,
    MAX_STEPS,
    RELATION_NAMES,
    SCENARIOS,
    Scenario,
    ShockDynamics,
    aggregate_loss,
    cumulative_impulse_response,
    custom_scenario,
    economy_data,
    from_data,
    hop_distance,
    influence_vector,
    long_run_loss,
    random_shocks,
    scenario,
    simulate,
    tier_losses,
)
from graphattn.experiments import (
    RunFolder,
    atomic_path,
    machine_line,
    normalised_mse,
    print_table,
    process_peak_mb,
    process_seconds,
    progress,
    seed_everything,
    write_table,
)
from graphattn.experiments.cli import ScriptParser, float_in, int_at_least, int_in, output_folder
from graphattn.experiments.files import staged
from graphattn.experiments.plots import figure, lines, panels, series_styles
from graphattn.experiments.train import fit
from graphattn.nn import GraphTransformer, GraphTransformerConfig

PARTS = ("scenarios", "theory", "learn")
CLOSED_FORM_STEPS = (0, 1, 2, 3, 5, 10, 20, 30, 50, 100, 200)  # steps shown and recorded
LINEAR = ShockDynamics(elasticity={"goods": 1.0})  # the linear special case (one relation)
QUICK = dict(
    vol_agents=[300, 1000, 3000],
    vol_seeds=4,
    vol_reps=50,
    vol_mc_max=3000,
    learn_agents=100,
    train_economies=4,
    train_scenarios=5,
    test_scenarios=10,
    steps=60,
)
FULL = dict(
    vol_agents=[1000, 3000, 10000, 30000, 100000, 300000, 1000000],
    vol_seeds=16,
    vol_reps=200,
    vol_mc_max=100000,
    learn_agents=200,
    train_economies=12,
    train_scenarios=6,
    test_scenarios=16,
    steps=300,
)


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


def parse_shape(text: str) -> float:
    value = math.inf if text.lower() in ("inf", "light") else float(text)
    if not value > 1.0:
        raise argparse.ArgumentTypeError(f"--shapes must be > 1 or 'inf', got {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ScriptParser(doc=__doc__)
    p.add_argument("--quick", action="store_true", help="small settings of every part")
    p.add_argument(
        "--only", nargs="+", choices=PARTS, default=list(PARTS), help="run only these parts"
    )
    p.add_argument("--out", type=output_folder, default=Path("outputs/economy_shocks"))
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.add_argument("--threads", type=int_at_least(1), default=1, help="torch CPU threads")
    g = p.add_argument_group("scenarios")
    g.add_argument(
        "--agents", type=int_in(10, 1_000_000), default=1000, help="agents in the economy (<= 1M)"
    )
    g.add_argument(
        "--relations", type=int_in(3, len(RELATION_NAMES)), default=3, help="relation types (>= 3)"
    )
    g.add_argument("--sim-steps", type=int_in(1, MAX_STEPS), default=10, help="simulated steps T")
    g.add_argument("--one-off", action="store_true", help="one-off shocks (default persistent)")
    g.add_argument(
        "--scenarios",
        nargs="*",
        choices=SCENARIOS,
        default=list(SCENARIOS),
        help="named scenarios to run (none: only --shock)",
    )
    g.add_argument(
        "--tier",
        default="supplier",
        choices=DEFAULT_TIERS[:-1],
        help="tier of the failing supplier (a firm tier)",
    )
    g.add_argument(
        "--shock",
        type=parse_shock,
        action="append",
        default=[],
        metavar="AGENT:RELATION:SIZE",
        help="a custom shock (repeat for more; together they form the scenario 'custom')",
    )
    g.add_argument("--top", type=int_at_least(1), default=20, help="most-affected agents listed")
    g.add_argument(
        "--graphml-hops", type=int_at_least(0), default=2, help="hops of the exported area"
    )
    g.add_argument(
        "--graphml-max-nodes", type=int_at_least(1), default=500, help="agents exported at most"
    )
    g = p.add_argument_group("theory")
    g.add_argument(
        "--shapes",
        type=parse_shape,
        nargs="+",
        default=[math.inf, 1.8, 1.5, 1.2],
        help="tails of the supplier out-degrees: power-law shapes in (1, 2], or 'light'",
    )
    g.add_argument(
        "--vol-agents", type=int_in(50, 10_000_000), nargs="+", help="economy sizes n of the fit"
    )
    g.add_argument("--vol-seeds", type=int_at_least(1), help="economies per size and tail")
    g.add_argument("--vol-reps", type=int_at_least(1), help="simulated shock draws per economy")
    g.add_argument("--vol-mc-max", type=int_at_least(0), help="largest n with simulated draws")
    g.add_argument(
        "--vol-shock",
        type=float_in(0, 0.5, low_open=True),
        default=0.01,
        help="mean shock (uniform, iid)",
    )
    g = p.add_argument_group("learn")
    g.add_argument("--learn-agents", type=int_at_least(10), help="agents per economy")
    g.add_argument("--train-economies", type=int_at_least(1), help="training economies")
    g.add_argument("--train-scenarios", type=int_at_least(1), help="scenarios per training economy")
    g.add_argument(
        "--test-scenarios", type=int_at_least(1), help="held-out scenarios, unseen economy"
    )
    g.add_argument("--steps", type=int_at_least(1), help="full-batch optimiser steps")
    g.add_argument(
        "--horizon", type=int_in(1, MAX_STEPS), default=3, help="predict the loss after H steps"
    )
    g.add_argument("--layers", type=int_at_least(1), default=3, help="transformer blocks")
    g.add_argument("--d-model", type=int_at_least(1), default=32)
    g.add_argument("--heads", type=int_at_least(1), default=4)
    g.add_argument("--lr", type=float_in(0, None, low_open=True), default=5e-3)
    g.add_argument(
        "--no-edge-share",
        action="store_true",
        help="do not give the model the log input share as an edge feature",
    )
    g.add_argument(
        "--engine",
        default="scatter",
        help="attention engine ('scatter' is the fastest for these small graphs; 'auto')",
    )
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    relations = RELATION_NAMES[: args.relations]
    for agent, relation, _ in args.shock:
        if agent >= args.agents or relation not in relations:
            p.error(
                f"--shock {agent}:{relation}: the agent must be < --agents {args.agents} and the "
                f"relation one of {list(relations)}"
            )
    if args.d_model % args.heads:
        p.error(f"--heads {args.heads} must divide --d-model {args.d_model}")
    if "scenarios" in args.only and not args.scenarios and not args.shock:
        p.error("no scenario: give --scenarios names or --shock AGENT:RELATION:SIZE")
    if len(args.vol_agents) < 2:
        p.error("--vol-agents needs at least two sizes >= 50")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        # the folder holds one run: its files land together at the end (nothing if the run
        # fails), and files of the previous run that this one did not write are removed
        with RunFolder(args.out, exclusive=True):
            return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    print("economy shocks:", "quick" if args.quick else "full", "settings")
    print(machine_line())
    for key, value in sorted(vars(args).items()):
        print(f"  {key}: {value}")
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    result, timing = {}, []
    for part, run in (("scenarios", run_scenarios), ("theory", run_theory), ("learn", run_learn)):
        if part in args.only:
            t0 = time.perf_counter()
            result[part] = run(args, settings)
            seconds = time.perf_counter() - t0
            timing.append(
                {"part": part, "seconds": round(seconds, 1), "peak_memory_mb": _peak_mb()}
            )
            print(f"({part}: {seconds:.1f} s)")
    total = time.perf_counter() - started
    timing.append({"part": "total", "seconds": round(total, 1), "peak_memory_mb": _peak_mb()})
    process = process_seconds()
    if process is not None:  # imports included
        timing.append(
            {"part": "process", "seconds": round(process, 1), "peak_memory_mb": _peak_mb()}
        )
    write_table(args.out / "run_info.csv", timing, settings=settings)
    print(f"\nwrote {len(list(staged(args.out).iterdir()))} files into {args.out}/")
    print(f"total {total:.1f} s (after imports), peak memory {_peak_mb():.0f} MB")
    return result


def _peak_mb() -> int:
    return round(process_peak_mb())


# ---- 1. scenarios ----------------------------------------------------------------------------
def build_scenarios(data: Data, args: argparse.Namespace) -> list[Scenario]:
    out = []
    for name in args.scenarios:
        kwargs = {"tier": args.tier} if name == "supplier-failure" else {}
        out.append(scenario(data, name, seed=args.seed, **kwargs))
    if args.shock:
        out.append(custom_scenario(data, args.shock))
    return out


def run_scenarios(args: argparse.Namespace, settings: dict) -> dict:
    print(f"\n== 1. scenarios: {args.agents:,} agents, {args.sim_steps} steps, ", end="")
    print("one-off shocks ==" if args.one_off else "persistent shocks ==")
    print(f"generating the economy (seed {args.seed}) ...", flush=True)
    t0 = time.perf_counter()
    data = economy_data(
        args.agents, num_relations=args.relations, seed=args.seed, dtype=torch.float64
    )
    print(f"economy: {data.num_nodes:,} agents, {data.num_edges:,} edges, tiers ", end="")
    print(f"{data.tier_names}, relations {data.relation_names} ({time.perf_counter() - t0:.1f} s)")
    tiers = list(data.tier_names)
    loss_rows, summary, top_rows, hists = [], [], [], {}
    series, tier_series = {}, {}
    for sc in progress(build_scenarios(data, args), "scenarios", enable=not args.no_progress):
        t1 = time.perf_counter()
        r = run_scenario(data, sc, args)  # one at a time: its [T + 1, N, K] states are freed
        loss_rows += r["losses"]
        summary.append(r["summary"])
        top_rows += r["top"]
        hists[sc.name] = r["hist"]
        steps = list(range(args.sim_steps + 1))
        series[sc.name] = (steps, r["aggregate"])
        tier_series[sc.name] = {n: (steps, r["tiers"][:, i].tolist()) for i, n in enumerate(tiers)}
        print(f"  {sc.name}: {sc.description} ({time.perf_counter() - t1:.1f} s; {r['graphml']})")

    out = args.out
    write_table(out / "scenario_losses.csv", loss_rows, settings=settings)
    write_table(out / "scenario_summary.csv", summary, settings=settings)
    write_table(out / "top_agents.csv", top_rows, settings=settings)
    print_table(summary, title="aggregate output loss (size-weighted, 1 = everything lost)")
    for name in series:
        rows = [r for r in top_rows if r["scenario"] == name]
        print_table(rows, title=f"the {len(rows)} most-affected agents: {name}")
    kind = "one-off" if args.one_off else "persistent"
    lines(
        out / "aggregate_loss.png",
        series,
        xlabel="step",
        ylabel="aggregate output loss",
        title=f"Aggregate output loss, {kind} shocks ({args.agents:,} agents)",
        footer=machine_line(),
    )
    panels(
        out / "tier_loss.png",
        [partial(_draw_tiers, name=name, series=s) for name, s in tier_series.items()],
        title=f"Output loss per tier (size-weighted), {kind} shocks",
        footer=machine_line(),
    )
    loss_histogram(out / "loss_distribution.png", hists, args)
    return {"summary": summary, "losses": loss_rows, "top": top_rows}


def run_scenario(data: Data, sc: Scenario, args: argparse.Namespace) -> dict:
    """Simulate one scenario; its rows for the tables, its losses and its GraphML file."""
    tiers = list(data.tier_names)
    res = simulate(data, sc.shocks, args.sim_steps, persistent=not args.one_off)
    output = res.output  # (T + 1, N)
    del res  # the [T + 1, N, K] supply levels are not needed any more
    agg = aggregate_loss(data, output)  # (T + 1,)
    by_tier = tier_losses(data, output)  # (T + 1, tiers)
    cumulative = (1.0 - output).sum(0)  # (N,) output lost over the horizon, in steady-state steps
    final = 1.0 - output[-1]  # (N,)
    hops = hop_distance(data, sc.origin)
    losses = []
    for t in range(args.sim_steps + 1):
        row = {"scenario": sc.name, "step": t, "aggregate": float(agg[t])}
        row.update({name: float(by_tier[t, i]) for i, name in enumerate(tiers)})
        losses.append(row)
    affected = cumulative > 1e-9
    summary = {
        "scenario": sc.name,
        "description": sc.description,
        "agents_shocked": sc.origin.numel(),
        "agents_affected": int(affected.sum()),
        "max_hops": int(hops[affected].max()) if affected.any() else 0,
        "peak_loss": float(agg.max()),
        "final_loss": float(agg[-1]),
        "cumulative_loss": float(agg.sum()),
    }
    top = []
    for rank, agent in enumerate(torch.argsort(-cumulative, stable=True)[: args.top].tolist(), 1):
        top.append(
            {
                "scenario": sc.name,
                "rank": rank,
                "agent": agent,
                "tier": tiers[int(data.tier[agent])],
                "hops": int(hops[agent]),
                "cumulative_loss": float(cumulative[agent]),
                "final_loss": float(final[agent]),
            }
        )
    path = write_graphml(data, sc, cumulative, final, hops, args)
    return {
        "losses": losses,
        "summary": summary,
        "top": top,
        "hist": cumulative[affected].numpy(),
        "aggregate": agg.tolist(),
        "tiers": by_tier,
        "graphml": path.name,
    }


def _draw_tiers(ax, name: str, series: dict) -> None:
    for (tier, (x, y)), style in zip(series.items(), series_styles(len(series)), strict=True):
        ax.plot(x, y, markersize=3, label=tier, **style)
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylabel("output loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def write_graphml(data, sc, cumulative, final, hops, args) -> Path:
    """The agents within ``--graphml-hops`` downstream hops of the shock (the most affected
    first, at most ``--graphml-max-nodes``), with their losses, as GraphML."""
    import networkx as nx

    near = ((hops >= 0) & (hops <= args.graphml_hops)).nonzero().flatten()
    order = np.lexsort((-cumulative[near].numpy(), hops[near].numpy()))  # by hops, then loss
    keep = near[torch.from_numpy(order[: args.graphml_max_nodes])].sort().values
    edge_index, _, mask = subgraph(
        keep, data.edge_index, relabel_nodes=True, num_nodes=data.num_nodes, return_edge_mask=True
    )
    sub = Data(
        edge_index=edge_index,
        edge_type=data.edge_type[mask],
        edge_weight=data.edge_weight[mask],
        tier=data.tier[keep],
        agent_size=data.agent_size[keep],
        num_nodes=keep.numel(),
    )
    sub.relation_names, sub.tier_names = list(data.relation_names), list(data.tier_names)
    sub.node_names = keep.tolist()
    g = from_data(sub)
    origin = set(sc.origin.tolist())
    for agent in keep.tolist():
        g.nodes[agent].update(
            {
                "cumulative_loss": float(cumulative[agent]),
                "final_loss": float(final[agent]),
                "hops": int(hops[agent]),
                "shocked": agent in origin,
            }
        )
    g.graph = {"scenario": sc.name, "description": sc.description}
    path = args.out / f"neighbourhood_{sc.name}.graphml"
    with atomic_path(path) as tmp:  # complete or absent, staged with the run's other files
        nx.write_graphml(g, tmp)
    return path


def loss_histogram(path: Path, hists: dict[str, np.ndarray], args: argparse.Namespace) -> None:
    values = [v for v in hists.values() if v.size]
    if not values:
        return
    lo = max(min(float(v.min()) for v in values), 1e-9)
    hi = max(float(v.max()) for v in values)
    bins = np.logspace(np.log10(lo), np.log10(hi) + 1e-9, 40)

    def draw(ax):
        for name, v in hists.items():
            ax.hist(v, bins=bins, histtype="step", label=f"{name} ({v.size:,} agents)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"cumulative output loss over {args.sim_steps} steps (agents with loss > 0)")
        ax.set_ylabel("agents")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)

    figure(
        path, draw, title="Distribution of agents' losses", size=(7.0, 4.5), footer=machine_line()
    )


# ---- 2. theory -------------------------------------------------------------------------------
def run_theory(args: argparse.Namespace, settings: dict) -> dict:
    print("\n== 2a. the linear special case against its closed form ==")
    rows = closed_form_check(args)
    write_table(args.out / "closed_form.csv", rows, settings=settings)
    print_table(rows, title="max |simulated - closed form| over agents", fmt=".3g")
    print("\n== 2b. aggregate volatility vs n (Acemoglu et al. 2012) ==")
    vol = volatility(args)
    write_table(args.out / "volatility.csv", vol["points"], settings=settings)
    write_table(args.out / "volatility_exponents.csv", vol["exponents"], settings=settings)
    print_table(vol["exponents"], title="decay exponent of aggregate volatility", fmt=".3f")
    volatility_figure(args.out / "volatility.png", vol["points"], vol["exponents"])
    return {"closed_form": rows, **vol}


def closed_form_check(args: argparse.Namespace) -> list[dict]:
    """One relation, elasticity 1: the simulated loss after t steps against the closed forms.

    The economy has many lateral links (cross_link_prob 0.5), so its supply network has cycles
    and the Neumann series does not end: the simulator converges, it does not merely stop.
    """
    n = min(args.agents, 2000)
    data = economy_data(
        n, num_relations=1, seed=args.seed, cross_link_prob=0.5, dtype=torch.float64
    )
    shocks = random_shocks(n, 1, density=0.2, max_size=0.5, seed=args.seed + 1)
    steps = CLOSED_FORM_STEPS[-1]
    persistent = 1.0 - simulate(data, shocks, steps, dynamics=LINEAR).output
    one_off = (
        1.0 - simulate(data, shocks, steps, persistent=False, dynamics=LINEAR).output
    ).cumsum(0)
    exact_p, exact_o = long_run_loss(data, shocks), cumulative_impulse_response(data, shocks)
    return [
        {
            "step": t,
            "persistent_error": float((persistent[t] - exact_p).abs().max()),
            "one_off_cumulative_error": float((one_off[t] - exact_o).abs().max()),
            "agents": n,
        }
        for t in CLOSED_FORM_STEPS
    ]


def _tail_name(shape: float) -> str:
    return "light" if math.isinf(shape) else f"power law {shape:g}"


def _predicted(shape: float) -> float:
    return 0.5 if math.isinf(shape) or shape >= 2 else 1.0 - 1.0 / shape


def _mc_volatility(data: Data, reps: int, mean_shock: float, seed: int) -> float:
    """Standard deviation of the simulated aggregate loss over ``reps`` draws of iid uniform
    shocks in (0, 2 * mean_shock], divided by the shocks' standard deviation. The draws run as
    one batch of copies of the economy; 4 steps reach the long run on the acyclic economy."""
    n = data.num_nodes
    chunk = max(1, min(reps, 2_000_000 // n))
    gen = torch.Generator().manual_seed(seed)
    size = data.agent_size.double()
    totals = []
    for start in range(0, reps, chunk):
        copies = min(chunk, reps - start)
        offset = torch.arange(copies).repeat_interleave(data.num_edges) * n
        batch = Data(
            edge_index=data.edge_index.repeat(1, copies) + offset,
            edge_type=data.edge_type.repeat(copies),
            edge_weight=data.edge_weight.repeat(copies),
            num_nodes=n * copies,
        )
        u = torch.rand(n * copies, 1, generator=gen, dtype=torch.float64)
        shocks = 2 * mean_shock * (1 - u)  # (0, 2 * mean_shock]
        out = simulate(batch, shocks, 4, dynamics=LINEAR, relation_names=["goods"]).output[
            -1
        ]  # (copies * n,)
        totals.append(((1 - out).view(copies, n) @ size) / size.sum())
    sd_shock = 2 * mean_shock / math.sqrt(12)
    return float(torch.cat(totals).std() / sd_shock)


def volatility(args: argparse.Namespace) -> dict:
    """Volatility of aggregate output per unit shock standard deviation, against n.

    One-relation economies with ``cross_link_prob=0`` (goods flow exactly one tier down), so
    the network is acyclic and the Leontief inverse exists for every economy; the linear
    special case of the simulator (elasticity 1). Influence: ``||v||_2``, exact to first
    order; simulated: the standard deviation of the simulated aggregate loss.
    """
    from scipy import stats

    points, exponents = [], []
    jobs = [
        (shape, n, s)
        for shape in args.shapes
        for n in args.vol_agents
        for s in range(args.vol_seeds)
    ]
    bar = progress(jobs, "volatility", enable=not args.no_progress)
    per = {}
    for shape, n, s in bar:
        data = economy_data(
            n,
            num_relations=1,
            pareto_shape=shape,
            cross_link_prob=0.0,
            seed=10_000 * s + n % 9973,
            dtype=torch.float64,
        )
        v = influence_vector(data)
        mc = (
            _mc_volatility(data, args.vol_reps, args.vol_shock, seed=s)
            if n <= args.vol_mc_max and args.vol_reps > 1
            else math.nan
        )
        out_degree = torch.bincount(data.edge_index[0], minlength=n)
        per.setdefault((shape, n), []).append((float(v.norm()), mc, int(out_degree.max())))
    for shape in args.shapes:
        xs, ys, xs_mc, ys_mc = [], [], [], []
        for n in args.vol_agents:
            vals = per[(shape, n)]
            inf = np.array([v[0] for v in vals])
            mc = np.array([v[1] for v in vals])
            xs += [math.log(n)] * len(inf)
            ys += np.log(inf).tolist()
            if np.isfinite(mc).all():
                xs_mc += [math.log(n)] * len(mc)
                ys_mc += np.log(mc).tolist()
            points.append(
                {
                    "tail": _tail_name(shape),
                    "shape": shape if math.isfinite(shape) else "inf",
                    "agents": n,
                    "economies": len(vals),
                    "influence_norm": float(np.exp(np.log(inf).mean())),
                    "simulated_sd": float(np.exp(np.log(mc).mean()))
                    if np.isfinite(mc).all()
                    else math.nan,
                    "simulated_over_influence": float(np.exp(np.log(mc / inf).mean()))
                    if np.isfinite(mc).all()
                    else math.nan,
                    "max_out_degree": float(np.mean([v[2] for v in vals])),
                }
            )
        fit_inf = stats.linregress(xs, ys)
        fit_mc = stats.linregress(xs_mc, ys_mc) if len(set(xs_mc)) >= 2 else None
        exponents.append(
            {
                "tail": _tail_name(shape),
                "shape": shape if math.isfinite(shape) else "inf",
                "predicted": _predicted(shape),
                "influence": float(-fit_inf.slope),
                "influence_se": float(fit_inf.stderr),
                "simulated": float(-fit_mc.slope) if fit_mc else math.nan,
                "simulated_se": float(fit_mc.stderr) if fit_mc else math.nan,
                "n_min": min(args.vol_agents),
                "n_max": max(args.vol_agents),
                "simulated_n_max": max(
                    (n for n in args.vol_agents if n <= args.vol_mc_max), default=0
                ),
            }
        )
    return {"points": points, "exponents": exponents}


def volatility_figure(path: Path, points: list[dict], exponents: list[dict]) -> None:
    def draw(ax):
        for i, e in enumerate(exponents):
            rows = [p for p in points if p["tail"] == e["tail"]]
            n = np.array([p["agents"] for p in rows], dtype=float)
            inf = np.array([p["influence_norm"] for p in rows])
            colour = f"C{i}"
            label = f"{e['tail']}: slope -{e['influence']:.2f} (theory -{e['predicted']:.2f})"
            ax.plot(n, inf, "o-", color=colour, label=label, markersize=4)
            sim = np.array([p["simulated_sd"] for p in rows], dtype=float)
            ok = np.isfinite(sim)
            if ok.any():  # in the tail's colour; the legend's grey entries say what x means
                ax.plot(n[ok], sim[ok], "x", color=colour, markersize=7, label="_nolegend_")
            ax.plot(n, inf[0] * (n / n[0]) ** -e["predicted"], ":", color=colour, linewidth=1,
                    label="_nolegend_")  # fmt: skip
        ax.plot([], [], "o-", color="0.4", markersize=4, label="influence vector norm")
        ax.plot([], [], "x", color="0.4", markersize=7, label="simulated aggregate s.d.")
        ax.plot([], [], ":", color="0.4", linewidth=1, label="theory's slope")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("agents n")
        ax.set_ylabel("aggregate volatility / shock s.d.")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, title="colour: the tail of supplier degrees", title_fontsize=7)

    figure(
        path,
        draw,
        title="Aggregate volatility vs economy size",
        size=(7.0, 5.0),
        footer=machine_line(),
    )


# ---- 3. learn the cascade --------------------------------------------------------------------
def scenario_mix(data: Data, count: int, seed: int) -> list[Scenario]:
    """``count`` scenarios of every kind with random parameters (seeded)."""
    rng = np.random.default_rng(seed)
    firm_tiers = list(data.tier_names[:-1])
    out = []
    for i in range(count):
        kind = (
            "supplier-failure",
            "credit-crunch",
            "labour-shortage",
            "random-failures",
            "random",
        )[i % 5]
        s = int(rng.integers(1 << 30))
        if kind == "supplier-failure":
            out.append(
                scenario(
                    data,
                    kind,
                    tier=firm_tiers[int(rng.integers(len(firm_tiers)))],
                    severity=float(rng.uniform(0.3, 1.0)),
                )
            )
        elif kind == "credit-crunch":
            out.append(
                scenario(
                    data,
                    kind,
                    share=float(rng.uniform(0.01, 0.1)),
                    severity=float(rng.uniform(0.2, 0.9)),
                )
            )
        elif kind == "labour-shortage":
            out.append(
                scenario(
                    data,
                    kind,
                    share=float(rng.uniform(0.05, 0.5)),
                    severity=float(rng.uniform(0.2, 0.9)),
                    seed=s,
                )
            )
        elif kind == "random-failures":
            out.append(
                scenario(
                    data,
                    kind,
                    share=float(rng.uniform(0.01, 0.05)),
                    severity=float(rng.uniform(0.5, 1.0)),
                    seed=s,
                )
            )
        else:
            k = len(data.relation_names)
            shocks = random_shocks(data.num_nodes, k, density=0.05, max_size=0.8, seed=s)
            origin = (shocks > 0).any(1).nonzero().flatten()
            out.append(Scenario("random", "random sparse shocks", shocks, origin))
    return out


def _sample(data: Data, sc: Scenario, horizon: int) -> Data:
    res = simulate(data, sc.shocks, horizon)
    return Data(
        x=torch.cat([data.x, sc.shocks], dim=1).float(),  # (N, tiers + 1 + K)
        edge_index=data.edge_index,
        edge_type=data.edge_type,
        edge_attr=data.edge_weight.log().float().unsqueeze(1),  # log input share
        y=(1.0 - res.output[horizon]).float(),
        tier=data.tier,
        num_nodes=data.num_nodes,
    )


def _forward(model: GraphTransformer, batch: Data, **kwargs):
    return model(
        batch.x,
        batch.edge_index,
        edge_attr=batch.edge_attr if model.config.edge_dim else None,
        edge_type=batch.edge_type,
        batch=batch.batch,
        **kwargs,
    )


def attention_vs_shares(model: GraphTransformer, test: Data, econ: Data, copies: int) -> list[dict]:
    """Each customer's attention over its suppliers of one relation (renormalised over them)
    against the true input shares, averaged over the test scenarios (copies of one economy)."""
    with torch.no_grad():
        att = _forward(model, test, return_attention=True).attention
    e0 = econ.num_edges
    num_e = test.num_edges
    dst, rel = econ.edge_index[1], econ.edge_type
    group = dst * len(econ.relation_names) + rel  # (customer, relation) of every edge
    groups, inverse = torch.unique(group, return_inverse=True)
    size = torch.bincount(inverse)
    multi = size[inverse] >= 2  # customers with at least two suppliers on the relation
    share = econ.edge_weight.double()
    share = (
        share / torch.zeros(len(groups), dtype=torch.float64).index_add_(0, inverse, share)[inverse]
    )
    rows = []
    for layer, a in enumerate(att, start=1):
        # the layer appends one self-loop per node after the caller's edges
        assert torch.equal(a.edge_index[:, :num_e], test.edge_index)
        w = a.weights[:num_e].double().view(copies, e0, -1).mean(0)  # (E0, H), over scenarios
        for head in ["mean", *range(w.shape[1])]:
            wh = w.mean(1) if head == "mean" else w[:, head]
            rows.append(
                {"layer": layer, "head": head, **_compare(wh, share, inverse, len(groups), multi)}
            )
    return rows


def _compare(att: Tensor, share: Tensor, inverse: Tensor, num_groups: int, multi: Tensor) -> dict:
    norm = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, inverse, att)
    p_att = att / norm[inverse]
    count = torch.bincount(inverse, minlength=num_groups).double()
    uniform = 1.0 / count[inverse]
    kl = torch.zeros(num_groups, dtype=torch.float64).index_add_(
        0, inverse, share * (share / p_att).log()
    )
    kl_u = torch.zeros(num_groups, dtype=torch.float64).index_add_(
        0, inverse, share * (share / uniform).log()
    )

    # Pearson correlation per group
    def centred(v):
        mean = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, inverse, v) / count
        return v - mean[inverse]

    a_c, s_c = centred(p_att), centred(share)
    cov = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, inverse, a_c * s_c)
    va = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, inverse, a_c**2)
    vs = torch.zeros(num_groups, dtype=torch.float64).index_add_(0, inverse, s_c**2)
    ok = torch.zeros(num_groups, dtype=torch.bool).index_fill_(0, inverse[multi], True)
    ok &= (va > 1e-18) & (vs > 1e-18)
    corr = cov[ok] / (va[ok] * vs[ok]).sqrt()
    return {
        "customers": int(ok.sum()),
        "corr_mean": float(corr.mean()),
        "corr_median": float(corr.median()),
        "kl": float(kl[ok].mean()),
        "kl_uniform": float(kl_u[ok].mean()),
        "closer_than_uniform": float((kl[ok] < kl_u[ok]).double().mean()),
    }


def run_learn(args: argparse.Namespace, settings: dict) -> dict:
    share = "without" if args.no_edge_share else "with"
    print(f"\n== 3. learn the cascade: loss after {args.horizon} steps, persistent shocks, "
          f"{args.layers} layers, {share} the input share as edge feature ==")  # fmt: skip
    t0 = time.perf_counter()
    k = args.relations
    train = []
    for e in range(args.train_economies):
        econ = economy_data(args.learn_agents, num_relations=k, seed=1000 + e, dtype=torch.float64)
        train += [
            _sample(econ, sc, args.horizon)
            for sc in scenario_mix(econ, args.train_scenarios, seed=e)
        ]
    unseen = economy_data(args.learn_agents, num_relations=k, seed=999_999, dtype=torch.float64)
    test_sc = scenario_mix(unseen, args.test_scenarios, seed=123_456)
    train_batch = Batch.from_data_list(train)
    test_batch = Batch.from_data_list([_sample(unseen, sc, args.horizon) for sc in test_sc])
    print(
        f"train: {len(train)} scenarios on {args.train_economies} economies "
        f"({train_batch.num_nodes:,} agent-scenarios); test: {len(test_sc)} scenarios on an "
        f"unseen economy ({time.perf_counter() - t0:.1f} s)"
    )

    seed_everything(args.seed)
    config = GraphTransformerConfig(
        in_channels=train_batch.x.size(1),
        channels=args.d_model,
        heads=args.heads,
        num_layers=args.layers,
        ffn_ratio=2,
        edge_dim=None if args.no_edge_share else 1,
        num_relations=k,
        engine=args.engine,
    )
    model = GraphTransformer(config)
    untrained = copy.deepcopy(model)

    def loss_fn(m, batch):
        return torch.nn.functional.mse_loss(_forward(m, batch).node.squeeze(-1), batch.y)

    t1 = time.perf_counter()
    history = fit(
        model,
        loss_fn,
        lambda epoch: [train_batch],
        epochs=args.steps,
        lr=args.lr,
        desc="train",
        show_progress=not args.no_progress,
    )
    print(
        f"trained {args.steps} steps in {time.perf_counter() - t1:.1f} s; "
        f"train MSE {history[0]:.2e} -> {history[-1]:.2e}"
    )

    with torch.no_grad():
        pred = _forward(model, test_batch).node.squeeze(-1)
    true = test_batch.y
    tier_rows = []
    for t, name in [(-1, "all"), *enumerate(unseen.tier_names)]:
        m = torch.ones_like(true, dtype=torch.bool) if t < 0 else test_batch.tier == t
        p, y = pred[m], true[m]
        corr = float(torch.corrcoef(torch.stack([p, y]))[0, 1]) if y.std() > 0 else math.nan
        tier_rows.append(
            {
                "tier": name,
                "agents": int(m.sum()),
                "true_mean": float(y.mean()),
                "pred_mean": float(p.mean()),
                "nmse": normalised_mse(p, y) if y.var() > 0 else math.nan,
                "corr": corr,
            }
        )
    write_table(args.out / "learn_tiers.csv", tier_rows, settings=settings)
    print_table(
        tier_rows, title="held-out scenarios, unseen economy: predicted vs true loss", fmt=".3f"
    )
    prediction_figure(
        args.out / "learn_pred_vs_true.png", pred, true, test_batch.tier, unseen.tier_names
    )

    att_rows = []
    for label, m in (("trained", model), ("untrained", untrained)):
        for row in attention_vs_shares(m, test_batch, unseen, len(test_sc)):
            att_rows.append({"model": label, **row})
    write_table(args.out / "attention_vs_shares.csv", att_rows, settings=settings)
    print_table(
        [r for r in att_rows if r["head"] == "mean"],
        title="customer attention over suppliers vs true input shares (head mean)",
        fmt=".3f",
    )
    nmse = tier_rows[0]["nmse"]
    caveat = f"{args.steps} steps on {len(train)} scenarios; held-out normalised MSE {nmse:.2f}" + (
        " (quick setting: the model has barely learned, so its attention says little;"
        " the full setting is the run to read)"
        if args.quick
        else ""
    )
    attention_figure(
        args.out / "attention_vs_shares.png",
        {"trained": model, "untrained": untrained},
        test_batch,
        unseen,
        len(test_sc),
        caveat,
    )
    return {"tiers": tier_rows, "attention": att_rows, "history": history}


def prediction_figure(path: Path, pred: Tensor, true: Tensor, tier: Tensor, names) -> None:
    hi = float(max(true.max(), pred.max(), 1e-6))

    def draw(ax, t: int, name: str) -> None:
        m = tier == t
        ax.scatter(true[m].numpy(), pred[m].numpy(), s=4, alpha=0.4, color=f"C{t}",
                   label="agent in a scenario")  # fmt: skip
        ax.plot([0, hi], [0, hi], "k:", linewidth=1, label="predicted = true")
        ax.legend(fontsize=7, markerscale=2)
        ax.set_title(f"{name} ({int(m.sum()):,} agent-scenarios)", fontsize=9)
        ax.set_xlabel("true loss")
        ax.set_ylabel("predicted loss")
        ax.grid(alpha=0.3)

    draws = [partial(draw, t=t, name=name) for t, name in enumerate(names)]
    panels(
        path,
        draws,
        ncols=3,
        title="Held-out scenarios on an unseen economy, per tier",
        footer=machine_line(),
    )


def attention_figure(
    path: Path, models: dict, test: Data, econ: Data, copies: int, caveat: str
) -> None:
    """Every layer's attention (head mean, renormalised over each customer's suppliers of one
    relation) against the true input shares: one row of panels per layer, the trained model
    beside the untrained one; ``caveat`` (the setting's limits) goes under the title."""
    rows = []
    share = econ.edge_weight.double()
    group = econ.edge_index[1] * len(econ.relation_names) + econ.edge_type
    _, inverse = torch.unique(group, return_inverse=True)
    multi = torch.bincount(inverse)[inverse] >= 2
    share = (
        share
        / torch.zeros(int(inverse.max()) + 1, dtype=torch.float64).index_add_(0, inverse, share)[
            inverse
        ]
    )
    for label, model in models.items():
        with torch.no_grad():
            attention = _forward(model, test, return_attention=True).attention
        for layer, att in enumerate(attention, start=1):
            w = att.weights[: test.num_edges].double().view(copies, econ.num_edges, -1)
            w = w.mean((0, 2))
            norm = torch.zeros(int(inverse.max()) + 1, dtype=torch.float64).index_add_(
                0, inverse, w
            )
            rows.append((layer, label, (w / norm[inverse])[multi]))
    rows.sort(key=lambda r: (r[0], list(models).index(r[1])))
    styles = series_styles(len(econ.relation_names))

    def draw(ax, layer: int, label: str, p: Tensor) -> None:
        x = share[multi]
        corr = float(torch.corrcoef(torch.stack([x, p]))[0, 1])
        for r, (name, style) in enumerate(zip(econ.relation_names, styles, strict=True)):
            m = econ.edge_type[multi] == r
            ax.scatter(x[m].numpy(), p[m].numpy(), s=5, alpha=0.4, label=name, **style)
        ax.plot([0, 1], [0, 1], "k:", linewidth=1, label="attention = share")
        ax.set_title(f"layer {layer}, {label} (correlation {corr:.2f})", fontsize=9)
        ax.set_xlabel("true input share")
        ax.set_ylabel("attention (head mean)")
        ax.legend(fontsize=6, markerscale=2)
        ax.grid(alpha=0.3)

    panels(
        path,
        [partial(draw, layer=layer, label=label, p=p) for layer, label, p in rows],
        ncols=len(models),
        title=f"Customers' attention over suppliers vs input shares\n{caveat}",
        panel_size=(4.5, 3.6),
        footer=machine_line(),
    )


if __name__ == "__main__":
    main()
