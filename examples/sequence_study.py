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
   splits over the relations, so a head can pass on a few numbers per relation besides its
   mean. With scalar values (``--value-dim 1``) and long training one head learns all K
   means that way; with ``d_v = 4`` (the default) that side channel is too narrow (see
   ``docs/studies.md``).

Relative positions enter as relation types: edge ``j -> i`` has type ``j - i`` (shifted to
``0 .. 2R``), learned embeddings added to its key and value (``num_relations``); there is no
other positional information.

Run::

    python examples/sequence_study.py --quick     # the small setting (make demo's)
    python examples/sequence_study.py             # the full setting

Writes ``depth_vs_hops`` (accuracy per depth and hop count; CSV and heat map),
``depth_vs_distance.csv`` (per distance ``D``) and ``width_vs_relations`` (CSV and heat map)
into ``--out`` (default ``outputs/sequence_study/``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from graphattn import graphs
from graphattn.experiments import Run, cli, fit_batches, normalised_mse, print_grid, seed_everything
from graphattn.nn import GraphTransformer, GraphTransformerConfig

PRESETS = {
    "full": dict(length=32, radius=2, max_hops=5, depths=[1, 2, 3, 4, 5], steps=400, d_model=40,
                 depth_heads=10, relations=[1, 2, 3, 4], heads=[1, 2, 3, 4, 6, 8],
                 width_d_model=48, width_steps=600),
    "quick": dict(length=24, radius=2, max_hops=4, depths=[1, 2, 3, 4], steps=300, d_model=32,
                  depth_heads=8, relations=[2, 4], heads=[1, 2, 4], width_d_model=32,
                  width_steps=250),
}  # fmt: skip
DEPTH = "length radius max_hops depths vocab steps full_steps d_model depth_heads batch".split()
WIDTH = "width_length relations heads width_d_model width_steps width_batch value_dim".split()
IGNORE = -100  # label of positions with no token D places back


def parse_args(argv: list[str]):
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="examples/sequence_study.py")
    count = cli.int_at_least(1)
    positive = cli.float_in(0, None, low_open=True)
    p.add_run_options("outputs/sequence_study", seed=0)
    p.add_argument("--only", choices=["depth", "width"], help="run only (a) or only (b)")
    g = p.add_argument_group("(a) depth vs hops")
    g.add_argument("--length", type=count, help="tokens per sequence")
    g.add_argument("--radius", type=count, help="window radius r")
    g.add_argument("--max-hops", type=count, help="largest hop count h (D <= r*h)")
    g.add_argument("--depths", type=count, nargs="+", help="model depths L")
    g.add_argument("--vocab", type=count, default=8, help="symbols V (chance = 1/V)")
    g.add_argument("--steps", type=count, help="training steps per window model")
    g.add_argument("--full-steps", type=count,
                   help="training steps of the full-attention model (default 2x)")  # fmt: skip
    g.add_argument("--d-model", type=count, help="width of the depth models")
    g.add_argument("--depth-heads", type=count, help="heads (>= the distances)")
    g = p.add_argument_group("(b) width vs relation types")
    g.add_argument("--width-length", type=count, default=12, help="tokens per sequence")
    g.add_argument("--relations", type=count, nargs="+", help="classes K")
    g.add_argument("--heads", type=count, nargs="+", help="heads H (divide the width)")
    g.add_argument("--width-d-model", type=count, help="width of the (b) models")
    g.add_argument("--value-dim", type=count, default=4, help="size d_v of a value")
    g.add_argument("--width-steps", type=count, help="training steps per model")
    g.add_argument("--width-batch", type=count, default=64, help="sequences per step")
    p.add_argument("--batch", type=count, default=16, help="sequences per step")
    p.add_argument("--test-seqs", type=count, default=256, help="test sequences")
    p.add_argument("--lr", type=positive, default=1e-2)
    args = p.parse_args(argv)
    if args.full_steps is None:
        args.full_steps = 2 * args.steps  # one layer must fetch every distance at once
    if args.radius * args.max_hops >= args.length:
        p.error("--length must exceed radius * max-hops (the largest distance D)")
    if max(args.relations) > args.width_length:
        p.error("--width-length must be >= the largest --relations (every class occurs)")
    p.check_divides(args, "depth_heads", "d_model")
    p.check_divides(args, "heads", "width_d_model")
    return args


