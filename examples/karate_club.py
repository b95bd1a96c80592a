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
from pathlib import Path

import torch
import torch.nn.functional as F
from torch_geometric.datasets import KarateClub
from torch_geometric.nn import GATConv, TransformerConv

from graphattn import MultiHeadAttentionConv
from graphattn.experiments import (
    RunFolder,
    accuracy,
    machine_line,
    print_table,
    progress,
    seed_everything,
    write_table,
)
from graphattn.experiments.cli import ScriptParser, int_at_least, output_folder

HIDDEN, HEADS = 16, 2


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


def run(kind: str, seed: int, steps: int, data) -> float:
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
    parser = ScriptParser(doc=__doc__)
    parser.add_argument(
        "--seeds", type=int_at_least(1), default=None, help="seeds per layer (default 10, quick 3)"
    )
    parser.add_argument(
        "--steps",
        type=int_at_least(1),
        default=None,
        help="full-batch optimiser steps, one per epoch (default 200, quick 50)",
    )
    parser.add_argument(
        "--threads", type=int_at_least(1), default=1, help="torch threads (a 34-node graph)"
    )
    parser.add_argument("--out", type=output_folder, default=Path("outputs/karate_club"))
    parser.add_argument("--quick", action="store_true", help="3 seeds, 50 steps")
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 3 if args.quick else 10
    if args.steps is None:
        args.steps = 50 if args.quick else 200
    folder = RunFolder(args.out)  # writable? checked now, before the compute
    torch.set_num_threads(args.threads)
    print(machine_line())
    print(f"settings: seeds={args.seeds} steps={args.steps} hidden={HIDDEN} heads={HEADS}")
    data = KarateClub()[0]
    rows = []
    for kind in progress(KINDS, "layers"):
        accs = [run(kind, seed, args.steps, data) for seed in range(args.seeds)]
        rows.append(
            {
                "layer": kind,
                "test_accuracy_mean": statistics.mean(accs),
                "test_accuracy_std": statistics.pstdev(accs),
                "seeds": args.seeds,
            }
        )
    print_table(rows, title="KarateClub test accuracy (30 unlabelled members)", fmt=".3f")
    with folder:
        path = write_table(args.out / "karate_club.csv", rows, settings=vars(args))
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
