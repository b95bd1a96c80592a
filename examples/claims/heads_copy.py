"""Claim (1): copying a sequence of length n needs about log n heads, not n.

For every length n, one Pre-LN block whose heads have ``--head-dim`` channels each is trained on
the copy task (``_copy_task.py``: n random tokens, then n query slots that must output them,
full attention) with 1, 2, 3, ... heads in turn, stopping at the first head count that reaches
95 % held-out token accuracy. The fewest heads h(n) are then fitted against log2 n and against
n, and :func:`copy_verdict` states the verdict. Writes ``copy_runs.csv`` (every training run),
``copy_heads.csv`` (the fewest heads per n), ``copy_verdict.csv`` and two figures.

    python examples/claims/heads_copy.py --quick
    python examples/claims/heads_copy.py --out results/head_claims    # the recorded run (hours)
"""

from __future__ import annotations

import math

import numpy as np
from _copy_task import train_copy

from graphattn.experiments import Run, Verdict, cli
from graphattn.experiments.plots import figure, finish_axes, heatmap

CLAIM = "(1) copying a length-n sequence needs ~log n heads, not n"
PRESETS = {
    "full": dict(lengths=[16, 32, 64, 128, 256, 512], heads=[1, 2, 3, 4, 6, 8, 12, 16],
                 head_dim=16, vocab=8, steps=600, eval_every=50, tokens=2048, lr=3e-3,
                 target=0.95, seed=0),
    "quick": dict(lengths=[8, 16, 32], heads=[1, 2, 4], head_dim=16, vocab=8, steps=300,
                  eval_every=50, tokens=512, lr=3e-3, target=0.95, seed=0),
    "smoke": dict(lengths=[4], heads=[1, 2], head_dim=4, vocab=3, steps=2, eval_every=2,
                  tokens=32, lr=3e-3, target=0.95, seed=0),
}  # fmt: skip


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``y = a + b x``: ``(a, b, R^2)`` (R^2 NaN when ``y`` is constant)."""
    b, a = np.polyfit(x, y, 1)
    residual = float(((y - (a + b * x)) ** 2).sum())
    total = float(((y - y.mean()) ** 2).sum())
    return float(a), float(b), (1.0 - residual / total) if total > 0 else math.nan


def copy_verdict(needed: dict[int, int | None], target: float, max_heads: int):
    """Rule: fit the fewest heads h(n) against log2 n and against n (least squares, R^2) over
    the lengths where some head count reached the target. Confirmed when h grows and the log
    fit explains it at least as well as the linear one (every length resolved); refuted when
    the linear fit is better; partly when h does not grow over the range, when some length
    needed more than the largest head count tried, or when fewer than three lengths are
    resolved. Returns the verdict and the fits."""
    resolved = {n: h for n, h in needed.items() if h is not None}
    missing = [n for n, h in needed.items() if h is None]
    shown = " / ".join(f"{h if h is not None else f'>{max_heads}'}" for h in needed.values())
    number = f"heads {shown} for n = {' / '.join(str(n) for n in needed)}"
    if len(resolved) < 3:
        return Verdict(number, "partly", f"only {len(resolved)} length(s) reached {target:.0%}"), {}
    ns = np.array(list(resolved), dtype=float)
    hs = np.array(list(resolved.values()), dtype=float)
    _, b_log, r2_log = fit_line(np.log2(ns), hs)
    _, b_lin, r2_lin = fit_line(ns, hs)
    fits = {"slope_per_log2n": b_log, "r2_log": r2_log, "slope_per_n": b_lin, "r2_linear": r2_lin}
    number += f"; R^2 vs log n {r2_log:.2f}, vs n {r2_lin:.2f}"
    if math.isnan(r2_log):
        reason = (
            f"the head count does not grow over n = {int(ns[0])}..{int(ns[-1])}: consistent "
            "with 'not n', but no log n growth is visible"
        )
        return Verdict(number, "partly", reason), fits
    if missing:
        return Verdict(number, "partly", f"n = {missing} needed more than {max_heads} heads"), fits
    if r2_log >= r2_lin:
        reason = "the log n fit explains the growth at least as well"
        return Verdict(number, "confirmed", reason), fits
    reason = "the head count grows closer to linearly in n than to log n"
    return Verdict(number, "refuted", reason), fits


def draw_fits(ax, needed: dict, fits: dict, s: dict) -> None:
    """The fewest heads per n, and the two fitted lines through them."""
    ns = [n for n, h in needed.items() if h is not None]
    ax.plot(ns, [needed[n] for n in ns], "o", label="fewest heads")
    if fits:
        grid = np.geomspace(min(ns), max(ns), 50)
        mean_h = np.mean([needed[n] for n in ns])
        a_log = mean_h - fits["slope_per_log2n"] * np.mean(np.log2(ns))
        a_lin = mean_h - fits["slope_per_n"] * np.mean(ns)
        ax.plot(grid, a_log + fits["slope_per_log2n"] * np.log2(grid), "-",
                label=f"a + b log2 n (R^2 {fits['r2_log']:.2f})")  # fmt: skip
        ax.plot(grid, a_lin + fits["slope_per_n"] * grid, "--",
                label=f"a + b n (R^2 {fits['r2_linear']:.2f})")  # fmt: skip
    finish_axes(
        ax,
        "sequence length n",
        f"fewest heads (d_h = {s['head_dim']}) for {s['target']:.0%}",
        xscale=("log", 2),
    )


def main(argv: list[str] | None = None) -> Verdict:
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="examples/claims/heads_copy.py")
    p.add_run_options("outputs/head_claims")
    p.add_argument("--lengths", type=cli.int_at_least(1), nargs="+", help="lengths n to try")
    p.add_argument("--heads", type=cli.int_at_least(1), nargs="+", help="head counts, in order")
    p.add_argument("--steps", type=cli.int_at_least(1), help="most training steps per run")
    args = p.parse_args(argv)
    s = {key: getattr(args, key) for key in PRESETS["full"]}
    with Run.from_args(args, settings={**s, "level": args.preset}) as run:
        print(f"{CLAIM}: fewest heads of {s['head_dim']} channels reaching {s['target']:.0%} "
              f"accuracy; lengths {s['lengths']}, head counts {s['heads']} in order")  # fmt: skip
        rows, needed = [], {}
        for n in run.progress(s["lengths"], "(1) copy"):
            needed[n] = None
            for heads in s["heads"]:
                _, _, r = train_copy(n, heads, s, s["seed"])
                rows.append({"n": n, "heads": heads, "channels": heads * s["head_dim"], **r})
                print(f"  n={n:4d} heads={heads:2d}: accuracy {r['accuracy']:.3f} after "
                      f"{r['steps']} steps ({r['seconds']:.1f} s)", flush=True)  # fmt: skip
                if r["accuracy"] >= s["target"]:
                    needed[n] = heads
                    break
        verdict, fits = copy_verdict(needed, s["target"], max(s["heads"]))
        run.table("copy_runs", rows, title="(1) copy: every training run")
        summary = [{"n": n, "fewest_heads": "" if h is None else h, "reached": h is not None}
                   for n, h in needed.items()]  # fmt: skip
        run.table("copy_heads", summary, {**run.settings, **fits}, title="(1) copy: fewest heads")
        heatmap(args.out / "copy_accuracy.png", rows, "heads", "n", "accuracy", vmin=0, vmax=1,
                title="(1) copy: held-out token accuracy (runs stop at the first success)",
                footer=run.footer)  # fmt: skip
        figure(args.out / "copy_heads.png", lambda ax: draw_fits(ax, needed, fits, s),
               title="(1) copy: heads needed vs length", footer=run.footer)  # fmt: skip
        return run.verdict("copy", CLAIM, verdict)


if __name__ == "__main__":
    main()
