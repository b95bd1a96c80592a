"""Depth vs hops and width vs relation types on sequences as graphs.

Two experiments on random token sequences, both with exact ground truth by construction:

a. **depth vs hops.** Tokens are drawn uniformly from ``V`` symbols; the label of position ``i``
   at distance ``D`` is the token at position ``i - D``. On a sliding window of radius ``r``
   (:func:`graphattn.graphs.window`) that token is ``h = ceil(D / r)`` hops away, and with
   self-loops the receptive field of ``L`` layers is exactly the ``L``-hop neighbourhood, so
   for ``L < h`` the label is independent of everything the model sees: chance level
   (``1 / V``) by construction. For ``L >= h`` it can be exact. One model per depth ``L``
   predicts every distance ``D = 1 .. r * h_max`` at once; the table is accuracy over
   ``(L, h)``. Full attention (:func:`graphattn.graphs.full`) puts every ``D`` one hop away,
   so one layer reaches all of them. The depth models have as many heads as distances (in
   one layer a head fetches one token), and the full-attention model trains twice as many
   steps, since its one layer must learn every distance at once.
b. **width vs relation types.** Every token holds a value vector in ``[0, 1)^{d_v}`` and one
   of ``K`` classes; the class is the relation type (``edge_type``) of the edges leaving the
   token, and the target at every position is the ``K`` class means (``K * d_v`` numbers).
   One layer of full attention, fixed ``d_model``, ``H`` heads. A head returns one weighted
   mean of its inputs' values, so ``H`` heads deliver ``H`` of the ``K`` separate means:
   ``max(0, 1 - H / K)`` (``reference``) is the normalised error left when every head
   delivers one mean exactly and the others are guessed at their average. It is not a hard
   bound: the relation embedding added to every value also reports how a head's weight
   splits over the relations, and the weights depend on the keys' content, so a head can
   pass on a few numbers per relation besides its mean. With scalar values (``--value-dim
   1``) and long training one head learns all K means that way; with ``d_v = 4`` (the
   default) that side channel is too narrow (see ``docs/studies.md``).

Relative positions enter as relation types: edge ``j -> i`` has type ``j - i`` (shifted to
``0 .. 2R``), learned embeddings added to its key and value (``num_relations``); there is no
other positional information.

Run::

    python examples/sequence_study.py --quick     # the small setting (make demo's)
    python examples/sequence_study.py             # the full setting

Writes ``depth_vs_hops.csv`` (accuracy per depth and hop count), ``depth_vs_distance.csv``
(per distance ``D``), ``width_vs_relations.csv`` and the heat maps ``depth_vs_hops.png``,
``width_vs_relations.png`` into ``--out`` (default ``outputs/sequence_study/``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from graphattn import graphs
from graphattn.experiments import (
    RunFolder,
    fit,
    machine_info,
    machine_line,
    normalised_mse,
    print_grid,
    progress,
    seed_everything,
    write_table,
)
from graphattn.experiments.cli import ScriptParser, float_in, int_at_least, output_folder
from graphattn.experiments.files import staged
from graphattn.experiments.plots import heatmap
from graphattn.nn import GraphTransformer, GraphTransformerConfig
from graphattn.patterns import Pattern

QUICK = dict(
    length=24,
    radius=2,
    max_hops=4,
    depths=[1, 2, 3, 4],
    steps=300,
    d_model=32,
    depth_heads=8,
    relations=[2, 4],
    heads=[1, 2, 4],
    width_d_model=32,
    width_steps=250,
)
FULL = dict(
    length=32,
    radius=2,
    max_hops=5,
    depths=[1, 2, 3, 4, 5],
    steps=400,
    d_model=40,
    depth_heads=10,
    relations=[1, 2, 3, 4],
    heads=[1, 2, 3, 4, 6, 8],
    width_d_model=48,
    width_steps=600,
)
IGNORE = -100  # label of positions with no token D places back


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ScriptParser(doc=__doc__)
    p.add_argument("--quick", action="store_true", help="the small setting (make demo's)")
    p.add_argument("--out", type=output_folder, default=Path("outputs/sequence_study"))
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--only", choices=["depth", "width"], help="run only (a) or only (b)")
    g = p.add_argument_group("(a) depth vs hops")
    g.add_argument("--length", type=int_at_least(1), help="tokens per sequence")
    g.add_argument("--radius", type=int_at_least(1), help="window radius r")
    g.add_argument(
        "--max-hops", type=int_at_least(1), help="largest hop count h (distances D up to r*h)"
    )
    g.add_argument("--depths", type=int_at_least(1), nargs="+", help="model depths L")
    g.add_argument("--vocab", type=int_at_least(1), default=8, help="symbols V (chance = 1/V)")
    g.add_argument("--steps", type=int_at_least(1), help="training steps per window model")
    g.add_argument(
        "--full-steps",
        type=int_at_least(1),
        help="training steps of the full-attention model (default 2x)",
    )
    g.add_argument("--d-model", type=int_at_least(1), help="width of the depth models")
    g.add_argument(
        "--depth-heads",
        type=int_at_least(1),
        help="heads of the depth models (>= the number of distances)",
    )
    g = p.add_argument_group("(b) width vs relation types")
    g.add_argument("--width-length", type=int_at_least(1), default=12, help="tokens per sequence")
    g.add_argument(
        "--relations", type=int_at_least(1), nargs="+", help="classes (relation types) K"
    )
    g.add_argument(
        "--heads", type=int_at_least(1), nargs="+", help="heads H; must divide --width-d-model"
    )
    g.add_argument("--width-d-model", type=int_at_least(1), help="width of the (b) models")
    g.add_argument(
        "--value-dim", type=int_at_least(1), default=4, help="size d_v of every token's value"
    )
    g.add_argument("--width-steps", type=int_at_least(1), help="training steps per model")
    g.add_argument(
        "--width-batch", type=int_at_least(1), default=64, help="sequences per training step"
    )
    p.add_argument("--batch", type=int_at_least(1), default=16, help="sequences per training step")
    p.add_argument(
        "--test-seqs", type=int_at_least(1), default=256, help="test sequences per model"
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
    if args.full_steps is None:
        args.full_steps = 2 * args.steps  # one layer must fetch every distance at once
    for name in (
        "length",
        "radius",
        "max_hops",
        "vocab",
        "steps",
        "full_steps",
        "d_model",
        "depth_heads",
        "width_length",
        "width_d_model",
        "width_steps",
        "width_batch",
        "value_dim",
        "batch",
        "test_seqs",
    ):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if min(args.depths) < 1 or min(args.relations) < 1 or min(args.heads) < 1:
        p.error("--depths, --relations and --heads must be >= 1")
    if args.radius * args.max_hops >= args.length:
        p.error("--length must exceed radius * max-hops (the largest distance D)")
    if max(args.relations) > args.width_length:
        p.error("--width-length must be >= the largest --relations (every class occurs)")
    if args.d_model % args.depth_heads:
        p.error(f"--depth-heads {args.depth_heads} does not divide --d-model {args.d_model}")
    bad = [h for h in args.heads if args.width_d_model % h]
    if bad:
        p.error(f"--heads {bad} do not divide --width-d-model {args.width_d_model}")
    return args


# ---- graphs ----------------------------------------------------------------------------------
def sequence_graph(
    kind: str, num_seqs: int, length: int, radius: int
) -> tuple[Pattern, Tensor, int]:
    """A batch of ``num_seqs`` sequences as a ``"window"`` (radius ``radius``) or ``"full"``
    attention graph, with relative-offset relation types.

    Returns ``(pattern, edge_type, num_relations)``: edge ``j -> i`` (self-loops included) has
    type ``j - i + R``, where ``R`` is the largest offset (``radius`` or ``length - 1``).
    """
    if kind == "window":
        pattern, reach = graphs.window([length] * num_seqs, radius).pattern, radius
    elif kind == "full":
        pattern, reach = graphs.full([length] * num_seqs).pattern, length - 1
    else:
        raise ValueError(f"`kind` must be 'window' or 'full', got {kind!r}")
    src, dst = pattern.edge_index()
    return pattern, src - dst + reach, 2 * reach + 1


# ---- (a) depth vs hops -----------------------------------------------------------------------
def copy_task(
    num_seqs: int, length: int, vocab: int, max_distance: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Random tokens, one-hot ``[S * n, V]``, and labels ``[S * n, max_distance]``: column
    ``D - 1`` holds the token ``D`` positions back (``-100`` where there is none)."""
    tokens = torch.randint(vocab, (num_seqs, length), generator=generator)
    labels = torch.full((num_seqs, length, max_distance), IGNORE)
    for d in range(1, max_distance + 1):
        labels[:, d:, d - 1] = tokens[:, :-d]
    return F.one_hot(tokens, vocab).float().view(-1, vocab), labels.view(-1, max_distance)


