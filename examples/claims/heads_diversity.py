"""Claim (2): an orthogonality penalty on the heads' projections makes the heads more diverse.

The copy task of ``_copy_task.py`` at one length, trained for a fixed number of steps with and
without the penalty (``GraphTransformerConfig(orthogonality=...)``, added to the loss by
``model.regularization()``) over several seeds. Diversity is the mean pairwise linear CKA of the
heads' outputs on a held-out batch (:func:`graphattn.analysis.head_similarity`); the task score
is the held-out token accuracy. :func:`diversity_verdict` states the verdict. Writes
``diversity.csv``, ``diversity_verdict.csv`` and ``diversity.png``.

    python examples/claims/heads_diversity.py --quick
    python examples/claims/heads_diversity.py --out results/head_claims   # the recorded run
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from _copy_task import train_copy

from graphattn.analysis import head_outputs, head_similarity, orthogonality_penalty
from graphattn.experiments import Run, Verdict, cli, print_table, progress
from graphattn.experiments.plots import figure

CLAIM = "(2) an orthogonality penalty on the heads' projections makes heads more diverse (CKA)"
PRESETS = {
    "full": dict(length=32, heads=4, head_dim=16, vocab=8, steps=600, tokens=2048, lr=3e-3,
                 seeds=[0, 1, 2, 3, 4], weight=1.0),
    "quick": dict(length=16, heads=4, head_dim=16, vocab=8, steps=200, tokens=512, lr=3e-3,
                  seeds=[0, 1], weight=1.0),
    "smoke": dict(length=4, heads=2, head_dim=4, vocab=3, steps=3, tokens=32, lr=3e-3,
                  seeds=[0, 1], weight=1.0),
}  # fmt: skip


def mean_off_diagonal(sim: torch.Tensor) -> float:
    """Mean of the off-diagonal entries of an ``[H, H]`` matrix (NaN entries left out)."""
    h = sim.size(0)
    return float(sim[~torch.eye(h, dtype=torch.bool)].nanmean())


def diversity_verdict(rows: list[dict], weight: float) -> Verdict:
    """Rule: confirmed when every seed trained with the penalty has a lower mean pairwise head
    CKA than every seed without it, and its mean accuracy is at most 2 points lower;
    partly when the CKA means differ in that direction but the seeds overlap, or when the
    accuracy drops more; refuted when the penalty does not lower the mean CKA."""
    base = [r for r in rows if r["orthogonality"] == 0]
    ortho = [r for r in rows if r["orthogonality"] == weight]

    def stats(rs, key):
        v = np.array([r[key] for r in rs])
        return v.mean(), v.std()

    (cb, sb), (co, so) = stats(base, "mean_cka"), stats(ortho, "mean_cka")
    (ab, _), (ao, _) = stats(base, "accuracy"), stats(ortho, "accuracy")
    number = (
        f"mean pairwise CKA {cb:.3f} +- {sb:.3f} without, {co:.3f} +- {so:.3f} with the penalty; "
        f"accuracy {ab:.3f} vs {ao:.3f} ({len(base)} seeds)"
    )
    separated = max(r["mean_cka"] for r in ortho) < min(r["mean_cka"] for r in base)
    if co >= cb:
        return Verdict(number, "refuted", "the penalty does not lower the heads' output similarity")
    if not separated:
        return Verdict(number, "partly", "lower on average, but within the seed-to-seed spread")
    if ao < ab - 0.02:
        return Verdict(number, "partly", "more diverse heads, but the task score drops")
    return Verdict(number, "confirmed", "more diverse heads on every seed at no cost in accuracy")


def draw(ax, rows: list[dict], weight: float) -> None:
    for w, marker in ((0.0, "o"), (weight, "s")):
        rs = [r for r in rows if r["orthogonality"] == w]
        ax.plot([r["mean_cka"] for r in rs], [r["accuracy"] for r in rs], marker,
                label=f"orthogonality {w:g}")  # fmt: skip
    ax.set_xlabel("mean pairwise CKA of the heads' outputs")
    ax.set_ylabel("held-out token accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def main(argv: list[str] | None = None) -> Verdict:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS)
    count = cli.int_at_least(1)
    positive = cli.float_in(0, None, low_open=True)
    p.add_argument("--length", type=count, help="sequence length n")
    p.add_argument("--heads", type=count, help="heads of the block")
    p.add_argument("--head-dim", type=count, help="channels per head")
    p.add_argument("--vocab", type=count, help="token vocabulary")
    p.add_argument("--steps", type=count, help="training steps per run")
    p.add_argument("--tokens", type=count, help="tokens per training batch (about)")
    p.add_argument("--lr", type=positive)
    p.add_argument("--seeds", type=cli.int_at_least(0), nargs="+", help="seeds, one run each")
    p.add_argument("--weight", type=positive, help="penalty weight")
    p.add_argument("--out", type=cli.output_folder, default=Path("outputs/head_claims"))
    p.add_argument("--threads", type=count, default=1, help="torch threads (default 1)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    s = {key: getattr(args, key) for key in PRESETS["full"]}
    command = cli.command_line("examples/claims/heads_diversity.py", argv)
    settings = {**s, "level": args.preset}
    with Run(args.out, command=command, settings=settings, threads=args.threads) as run:
        print(
            f"{CLAIM}: copy task n={s['length']}, {s['heads']} heads of {s['head_dim']} "
            f"channels, {s['steps']} steps, seeds {s['seeds']}; orthogonality weight 0 vs "
            f"{s['weight']}; CKA of the heads' outputs on a held-out batch (all nodes)"
        )
        rows = []
        runs = [(seed, w) for seed in s["seeds"] for w in (0.0, s["weight"])]
        for seed, w in progress(runs, "(2) diversity", enable=not args.no_progress):
            model, ((x, pos, _), pattern), r = train_copy(
                s["length"], s["heads"], s, seed, orthogonality=w, early_stop=False
            )
            (outs,) = head_outputs(model, x, pattern, pos=pos)
            sim = head_similarity(outs)
            rows.append({
                "seed": seed, "orthogonality": w, "accuracy": r["accuracy"],
                "mean_cka": mean_off_diagonal(sim),
                "max_cka": float(sim[~torch.eye(s["heads"], dtype=torch.bool)].max()),
                "penalty": float(orthogonality_penalty(model).detach()), "seconds": r["seconds"],
            })  # fmt: skip
        print_table(rows, title="(2) diversity: per seed")
        run.table("diversity", rows)
        title = "(2) head diversity with and without the penalty"
        figure(args.out / "diversity.png", lambda ax: draw(ax, rows, s["weight"]), title=title,
               footer=run.footer)  # fmt: skip
        verdict = diversity_verdict(rows, s["weight"])
        run.verdicts("diversity", [(CLAIM, verdict)])
    return verdict


if __name__ == "__main__":
    main()
