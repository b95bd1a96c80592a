"""Claim (a): the attention output's variance at initialisation does not depend on the head count.

``MultiHeadAttentionConv(d, d, heads)`` at initialisation, full attention over ``N`` tokens
``x ~ N(0, 1)``, for 1..16 heads at a fixed ``d_model``: the variance of the output over fresh
layers and inputs (seeds). :func:`variance_verdict` states the verdict. Writes
``a_variance.csv``, ``variance_verdict.csv`` and ``a_variance.png``.

    python examples/claims/transformer_variance.py --out results/transformer_claims/full
    python examples/claims/transformer_variance.py --quick
"""

from __future__ import annotations

import torch

from graphattn import FullGraph, MultiHeadAttentionConv
from graphattn.experiments import Run, Verdict, cli, progress
from graphattn.experiments.plots import finish_axes

CLAIM = "(a) the attention output's variance at init does not depend on the head count"
HEADS = (1, 2, 4, 8, 16)
PRESETS = {"full": dict(num_nodes=256, seeds=20), "quick": dict(num_nodes=64, seeds=5)}


def measure_output_variance(heads_list=HEADS, d_model=256, num_nodes=256, seeds=20) -> list[dict]:
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
        rows.append({
            "heads": heads, "head_dim": d_model // heads, "output_var_mean": t.mean().item(),
            "output_var_std": t.std().item(), "seeds": seeds,
        })  # fmt: skip
    return rows


def variance_verdict(rows: list[dict]) -> Verdict:
    """Rule: confirmed when the largest mean output variance over the head counts is within
    10% of the smallest, partly within 50%, refuted otherwise."""
    values = [r["output_var_mean"] for r in rows]
    ratio = max(values) / min(values)
    heads = " / ".join(str(r["heads"]) for r in rows)
    number = (
        f"Var(out) {min(values):.4g} .. {max(values):.4g} for {heads} heads: max/min {ratio:.3f}"
    )
    if ratio <= 1.1:
        return Verdict(number, "confirmed", "the spread over head counts is within 10%")
    if ratio <= 1.5:
        return Verdict(number, "partly", "the variance drifts with the head count by 10-50%")
    return Verdict(number, "refuted", "the variance depends on the head count")


def draw(ax, rows: list[dict]) -> None:
    heads, mean = [r["heads"] for r in rows], [r["output_var_mean"] for r in rows]
    ax.errorbar(heads, mean, [r["output_var_std"] for r in rows], marker="o", capsize=3,
                label="mean over seeds, bars: +- 1 s.d.")  # fmt: skip
    ax.set_ylim(bottom=0)
    finish_axes(ax, "heads", "Var(output)", legend="medium", xscale=("log", 2))


def main(argv: list[str] | None = None) -> Verdict:
    p = cli.ScriptParser(
        doc=__doc__, presets=PRESETS, script="examples/claims/transformer_variance.py"
    )
    count = cli.int_at_least(1)
    p.add_run_options("outputs/transformer_claims", threads=None, progress=False)
    p.add_argument("--d-model", type=count, default=256)
    p.add_argument("--nodes", dest="num_nodes", type=count, help="tokens N")
    p.add_argument("--seeds", type=cli.int_at_least(2))
    args = p.parse_args(argv)
    settings = {"quick": args.preset == "quick", "d_model": args.d_model,
                "num_nodes": args.num_nodes, "seeds": args.seeds}  # fmt: skip
    with Run.from_args(args, settings=settings) as run:
        print(f"{CLAIM}; graph: FullGraph; x ~ N(0, 1)")
        rows = measure_output_variance(HEADS, args.d_model, args.num_nodes, args.seeds)
        run.table("a_variance", rows, title="(a) output variance at init")
        spread = max(r["output_var_mean"] for r in rows) / min(r["output_var_mean"] for r in rows)
        print(f"max/min variance over head counts: {spread:.3f}")
        title = f"(a) output variance at init, d_model={args.d_model}"
        run.figure("a_variance", lambda ax: draw(ax, rows), title=title)
        return run.verdict("variance", CLAIM, variance_verdict(rows))


if __name__ == "__main__":
    main()
