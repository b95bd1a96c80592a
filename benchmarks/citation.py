"""Real data: MultiHeadAttentionConv against GATConv and TransformerConv in PyG's GAT recipe on
Cora and CiteSeer, beside the GAT paper's numbers.

PyG's ``examples/gat.py`` recipe: feature dropout 0.6 -> layer (64 channels: 8 heads x 8)
-> ELU -> dropout 0.6 -> layer (classes, 1 head), attention dropout 0.6, Adam (lr 0.005,
weight decay 5e-4 on every parameter), 200 epochs full batch, test accuracy at the best
validation epoch; one run per seed. Parts (``--only``):

- ``recipe``: the layers in that recipe, and a ``graphattn.nn.GraphTransformer`` (Pre-LN
  blocks with FFN) in the same training recipe;
- ``minibatch``: the recipe's graphattn model on the ``fused`` engine, trained and evaluated
  on exact 2-hop ``KHopLoader`` mini-batches;
- ``ablation``: where the default layer loses accuracy (docs/real_data.md): the output
  projection W_O per layer, its initialisation, and what becomes of the attention itself;
- ``attention``: what learned attention adds over the neighbourhood mean: GATConv with its
  attention vectors frozen at zero (in both layers, or in the last), this layer with its
  queries frozen at zero, and this layer without weight decay on its queries and keys;
- ``draws``: each of GATConv and this layer on the other's random draws for the seed (its
  value weights and the dropout masks of training), and on its own kind's, as a control: what
  a seed's draws are worth beside the layer;
- ``scores``: additive scores: PyG's GATv2Conv, and this layer's queries, keys and values
  scored additively as GATv2 scores (``AdditiveScore``) in place of scaled dot products.

``--models`` picks some of the parts' models.

    python benchmarks/citation.py --quick                        # seconds: Cora, 2 seeds
    python benchmarks/citation.py --out results/citation         # recipe + minibatch
    python benchmarks/citation.py --only ablation --out results/citation_ablation
"""

from __future__ import annotations

import functools
import multiprocessing
import statistics
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GATConv, GATv2Conv, MessagePassing, TransformerConv
from torch_geometric.nn.inits import glorot
from torch_geometric.utils import add_self_loops, remove_self_loops, softmax

from graphattn import MultiHeadAttentionConv
from graphattn.analysis import attention_entropy
from graphattn.experiments import machine_line, print_table, progress, seed_everything, write_table
from graphattn.experiments.citation import PLANETOID, fit_nodes, fit_nodes_khop, load_planetoid
from graphattn.experiments.cli import ScriptParser, int_at_least, output_folder
from graphattn.nn import GraphTransformer, GraphTransformerConfig

HIDDEN, HEADS, DROPOUT = 64, 8, 0.6
# Velickovic et al., "Graph Attention Networks" (ICLR 2018), Table 2: mean +- std, 100 runs
PUBLISHED = {"Cora": (83.0, 0.7), "CiteSeer": (72.5, 0.7)}
PAPER = "GAT paper (Velickovic et al. 2018, Table 2)"


class GATRecipe(nn.Module):
    """PyG's ``examples/gat.py`` model; ``make(in, out, heads, last)`` builds each layer."""

    def __init__(self, make: Callable, in_channels: int, num_classes: int):
        super().__init__()
        self.conv1 = make(in_channels, HIDDEN, HEADS, False)
        self.conv2 = make(HIDDEN, num_classes, 1, True)

    def forward(self, x, edge_index):
        x = F.dropout(x, DROPOUT, self.training)
        x = F.elu(self.conv1(x, edge_index))
        x = F.dropout(x, DROPOUT, self.training)
        return self.conv2(x, edge_index)


class BlockRecipe(nn.Module):
    """Feature dropout, then ``GraphTransformer`` (encoder, 2 Pre-LN blocks, node head)."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        config = GraphTransformerConfig(
            in_channels=in_channels, channels=HIDDEN, heads=HEADS, num_layers=2,
            out_channels=num_classes, dropout=DROPOUT,
        )  # fmt: skip
        self.model = GraphTransformer(config)

    def forward(self, x, edge_index):
        return self.model(F.dropout(x, DROPOUT, self.training), edge_index).node


def pyg(cls) -> Callable:
    """PyG's layers count channels per head; the last layer averages its one head."""
    return lambda i, o, h, last: cls(i, o if last else o // h, heads=h, concat=not last,
                                     dropout=DROPOUT)  # fmt: skip


def ours(first: dict | None = None, last: dict | None = None) -> Callable:
    """MultiHeadAttentionConv with ``first``'s options on layer 1 and ``last``'s on layer 2."""
    return lambda i, o, h, is_last: MultiHeadAttentionConv(
        i, o, h, dropout=DROPOUT, **((last if is_last else first) or {})
    )