def depth_model(args: argparse.Namespace, layers: int, num_relations: int) -> GraphTransformer:
    """The (a) model: ``layers`` blocks, one ``V``-way output per distance ``D``."""
    return GraphTransformer(
        GraphTransformerConfig(
            in_channels=args.vocab,
            channels=args.d_model,
            heads=args.depth_heads,
            num_layers=layers,
            out_channels=args.vocab * args.radius * args.max_hops,
            ffn_ratio=2,
            num_relations=num_relations,
        )
    )


def run_depth(args: argparse.Namespace, info: dict, show: bool) -> list[dict]:
    """(a): one model per (graph, depth); accuracy per distance D and per hop count h."""
    max_d = args.radius * args.max_hops
    runs = [("window", layers) for layers in args.depths] + [("full", 1)]
    per_distance, per_hops = [], []
    for kind, layers in progress(runs, "(a) depth vs hops", enable=show):
        pattern, edge_type, num_rel = sequence_graph(kind, args.batch, args.length, args.radius)
        gen = seed_everything(args.seed + 100 * layers + (kind == "full"))
        model = depth_model(args, layers, num_rel)
        steps = args.steps if kind == "window" else args.full_steps
        batches = [copy_task(args.batch, args.length, args.vocab, max_d, gen) for _ in range(steps)]

        def loss_fn(m, batch, pattern=pattern, edge_type=edge_type):
            x, y = batch
            logits = m(x, pattern, edge_type=edge_type).node.view(-1, args.vocab)
            return F.cross_entropy(logits, y.view(-1), ignore_index=IGNORE)

        t0 = time.perf_counter()
        history = fit(model, loss_fn, lambda e, b=batches: [b[e]], epochs=steps, lr=args.lr)
        seconds = time.perf_counter() - t0
        test_gen = torch.Generator().manual_seed(10_000 + args.seed)
        x, y = copy_task(args.test_seqs, args.length, args.vocab, max_d, test_gen)
        pattern_t, edge_type_t, _ = sequence_graph(kind, args.test_seqs, args.length, args.radius)
        with torch.no_grad():
            logits = model(x, pattern_t, edge_type=edge_type_t).node.view(-1, max_d, args.vocab)
        correct: dict[int, list[Tensor]] = {}
        for d in range(1, max_d + 1):
            keep = y[:, d - 1] != IGNORE
            hits = logits[keep, d - 1].argmax(-1) == y[keep, d - 1]
            hops = math.ceil(d / args.radius)
            correct.setdefault(hops, []).append(hits)
            per_distance.append(
                {
                    "graph": kind,
                    "depth_L": layers,
                    "distance_D": d,
                    "hops_on_graph": hops if kind == "window" else 1,
                    "accuracy": round(float(hits.float().mean()), 4),
                }
            )
        for hops, hits in correct.items():
            distances = [d for d in range(1, max_d + 1) if math.ceil(d / args.radius) == hops]
            per_hops.append(
                {
                    "graph": kind,
                    "depth_L": layers,
                    "model": f"{kind} L={layers}",
                    "hops_h": hops,
                    "distances": f"{distances[0]}-{distances[-1]}",
                    "accuracy": round(float(torch.cat(hits).float().mean()), 4),
                    "chance": round(1 / args.vocab, 4),
                    "final_train_loss": round(history[-1], 4),
                    "seconds": round(seconds, 1),
                }
            )
    settings = _settings(
        args,
        "length",
        "radius",
        "max_hops",
        "depths",
        "vocab",
        "steps",
        "full_steps",
        "d_model",
        "depth_heads",
        "batch",
        "test_seqs",
        "lr",
        "seed",
    )
    write_table(args.out / "depth_vs_hops.csv", per_hops, settings=settings, machine=info)
    write_table(args.out / "depth_vs_distance.csv", per_distance, settings=settings, machine=info)
    heatmap(
        args.out / "depth_vs_hops.png",
        per_hops,
        "model",
        "hops_h",
        "accuracy",
        title=f"(a) copy the token D back: accuracy (window r={args.radius}: h = ceil(D/r) hops)",
        vmin=0.0,
        vmax=1.0,
        footer=machine_line(info),
    )
    return per_hops


