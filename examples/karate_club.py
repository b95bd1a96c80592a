"""Dropping MultiHeadAttentionConv into a PyG model: Zachary's karate club, against GATConv and
TransformerConv.

A two-layer node classifier ``conv -> ELU -> conv`` is trained on the 4 labelled members of
PyG's ``KarateClub`` (one per community) and tested on the other 30, for several seeds. Rows:
``MultiHeadAttentionConv`` with its defaults (each node attends to itself, as in ``GATConv``),
without self-loops (a node's own features then never reach its output), with
``TransformerConv``'s skip connection (``root_weight=True``) instead, and PyG's ``GATConv`` and
``TransformerConv`` with theirs. Every layer has 16 channels in total over 2 heads (PyG's
layers: 8 per head, concatenated).

    python examples/karate_club.py            # 10 seeds, 200 full-batch steps each
    python examples/karate_club.py --quick    # 3 seeds, 50 steps
"""

from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F
from torch_geometric.datasets import KarateClub
from torch_geometric.nn import GATConv, TransformerConv

from graphattn import MultiHeadAttentionConv
from graphattn.experiments import Run, accuracy, cli, seed_everything

HIDDEN, HEADS = 16, 2
PRESETS = {"full": dict(seeds=10, steps=200), "quick": dict(seeds=3, steps=50)}


def _layer(kind: str, in_channels: int, out_channels: int) -> torch.nn.Module:
    per_head = out_channels // HEADS
    if kind == "graphattn":
        return MultiHeadAttentionConv(in_channels, out_channels, HEADS)
    if kind == "graphattn, no self-loops":
        return MultiHeadAttentionConv(in_channels, out_channels, HEADS, add_self_loops=False)
    if kind == "graphattn, root_weight":
        return MultiHeadAttentionConv(
            in_channels, out_channels, HEADS, add_self_loops=False, root_weight=True
        )
    if kind == "GATConv":
        return GATConv(in_channels, per_head, heads=HEADS)
    if kind == "TransformerConv":
        return TransformerConv(in_channels, per_head, heads=HEADS)
    raise ValueError(f"unknown layer kind {kind!r}")


KINDS = (
    "graphattn",
    "graphattn, no self-loops",
    "graphattn, root_weight",
    "GATConv",
    "TransformerConv",
)


class Net(torch.nn.Module):
    def __init__(self, kind: str, in_channels: int, num_classes: int):
        super().__init__()
        self.conv1 = _layer(kind, in_channels, HIDDEN)
        self.conv2 = _layer(kind, HIDDEN, HIDDEN)
        self.out = torch.nn.Linear(HIDDEN, num_classes)

    def forward(self, x, edge_index):
        x = F.elu(self.conv1(x, edge_index))
        return self.out(F.elu(self.conv2(x, edge_index)))


def train_and_test(kind: str, seed: int, steps: int, data) -> float:
    seed_everything(seed)
    model = Net(kind, data.num_features, int(data.y.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(steps):
        model.train()
        opt.zero_grad()
        logits = model(data.x, data.edge_index)
        loss = F.cross_entropy(logits[data.train_mask], data.y[data.train_mask])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        logits = model(data.x, data.edge_index)
    test = ~data.train_mask
    return accuracy(logits[test], data.y[test])


def main(argv: list[str] | None = None) -> list[dict]:
    p = cli.ScriptParser(doc=__doc__, presets=PRESETS, script="examples/karate_club.py")
    p.add_run_options("outputs/karate_club", progress=False)  # a 34-node graph: one thread
    p.add_argument("--seeds", type=cli.int_at_least(1), help="seeds per layer")
    p.add_argument("--steps", type=cli.int_at_least(1), help="full-batch steps, one per epoch")
    args = p.parse_args(argv)
    with Run.from_args(args) as run:
        data = KarateClub()[0]
        rows = []
        for kind in run.progress(KINDS, "layers"):
            accs = [train_and_test(kind, seed, args.steps, data) for seed in range(args.seeds)]
            rows.append({"layer": kind, "test_accuracy_mean": statistics.mean(accs),
                         "test_accuracy_std": statistics.pstdev(accs),
                         "seeds": args.seeds})  # fmt: skip
        title = "KarateClub test accuracy (30 unlabelled members)"
        run.table("karate_club", rows, title=title, fmt=".3f")
    return rows


if __name__ == "__main__":
    main()