class AdditiveScore(MessagePassing):
    """This layer's Q, K, V (``out_projection=False``) with GATv2's additive logit
    ``a . LeakyReLU(q_i + k_j)`` per head in place of ``q_i . k_j / sqrt(d)``: a probe of the
    score alone, not a graphattn engine (the scatter form, as PyG's layers compute it). Its
    self-loops as the layer's: existing ones removed, one per node appended."""

    def __init__(self, in_channels: int, out_channels: int, heads: int, last: bool = False):
        super().__init__(aggr="add", node_dim=0)  # `last`: GATRecipe's flag, one form for both
        self.heads, self.head_dim = heads, out_channels // heads
        ours = MultiHeadAttentionConv(in_channels, out_channels, heads, out_projection=False)
        self.lin_query, self.lin_key, self.lin_value = ours.lin_query, ours.lin_key, ours.lin_value
        self.att = nn.Parameter(torch.empty(1, heads, self.head_dim))
        glorot(self.att)

    def forward(self, x, edge_index, return_attention_weights: bool = False):
        edge_index, _ = add_self_loops(remove_self_loops(edge_index)[0], num_nodes=x.size(0))
        q, k, v = (lin(x).view(-1, self.heads, self.head_dim)
                   for lin in (self.lin_query, self.lin_key, self.lin_value))  # fmt: skip
        out = self.propagate(edge_index, q=q, k=k, v=v).flatten(1)
        return (out, (edge_index, self._alpha)) if return_attention_weights else out

    def message(self, q_i, k_j, v_j, index, ptr, size_i):
        logits = (F.leaky_relu(q_i + k_j, 0.2) * self.att).sum(-1)
        self._alpha = softmax(logits, index, ptr, size_i)
        return v_j * F.dropout(self._alpha, DROPOUT, self.training).unsqueeze(-1)


def identity_out(model: nn.Module) -> None:
    for conv in (model.conv1, model.conv2):
        nn.init.eye_(conv.lin_out.weight)


def uniform_attention(
    scores: Callable[[nn.Module], object], layers: tuple[str, ...] = ("conv1", "conv2")
) -> Callable[[nn.Module], None]:
    """A tweak that freezes at zero the parameters ``scores(conv)`` that a layer's logits come
    from, in ``layers``: every logit is 0 there, so the layer takes the mean over neighbours."""

    def tweak(model: nn.Module) -> None:
        for layer in layers:
            for p in scores(getattr(model, layer)):
                nn.init.zeros_(p)
                p.requires_grad_(False)

    return tweak


def queries(conv: MultiHeadAttentionConv):
    return conv.lin_query.parameters()


def attention_vectors(conv: GATConv):
    return conv.att_src, conv.att_dst


NO_WO = {"out_projection": False}


def value_weight(conv: nn.Module) -> torch.Tensor:
    """The weights of the map a layer aggregates: GATConv's ``lin``, this layer's W_V."""
    return conv.lin.weight if isinstance(conv, GATConv) else conv.lin_value.weight


OTHER_DRAWS = 10_000  # the seed offset of a draws model's own (non-value) parameters


def on_draws_of(
    donor: Callable[[int, int], nn.Module], build: Callable[[int, int], nn.Module]
) -> Callable[[int, int], nn.Module]:
    """``build``'s model on ``donor``'s random draws: the donor is built first, as its own run
    builds it, and gives the model its value weights; the model's other parameters come from
    a separate stream (seed + ``OTHER_DRAWS``), and training goes on from the random state the
    donor left: its dropout masks (the two layers draw them alike on the ``scatter`` engine,
    ``tests/conv/test_pyg_compat.py``)."""

    def make(in_channels: int, num_classes: int) -> nn.Module:
        first = donor(in_channels, num_classes)
        with torch.random.fork_rng(devices=[]):  # leaves the donor's stream where it was
            torch.manual_seed(torch.initial_seed() + OTHER_DRAWS)
            model = build(in_channels, num_classes)
        with torch.no_grad():
            for layer in ("conv1", "conv2"):
                conv = getattr(model, layer)
                value_weight(conv).copy_(value_weight(getattr(first, layer)))
                if isinstance(conv, MultiHeadAttentionConv):
                    conv.engine = "scatter"  # what "auto" takes here, named: its masks match
        return model

    return make


def gat(i: int, c: int) -> nn.Module:
    return GATRecipe(pyg(GATConv), i, c)


def ours_pyg(i: int, c: int) -> nn.Module:
    return GATRecipe(ours(NO_WO, NO_WO), i, c)


