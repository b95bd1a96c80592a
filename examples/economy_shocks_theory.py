"""The shock simulator against theory: a closed form, and how aggregate volatility falls with n.

(a) The linear special case (one relation, elasticity 1): the simulator's loss after ``t``
steps against the closed form :math:`(I - (I - \\Sigma) A)^{-1} \\sigma` of a persistent shock
and the Ghosh inverse :math:`(I - A)^{-1} \\sigma` of a one-off shock
(:mod:`graphattn.economy.linear`). (b) Acemoglu, Carvalho, Ozdaglar and Tahbaz-Salehi (2012):
with independent shocks, aggregate volatility falls like ``n^-1/2`` when supplier out-degrees
are light-tailed and like ``n^-(1 - 1/shape)`` for a power law with shape in (1, 2). Volatility
is measured two ways on one-relation economies of growing size: the norm of the influence
vector (:func:`~graphattn.economy.influence_vector`, exact to first order) and the standard
deviation of simulated aggregate losses under independent shocks; the decay exponent is a
log-log fit. (The named scenarios are ``economy_shocks.py``.)

Run::

    python examples/economy_shocks_theory.py --quick
    python examples/economy_shocks_theory.py --out results/economy_shocks   # the recorded run

Writes ``closed_form.csv``, ``volatility.csv``, ``volatility_exponents.csv`` and
``volatility.png`` into ``--out`` (default ``outputs/economy_shocks/``).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from torch_geometric.data import Data

from graphattn.economy import (
    ShockDynamics,
    cumulative_impulse_response,
    economy_data,
    influence_vector,
    long_run_loss,
    random_shocks,
    simulate,
)
from graphattn.experiments import Run, cli, print_table, progress

CLOSED_FORM_STEPS = (0, 1, 2, 3, 5, 10, 20, 30, 50, 100, 200)  # steps shown and recorded
LINEAR = ShockDynamics(elasticity={"goods": 1.0})  # the linear special case (one relation)
PRESETS = {
    "full": dict(vol_agents=[1000, 3000, 10000, 30000, 100000, 300000, 1000000], vol_seeds=16,
                 vol_reps=200, vol_mc_max=100000),
    "quick": dict(vol_agents=[300, 1000, 3000], vol_seeds=4, vol_reps=50, vol_mc_max=3000),
}  # fmt: skip


def parse_shape(text: str) -> float:
    value = math.inf if text.lower() in ("inf", "light") else float(text)
    if not value > 1.0:
        raise argparse.ArgumentTypeError(f"--shapes must be > 1 or 'inf', got {text!r}")
    return value


def parse_args(argv: list[str]):
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="examples/economy_shocks_theory.py")
    count = cli.int_at_least(1)
    p.add_run_options("outputs/economy_shocks", seed=0)
    p.add_argument("--agents", type=cli.int_in(10, 2000), default=1000,
                   help="agents of the closed-form check (a)")  # fmt: skip
    p.add_argument("--shapes", type=parse_shape, nargs="+", default=[math.inf, 1.8, 1.5, 1.2],
                   help="supplier out-degree tails: power-law shapes > 1, or 'light'")  # fmt: skip
    p.add_argument("--vol-agents", type=cli.int_in(50, 10_000_000), nargs="+",
                   help="economy sizes n of the fit (b)")  # fmt: skip
    p.add_argument("--vol-seeds", type=count, help="economies per size and tail")
    p.add_argument("--vol-reps", type=count, help="simulated shock draws per economy")
    p.add_argument("--vol-mc-max", type=cli.int_at_least(0), help="largest n with simulated draws")
    p.add_argument("--vol-shock", type=cli.float_in(0, 0.5, low_open=True), default=0.01,
                   help="mean shock (uniform, iid)")  # fmt: skip
    args = p.parse_args(argv)
    if len(args.vol_agents) < 2:
        p.error("--vol-agents needs at least two sizes >= 50")
    return args


def closed_form_check(n: int, seed: int) -> list[dict]:
    """One relation, elasticity 1: the simulated loss after t steps against the closed forms.

    The economy has many lateral links (cross_link_prob 0.5), so its supply network has cycles
    and the Neumann series does not end: the simulator converges, it does not merely stop.
    """
    data = economy_data(n, num_relations=1, seed=seed, cross_link_prob=0.5, dtype=torch.float64)
    shocks = random_shocks(n, 1, density=0.2, max_size=0.5, seed=seed + 1)
    steps = CLOSED_FORM_STEPS[-1]
    persistent = 1.0 - simulate(data, shocks, steps, dynamics=LINEAR).output
    one_off = 1.0 - simulate(data, shocks, steps, persistent=False, dynamics=LINEAR).output
    one_off = one_off.cumsum(0)
    exact_p, exact_o = long_run_loss(data, shocks), cumulative_impulse_response(data, shocks)
    return [{"step": t, "persistent_error": float((persistent[t] - exact_p).abs().max()),
             "one_off_cumulative_error": float((one_off[t] - exact_o).abs().max()), "agents": n}
            for t in CLOSED_FORM_STEPS]  # fmt: skip


def simulated_volatility(data: Data, reps: int, mean_shock: float, seed: int) -> float:
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
        batch = Data(edge_index=data.edge_index.repeat(1, copies) + offset,
                     edge_type=data.edge_type.repeat(copies),
                     edge_weight=data.edge_weight.repeat(copies), num_nodes=n * copies)  # fmt: skip
        u = torch.rand(n * copies, 1, generator=gen, dtype=torch.float64)
        shocks = 2 * mean_shock * (1 - u)  # (0, 2 * mean_shock]
        out = simulate(batch, shocks, 4, dynamics=LINEAR, relation_names=["goods"]).output[-1]
        totals.append(((1 - out).view(copies, n) @ size) / size.sum())
    return float(torch.cat(totals).std() / (2 * mean_shock / math.sqrt(12)))


def tail_name(shape: float) -> str:
    return "light" if math.isinf(shape) else f"power law {shape:g}"


def volatility(args) -> dict:
    """Volatility of aggregate output per unit shock standard deviation, against n.

    One-relation economies with ``cross_link_prob=0`` (goods flow exactly one tier down), so
    the network is acyclic and the Leontief inverse exists for every economy; the linear
    special case of the simulator (elasticity 1). Influence: ``||v||_2``, exact to first
    order; simulated: the standard deviation of the simulated aggregate loss.
    """
    from scipy import stats

    per: dict = {}
    jobs = [(shape, n, s) for shape in args.shapes for n in args.vol_agents
            for s in range(args.vol_seeds)]  # fmt: skip
    for shape, n, s in progress(jobs, "volatility", enable=not args.no_progress):
        data = economy_data(n, num_relations=1, pareto_shape=shape, cross_link_prob=0.0,
                            seed=10_000 * s + n % 9973, dtype=torch.float64)  # fmt: skip
        mc = math.nan
        if n <= args.vol_mc_max and args.vol_reps > 1:
            mc = simulated_volatility(data, args.vol_reps, args.vol_shock, seed=s)
        out_degree = torch.bincount(data.edge_index[0], minlength=n)
        per.setdefault((shape, n), []).append(
            (float(influence_vector(data).norm()), mc, int(out_degree.max()))
        )
    points, exponents = [], []
    for shape in args.shapes:
        xs, ys, xs_mc, ys_mc = [], [], [], []
        shown = shape if math.isfinite(shape) else "inf"
        for n in args.vol_agents:
            vals = per[(shape, n)]
            inf, mc = np.array([v[0] for v in vals]), np.array([v[1] for v in vals])
            xs += [math.log(n)] * len(inf)
            ys += np.log(inf).tolist()
            simulated = np.isfinite(mc).all()
            if simulated:
                xs_mc += [math.log(n)] * len(mc)
                ys_mc += np.log(mc).tolist()
            points.append({
                "tail": tail_name(shape), "shape": shown, "agents": n, "economies": len(vals),
                "influence_norm": float(np.exp(np.log(inf).mean())),
                "simulated_sd": float(np.exp(np.log(mc).mean())) if simulated else math.nan,
                "simulated_over_influence":
                    float(np.exp(np.log(mc / inf).mean())) if simulated else math.nan,
                "max_out_degree": float(np.mean([v[2] for v in vals])),
            })  # fmt: skip
        fit_inf = stats.linregress(xs, ys)
        fit_mc = stats.linregress(xs_mc, ys_mc) if len(set(xs_mc)) >= 2 else None
        exponents.append({
            "tail": tail_name(shape), "shape": shown,
            "predicted": 0.5 if math.isinf(shape) or shape >= 2 else 1.0 - 1.0 / shape,
            "influence": float(-fit_inf.slope), "influence_se": float(fit_inf.stderr),
            "simulated": float(-fit_mc.slope) if fit_mc else math.nan,
            "simulated_se": float(fit_mc.stderr) if fit_mc else math.nan,
            "n_min": min(args.vol_agents), "n_max": max(args.vol_agents),
            "simulated_n_max": max((n for n in args.vol_agents if n <= args.vol_mc_max), default=0),
        })  # fmt: skip
    return {"points": points, "exponents": exponents}


def draw_volatility(ax, points: list[dict], exponents: list[dict]) -> None:
    for i, e in enumerate(exponents):
        rows = [p for p in points if p["tail"] == e["tail"]]
        n = np.array([p["agents"] for p in rows], dtype=float)
        inf = np.array([p["influence_norm"] for p in rows])
        label = f"{e['tail']}: slope -{e['influence']:.2f} (theory -{e['predicted']:.2f})"
        ax.plot(n, inf, "o-", color=f"C{i}", label=label, markersize=4)
        sim = np.array([p["simulated_sd"] for p in rows], dtype=float)
        ok = np.isfinite(sim)
        if ok.any():  # in the tail's colour; the legend's grey entries say what x means
            ax.plot(n[ok], sim[ok], "x", color=f"C{i}", markersize=7, label="_nolegend_")
        ax.plot(n, inf[0] * (n / n[0]) ** -e["predicted"], ":", color=f"C{i}", linewidth=1,
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


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with Run.from_args(args) as run:
        print("\n== (a) the linear special case against its closed form ==")
        rows = closed_form_check(args.agents, args.seed)
        run.table("closed_form", rows)
        print_table(rows, title="max |simulated - closed form| over agents", fmt=".3g")
        print("\n== (b) aggregate volatility vs n (Acemoglu et al. 2012) ==")
        vol = volatility(args)
        run.table("volatility", vol["points"])
        run.table("volatility_exponents", vol["exponents"])
        print_table(vol["exponents"], title="decay exponent of aggregate volatility", fmt=".3f")
        run.figure("volatility", lambda ax: draw_volatility(ax, vol["points"], vol["exponents"]),
                   title="Aggregate volatility vs economy size", size=(7.0, 5.0))  # fmt: skip
    return {"closed_form": rows, **vol}


if __name__ == "__main__":
    main()
