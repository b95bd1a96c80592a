"""Depth vs hops and width vs relation types on real images.

The 1,797 handwritten digits (8x8 pixels, 16 grey levels) that ship with scikit-learn
(:func:`sklearn.datasets.load_digits`), split once into training and test digits, as grid
graphs (:func:`graphattn.graphs.grid`, :func:`graphattn.graphs.patchify`):

a. **depth vs hops.** A canvas of ``rows x cols`` random digits is cut into 8x8 patches, one
   digit per patch, on the 8-neighbourhood patch grid (hop count = Chebyshev distance). The
   label of a patch at distance ``h`` is the class of the digit ``h`` patches to its right.
   Digits are drawn independently, so for ``L < h`` the label is independent of everything an
   ``L``-layer model sees: chance level (0.1) by construction. For ``L >= h`` the accuracy is
   bounded by how well a digit can be recognised at all. One model per depth ``L`` predicts
   every ``h = 1 .. h_max`` at once; the table is accuracy over ``(L, h)``.
b. **width vs relation types.** The pixel grid of every digit with edges typed by side
   (``edge_type``: east, south, west, north; the self-loop has its own type). Task
   ``sectors``: the 5x5 window around every pixel, six pixels per side; the target is the mean
   intensity on each of the first ``K`` sides, ``K`` separate aggregates. Task ``neighbours``:
   the 4-neighbourhood, one pixel per side; the target is the intensity of each of the first
   ``K`` neighbours. One layer, fixed ``d_model``, ``H`` heads; test normalised MSE over
   ``(H, K)`` (see ``docs/studies.md`` for why neighbouring pixels blur the picture).
The positional encodings across image sizes (the ViT claim) are ``image_positional.py``.

Run::

    python examples/image_study.py --quick     # the small setting (make demo's)
    python examples/image_study.py             # the full setting

Writes ``depth_vs_hops`` and ``width_vs_relations`` (CSV and heat map) into ``--out``
(default ``outputs/image_study/``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from graphattn import graphs
from graphattn.experiments import (
    Run,
    accuracy,
    cli,
    fit_batches,
    normalised_mse,
    print_grid,
    seed_everything,
    split_indices,
)
from graphattn.nn import GraphTransformer, GraphTransformerConfig

PRESETS = {
    "full": dict(max_hops=5, depths=[1, 2, 3, 4, 5, 6], steps=600, relations=[1, 2, 3, 4],
                 heads=[1, 2, 3, 4, 6, 8], width_steps=400, width_d_model=48,
                 width_tasks=["sectors", "neighbours"]),
    "quick": dict(max_hops=4, depths=[1, 2, 3, 4], steps=300, relations=[2, 4], heads=[1, 2, 4],
                  width_steps=150, width_d_model=32, width_tasks=["sectors"]),
}  # fmt: skip
IGNORE = -100
DIGIT = 8  # side of a digit in pixels


def parse_args(argv: list[str]):
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="examples/image_study.py")
    count = cli.int_at_least(1)
    p.add_run_options("outputs/image_study", seed=0)
    p.add_argument("--only", choices=["depth", "width"], help="run only (a) or only (b)")
    g = p.add_argument_group("(a) depth vs hops")
    g.add_argument("--max-hops", type=count, help="largest distance h (canvas: 2 x (h + 2))")
    g.add_argument("--depths", type=count, nargs="+", help="model depths L")
    g.add_argument("--steps", type=count, help="training steps per model")
    g.add_argument("--canvas-rows", type=count, default=2, help="digit rows per canvas")
    g = p.add_argument_group("(b) width vs relation types")
    g.add_argument("--relations", type=cli.int_in(1, 4), nargs="+", help="sides K (1..4)")
    g.add_argument("--width-tasks", nargs="+", choices=["sectors", "neighbours"], help="targets")
    g.add_argument("--heads", type=count, nargs="+", help="heads H (divide the width)")
    g.add_argument("--width-steps", type=count, help="training steps per model")
    g.add_argument("--width-d-model", type=count, help="width of the (b) models")
    p.add_argument("--d-model", type=count, default=32)
    p.add_argument("--model-heads", type=count, default=4, help="heads of the (a) models")
    p.add_argument("--batch", type=count, default=16, help="canvases or digit grids per step")
    p.add_argument("--test-limit", type=count, help="only the first N test digits")
    p.add_argument("--lr", type=cli.float_in(0, None, low_open=True), default=1e-2)
    args = p.parse_args(argv)
    p.check_divides(args, "model_heads", "d_model")
    p.check_divides(args, "heads", "width_d_model")
    return args


def load_digits_split(seed: int, test_fraction: float = 0.2) -> dict[str, tuple[Tensor, Tensor]]:
    """scikit-learn's digits as float images ``[n, 8, 8]`` in ``[0, 1]`` and labels, split
    once into ``"train"`` and ``"test"``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32) / 16.0  # (1797, 8, 8)
    labels = torch.tensor(digits.target, dtype=torch.long)
    train, test = split_indices(len(labels), test_fraction, seed)
    return {"train": (images[train], labels[train]), "test": (images[test], labels[test])}