def sequence_graph(kind: str, num_seqs: int, length: int, radius: int):
    """``num_seqs`` sequences as a ``"window"`` (radius ``radius``) or ``"full"`` attention
    graph with relative-offset relation types: ``(pattern, edge_type, num_relations)``, edge
    ``j -> i`` (self-loops included) of type ``j - i + R`` (``R``: the largest offset)."""
    if kind == "window":
        pattern, reach = graphs.window([length] * num_seqs, radius).pattern, radius
    elif kind == "full":
        pattern, reach = graphs.full([length] * num_seqs).pattern, length - 1
    else:
        raise ValueError(f"`kind` must be 'window' or 'full', got {kind!r}")
    src, dst = pattern.edge_index()
    return pattern, src - dst + reach, 2 * reach + 1


# ---- (a) depth vs hops -----------------------------------------------------------------------
def copy_task(num_seqs, length, vocab, max_distance, generator) -> tuple[Tensor, Tensor]:
    """Random tokens, one-hot ``[S * n, V]``, and labels ``[S * n, max_distance]``: column
    ``D - 1`` holds the token ``D`` positions back (``-100`` where there is none)."""
    tokens = torch.randint(vocab, (num_seqs, length), generator=generator)
    labels = torch.full((num_seqs, length, max_distance), IGNORE)
    for d in range(1, max_distance + 1):
        labels[:, d:, d - 1] = tokens[:, :-d]
    return F.one_hot(tokens, vocab).float().view(-1, vocab), labels.view(-1, max_distance)


def depth_model(args, layers: int, num_relations: int) -> GraphTransformer:
    """The (a) model: ``layers`` blocks, one ``V``-way output per distance ``D``."""
    return GraphTransformer(GraphTransformerConfig(
        in_channels=args.vocab, channels=args.d_model, heads=args.depth_heads, num_layers=layers,
        out_channels=args.vocab * args.radius * args.max_hops, ffn_ratio=2,
        num_relations=num_relations,
    ))  # fmt: skip


def run_depth(args, run: Run) -> list[dict]:
    """(a): one model per (graph, depth); accuracy per distance D and per hop count h."""
    max_d = args.radius * args.max_hops
    per_distance, per_hops = [], []
    runs = [("window", layers) for layers in args.depths] + [("full", 1)]
    for kind, layers in run.progress(runs, "(a) depth vs hops"):
        pattern, edge_type, num_rel = sequence_graph(kind, args.batch, args.length, args.radius)
        gen = seed_everything(args.seed + 100 * layers + (kind == "full"))
        model = depth_model(args, layers, num_rel)
        steps = args.steps if kind == "window" else args.full_steps
        batches = [copy_task(args.batch, args.length, args.vocab, max_d, gen) for _ in range(steps)]

        def loss_fn(m, batch, pattern=pattern, edge_type=edge_type):
            logits = m(batch[0], pattern, edge_type=edge_type).node.view(-1, args.vocab)
            return F.cross_entropy(logits, batch[1].view(-1), ignore_index=IGNORE)

        history, seconds = fit_batches(model, loss_fn, batches, lr=args.lr)
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
            per_distance.append({"graph": kind, "depth_L": layers, "distance_D": d,
                                 "hops_on_graph": hops if kind == "window" else 1,
                                 "accuracy": round(float(hits.float().mean()), 4)})  # fmt: skip
        for hops, hits in correct.items():
            distances = [d for d in range(1, max_d + 1) if math.ceil(d / args.radius) == hops]
            per_hops.append({
                "graph": kind, "depth_L": layers, "model": f"{kind} L={layers}", "hops_h": hops,
                "distances": f"{distances[0]}-{distances[-1]}",
                "accuracy": round(float(torch.cat(hits).float().mean()), 4),
                "chance": round(1 / args.vocab, 4), "final_train_loss": round(history[-1], 4),
                "seconds": round(seconds, 1),
            })  # fmt: skip
    settings = cli.settings_of(args, *DEPTH, "test_seqs", "lr", "seed")
    run.table("depth_vs_hops", per_hops, settings)
    run.table("depth_vs_distance", per_distance, settings)
    run.heatmap("depth_vs_hops", per_hops, "model", "hops_h", "accuracy", vmin=0.0, vmax=1.0,
                title=f"(a) copy the token D back: accuracy (window r={args.radius}: "
                "h = ceil(D/r) hops)")  # fmt: skip
    print_grid(per_hops, "model", "hops_h", "accuracy",
               title=f"(a) depth vs hops: test accuracy (chance {1 / args.vocab:.3f}); "
               f"h = ceil(D / {args.radius}) hops on the window")  # fmt: skip
    return per_hops


