"""Claim (4): sparse (local) attention approximates full attention with a manageable error.

The motif model of ``heads_motifs.py`` (``_motifs.py``, trained with full attention) is run
with window attention of several radii and chunked attention of several sizes in place of
full attention: the output error relative to full attention and the test accuracy against the
keys each query sees. Beside it, the same model trained with window attention and run with
it. :func:`sparse_verdict` states the verdict. Writes ``sparse.csv``, ``sparse_verdict.csv``
and ``sparse.png``.

    python examples/claims/heads_sparse.py --quick
    python examples/claims/heads_sparse.py --out results/head_claims   # the recorded run
"""

from __future__ import annotations

import _motifs
from _motifs import motif_logits, motif_pattern, motif_scores, motif_setup

from graphattn.experiments import Run, Verdict, cli
from graphattn.experiments.plots import figure, finish_axes, series_styles

CLAIM = "(4) sparse (local) attention approximates full attention with a manageable error"
PRESETS = {
    "full": dict(radii=[1, 2, 4, 8, 16, 32, 64], chunks=[4, 8, 16, 32, 64], train_radii=[8, 16]),
    "quick": dict(radii=[2, 8, 32], chunks=[8, 32], train_radii=[4, 8]),
    "smoke": dict(radii=[2, 8], chunks=[8], train_radii=[2]),
}


def sparse_verdict(rows: list[dict], length: int, train_radii: list[int]) -> Verdict:
    """Rule: the error is "manageable" when some window of at most half the sequence
    (2r + 1 <= L / 2) run in place of full attention keeps the full model's test accuracy
    within 1 point; and when some model trained with such a window (the radii
    ``train_radii``), run with it, reaches the full model's accuracy within 1 point.
    Confirmed when both hold, partly when one does, refuted when neither."""
    base = next(r for r in rows if r["trained"] == "full" and r["pattern"] == "full")["accuracy"]
    windows = sorted(
        (r for r in rows if r["trained"] == "full" and r["pattern"] == "window"),
        key=lambda r: r["size"],
    )
    ok = [r for r in windows if 2 * r["size"] + 1 <= length / 2 and r["accuracy"] >= base - 0.01]
    trained = [
        next(r for r in rows if r["trained"] == f"window({radius})" and r["pattern"] == "window"
             and r["size"] == radius)
        for radius in train_radii
        if 2 * radius + 1 <= length / 2
    ]  # fmt: skip
    number = (
        f"full {base:.3f}; swapped-in window r = "
        + ", ".join(f"{r['size']}: {r['accuracy']:.3f}" for r in windows)
        + "; trained with r = "
        + ", ".join(f"{r['size']}: {r['accuracy']:.3f}" for r in trained)
    )
    swapped_ok = bool(ok)
    trained_ok = any(r["accuracy"] >= base - 0.01 for r in trained)
    if swapped_ok:
        smallest = min(ok, key=lambda r: r["size"])
        number += (
            f"; smallest r within 1 pt: {smallest['size']} (rel. error {smallest['rel_error']:.3f})"
        )
    if swapped_ok and trained_ok:
        reason = "a window of <= L/2 keeps accuracy, and training sparse does too"
        return Verdict(number, "confirmed", reason)
    if swapped_ok:
        reason = "swapped-in windows keep accuracy, the sparse-trained model does not"
        return Verdict(number, "partly", reason)
    if trained_ok:
        reason = (
            "a sparse-trained model matches full attention, but a full model run with a window "
            "of <= L/2 loses more than 1 point"
        )
        return Verdict(number, "partly", reason)
    reason = "neither swapped-in nor trained sparse attention keeps accuracy"
    return Verdict(number, "refuted", reason)


def draw(ax, rows: list[dict]) -> None:
    """A colour per trained model; the pattern it runs with by marker and line."""
    trained_models = list(dict.fromkeys(r["trained"] for r in rows))
    for trained, style in zip(trained_models, series_styles(len(trained_models)), strict=True):
        for pattern, fmt in (("window", "o-"), ("chunked", "s--")):
            rs = [r for r in rows if r["trained"] == trained and r["pattern"] == pattern]
            rs.sort(key=lambda r: r["keys_per_node"])
            label = f"trained {trained}, run {pattern}"
            keys, accuracy = [r["keys_per_node"] for r in rs], [r["accuracy"] for r in rs]
            ax.plot(keys, accuracy, fmt, color=style["color"], ms=3, label=label)
        full = next(r for r in rows if r["trained"] == trained and r["pattern"] == "full")
        ax.axhline(full["accuracy"], ls=":", lw=1, color=style["color"],
                   label=f"trained {trained}, run full (every key)")  # fmt: skip
    finish_axes(ax, "keys per query (attention cost)", "test accuracy", legend=7, xscale=("log", 2))


def main(argv: list[str] | None = None) -> Verdict:
    script = "examples/claims/heads_sparse.py"
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script=script, out="outputs/head_claims")
    args = p.parse_args(argv)
    motif_s = _motifs.PRESETS[args.preset]  # the motif model of heads_motifs.py at this level
    settings = {**PRESETS[args.preset], "motifs": motif_s, "level": args.preset}
    show = not args.no_progress
    with Run.from_args(args, settings=settings) as run:
        length = motif_s["length"]
        print(
            f"{CLAIM}: the motif model (full attention) run with window radii {args.radii} and "
            f"chunk sizes {args.chunks} in place of full attention; and the same model trained "
            f"with window radii {args.train_radii}; L = {length}, test set {motif_s['test']}"
        )
        data, full_model, _ = motif_setup(motif_s, show=show)
        models = [("full", full_model)] + [
            (f"window({r})", motif_setup(motif_s, ("window", r), show=show)[1])
            for r in args.train_radii
        ]
        test = data["test"]
        radii = sorted({*args.radii, *args.train_radii})
        kinds = [("full", None), *(("window", r) for r in radii)]
        kinds += [("chunked", c) for c in args.chunks]
        rows = []
        for name, model in models:
            reference = motif_logits(model, test["features"], ("full", None))
            for kind in run.progress(kinds, f"(4) {name}"):
                logits = motif_logits(model, test["features"], kind)
                err = float((logits - reference).norm() / reference.norm().clamp_min(1e-12))
                rows.append({
                    "trained": name, "pattern": kind[0],
                    "size": kind[1] if kind[1] is not None else length,
                    "keys_per_node": motif_pattern(kind, 1, length).num_edges / length,
                    "rel_error": err, **motif_scores(logits, test["label"]),
                })  # fmt: skip
        run.table("sparse", rows, title="(4) sparse: test scores per attention pattern")
        figure(args.out / "sparse.png", lambda ax: draw(ax, rows), footer=run.footer,
               title="(4) sparse attention in place of full attention")  # fmt: skip
        return run.verdict("sparse", CLAIM, sparse_verdict(rows, length, args.train_radii))


if __name__ == "__main__":
    main()