def model(in_channels, d_model, heads, layers, out_channels, **kwargs) -> GraphTransformer:
    return GraphTransformer(GraphTransformerConfig(
        in_channels=in_channels, channels=d_model, heads=heads, num_layers=layers,
        out_channels=out_channels, ffn_ratio=2, **kwargs,
    ))  # fmt: skip


# ---- (a) depth vs hops -----------------------------------------------------------------------
def digit_canvas(images, labels, num, rows, cols, max_hops, generator) -> tuple[Tensor, Tensor]:
    """``num`` canvases of ``rows x cols`` random digits, as patch features ``[num * P, 64]``
    (one digit per patch) and labels ``[num * P, max_hops]``: column ``h - 1`` holds the class
    of the digit ``h`` patches to the right (``-100`` past the edge)."""
    pick = torch.randint(len(labels), (num, rows, cols), generator=generator)
    canvas = images[pick].permute(0, 1, 3, 2, 4).reshape(num, 1, rows * DIGIT, cols * DIGIT)
    classes = labels[pick]  # (num, rows, cols)
    target = torch.full((num, rows, cols, max_hops), IGNORE)
    for h in range(1, max_hops + 1):
        target[:, :, : cols - h, h - 1] = classes[:, :, h:]
    return graphs.patchify(canvas, DIGIT).x, target.view(-1, max_hops)


def canvas_graph(num: int, rows: int, cols: int):
    """The 8-neighbourhood grid over ``num`` canvases and its 9 direction types (the 8
    directions and the self-loop)."""
    pattern = graphs.grid(rows, cols, neighbourhood=8, num_graphs=num).pattern
    dy, dx = graphs.edge_offsets(pattern.edge_index(), rows, cols)
    return pattern, (dy + 1) * 3 + (dx + 1)


def depth_model(args, layers: int) -> GraphTransformer:
    """The (a) model: ``layers`` blocks over the patch grid, 10 classes per distance."""
    return model(DIGIT * DIGIT, args.d_model, args.model_heads, layers, 10 * args.max_hops,
                 num_relations=9)  # fmt: skip


