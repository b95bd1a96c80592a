"""Positional encodings across image sizes (the ViT claim), on real images.

scikit-learn's 8x8 digits (``image_study.py``'s split) cut into 2x2 patches
(:func:`graphattn.graphs.patchify`: a 4x4 grid of tokens), full attention, two layers. One
model is trained on the 8x8 digits with a learned 2-D table of positions
(``GraphTransformerConfig(positional="grid")``), one with a fixed 2-D sinusoidal encoding
(``positional="grid-sinusoidal"``); both are tested on the test digits resampled bilinearly to
other sizes and aspect ratios, so that the patch grid grows (12x12 pixels: 6x6 patches). The
learned table is either *interpolated* to the new grid (bicubic; ``grid_size=`` in the model's
call) or *not interpolated* (each patch takes the entry at its own row and column, clamped to
the table); the sinusoidal encoding takes each patch's own row and column (*index*) or its
centre mapped onto the 4x4 training grid (*scaled*; ``grid_size=``).

Run::

    python examples/image_positional.py --quick
    python examples/image_positional.py --out results/image_study/full   # the recorded run

Writes ``positional.csv`` and ``positional.png`` into ``--out`` (default
``outputs/image_study/``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from image_study import DIGIT, load_digits_split, model
from torch import Tensor

from graphattn import graphs
from graphattn.experiments import (
    Run,
    accuracy,
    cli,
    fit_batches,
    print_table,
    seed_everything,
)
from graphattn.nn import GraphTransformer

PRESETS = {
    "full": dict(
        pe_steps=800, sizes=["8x8", "6x6", "12x12", "16x16", "24x24", "8x12", "12x8", "8x16"]
    ),
    "quick": dict(pe_steps=500, sizes=["8x8", "6x6", "12x12", "16x16", "8x12"]),
}


def parse_size(text: str) -> tuple[int, int]:
    """``"12x8"`` -> ``(12, 8)`` (rows, columns)."""
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"a size must look like 12x8 (rows x columns), got {text!r}")
    return int(parts[0]), int(parts[1])


def parse_args(argv: list[str]):
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="examples/image_positional.py")
    count = cli.int_at_least(1)
    p.add_run_options("outputs/image_study", seed=0)
    p.add_argument("--sizes", nargs="+", help="test sizes HxW (the first is the training size)")
    p.add_argument("--pe-steps", dest="pe_steps", metavar="STEPS", type=count,
                   help="training steps per model")  # fmt: skip
    p.add_argument("--patch", type=count, default=2, help="patch side in pixels (divides 8)")
    p.add_argument("--batch", type=count, default=16, help="digits per training step")
    p.add_argument("--lr", type=cli.float_in(0, None, low_open=True), default=1e-2)
    p.add_argument("--d-model", type=count, default=32)
    p.add_argument("--model-heads", type=count, default=4, help="heads of the models")
    p.add_argument("--test-limit", type=count, help="only the first N test digits")
    args = p.parse_args(argv)
    if DIGIT % args.patch:
        p.error(f"--patch must divide {DIGIT}")
    p.check_divides(args, "model_heads", "d_model")
    try:
        args.sizes = [parse_size(s) for s in args.sizes]
    except ValueError as err:
        p.error(str(err))
    if args.sizes[0] != (DIGIT, DIGIT):
        p.error(f"the first of --sizes is the training size and must be {DIGIT}x{DIGIT}")
    return args


def resample(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Images ``[n, H, W]`` resampled bilinearly to ``size``."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images.unsqueeze(1), size=size, mode="bilinear", align_corners=False)[:, 0]


def classify(net: GraphTransformer, images: Tensor, variant: str, patch: int) -> Tensor:
    """Logits ``[n, 10]`` of the images (any size) under an encoding ``variant``:
    ``interpolated`` / ``scaled`` (the encoding resampled onto the image's patch grid,
    ``grid_size=``), ``not interpolated`` (own row and column, clamped to the learned table)
    or ``index`` (own row and column)."""
    side = DIGIT // patch  # the training grid is side x side patches
    out = []
    for part in images.split(128):
        data = graphs.patchify(part.unsqueeze(1), patch)
        pattern = graphs.grid(*data.grid_size, full=True, num_graphs=part.size(0)).pattern
        if variant in ("interpolated", "scaled"):
            out.append(net(data.x, pattern, pos=data.pos, grid_size=data.grid_size).graph)
        elif variant in ("not interpolated", "index"):
            pos = data.pos.clamp(max=side - 1) if variant == "not interpolated" else data.pos
            out.append(net(data.x, pattern, pos=pos).graph)
        else:
            raise ValueError(f"unknown encoding variant {variant!r}")
    return torch.cat(out)


def measure(args, data: dict, run: Run) -> list[dict]:
    """Train at 8x8 with a learned or a sinusoidal 2-D encoding; test at every size."""
    (images, labels), (test_images, test_labels) = data["train"], data["test"]
    variants = {"learned": ("interpolated", "not interpolated"), "sinusoidal": ("index", "scaled")}
    side = DIGIT // args.patch
    accuracies, trained = {}, {}
    for kind in run.progress(variants, "(c) positional encodings"):
        gen = seed_everything(args.seed + (7 if kind == "learned" else 8))
        net = model(args.patch * args.patch, args.d_model, args.model_heads, 2, 10,
                    positional="grid" if kind == "learned" else "grid-sinusoidal",
                    grid_size=(side, side))  # fmt: skip
        picks = [torch.randint(len(labels), (args.batch,), generator=gen)
                 for _ in range(args.pe_steps)]  # fmt: skip

        def loss_fn(m, pick, variant=variants[kind][0]):
            logits = classify(m, images[pick], variant, args.patch)
            return F.cross_entropy(logits, labels[pick])

        history, seconds = fit_batches(net, loss_fn, picks, lr=args.lr)
        trained[kind] = (round(history[-1], 4), round(seconds, 1))
        with torch.no_grad():
            for size in args.sizes:
                for variant in variants[kind]:
                    logits = classify(net, resample(test_images, size), variant, args.patch)
                    accuracies[size, f"{kind}, {variant}"] = accuracy(logits, test_labels)
    columns = [f"{kind}, {v}" for kind, vs in variants.items() for v in vs]
    rows = [{"size": f"{size[0]}x{size[1]}", **{c: round(accuracies[size, c], 4) for c in columns}}
            for size in args.sizes]  # fmt: skip
    settings = cli.settings_of(args, *"sizes pe_steps d_model model_heads batch lr seed".split())
    settings["final_train_loss"] = {k: v[0] for k, v in trained.items()}
    settings["train_seconds"] = {k: v[1] for k, v in trained.items()}
    run.table("positional", rows, settings)

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

    run.figure("positional", draw, size=(7.0, 4.0),
               title="(c) 2-D positional encodings across image sizes")  # fmt: skip
    print_table(rows, title="(c) positional encodings across image sizes: test accuracy")
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    with Run.from_args(args) as run:
        data = load_digits_split(args.seed)
        if args.test_limit is not None:
            data["test"] = tuple(t[: args.test_limit] for t in data["test"])
        print(f"digits: {len(data['train'][1])} training, {len(data['test'][1])} test")
        return measure(args, data, run)


if __name__ == "__main__":
    main()