PARTS = ("recipe", "minibatch", "ablation", "attention", "draws", "scores")


class Model(NamedTuple):
    parts: tuple[str, ...]  # of PARTS but "minibatch" (which trains MINIBATCH)
    build: Callable[[int, int], nn.Module]  # (in_channels, classes) -> model
    tweak: Callable[[nn.Module], None] | None = None  # applied after building
    no_decay: tuple[str, ...] = ()  # parameter names without weight decay


MODELS = {
    "GATConv": Model(("recipe",), gat),
    "TransformerConv": Model(("recipe",), lambda i, c: GATRecipe(pyg(TransformerConv), i, c)),
    "graphattn, out_projection=False": Model(("recipe",), ours_pyg),
    "graphattn, defaults (W_O)": Model(("recipe",), lambda i, c: GATRecipe(ours(), i, c)),
    "GraphTransformer (graphattn.nn)": Model(("recipe",), lambda i, c: BlockRecipe(i, c)),
    "W_O in layer 1 only": Model(("ablation",), lambda i, c: GATRecipe(ours(None, NO_WO), i, c)),
    "W_O in layer 2 only": Model(("ablation",), lambda i, c: GATRecipe(ours(NO_WO, None), i, c)),
    "W_O initialised to the identity": Model(
        ("ablation",), lambda i, c: GATRecipe(ours(), i, c), tweak=identity_out
    ),
    "no W_O, uniform attention": Model(
        ("ablation", "attention"), ours_pyg, tweak=uniform_attention(queries)
    ),
    "no W_O, no weight decay on W_Q, W_K": Model(
        ("ablation", "attention"), ours_pyg, no_decay=("lin_query", "lin_key")
    ),
    "no W_O, root_weight=True": Model(
        ("ablation",),
        lambda i, c: GATRecipe(
            ours({**NO_WO, "root_weight": True}, {**NO_WO, "root_weight": True}), i, c
        ),
    ),  # fmt: skip
    "GATConv, uniform attention": Model(
        ("attention",), gat, tweak=uniform_attention(attention_vectors)
    ),
    "GATConv, uniform attention in layer 2": Model(
        ("attention",), gat, tweak=uniform_attention(attention_vectors, ("conv2",))
    ),
    "graphattn, out_projection=False, on GATConv's draws": Model(
        ("draws",), on_draws_of(gat, ours_pyg)
    ),
    "GATConv, on graphattn's draws": Model(("draws",), on_draws_of(ours_pyg, gat)),
    "GATConv, on GATConv's draws": Model(("draws",), on_draws_of(gat, gat)),
    "graphattn, out_projection=False, on graphattn's draws": Model(
        ("draws",), on_draws_of(ours_pyg, ours_pyg)
    ),
    "GATv2Conv": Model(("scores",), lambda i, c: GATRecipe(pyg(GATv2Conv), i, c)),
    "graphattn's Q, K, V, GATv2's additive score": Model(
        ("scores",), lambda i, c: GATRecipe(AdditiveScore, i, c)
    ),
}
MINIBATCH = "graphattn, out_projection=False"  # the model trained on mini-batches too


def attention_stats(model: nn.Module, data) -> dict:
    """After training: how far layer 1's attention is from uniform (its mean entropy over log
    in-degree, on nodes of in-degree > 1: 1 means uniform) and, for graphattn, the norm of
    its query weights."""
    conv = getattr(model, "conv1", None)  # every GATRecipe layer returns its weights on request
    if conv is None:
        return {"query_norm": float("nan"), "entropy_ratio": float("nan")}
    model.eval()
    with torch.no_grad():
        _, (edge_index, weights) = conv(data.x, data.edge_index, return_attention_weights=True)
        ratio = attention_entropy((edge_index, weights), data.num_nodes, normalize=True)
    query = getattr(conv, "lin_query", None)
    norm = float(query.weight.detach().norm()) if query is not None else float("nan")
    return {"query_norm": norm, "entropy_ratio": float(ratio.mean())}  # mean over heads


def run(name: str, dataset: str, data, seed: int, epochs: int, batch_size: int | None) -> dict:
    generator = seed_everything(seed)
    spec = MODELS[name]
    model = spec.build(data.num_features, int(data.y.max()) + 1)
    if spec.tweak is not None:
        spec.tweak(model)
    if batch_size:
        for conv in (model.conv1, model.conv2):
            conv.engine = "fused"
        res = fit_nodes_khop(model, data, num_hops=2, batch_size=batch_size, epochs=epochs,
                             generator=generator)  # fmt: skip
    else:
        res = fit_nodes(model, data, epochs=epochs, no_decay=spec.no_decay)
    return {"dataset": dataset, "model": name,
            "training": f"mini-batch ({batch_size} seeds)" if batch_size else "full batch",
            "seed": seed, "val_acc": 100 * res.val_acc, "test_acc": 100 * res.test_acc,
            "best_epoch": res.best_epoch, "seconds": res.seconds,
            **attention_stats(model, data)}  # fmt: skip