def run_depth(args, data: dict, run: Run) -> list[dict]:
    """(a): one model per depth; accuracy per distance h on canvases of test digits."""
    rows, cols = args.canvas_rows, args.max_hops + 2
    pattern, edge_type = canvas_graph(args.batch, rows, cols)
    test_num = max(1, 512 // rows)  # 512 rows of test canvases, of the test digits
    test_pattern, test_type = canvas_graph(test_num, rows, cols)
    test_gen = torch.Generator().manual_seed(30_000 + args.seed)
    x_test, y_test = digit_canvas(*data["test"], test_num, rows, cols, args.max_hops, test_gen)
    out = []
    for layers in run.progress(args.depths, "(a) depth vs hops"):
        gen = seed_everything(args.seed + 100 * layers)
        net = depth_model(args, layers)
        batches = [digit_canvas(*data["train"], args.batch, rows, cols, args.max_hops, gen)
                   for _ in range(args.steps)]  # fmt: skip

        def loss_fn(m, batch):
            logits = m(batch[0], pattern, edge_type=edge_type).node.view(-1, 10)
            return F.cross_entropy(logits, batch[1].view(-1), ignore_index=IGNORE)

        history, seconds = fit_batches(net, loss_fn, batches, lr=args.lr)
        with torch.no_grad():
            logits = net(x_test, test_pattern, edge_type=test_type).node.view(-1, args.max_hops, 10)
        for h in range(1, args.max_hops + 1):
            keep = y_test[:, h - 1] != IGNORE
            out.append({
                "depth_L": layers, "hops_h": h,
                "accuracy": round(accuracy(logits[keep, h - 1], y_test[keep, h - 1]), 4),
                "chance": 0.1, "test_labels": int(keep.sum()),
                "final_train_loss": round(history[-1], 4), "seconds": round(seconds, 1),
            })  # fmt: skip
    names = "max_hops depths steps canvas_rows d_model model_heads batch lr seed".split()
    run.table("depth_vs_hops", out, cli.settings_of(args, *names))
    title = "(a) class of the digit h patches away: test accuracy (chance 0.1)"
    run.heatmap("depth_vs_hops", out, "depth_L", "hops_h", "accuracy", vmin=0.0, vmax=1.0,
                title=title)  # fmt: skip
    title = "(a) depth vs hops: test accuracy (chance 0.1)"
    print_grid(out, "depth_L", "hops_h", "accuracy", title=title)
    return out


# ---- (b) width vs relation types -------------------------------------------------------------
def sector(dy: Tensor, dx: Tensor) -> Tensor:
    """The side (0 east, 1 south, 2 west, 3 north) of every offset ``(dy, dx) != (0, 0)``:
    four quarter-planes turned by 45 degrees, each diagonal given to one side (so every
    side of the 5x5 window holds 6 pixels); ``4`` for ``(0, 0)``."""
    out = torch.full_like(dy, 4)
    out[(dx > 0) & (-dx < dy) & (dy <= dx)] = 0
    out[(dy > 0) & (-dy <= dx) & (dx < dy)] = 1
    out[(dx < 0) & (dx <= dy) & (dy < -dx)] = 2
    out[(dy < 0) & (dy < dx) & (dx <= -dy)] = 3
    return out


def width_graph(task: str, num: int):
    """The pixel graph of ``num`` digits typed by side: ``"sectors"``, the 5x5 window
    (Chebyshev radius 2); ``"neighbours"``, the 4-neighbourhood (the 4 sides of radius 1)."""
    kind = dict(radius=2) if task == "sectors" else dict(neighbourhood=4)
    pattern = graphs.grid(DIGIT, DIGIT, num_graphs=num, **kind).pattern
    return pattern, sector(*graphs.edge_offsets(pattern.edge_index(), DIGIT, DIGIT))


def width_targets(images: Tensor, task: str, num_sides: int) -> tuple[Tensor, Tensor]:
    """Targets ``[n * 64, K]`` for the first ``K`` sides (east, south, west, north) and
    whether they exist: the mean intensity of the pixels on that side inside the image
    (``"sectors"``), or the intensity of the neighbour on that side (``"neighbours"``)."""
    radius = 2 if task == "sectors" else 1
    padded = F.pad(images, (radius,) * 4, value=float("nan"))  # (n, 8 + 2r, 8 + 2r)
    offsets = torch.tensor([
        (dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
        if task == "sectors" or abs(dy) + abs(dx) == 1
    ])  # fmt: skip
    side = sector(offsets[:, 0], offsets[:, 1])
    columns = []
    for k in range(num_sides):
        shifted = torch.stack([
            padded[:, radius + dy : radius + dy + DIGIT, radius + dx : radius + dx + DIGIT]
            for dy, dx in offsets[side == k].tolist()
        ])  # fmt: skip
        columns.append(shifted.nanmean(0).reshape(-1))  # NaN where no pixel of the side is in
    target = torch.stack(columns, dim=1)  # (n * 64, K)
    return target.nan_to_num(0.0), ~target.isnan()


def run_width(args, data: dict, run: Run) -> list[dict]:
    """(b): one single-layer model per (task, K, H) on pixel grids; test normalised MSE."""
    (images, _), (test_images, _) = data["train"], data["test"]
    rows = []
    runs = [(t, k, h) for t in args.width_tasks for k in args.relations for h in args.heads]
    for task, num_sides, heads in run.progress(runs, "(b) width vs relations"):
        pattern, edge_type = width_graph(task, args.batch)
        gen = seed_everything(args.seed + 1000 * num_sides + heads)
        picks = [torch.randint(len(images), (args.batch,), generator=gen)
                 for _ in range(args.width_steps)]  # fmt: skip
        target, valid = width_targets(images, task, num_sides)
        mean = (target * valid).sum(0) / valid.sum(0)
        std = (((target - mean) ** 2 * valid).sum(0) / valid.sum(0)).sqrt()
        target = target.view(len(images), DIGIT * DIGIT, num_sides)
        valid = valid.view(len(images), DIGIT * DIGIT, num_sides)
        net = model(1, args.width_d_model, heads, 1, num_sides, num_relations=5)

        def loss_fn(m, pick, target=target, valid=valid, mean=mean, std=std, graph=pattern,
                    edge_type=edge_type):  # fmt: skip
            pred = m(images[pick].reshape(-1, 1), graph, edge_type=edge_type).node  # (B * 64, K)
            y, ok = target[pick].reshape(pred.shape), valid[pick].reshape(pred.shape)
            return (((pred - (y - mean) / std) ** 2) * ok).sum() / ok.sum()

        history, seconds = fit_batches(net, loss_fn, picks, lr=args.lr)
        y_test, ok = width_targets(test_images, task, num_sides)
        test_pattern, test_type = width_graph(task, len(test_images))
        with torch.no_grad():
            pred = net(test_images.reshape(-1, 1), test_pattern, edge_type=test_type).node
        pred = pred * std + mean
        nmse = sum(normalised_mse(pred[ok[:, k], k], y_test[ok[:, k], k])
                   for k in range(num_sides)) / num_sides  # fmt: skip
        rows.append({"task": task, "relations_K": num_sides, "heads_H": heads,
                     "test_nmse": round(nmse, 4), "final_train_loss": round(history[-1], 4),
                     "seconds": round(seconds, 1)})  # fmt: skip
    names = "width_tasks relations heads width_steps width_d_model batch lr seed".split()
    run.table("width_vs_relations", rows, cli.settings_of(args, *names))
    first = args.width_tasks[0]
    title = f"(b) K side means ({first}), one layer, d_model={args.width_d_model}"
    run.heatmap("width_vs_relations", [r for r in rows if r["task"] == first], "heads_H",
                "relations_K", "test_nmse", vmin=0.0, cmap="viridis_r", title=title)  # fmt: skip
    title = "(b) width vs relation types: test normalised MSE"
    print_grid(rows, "heads_H", "relations_K", "test_nmse", title=title)
    return rows


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    args = parse_args(argv)
    result: dict[str, list[dict]] = {"depth": [], "width": []}
    with Run.from_args(args) as run:
        data = load_digits_split(args.seed)
        if args.test_limit is not None:
            data["test"] = tuple(t[: args.test_limit] for t in data["test"])
        print(f"digits: {len(data['train'][1])} training, {len(data['test'][1])} test")
        for part, fn in (("depth", run_depth), ("width", run_width)):
            if args.only in (None, part):
                result[part] = fn(args, data, run)
    return result


if __name__ == "__main__":
    main()
