"""Claim (c): the 1/sqrt(d_h) scale keeps the attention-logit variance at 1 for every head size.

A layer's own query and key projections at initialisation, ``x ~ N(0, 1)`` over ``N`` tokens,
for head sizes 16..256 at a fixed ``d_model`` (``heads = d_model / d_h``): the variance of the
logits ``<q_i, k_j>`` with and without the ``1/sqrt(d_h)`` scale, and what each does to the
softmax (its entropy and largest weight). :func:`logits_verdict` states the verdict. Writes
``c_logits.csv``, ``logits_verdict.csv`` and ``c_logits.png``.

    python examples/claims/transformer_logits.py --quick
    python examples/claims/transformer_logits.py --out results/transformer_claims/full
"""

from __future__ import annotations

import math

import torch

from graphattn import MultiHeadAttentionConv
from graphattn.experiments import Run, Verdict, cli, progress
from graphattn.experiments.plots import figure, finish_axes

CLAIM = "(c) the 1/sqrt(d_h) scale keeps the logit variance at 1 for every head size"
HEAD_DIMS = (16, 32, 64, 128, 256)
PRESETS = {"full": dict(num_nodes=256, seeds=10), "quick": dict(num_nodes=64, seeds=3)}


def measure_logit_variance(head_dims=HEAD_DIMS, d_model=256, num_nodes=256, seeds=10):
    """Variance of ``<q_i, k_j>`` (and of the same divided by sqrt(d_h)) from a layer's own
    projections at init, ``heads = d_model / d_h``, plus what it does to the softmax."""
    rows = []
    for dim in progress(head_dims, "(c) logits"):
        heads = d_model // dim
        raw_var, stats = [], {True: [], False: []}
        for seed in range(seeds):
            torch.manual_seed(seed)
            conv = MultiHeadAttentionConv(d_model, d_model, heads)
            x = torch.randn(num_nodes, d_model)
            with torch.no_grad():
                q = conv.lin_query(x).view(-1, heads, dim)  # (N, H, D)
                k = conv.lin_key(x).view(-1, heads, dim)  # (N, H, D)
                logits = torch.einsum("ihd,jhd->hij", q, k)  # (H, N, N), unscaled
            raw_var.append(logits.var().item())
            for scaled in (True, False):
                p = (logits / math.sqrt(dim) if scaled else logits).softmax(-1)
                entropy = -(p * p.clamp_min(1e-30).log()).sum(-1)  # (H, N)
                stats[scaled].append(
                    (entropy.mean().item() / math.log(num_nodes), p.amax(-1).mean().item())
                )
        raw = torch.tensor(raw_var).mean().item()
        row = {"head_dim": dim, "heads": heads, "logit_var_unscaled": raw,
               "logit_var_scaled": raw / dim}  # fmt: skip
        for scaled, name in ((False, "unscaled"), (True, "scaled")):
            ent, top = torch.tensor(stats[scaled]).mean(0).tolist()
            row[f"entropy/logN_{name}"] = ent
            row[f"max_weight_{name}"] = top
        rows.append(row)
    return rows


def logits_verdict(rows: list[dict]) -> Verdict:
    """Rule: confirmed when, at every head size, the logit variance is within [0.8, 1.25] with
    the 1/sqrt(d_h) scale and within [0.8, 1.25] x d_h without it; partly when only the scaled
    variance stays near 1; refuted otherwise."""
    scaled = [r["logit_var_scaled"] for r in rows]
    per_dim = [r["logit_var_unscaled"] / r["head_dim"] for r in rows]
    number = (
        f"Var(logit) without the scale {rows[0]['logit_var_unscaled']:.4g} .. "
        f"{rows[-1]['logit_var_unscaled']:.4g} for d_h = {rows[0]['head_dim']} .. "
        f"{rows[-1]['head_dim']}; with it {min(scaled):.3f} .. {max(scaled):.3f}"
    )
    scaled_ok = all(0.8 <= v <= 1.25 for v in scaled)
    if scaled_ok and all(0.8 <= v <= 1.25 for v in per_dim):
        return Verdict(number, "confirmed", "unscaled variance = d_h; the scale brings it to 1")
    if scaled_ok:
        return Verdict(
            number, "partly", "the scaled variance is ~1, but the unscaled one is not ~d_h"
        )
    return Verdict(number, "refuted", "the scaled variance is not ~1")


def draw(ax, rows: list[dict]) -> None:
    dims = [r["head_dim"] for r in rows]
    ax.plot(dims, [r["logit_var_unscaled"] for r in rows], "o-", label="without 1/sqrt(d_h)")
    ax.plot(dims, [r["logit_var_scaled"] for r in rows], "s-", label="with 1/sqrt(d_h)")
    finish_axes(
        ax, "head size d_h", "Var(logit)", legend="medium", xscale=("log", 2), yscale=("log", 2)
    )


def main(argv: list[str] | None = None) -> Verdict:
    p = cli.ScriptParser(
        doc=__doc__, presets=PRESETS, script="examples/claims/transformer_logits.py"
    )
    count = cli.int_at_least(1)
    p.add_run_options("outputs/transformer_claims", threads=None, progress=False)
    p.add_argument("--d-model", type=count, default=256, help="a multiple of 256")
    p.add_argument("--nodes", dest="num_nodes", type=cli.int_at_least(2), help="tokens N")
    p.add_argument("--seeds", type=count)
    args = p.parse_args(argv)
    if args.d_model % max(HEAD_DIMS):
        p.error(f"--d-model {args.d_model} must be a multiple of {max(HEAD_DIMS)} (the head sizes)")
    settings = {"quick": args.preset == "quick", "d_model": args.d_model,
                "num_nodes": args.num_nodes, "seeds": args.seeds}  # fmt: skip
    print(f"{CLAIM}; heads = d_model / d_h; x ~ N(0, 1)")
    with Run.from_args(args, settings=settings) as run:
        rows = measure_logit_variance(HEAD_DIMS, args.d_model, args.num_nodes, args.seeds)
        run.table("c_logits", rows, title="(c) logit variance and softmax saturation")
        figure(args.out / "c_logits.png", lambda ax: draw(ax, rows), footer=run.footer,
               title="(c) attention logit variance at init")  # fmt: skip
        return run.verdict("logits", CLAIM, logits_verdict(rows))


if __name__ == "__main__":
    main()