# ---- (b) width vs relation types -------------------------------------------------------------
def class_means_task(num_seqs, length, num_classes, generator, value_dim: int = 1):
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


def run_width(args, run: Run) -> list[dict]:
    """(b): one single-layer model per (K, H); test normalised MSE of the K class means."""
    n = args.width_length
    pattern = graphs.full([n] * args.width_batch).pattern
    src = pattern.edge_index()[0]
    test_pattern = graphs.full([n] * args.test_seqs).pattern
    test_src = test_pattern.edge_index()[0]
    rows = []
    runs = [(k, h) for k in args.relations for h in args.heads]
    for num_classes, heads in run.progress(runs, "(b) width vs relations"):
        gen = seed_everything(args.seed + 1000 * num_classes + heads)
        batches = [class_means_task(args.width_batch, n, num_classes, gen, args.value_dim)
                   for _ in range(args.width_steps)]  # fmt: skip
        targets = torch.cat([b[2] for b in batches])
        mean, std = targets.mean(0), targets.std(0)
        model = GraphTransformer(GraphTransformerConfig(
            in_channels=args.value_dim, channels=args.width_d_model, heads=heads, num_layers=1,
            out_channels=num_classes * args.value_dim, ffn_ratio=2, num_relations=num_classes,
        ))  # fmt: skip

        def loss_fn(m, batch, mean=mean, std=std):
            x, classes, y = batch
            return F.mse_loss(m(x, pattern, edge_type=classes[src]).node, (y - mean) / std)

        history, seconds = fit_batches(model, loss_fn, batches, lr=args.lr)
        test_gen = torch.Generator().manual_seed(20_000 + args.seed + num_classes)
        x, classes, y = class_means_task(args.test_seqs, n, num_classes, test_gen, args.value_dim)
        with torch.no_grad():
            pred = model(x, test_pattern, edge_type=classes[test_src]).node * std + mean
        nmse = sum(normalised_mse(pred[:, c], y[:, c]) for c in range(y.size(1))) / y.size(1)
        rows.append({
            "relations_K": num_classes, "heads_H": heads, "test_nmse": round(nmse, 4),
            "reference": round(max(0.0, 1.0 - heads / num_classes), 4),
            "final_train_loss": round(history[-1], 4), "seconds": round(seconds, 1),
        })  # fmt: skip
    run.table("width_vs_relations", rows, cli.settings_of(args, *WIDTH, "test_seqs", "lr", "seed"))
    run.heatmap("width_vs_relations", rows, "heads_H", "relations_K", "test_nmse", vmin=0.0,
                cmap="viridis_r", title=f"(b) K class means, one layer, "
                f"d_model={args.width_d_model}: test normalised MSE")  # fmt: skip
    title = "(b) width vs relation types: test normalised MSE of the K class means"
    print_grid(rows, "heads_H", "relations_K", "test_nmse", title=title)
    return rows


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    args = parse_args(argv)
    with Run.from_args(args) as run:
        depth = run_depth(args, run) if args.only != "width" else []
        return {"depth": depth, "width": run_width(args, run) if args.only != "depth" else []}


if __name__ == "__main__":
    main()
