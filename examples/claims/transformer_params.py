"""Claim (b): the attention parameter count does not depend on the head count.

``MultiHeadAttentionConv(d, d, heads)`` and the transformer block around it for 1..16 heads at
a fixed ``d_model``: their parameter counts, against ``4 (d^2 + d)`` (four ``d x d`` projections
with biases). :func:`params_verdict` states the verdict. The count is exact, so ``--quick``
changes nothing. Writes ``b_params.csv``, ``params_verdict.csv`` and ``b_params.png``.

    python examples/claims/transformer_params.py
"""

from __future__ import annotations

from graphattn import MultiHeadAttentionConv
from graphattn.experiments import Run, Verdict, cli
from graphattn.experiments.plots import finish_axes
from graphattn.nn import GraphTransformerBlock

CLAIM = "(b) the attention parameter count does not depend on the head count"
HEADS = (1, 2, 4, 8, 16)


def attention_param_counts(heads_list=HEADS, d_model: int = 256) -> list[dict]:
    """Parameters of the attention layer and of the block, per head count."""
    rows = []
    for heads in heads_list:
        conv = MultiHeadAttentionConv(d_model, d_model, heads)
        block = GraphTransformerBlock(d_model, heads)
        rows.append({
            "heads": heads, "head_dim": d_model // heads,
            "attention_params": sum(p.numel() for p in conv.parameters()),
            "formula_4(d^2+d)": 4 * (d_model**2 + d_model),
            "block_params": sum(p.numel() for p in block.parameters()),
        })  # fmt: skip
    return rows


def params_verdict(rows: list[dict]) -> Verdict:
    """Rule: confirmed when every head count has exactly 4(d^2 + d) attention parameters."""
    counts = {r["attention_params"] for r in rows}
    formula = rows[0]["formula_4(d^2+d)"]
    shown = ", ".join(f"{c:,}" for c in sorted(counts))
    number = f"{shown} for heads {rows[0]['heads']}..{rows[-1]['heads']}"
    if counts == {formula}:
        return Verdict(number, "confirmed", f"= 4(d^2 + d) = {formula:,} for every head count")
    return Verdict(number, "refuted", "the count changes with the head count")


def draw(ax, rows: list[dict]) -> None:
    heads = [r["heads"] for r in rows]
    ax.plot(heads, [r["attention_params"] for r in rows], "o-", label="attention")
    ax.plot(heads, [r["block_params"] for r in rows], "s-", label="block")
    ax.set_ylim(bottom=0)
    finish_axes(ax, "heads", "parameters", legend="medium", xscale=("log", 2))


def main(argv: list[str] | None = None) -> Verdict:
    p = cli.ScriptParser(
        doc=__doc__,
        presets={"full": {}, "quick": {}},
        script="examples/claims/transformer_params.py",
    )
    count = cli.int_at_least(1)
    p.add_run_options("outputs/transformer_claims", threads=None, progress=False)
    p.add_argument("--d-model", type=count, default=256)
    args = p.parse_args(argv)
    settings = {"quick": args.preset == "quick", "d_model": args.d_model}
    with Run.from_args(args, settings=settings) as run:
        print(f"{CLAIM}; d_model={args.d_model}")
        rows = attention_param_counts(HEADS, args.d_model)
        run.table("b_params", rows, title="(b) parameters")
        run.figure("b_params", lambda ax: draw(ax, rows), title=f"(b) parameters, d={args.d_model}")
        return run.verdict("params", CLAIM, params_verdict(rows))


if __name__ == "__main__":
    main()