# ---- (b) width vs relation types -------------------------------------------------------------
def class_means_task(
    num_seqs: int, length: int, num_classes: int, generator: torch.Generator, value_dim: int = 1
) -> tuple[Tensor, Tensor, Tensor]:
    """Values ``[S * n, d_v]`` uniform in ``[0, 1)``, classes ``[S * n]`` (balanced,
    shuffled) and targets ``[S * n, K * d_v]``: the mean value of every class in the node's
    sequence (class ``k`` in columns ``k * d_v .. (k + 1) * d_v - 1``)."""
    values = torch.rand(num_seqs, length, value_dim, generator=generator)
    classes = torch.stack(
        [torch.randperm(length, generator=generator) % num_classes for _ in range(num_seqs)]
    )  # (S, n): every class occurs
    member = F.one_hot(classes, num_classes).float()  # (S, n, K)
    sums = torch.einsum("snk,snv->skv", member, values)  # (S, K, d_v)
    means = (sums / member.sum(1).unsqueeze(-1)).flatten(1)  # (S, K * d_v)
    return values.view(-1, value_dim), classes.view(-1), means.repeat_interleave(length, dim=0)


def width_model(args: argparse.Namespace, heads: int, num_classes: int) -> GraphTransformer:
    """The (b) model: one block of full attention, ``heads`` heads, ``K`` outputs."""
    return GraphTransformer(
        GraphTransformerConfig(
            in_channels=args.value_dim,
            channels=args.width_d_model,
            heads=heads,
            num_layers=1,
            out_channels=num_classes * args.value_dim,
            ffn_ratio=2,
            num_relations=num_classes,
        )
    )


