"""Depth vs hops, width vs relation types and positional encodings on real images.

The 1,797 handwritten digits (8x8 pixels, 16 grey levels) that ship with scikit-learn
(:func:`sklearn.datasets.load_digits`), split once into training and test digits, as grid
graphs (:func:`graphattn.graphs.grid`, :func:`graphattn.graphs.patchify`):

a. **depth vs hops.** A canvas of ``rows x cols`` random digits is cut into 8x8 patches, one
   digit per patch, on the 8-neighbourhood patch grid (hop count = Chebyshev distance). The
   label of a patch at distance ``h`` is the class of the digit ``h`` patches to its right.
   Digits are drawn independently, so for ``L < h`` the label is independent of everything an
   ``L``-layer model sees (with self-loops its receptive field is exactly the ``L``-hop
   neighbourhood): chance level (0.1) by construction. For ``L >= h`` the accuracy is bounded
   by how well a digit can be recognised at all. One model per depth ``L`` predicts every
   ``h = 1 .. h_max`` at once; the table is accuracy over ``(L, h)``.
b. **width vs relation types.** The pixel grid of every digit with edges typed by side
   (``edge_type``: east, south, west, north; the self-loop has its own type). Task
   ``sectors``: the 5x5 window around every pixel (Chebyshev radius 2), six pixels per side;
   the target is the mean intensity on each of the first ``K`` sides, ``K`` separate
   aggregates. Task ``neighbours``: the 4-neighbourhood, one pixel per side; the target is
   the intensity of each of the first ``K`` neighbours. One layer, fixed ``d_model``, ``H``
   heads; test normalised MSE over ``(H, K)``. Neighbouring pixels are correlated, so a head
   that mixes sides still predicts part of every target; and with one edge per relation a
   single head can report every neighbour through how its weight splits over the relation
   embeddings (see ``docs/studies.md``).
c. **positional encodings across image sizes (the ViT claim).** Digits cut into 2x2 patches
   (a 4x4 grid of tokens), full attention, and a learned 2-D table of positions
   (:class:`graphattn.nn.positional.GridPositionalEncoding`) added to the embedded patches;
   trained on the 8x8 digits and tested on the test digits resampled (bilinear,
   :func:`torch.nn.functional.interpolate`) to other sizes and aspect ratios, so that the
   patch grid grows (12x12 pixels: 6x6 patches). The table is either *interpolated* to the
   new grid (bicubic, :func:`~graphattn.nn.positional.interpolate_grid`, ``grid_size=`` in
   the model) or *not interpolated* (each patch takes the entry at its own row and column,
   clamped to the last one). Against it, a fixed 2-D *sinusoidal* encoding in the table's
   place (:class:`SinusoidalGridEncoding`), of each patch's own row and column (``index``) or
   of its centre mapped onto the 4x4 training grid (``scaled``).

Run::

    python examples/image_study.py --quick     # the small setting (make demo's)
    python examples/image_study.py             # the full setting

Writes ``depth_vs_hops.csv``, ``width_vs_relations.csv``, ``positional.csv`` and the figures
``depth_vs_hops.png``, ``width_vs_relations.png``, ``positional.png`` into ``--out``
(default ``outputs/image_study/``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphattn import graphs
from graphattn.experiments import (
    RunFolder,
    accuracy,
    fit,
    machine_info,
    machine_line,
    normalised_mse,
    print_grid,
    print_table,
    progress,
    seed_everything,
    split_indices,
    write_table,
)
from graphattn.experiments.cli import ScriptParser, float_in, int_at_least, int_in, output_folder
from graphattn.experiments.files import staged
from graphattn.experiments.plots import figure, heatmap
from graphattn.nn import GraphTransformer, GraphTransformerConfig
from graphattn.nn.positional import sinusoidal_table
from graphattn.patterns import Pattern

QUICK = dict(
    max_hops=4,
    depths=[1, 2, 3, 4],
    steps=300,
    relations=[2, 4],
    heads=[1, 2, 4],
    width_steps=150,
    width_d_model=32,
    width_tasks=["sectors"],
    pe_steps=500,
    sizes=["8x8", "6x6", "12x12", "16x16", "8x12"],
)
FULL = dict(
    max_hops=5,
    depths=[1, 2, 3, 4, 5, 6],
    steps=600,
    relations=[1, 2, 3, 4],
    heads=[1, 2, 3, 4, 6, 8],
    width_steps=400,
    width_d_model=48,
    width_tasks=["sectors", "neighbours"],
    pe_steps=800,
    sizes=["8x8", "6x6", "12x12", "16x16", "24x24", "8x12", "12x8", "8x16"],
)
IGNORE = -100
DIGIT = 8  # side of a digit in pixels


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ScriptParser(doc=__doc__)
    p.add_argument("--quick", action="store_true", help="the small setting (make demo's)")
    p.add_argument("--out", type=output_folder, default=Path("outputs/image_study"))
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--only", choices=["depth", "width", "positional"], help="run one part")
    g = p.add_argument_group("(a) depth vs hops")
    g.add_argument(
        "--max-hops", type=int_at_least(1), help="largest distance h (canvas: 2 x (h + 2))"
    )
    g.add_argument("--depths", type=int_at_least(1), nargs="+", help="model depths L")
    g.add_argument("--steps", type=int_at_least(1), help="training steps per model")
    g.add_argument("--canvas-rows", type=int_at_least(1), default=2, help="digit rows per canvas")
    g = p.add_argument_group("(b) width vs relation types")
    g.add_argument("--relations", type=int_in(1, 4), nargs="+", help="sides K (1..4)")
    g.add_argument(
        "--width-tasks", nargs="+", choices=["sectors", "neighbours"], help="targets of (b)"
    )
    g.add_argument(
        "--heads", type=int_at_least(1), nargs="+", help="heads H; must divide --d-model"
    )
    g.add_argument("--width-steps", type=int_at_least(1), help="training steps per model")
    g.add_argument("--width-d-model", type=int_at_least(1), help="width of the (b) models")
    g = p.add_argument_group("(c) positional encodings across sizes")
    g.add_argument("--sizes", nargs="+", help="test sizes HxW (the first is the training size)")
    g.add_argument("--pe-steps", type=int_at_least(1), help="training steps per model")
    g.add_argument(
        "--patch", type=int_at_least(1), default=2, help="patch side in pixels (divides 8)"
    )
    p.add_argument("--d-model", type=int_at_least(1), default=32)
    p.add_argument(
        "--model-heads", type=int_at_least(1), default=4, help="heads of the (a) and (c) models"
    )
    p.add_argument("--batch", type=int_at_least(1), default=16, help="canvases or digits per step")
    p.add_argument(
        "--test-limit", type=int_at_least(1), help="use only the first N test digits (default: all)"
    )
    p.add_argument(
        "--lr",
        type=float_in(0, None, low_open=True),
        default=1e-2,
        help="peak learning rate (one-cycle)",
    )
    p.add_argument("--threads", type=int_at_least(1), default=1, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = p.parse_args(argv)
    base = QUICK if args.quick else FULL
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for name in (
        "max_hops",
        "steps",
        "canvas_rows",
        "width_steps",
        "pe_steps",
        "d_model",
        "model_heads",
        "width_d_model",
        "batch",
    ):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.test_limit is not None and args.test_limit < 1:
        p.error("--test-limit must be >= 1")
    if args.patch < 1 or DIGIT % args.patch:
        p.error(f"--patch must divide {DIGIT}")
    if min(args.depths) < 1 or min(args.heads) < 1:
        p.error("--depths and --heads must be >= 1")
    if not set(args.relations) <= {1, 2, 3, 4}:
        p.error("--relations must be in 1..4 (east, south, west, north)")
    if args.d_model % args.model_heads:
        p.error(f"--model-heads {args.model_heads} does not divide --d-model {args.d_model}")
    bad = [h for h in args.heads if args.width_d_model % h]
    if bad:
        p.error(f"--heads {bad} do not divide --width-d-model {args.width_d_model}")
    try:
        args.sizes = [parse_size(s) for s in args.sizes]
    except ValueError as err:
        p.error(str(err))
    if args.sizes[0] != (DIGIT, DIGIT):
        p.error(f"the first of --sizes is the training size and must be {DIGIT}x{DIGIT}")
    return args


def parse_size(text: str) -> tuple[int, int]:
    """``"12x8"`` -> ``(12, 8)`` (rows, columns)."""
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"a size must look like 12x8 (rows x columns), got {text!r}")
    return int(parts[0]), int(parts[1])


# ---- data ------------------------------------------------------------------------------------
def load_digits_split(seed: int, test_fraction: float = 0.2) -> dict[str, tuple[Tensor, Tensor]]:
    """scikit-learn's digits as float images ``[n, 8, 8]`` in ``[0, 1]`` and labels, split
    once into ``"train"`` and ``"test"``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32) / 16.0  # (1797, 8, 8)
    labels = torch.tensor(digits.target, dtype=torch.long)
    train, test = split_indices(len(labels), test_fraction, seed)
    return {"train": (images[train], labels[train]), "test": (images[test], labels[test])}