def run_task(task: tuple) -> dict:
    """One ``(dataset, model, seed, steps, batch_size, threads)`` run, in this process."""
    dataset, name, seed, steps, batch_size, threads = task
    torch.set_num_threads(threads)
    return run(name, dataset, _data(dataset), seed, steps, batch_size)


@functools.cache
def _data(dataset: str):
    return load_planetoid(dataset)


def summarise(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["model"], r["training"]), []).append(r)
    rows = []
    for (dataset, model, training), rs in groups.items():
        test = [r["test_acc"] for r in rs]
        rows.append({"dataset": dataset, "model": model, "training": training,
                     "test_acc_mean": statistics.mean(test),
                     "test_acc_std": statistics.stdev(test) if len(test) > 1 else 0.0,
                     "val_acc_mean": statistics.mean(r["val_acc"] for r in rs),
                     "query_norm": statistics.mean(r["query_norm"] for r in rs),
                     "entropy_ratio": statistics.mean(r["entropy_ratio"] for r in rs),
                     "seeds": len(rs),
                     "seconds_per_run": statistics.mean(r["seconds"] for r in rs)})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = ScriptParser(doc=__doc__)
    parser.add_argument("--datasets", nargs="+", choices=PLANETOID, default=list(PLANETOID),
                        help="Planetoid data sets (shipped in data/planetoid)")  # fmt: skip
    parser.add_argument("--only", nargs="+", choices=PARTS,
                        default=["recipe", "minibatch"], help="parts to run")  # fmt: skip
    parser.add_argument("--models", nargs="+", choices=list(MODELS), metavar="MODEL",
                        help="only these models of the parts run (names as in MODELS)")  # fmt: skip
    parser.add_argument("--seeds", type=int_at_least(1), default=10)
    parser.add_argument(
        "--steps", type=int_at_least(1), default=200,
        help="epochs: one optimiser step each in full batch, one per batch in the minibatch part",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int_at_least(1), default=64,
                        help="seeds per mini-batch (the minibatch part)")  # fmt: skip
    parser.add_argument("--threads", type=int_at_least(1), default=1,
                        help="torch threads per run")  # fmt: skip
    parser.add_argument("--workers", type=int_at_least(1), default=1,
                        help="runs at once, one process each (results do not change)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="Cora, 2 seeds, 2 steps")
    parser.add_argument("--out", type=output_folder, default=Path("outputs/citation"))
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.seeds, args.steps = ["Cora"], 2, 2
    torch.set_num_threads(args.threads)
    print(machine_line())
    print(f"settings: {vars(args)}")

    jobs = [(name, None) for name, spec in MODELS.items() if set(spec.parts) & set(args.only)]
    if "ablation" in args.only:  # the ablation's end points are the recipe's two rows
        jobs += [("graphattn, defaults (W_O)", None), ("graphattn, out_projection=False", None)]
        jobs = list(dict.fromkeys(jobs))
    if "minibatch" in args.only:
        jobs.append((MINIBATCH, args.batch_size))
    if args.models:
        jobs = [job for job in jobs if job[0] in args.models]
        if not jobs:
            parser.error(f"none of --models {args.models} is in the parts {args.only}")
    tasks = [(dataset, name, seed, args.steps, batch_size, args.threads)
             for dataset in args.datasets for name, batch_size in jobs
             for seed in range(args.seeds)]  # fmt: skip
    if args.workers == 1:
        runs = [run_task(t) for t in progress(tasks, "runs")]
    else:  # one run per process at a time; each run is seeded, so the order does not matter
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.workers, mp_context=spawn) as pool:
            runs = list(progress(pool.map(run_task, tasks), "runs", total=len(tasks)))
    rows = summarise(runs)
    if "recipe" in args.only:
        nan = float("nan")
        rows += [{"dataset": d, "model": PAPER, "training": "full batch", "test_acc_mean": m,
                  "test_acc_std": s, "val_acc_mean": nan, "query_norm": nan,
                  "entropy_ratio": nan, "seeds": 100, "seconds_per_run": nan}
                 for d, (m, s) in PUBLISHED.items() if d in args.datasets]  # fmt: skip
    print_table(rows, title="test accuracy (%) at the best validation epoch", fmt=".3g")
    write_table(args.out / "runs.csv", runs, settings=vars(args))
    path = write_table(args.out / "accuracy.csv", rows, settings=vars(args))
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
