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

import numpy as np
import torch
from _copy_task import train_copy

from graphattn.analysis import head_outputs, head_similarity, orthogonality_penalty
from graphattn.experiments import Run, Verdict, cli
from graphattn.experiments.plots import figure, finish_axes

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
    finish_axes(ax, "mean pairwise CKA of the heads' outputs", "held-out token accuracy")


def main(argv: list[str] | None = None) -> Verdict:
    script = "examples/claims/heads_diversity.py"
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script=script, out="outputs/head_claims")
    args = p.parse_args(argv)
    s = {key: getattr(args, key) for key in PRESETS["full"]}
    with Run.from_args(args, settings={**s, "level": args.preset}) as run:
        print(f"{CLAIM}: copy task n={s['length']}, {s['heads']} heads of {s['head_dim']} "
              f"channels, {s['steps']} steps, seeds {s['seeds']}; orthogonality weight 0 vs "
              f"{s['weight']}; CKA of the heads' outputs on a held-out batch")  # fmt: skip
        rows = []
        runs = [(seed, w) for seed in s["seeds"] for w in (0.0, s["weight"])]
        for seed, w in run.progress(runs, "(2) diversity"):
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
        run.table("diversity", rows, title="(2) diversity: per seed")
        title = "(2) head diversity with and without the penalty"
        figure(args.out / "diversity.png", lambda ax: draw(ax, rows, s["weight"]), title=title,
               footer=run.footer)  # fmt: skip
        return run.verdict("diversity", CLAIM, diversity_verdict(rows, s["weight"]))


if __name__ == "__main__":
    main()