def run_width(args: argparse.Namespace, info: dict, show: bool) -> list[dict]:
    """(b): one single-layer model per (K, H); test normalised MSE of the K class means."""
    n = args.width_length
    pattern = graphs.full([n] * args.width_batch).pattern
    src = pattern.edge_index()[0]
    test_pattern = graphs.full([n] * args.test_seqs).pattern
    test_src = test_pattern.edge_index()[0]
    rows = []
    runs = [(k, h) for k in args.relations for h in args.heads]
    for num_classes, heads in progress(runs, "(b) width vs relations", enable=show):
        gen = seed_everything(args.seed + 1000 * num_classes + heads)
        batches = [
            class_means_task(args.width_batch, n, num_classes, gen, args.value_dim)
            for _ in range(args.width_steps)
        ]
        targets = torch.cat([b[2] for b in batches])
        mean, std = targets.mean(0), targets.std(0)
        model = width_model(args, heads, num_classes)

        def loss_fn(m, batch, mean=mean, std=std):
            x, classes, y = batch
            pred = m(x, pattern, edge_type=classes[src]).node
            return F.mse_loss(pred, (y - mean) / std)

        t0 = time.perf_counter()
        history = fit(
            model, loss_fn, lambda e, b=batches: [b[e]], epochs=args.width_steps, lr=args.lr
        )
        seconds = time.perf_counter() - t0
        test_gen = torch.Generator().manual_seed(20_000 + args.seed + num_classes)
        x, classes, y = class_means_task(args.test_seqs, n, num_classes, test_gen, args.value_dim)
        with torch.no_grad():
            pred = model(x, test_pattern, edge_type=classes[test_src]).node * std + mean
        nmse = sum(normalised_mse(pred[:, c], y[:, c]) for c in range(y.size(1))) / y.size(1)
        rows.append(
            {
                "relations_K": num_classes,
                "heads_H": heads,
                "test_nmse": round(nmse, 4),
                "reference": round(max(0.0, 1.0 - heads / num_classes), 4),
                "final_train_loss": round(history[-1], 4),
                "seconds": round(seconds, 1),
            }
        )
    settings = _settings(
        args,
        "width_length",
        "relations",
        "heads",
        "width_d_model",
        "width_steps",
        "width_batch",
        "value_dim",
        "test_seqs",
        "lr",
        "seed",
    )
    write_table(args.out / "width_vs_relations.csv", rows, settings=settings, machine=info)
    heatmap(
        args.out / "width_vs_relations.png",
        rows,
        "heads_H",
        "relations_K",
        "test_nmse",
        title=f"(b) K class means, one layer, d_model={args.width_d_model}: test normalised MSE",
        vmin=0.0,
        cmap="viridis_r",
        footer=machine_line(info),
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
    print(f"sequence study, {'quick' if args.quick else 'full'} setting")
    print(machine_line(info))
    for key, value in vars(args).items():
        print(f"  {key}: {value}")
    started = time.perf_counter()
    show = not args.no_progress
    result: dict[str, list[dict]] = {"depth": [], "width": []}
    if args.only != "width":
        result["depth"] = run_depth(args, info, show)
        print_grid(
            result["depth"],
            "model",
            "hops_h",
            "accuracy",
            title=f"(a) depth vs hops: test accuracy (chance {1 / args.vocab:.3f}); "
            f"h = ceil(D / {args.radius}) hops on the window",
        )
    if args.only != "depth":
        result["width"] = run_width(args, info, show)
        print_grid(
            result["width"],
            "heads_H",
            "relations_K",
            "test_nmse",
            title="(b) width vs relation types: test normalised MSE of the K class means",
        )
    print(
        f"\nwrote {', '.join(sorted(p.name for p in staged(args.out).iterdir()))} into {args.out}/"
    )
    print(f"total {time.perf_counter() - started:.0f} s")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
