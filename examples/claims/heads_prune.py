"""Claim (5): many heads can be pruned without loss.

The motif model of ``heads_motifs.py`` (``_motifs.py``): every head's importance is the increase
of the validation loss when it is masked (:func:`graphattn.analysis.head_importance`); then the
test accuracy with the k most important heads kept (:func:`graphattn.analysis.top_heads_mask`),
for every k, against random sets of k heads. :func:`prune_verdict` states the verdict. Writes
``prune.csv``, ``prune_importance.csv``, ``prune_verdict.csv`` and two figures.

    python examples/claims/heads_prune.py --quick
    python examples/claims/heads_prune.py --out results/head_claims   # the recorded run
"""

from __future__ import annotations

import _motifs
import numpy as np
import torch
import torch.nn.functional as F
from _motifs import motif_logits, motif_scores, motif_setup

from graphattn.analysis import head_importance, top_heads_mask
from graphattn.experiments import Run, Verdict, cli
from graphattn.experiments.plots import figure, finish_axes, heatmap

CLAIM = "(5) many heads can be pruned without loss"
PRESETS = {
    "full": dict(random_masks=10),
    "quick": dict(random_masks=5),
    "smoke": dict(random_masks=2),
}
FULL = ("full", None)  # the attention pattern the model was trained and is run with


def prune_verdict(rows: list[dict], total: int) -> Verdict:
    """Rule: k* is the fewest heads kept (pruned by importance) whose test accuracy stays within
    1 point of the unpruned model. Confirmed when at least half the heads can go
    (k* <= total / 2), partly when at least one can, refuted when none can."""
    full = next(r for r in rows if r["kept"] == total)["accuracy_importance"]
    best = min(
        (r for r in rows if r["accuracy_importance"] >= full - 0.01), key=lambda r: r["kept"]
    )
    k = best["kept"]
    number = (
        f"{total - k} of {total} heads pruned within 1 pt (accuracy {full:.3f} -> "
        f"{best['accuracy_importance']:.3f}; random pruning to {k} heads: "
        f"{best['accuracy_random_mean']:.3f})"
    )
    if k <= total / 2:
        return Verdict(number, "confirmed", "at least half the heads go without loss")
    if k < total:
        return Verdict(number, "partly", "some heads go without loss, but fewer than half")
    return Verdict(number, "refuted", "removing any head costs more than 1 point")


def draw(ax, rows: list[dict]) -> None:
    ks = [r["kept"] for r in rows]
    ax.plot(ks, [r["accuracy_importance"] for r in rows], "o-", ms=3, label="by importance")
    ax.plot(ks, [r["accuracy_random_mean"] for r in rows], "s--", ms=3, label="random (mean)")
    ax.fill_between(ks, [r["accuracy_random_min"] for r in rows],
                    [r["accuracy_random_max"] for r in rows], alpha=0.2,
                    label="random (min to max over draws)")  # fmt: skip
    finish_axes(ax, "heads kept", "test accuracy")


def main(argv: list[str] | None = None) -> Verdict:
    script = "examples/claims/heads_prune.py"
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script=script, out="outputs/head_claims")
    args = p.parse_args(argv)
    motif_s = _motifs.PRESETS[args.preset]  # the motif model of heads_motifs.py at this level
    settings = {"random_masks": args.random_masks, "motifs": motif_s, "level": args.preset}
    with Run.from_args(args, settings=settings) as run:
        print(
            f"{CLAIM}: the motif model; head importance = loss increase when a head is masked "
            f"(validation set, {motif_s['val']} sequences); accuracy on the test set with the "
            f"k most important heads kept vs {args.random_masks} random sets of k"
        )
        data, model, _ = motif_setup(motif_s, show=not args.no_progress)
        val, test = data["val"], data["test"]
        layers, heads = motif_s["layers"], motif_s["heads"]
        total = layers * heads

        def loss_fn(model, batch):
            logits = motif_logits(model, batch["features"], FULL)
            return F.binary_cross_entropy_with_logits(logits, batch["label"])

        importance = head_importance(model, val, loss_fn)  # (layers, heads)
        gen = torch.Generator().manual_seed(motif_s["seed"])
        rows = []
        for kept in run.progress(range(total, -1, -1), "(5) prune"):
            mask = top_heads_mask(importance, kept)
            logits = motif_logits(model, test["features"], FULL, head_mask=mask)
            scores = motif_scores(logits, test["label"])
            random_acc = []
            for _ in range(args.random_masks):
                rand = torch.zeros(total)
                rand[torch.randperm(total, generator=gen)[:kept]] = 1.0
                logits = motif_logits(
                    model, test["features"], FULL, head_mask=rand.view(layers, heads)
                )
                random_acc.append(motif_scores(logits, test["label"])["accuracy"])
            rows.append({
                "kept": kept, "accuracy_importance": scores["accuracy"],
                "loss_importance": scores["loss"],
                "accuracy_random_mean": float(np.mean(random_acc)),
                "accuracy_random_min": float(np.min(random_acc)),
                "accuracy_random_max": float(np.max(random_acc)),
            })  # fmt: skip
        imp_rows = [
            {"layer": layer, "head": h, "importance": float(importance[layer, h])}
            for layer in range(layers)
            for h in range(heads)
        ]
        run.table("prune", rows, title="(5) prune: test accuracy vs heads kept")
        run.table("prune_importance", imp_rows)
        heatmap(args.out / "prune_importance.png", imp_rows, "layer", "head", "importance",
                fmt=".3f", title="(5) head importance (validation loss increase when masked)",
                footer=run.footer)  # fmt: skip
        figure(args.out / "prune.png", lambda ax: draw(ax, rows), title="(5) pruning heads",
               footer=run.footer)  # fmt: skip
        return run.verdict("prune", CLAIM, prune_verdict(rows, total))


if __name__ == "__main__":
    main()