def edge_offsets(pattern: Pattern, rows: int, cols: int) -> tuple[Tensor, Tensor]:
    """The offset ``(dy, dx)`` from target to source of every edge of a batch of
    ``rows x cols`` grids."""
    src, dst = pattern.edge_index()
    local_src, local_dst = src % (rows * cols), dst % (rows * cols)
    return local_src // cols - local_dst // cols, local_src % cols - local_dst % cols


def patch_tokens(images: Tensor, patch: int) -> tuple[Tensor, Tensor, tuple[int, int]]:
    """Images ``[n, H, W]`` as patch tokens (:func:`~graphattn.graphs.patchify`): features
    ``[n * P, patch * patch]`` (image by image, patches in raster order), (row, column) of
    every patch ``[n * P, 2]`` and the patch grid ``(rows, cols)``.

    One ``patchify`` call cuts all images: given as the channels of one image, each patch's
    features come out as ``[n, patch, patch]``, which are split back into the ``n`` images.
    """
    n = images.size(0)
    data = graphs.patchify(images, patch)  # x: (P, n * patch * patch)
    num_patches = data.x.size(0)
    x = data.x.view(num_patches, n, patch * patch).transpose(0, 1).reshape(-1, patch * patch)
    return x, data.pos.repeat(n, 1), data.grid_size


def digit_canvas(
    images: Tensor,
    labels: Tensor,
    num: int,
    rows: int,
    cols: int,
    max_hops: int,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """``num`` canvases of ``rows x cols`` random digits, as patch features ``[num * P, 64]``
    (:func:`~graphattn.graphs.patchify`, one digit per patch) and labels
    ``[num * P, max_hops]``: column ``h - 1`` holds the class of the digit ``h`` patches to the
    right (``-100`` past the edge)."""
    pick = torch.randint(len(labels), (num, rows, cols), generator=generator)
    canvas = images[pick].permute(0, 1, 3, 2, 4).reshape(num, 1, rows * DIGIT, cols * DIGIT)
    x, _, _ = patch_tokens(canvas[:, 0], DIGIT)  # (num * P, 64)
    classes = labels[pick]  # (num, rows, cols)
    target = torch.full((num, rows, cols, max_hops), IGNORE)
    for h in range(1, max_hops + 1):
        target[:, :, : cols - h, h - 1] = classes[:, :, h:]
    return x, target.view(-1, max_hops)


# ---- (a) depth vs hops -----------------------------------------------------------------------
def depth_model(args: argparse.Namespace, layers: int) -> GraphTransformer:
    """The (a) model: ``layers`` blocks over the patch grid, 10 classes per distance."""
    return GraphTransformer(
        GraphTransformerConfig(
            in_channels=DIGIT * DIGIT,
            channels=args.d_model,
            heads=args.model_heads,
            num_layers=layers,
            out_channels=10 * args.max_hops,
            ffn_ratio=2,
            num_relations=9,
        )
    )


def canvas_graph(num: int, rows: int, cols: int) -> tuple[Pattern, Tensor]:
    """The 8-neighbourhood grid over ``num`` canvases and its direction types."""
    pattern = graphs.grid(rows, cols, neighbourhood=8, num_graphs=num).pattern
    dy, dx = edge_offsets(pattern, rows, cols)
    return pattern, (dy + 1) * 3 + (dx + 1)  # 9 types: the 8 directions and the self-loop


def run_depth(args: argparse.Namespace, data: dict, info: dict, show: bool) -> list[dict]:
    """(a): one model per depth; accuracy per distance h on canvases of test digits."""
    rows, cols = args.canvas_rows, args.max_hops + 2
    pattern, edge_type = canvas_graph(args.batch, rows, cols)
    test_num = max(1, 512 // rows)  # 512 rows of test canvases, of the test digits
    test_pattern, test_type = canvas_graph(test_num, rows, cols)
    test_gen = torch.Generator().manual_seed(30_000 + args.seed)
    x_test, y_test = digit_canvas(*data["test"], test_num, rows, cols, args.max_hops, test_gen)
    out = []
    for layers in progress(args.depths, "(a) depth vs hops", enable=show):
        gen = seed_everything(args.seed + 100 * layers)
        model = depth_model(args, layers)
        batches = [
            digit_canvas(*data["train"], args.batch, rows, cols, args.max_hops, gen)
            for _ in range(args.steps)
        ]

        def loss_fn(m, batch):
            x, y = batch
            logits = m(x, pattern, edge_type=edge_type).node.view(-1, 10)
            return F.cross_entropy(logits, y.view(-1), ignore_index=IGNORE)

        t0 = time.perf_counter()
        history = fit(model, loss_fn, lambda e, b=batches: [b[e]], epochs=args.steps, lr=args.lr)
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            logits = model(x_test, test_pattern, edge_type=test_type).node
        logits = logits.view(-1, args.max_hops, 10)
        for h in range(1, args.max_hops + 1):
            keep = y_test[:, h - 1] != IGNORE
            out.append(
                {
                    "depth_L": layers,
                    "hops_h": h,
                    "accuracy": round(accuracy(logits[keep, h - 1], y_test[keep, h - 1]), 4),
                    "chance": 0.1,
                    "test_labels": int(keep.sum()),
                    "final_train_loss": round(history[-1], 4),
                    "seconds": round(seconds, 1),
                }
            )
    settings = _settings(
        args,
        "max_hops",
        "depths",
        "steps",
        "canvas_rows",
        "d_model",
        "model_heads",
        "batch",
        "lr",
        "seed",
    )
    write_table(args.out / "depth_vs_hops.csv", out, settings=settings, machine=info)
    heatmap(
        args.out / "depth_vs_hops.png",
        out,
        "depth_L",
        "hops_h",
        "accuracy",
        title="(a) class of the digit h patches away: test accuracy (chance 0.1)",
        vmin=0.0,
        vmax=1.0,
        footer=machine_line(info),
    )
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


def width_graph(task: str, num: int) -> tuple[Pattern, Tensor]:
    """The pixel graph of ``num`` digits and its relation types: ``"sectors"``, the 5x5
    window (Chebyshev radius 2) typed by side; ``"neighbours"``, the 4-neighbourhood typed by
    direction."""
    if task == "sectors":
        pattern = graphs.grid(DIGIT, DIGIT, radius=2, num_graphs=num).pattern
        dy, dx = edge_offsets(pattern, DIGIT, DIGIT)
        return pattern, sector(dy, dx)
    pattern = graphs.grid(DIGIT, DIGIT, neighbourhood=4, num_graphs=num).pattern
    dy, dx = edge_offsets(pattern, DIGIT, DIGIT)
    return pattern, sector(dy, dx)  # the 4 neighbours are the 4 sides of radius 1


def width_targets(images: Tensor, task: str, num_sides: int) -> tuple[Tensor, Tensor]:
    """Targets ``[n * 64, K]`` for the first ``K`` sides (east, south, west, north) and
    whether they exist ``[n * 64, K]``: the mean intensity of the pixels on that side inside
    the image (``"sectors"``), or the intensity of the neighbour on that side
    (``"neighbours"``)."""
    radius = 2 if task == "sectors" else 1
    padded = F.pad(images, (radius,) * 4, value=float("nan"))  # (n, 8 + 2r, 8 + 2r)
    offsets = torch.tensor(
        [
            (dy, dx)
            for dy in range(-radius, radius + 1)
            for dx in range(-radius, radius + 1)
            if task == "sectors" or abs(dy) + abs(dx) == 1
        ]
    )
    side = sector(offsets[:, 0], offsets[:, 1])
    columns = []
    for k in range(num_sides):
        shifted = torch.stack(
            [
                padded[:, radius + dy : radius + dy + DIGIT, radius + dx : radius + dx + DIGIT]
                for dy, dx in offsets[side == k].tolist()
            ]
        )
        columns.append(shifted.nanmean(0).reshape(-1))  # NaN where no pixel of the side is in
    target = torch.stack(columns, dim=1)  # (n * 64, K)
    valid = ~target.isnan()
    return target.nan_to_num(0.0), valid


def width_model(args: argparse.Namespace, heads: int, num_sides: int) -> GraphTransformer:
    """The (b) model: one block over the pixel grid, ``K`` outputs."""
    return GraphTransformer(
        GraphTransformerConfig(
            in_channels=1,
            channels=args.width_d_model,
            heads=heads,
            num_layers=1,
            out_channels=num_sides,
            ffn_ratio=2,
            num_relations=5,
        )
    )


def run_width(args: argparse.Namespace, data: dict, info: dict, show: bool) -> list[dict]:
    """(b): one single-layer model per (task, K, H) on pixel grids; test normalised MSE."""
    images, _ = data["train"]
    test_images, _ = data["test"]
    rows = []
    runs = [(t, k, h) for t in args.width_tasks for k in args.relations for h in args.heads]
    for task, num_sides, heads in progress(runs, "(b) width vs relations", enable=show):
        pattern, edge_type = width_graph(task, args.batch)
        gen = seed_everything(args.seed + 1000 * num_sides + heads)
        picks = [
            torch.randint(len(images), (args.batch,), generator=gen)
            for _ in range(args.width_steps)
        ]
        target, valid = width_targets(images, task, num_sides)
        mean = (target * valid).sum(0) / valid.sum(0)
        std = (((target - mean) ** 2 * valid).sum(0) / valid.sum(0)).sqrt()
        target = target.view(len(images), DIGIT * DIGIT, num_sides)
        valid = valid.view(len(images), DIGIT * DIGIT, num_sides)
        model = width_model(args, heads, num_sides)

        def loss_fn(
            m,
            pick,
            target=target,
            valid=valid,
            mean=mean,
            std=std,
            graph=pattern,
            edge_type=edge_type,
        ):
            x = images[pick].reshape(-1, 1)
            pred = m(x, graph, edge_type=edge_type).node  # (B * 64, K)
            y, ok = target[pick].reshape(pred.shape), valid[pick].reshape(pred.shape)
            return (((pred - (y - mean) / std) ** 2) * ok).sum() / ok.sum()

        t0 = time.perf_counter()
        history = fit(
            model, loss_fn, lambda e, b=picks: [b[e]], epochs=args.width_steps, lr=args.lr
        )
        seconds = time.perf_counter() - t0
        y_test, ok = width_targets(test_images, task, num_sides)
        test_pattern, test_type = width_graph(task, len(test_images))
        with torch.no_grad():
            pred = model(test_images.reshape(-1, 1), test_pattern, edge_type=test_type).node
        pred = pred * std + mean
        nmse = (
            sum(normalised_mse(pred[ok[:, k], k], y_test[ok[:, k], k]) for k in range(num_sides))
            / num_sides
        )
        rows.append(
            {
                "task": task,
                "relations_K": num_sides,
                "heads_H": heads,
                "test_nmse": round(nmse, 4),
                "final_train_loss": round(history[-1], 4),
                "seconds": round(seconds, 1),
            }
        )
    settings = _settings(
        args,
        "width_tasks",
        "relations",
        "heads",
        "width_steps",
        "width_d_model",
        "batch",
        "lr",
        "seed",
    )
    write_table(args.out / "width_vs_relations.csv", rows, settings=settings, machine=info)
    heatmap(
        args.out / "width_vs_relations.png",
        [r for r in rows if r["task"] == args.width_tasks[0]],
        "heads_H",
        "relations_K",
        "test_nmse",
        title=f"(b) K side means ({args.width_tasks[0]}), one layer, d_model={args.width_d_model}",
        vmin=0.0,
        cmap="viridis_r",
        footer=machine_line(info),
    )
    return rows


# ---- (c) positional encodings across sizes ---------------------------------------------------
def resample(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Images ``[n, H, W]`` resampled bilinearly to ``size``."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images.unsqueeze(1), size=size, mode="bilinear", align_corners=False)[:, 0]


class SinusoidalGridEncoding(nn.Module):
    """Fixed 2-D sin-cos encoding in place of a model's learned grid table: half the channels
    encode the row, half the column (:func:`~graphattn.nn.positional.sinusoidal_table`).

    ``forward(pos, grid_size)`` has the signature of
    :class:`~graphattn.nn.positional.GridPositionalEncoding`. With ``mode = "index"`` a patch
    is encoded at its own (row, col); with ``mode = "scaled"`` its centre is first mapped onto
    the ``grid_size`` it was trained on, so a larger image spans the same range of angles.
    """

    def __init__(self, channels: int, grid_size: tuple[int, int]):
        super().__init__()
        self.channels, self.grid_size, self.mode = channels, tuple(grid_size), "index"

    def forward(self, pos: Tensor, grid_size: tuple[int, int] | None = None) -> Tensor:
        where = pos.double()
        if self.mode == "scaled" and grid_size is not None:  # patch centres onto the grid
            scale = torch.tensor(self.grid_size).double() / torch.tensor(grid_size).double()
            where = (where + 0.5) * scale - 0.5
        half = self.channels // 2
        rows = sinusoidal_table(where[:, 0], half)
        cols = sinusoidal_table(where[:, 1], self.channels - half)
        return torch.cat([rows, cols], dim=1).float()  # (N, channels)


def positional_model(args: argparse.Namespace, kind: str) -> GraphTransformer:
    """The (c) classifier over patch tokens, with a learned 2-D table over the training grid
    (``"learned"``) or a fixed :class:`SinusoidalGridEncoding` in its place
    (``"sinusoidal"``); both are added to the embedded patches."""
    side = DIGIT // args.patch
    model = GraphTransformer(
        GraphTransformerConfig(
            in_channels=args.patch * args.patch,
            channels=args.d_model,
            heads=args.model_heads,
            num_layers=2,
            out_channels=10,
            ffn_ratio=2,
            positional="grid",
            grid_size=(side, side),
        )
    )
    if kind == "sinusoidal":
        model.positional = SinusoidalGridEncoding(args.d_model, (side, side))
    return model


def classify(
    model: GraphTransformer, images: Tensor, variant: str, args: argparse.Namespace
) -> Tensor:
    """Logits ``[n, 10]`` of the images (any size) under an encoding ``variant``:
    ``interpolated`` / ``not interpolated`` (learned table), ``index`` / ``scaled``
    (sinusoidal)."""
    side = DIGIT // args.patch  # the training grid is side x side patches
    out = []
    for part in images.split(128):
        x, pos, grid_size = patch_tokens(part, args.patch)
        pattern = graphs.grid(*grid_size, full=True, num_graphs=part.size(0)).pattern
        if variant == "interpolated":  # the table resized to the grid (bicubic)
            logits = model(x, pattern, pos=pos, grid_size=grid_size).graph
        elif variant == "not interpolated":  # own (row, col), clamped to the table
            logits = model(x, pattern, pos=pos.clamp(max=side - 1)).graph
        elif variant in ("index", "scaled"):
            model.positional.mode = variant
            logits = model(x, pattern, pos=pos, grid_size=grid_size).graph
        else:
            raise ValueError(f"unknown encoding variant {variant!r}")
        out.append(logits)
    return torch.cat(out)


def run_positional(args: argparse.Namespace, data: dict, info: dict, show: bool) -> list[dict]:
    """(c): train at 8x8 with a learned or a sinusoidal encoding; test at every size."""
    images, labels = data["train"]
    test_images, test_labels = data["test"]
    variants = {"learned": ("interpolated", "not interpolated"), "sinusoidal": ("index", "scaled")}
    accuracies: dict[tuple[str, str], float] = {}
    train_info = {}
    for kind in progress(variants, "(c) positional encodings", enable=show):
        gen = seed_everything(args.seed + (7 if kind == "learned" else 8))
        model = positional_model(args, kind)
        picks = [
            torch.randint(len(labels), (args.batch,), generator=gen) for _ in range(args.pe_steps)
        ]
        train_variant = variants[kind][0]

        def loss_fn(m, pick, variant=train_variant):
            return F.cross_entropy(classify(m, images[pick], variant, args), labels[pick])

        t0 = time.perf_counter()
        history = fit(model, loss_fn, lambda e, b=picks: [b[e]], epochs=args.pe_steps, lr=args.lr)
        train_info[kind] = (history[-1], time.perf_counter() - t0)
        with torch.no_grad():
            for size in args.sizes:
                resized = resample(test_images, size)
                for variant in variants[kind]:
                    logits = classify(model, resized, variant, args)
                    accuracies[size, f"{kind}, {variant}"] = accuracy(logits, test_labels)
    columns = [f"{kind}, {v}" for kind, vs in variants.items() for v in vs]
    rows = [
        {"size": f"{size[0]}x{size[1]}", **{c: round(accuracies[size, c], 4) for c in columns}}
        for size in args.sizes
    ]
    settings = _settings(args, "sizes", "pe_steps", "d_model", "model_heads", "batch", "lr", "seed")
    settings["final_train_loss"] = {k: round(v[0], 4) for k, v in train_info.items()}
    settings["train_seconds"] = {k: round(v[1], 1) for k, v in train_info.items()}
    write_table(args.out / "positional.csv", rows, settings=settings, machine=info)

    def draw(ax):
        width = 0.8 / len(columns)
        for i, column in enumerate(columns):
            xs = [j + (i - (len(columns) - 1) / 2) * width for j in range(len(rows))]
            ax.bar(xs, [r[column] for r in rows], width, label=column)
        ax.set_xticks(range(len(rows)), [r["size"] for r in rows])
        ax.set_xlabel("test image size (rows x columns); trained on 8x8")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
        ax.axhline(0.1, color="grey", lw=0.8, ls=":", label="chance (10 classes)")
        ax.legend(fontsize=7, loc="lower left")

    figure(
        args.out / "positional.png",
        draw,
        size=(7.0, 4.0),
        footer=machine_line(info),
        title="(c) 2-D positional encodings across image sizes",
    )
    return rows


# ---- main ------------------------------------------------------------------------------------
def _settings(args: argparse.Namespace, *names: str) -> dict:
    return {"setting": "quick" if args.quick else "full", **{n: getattr(args, n) for n in names}}


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    args = parse_args(argv)
    with RunFolder(args.out):  # writable? checked now; the files land together at the end
        return run(args)


def run(args: argparse.Namespace) -> dict[str, list[dict]]:
    torch.set_num_threads(args.threads)
    info = machine_info()
    print(f"image study, {'quick' if args.quick else 'full'} setting")
    print(machine_line(info))
    for key, value in vars(args).items():
        print(f"  {key}: {value}")
    started = time.perf_counter()
    show = not args.no_progress
    data = load_digits_split(args.seed)
    if args.test_limit is not None:
        data["test"] = tuple(t[: args.test_limit] for t in data["test"])
    print(f"  digits: {len(data['train'][1])} training, {len(data['test'][1])} test")
    result: dict[str, list[dict]] = {"depth": [], "width": [], "positional": []}
    if args.only in (None, "depth"):
        result["depth"] = run_depth(args, data, info, show)
        print_grid(
            result["depth"],
            "depth_L",
            "hops_h",
            "accuracy",
            title="(a) depth vs hops: test accuracy (chance 0.1)",
        )
    if args.only in (None, "width"):
        result["width"] = run_width(args, data, info, show)
        print_grid(
            result["width"],
            "heads_H",
            "relations_K",
            "test_nmse",
            title="(b) width vs relation types: test normalised MSE",
        )
    if args.only in (None, "positional"):
        result["positional"] = run_positional(args, data, info, show)
        print_table(
            result["positional"], title="(c) positional encodings across image sizes: test accuracy"
        )
    print(
        f"\nwrote {', '.join(sorted(p.name for p in staged(args.out).iterdir()))} into {args.out}/"
    )
    print(f"total {time.perf_counter() - started:.0f} s")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
