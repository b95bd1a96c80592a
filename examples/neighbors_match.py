"""Tree-NeighborsMatch (Alon & Yahav, ICLR 2021): depth that reaches the hops, and is not enough.

A complete binary tree of depth r: each of its 2^r leaves holds a key (its position) and a value
(a permutation of 0..2^r-1 over the leaves), the root holds one key and must name the value of
the leaf with that key. Edges point from children to parents, so every leaf is r hops from the
root and r + 1 layers reach them all, as in the paper. Yet all the root learns passes through
its two children, whose fixed-size vectors must carry the 2^(r-1) pairs below each of them
whatever the key: over-squashing. Other graphs over the same tree shorten the paths.

Models (one skeleton, the paper's: Linear -> L x [conv, residual, LayerNorm] -> Linear on the
root; width 32, 4 heads; L = hops from the farthest leaf to the root + 1, as the paper gives
the tree r + 1, except one layer of full attention): PyG's GATConv and MultiHeadAttentionConv
on the tree; MultiHeadAttentionConv on full attention within each tree, on the tree plus a
virtual node (PyG's ``VirtualNode``) and on the tree plus a random 4-regular expander
(``graphattn.graphs.expander``, as in Exphormer). Data, split, recipe and stopping rule follow
the paper's code (tech-srl/bottleneck); this machine cannot give its budget (up to 50,000
epochs), so every configuration also stops at a cap on steps and on CPU seconds, and the CSV
records the caps, the steps run and why each run stopped.

    python examples/neighbors_match.py --quick    # seconds (the test suite runs it)
    python examples/neighbors_match.py --demo     # a few minutes
    python examples/neighbors_match.py --out results/neighbors_match   # the recorded run
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from scipy.sparse.csgraph import shortest_path
from sklearn.model_selection import train_test_split
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn import GATConv
from torch_geometric.transforms import VirtualNode
from torch_geometric.utils import to_scipy_sparse_matrix

from graphattn import EdgeList, FullGraph, MultiHeadAttentionConv
from graphattn.experiments import machine_line, print_table, seed_everything, write_table
from graphattn.experiments.plots import figure
from graphattn.graphs import expander

WIDTH, HEADS, LR = 32, 4, 1e-3
LAYERS = {"GATConv on tree": "r+1", "graphattn on tree": "r+1", "graphattn on full": "1",
          "graphattn on tree+VN": "3", "graphattn on tree+expander": "hops+1"}  # fmt: skip
MODELS = tuple(LAYERS)
# Presets are data. `all_up_to`: above it, a model runs at r only if it kept training accuracy
# >= 0.95 at the r before; `permutations` of the values (the paper: 1000); caps per
# configuration on steps and CPU seconds; evaluation interval (steps); patience (evaluations).
KEYS = ("radii", "all_up_to", "permutations", "max_steps", "max_seconds", "eval_every", "patience")
PRESETS = {
    "quick": ([2, 3], 3, 24, 30, 2.0, 15, 20),
    "demo": ([2, 3, 4], 4, 1000, 3000, 12.0, 100, 20),
    "full": ([2, 3, 4, 5, 6], 5, 1000, 100000, 480.0, 250, 24),
}
# Alon & Yahav (ICLR 2021), Figure 3 (also images/fig3.png in tech-srl/bottleneck): training
# accuracy by r, the values printed on the figure (r = 2, 3: every marker at 1.0).
PAPER = {
    "GGNN": {2: 1.0, 3: 1.0, 4: 1.0, 5: 0.60, 6: 0.38},
    "GAT": {2: 1.0, 3: 1.0, 4: 1.0, 5: 0.41},
    "GIN": {2: 1.0, 3: 1.0, 4: 0.77, 5: 0.29},
    "GCN": {2: 1.0, 3: 1.0, 4: 0.70, 5: 0.19, 6: 0.14},
}


def batch_size(r: int) -> int:
    return 64 if r <= 3 else 1024  # the paper's GAT script


def examples(r: int, seed: int, permutations: int = 1000):
    """Every key with each of min(permutations, n!, 32000 // n) distinct value permutations,
    split 80/20 stratified by label; returns (keys, perms) for train and for test."""
    n = 2**r
    count = min(permutations, math.factorial(n), 32000 // n)
    gen, seen = torch.Generator().manual_seed(seed), set()
    while len(seen) < count:
        seen.add(tuple(torch.randperm(n, generator=gen).tolist()))
    perms = torch.tensor(sorted(seen)).repeat_interleave(n, 0)  # (count * n, n)
    keys = torch.arange(n).repeat(count)
    labels = perms.gather(1, keys[:, None])[:, 0]
    train, test = train_test_split(
        torch.arange(len(keys)), train_size=0.8, stratify=labels, random_state=seed
    )
    return (keys[train], perms[train]), (keys[test], perms[test])


def features(keys, perms, r: int, nodes: int) -> torch.Tensor:
    """Root: one-hot key; leaf j: one-hot j and one-hot value; other nodes (and an added
    virtual node): zeros. Returns (B * nodes, 2n)."""
    n, b = 2**r, len(keys)
    x = torch.zeros(b, nodes, 2 * n)
    x[:, 0, :n] = F.one_hot(keys, n).float()
    leaves = torch.arange(n - 1, 2 * n - 1)  # heap order: root 0, leaves last
    x[:, leaves, :n] = torch.eye(n)
    x[torch.arange(b)[:, None], leaves, n + perms] = 1.0
    return x.view(b * nodes, 2 * n)


class Trees:
    """One model's graph over a tree of depth r (edges j -> i), tiled over batches of trees;
    ``layers`` = hops from the farthest leaf to the root + 1 (one layer of full attention)."""

    def __init__(self, model: str, r: int, seed: int):
        self.model, self.r, self.nodes, self.cache = model, r, 2 ** (r + 1) - 1, {}
        child = torch.arange(1, self.nodes)
        edges = torch.stack([child, (child - 1) // 2])  # child -> parent, toward the root
        if model.endswith("full"):
            edges = FullGraph.from_sizes([self.nodes]).edge_index()
        elif model.endswith("VN"):
            data = VirtualNode()(Data(edge_index=edges, num_nodes=self.nodes))
            edges, self.nodes = data.edge_index, data.num_nodes
        elif model.endswith("expander"):
            over = expander(self.nodes, 4, generator=torch.Generator().manual_seed(seed))
            edges = torch.cat([edges, over.edge_index], 1)
        self.edges = edges
        reverse = to_scipy_sparse_matrix(edges.flip(0), num_nodes=self.nodes)
        hops = shortest_path(reverse, unweighted=True, indices=0)[2**r - 1 : 2 ** (r + 1) - 1]
        self.layers = 1 if model.endswith("full") else int(hops.max()) + 1
        # the edges attention runs over per tree: the graph's, plus one self-loop per node
        self.attended_edges = int((edges[0] != edges[1]).sum()) + self.nodes

    def graph(self, b: int):
        if b not in self.cache:
            ei = self.edges.repeat(1, b)
            ei = ei + torch.arange(b).repeat_interleave(self.edges.size(1)) * self.nodes
            if self.model.endswith("full"):
                ei = FullGraph.from_sizes([self.nodes] * b)
            elif not self.model.startswith("GAT"):
                ei = EdgeList(ei, b * self.nodes)  # built once: its CSR is cached on it
            self.cache[b] = ei
        return self.cache[b]

    def logits(self, net, keys, perms):
        roots = torch.arange(len(keys)) * self.nodes
        return net(features(keys, perms, self.r, self.nodes), self.graph(len(keys)), roots)


class Net(nn.Module):
    def __init__(self, model: str, layers: int, r: int):
        super().__init__()
        self.embed, self.out = nn.Linear(2 * 2**r, WIDTH), nn.Linear(WIDTH, 2**r, bias=False)
        self.convs = nn.ModuleList(
            GATConv(WIDTH, WIDTH // HEADS, heads=HEADS)
            if model.startswith("GAT")
            else MultiHeadAttentionConv(WIDTH, WIDTH, heads=HEADS)
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(WIDTH) for _ in range(layers))

    def forward(self, x, graph, roots):
        x = self.embed(x)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(x + conv(x, graph))  # the paper's GAT: residual, layer norm, no activation
        return self.out(x[roots])


@torch.no_grad()
def accuracy(net, trees: Trees, split) -> float:
    net.eval()
    right = sum(
        int((trees.logits(net, k, p).argmax(-1) == p.gather(1, k[:, None])[:, 0]).sum())
        for k, p in zip(split[0].split(1024), split[1].split(1024), strict=True)
    )
    net.train()
    return right / len(split[0])


def run(model: str, r: int, train, test, cfg: dict, seed: int) -> dict:
    """Train one configuration; the best training accuracy and the test accuracy then."""
    seed_everything(seed)
    trees = Trees(model, r, seed)
    net = Net(model, trees.layers, r)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="max", factor=0.5, patience=cfg["patience"] // 2, threshold_mode="abs"
    )  # halve the rate after patience / 2 evaluations without a gain of 1e-4
    gen = torch.Generator().manual_seed(seed)
    best, test_acc, best_step, stale, steps, step_cpu, stop = -1.0, 0.0, 0, 0, 0, [], None
    start, wall = time.process_time(), time.perf_counter()
    while stop is None:
        for idx in torch.randperm(len(train[0]), generator=gen).split(batch_size(r)):
            t0 = time.process_time()
            keys, perms = train[0][idx], train[1][idx]
            loss = F.cross_entropy(
                trees.logits(net, keys, perms), perms.gather(1, keys[:, None])[:, 0]
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step_cpu.append(time.process_time() - t0)
            steps += 1
            capped = steps >= cfg["max_steps"] or time.process_time() - start >= cfg["max_seconds"]
            if steps % cfg["eval_every"] and not capped:
                continue
            acc = accuracy(net, trees, train)
            sched.step(acc)
            stale += 1
            if acc > best + 1e-4:
                best, best_step, stale, test_acc = acc, steps, 0, accuracy(net, trees, test)
            if best == 1.0:
                stop = "fit"
            elif stale >= cfg["patience"]:
                stop = "plateau"
            elif capped:
                stop = "step cap" if steps >= cfg["max_steps"] else "time cap"
            if stop:
                break
    return {"model": model, "r": r, "leaves": 2**r, "leaves_per_dim": 2**r / WIDTH,
            "layers": trees.layers, "edges_per_tree": trees.attended_edges,
            "train_accuracy": best, "test_accuracy": test_acc, "best_step": best_step,
            "steps": steps, "stopped_by": stop, "max_steps": cfg["max_steps"],
            "max_cpu_s": cfg["max_seconds"], "cpu_s": time.process_time() - start,
            "wall_s": time.perf_counter() - wall,
            "step_ms": 1e3 * sorted(step_cpu)[len(step_cpu) // 2],
            "batch": batch_size(r), "train_trees": len(train[0])}  # fmt: skip


def paper_rows() -> list[dict]:
    """The paper's numbers, with the step budget of its released code: at most 50,000 epochs,
    stopped after 20 evaluations (every 100 epochs; 1000 at r = 2) without a gain."""
    rows = []
    for name, accs in PAPER.items():
        for r, acc in accs.items():
            n = 2**r
            train = math.floor(0.8 * min(1000, math.factorial(n), 32000 // n) * n)
            epoch = math.ceil(train / batch_size(r))  # steps per epoch
            rows.append({"model": name, "r": r, "leaves": n, "train_accuracy": acc,
                         "max_steps": 50000 * epoch,
                         "stop_after_steps_without_gain": 20 * (1000 if r == 2 else 100) * epoch,
                         "source": "Alon & Yahav (ICLR 2021), Figure 3"})  # fmt: skip
    return rows


def summary(rows: list[dict], paper: list[dict]) -> list[dict]:
    """Per model: the largest r up to which training accuracy stays >= 0.95, and the first r
    at which it falls below 0.9, with the steps it was given there (the paper's GAT last)."""
    out = []
    for source, table in (("here", rows), ("paper", [p for p in paper if p["model"] == "GAT"])):
        for model in dict.fromkeys(row["model"] for row in table):
            mine = sorted((row for row in table if row["model"] == model), key=lambda q: q["r"])
            kept = ""
            for row in mine:
                if row["train_accuracy"] < 0.95:
                    break
                kept = row["r"]
            below = next((row for row in mine if row["train_accuracy"] < 0.9), {"stopped_by": ""})
            out.append({"source": source, "model": model, "layers": LAYERS.get(model, "r+1"),
                        "kept_0.95_up_to_r": kept, "first_r_below_0.9": below.get("r", ""),
                        "train_accuracy_there": below.get("train_accuracy", ""),
                        "steps_there": below.get("steps", ""),
                        "max_steps_there": below.get("max_steps", ""),
                        "max_cpu_s_there": below.get("max_cpu_s", ""),
                        "stopped_by": below.get("stopped_by", "not reported")})  # fmt: skip
    return out


def comparison(rows: list[dict], paper: list[dict]) -> list[dict]:
    """The paper's training accuracy beside ours, r labelled with its leaves per dimension."""
    return [{"model": f"{source}: {row['model']} (L = {LAYERS.get(row['model'], 'r+1')})",
             "r": f"{row['r']} ({2 ** row['r']} leaves, {2 ** row['r'] / WIDTH:g}/dim)",
             "train_accuracy": row["train_accuracy"]}
            for source, table in (("paper", paper), ("here", rows)) for row in table]  # fmt: skip


def plot(path: Path, rows: list[dict], subtitle: str) -> None:
    colours = dict(
        zip(MODELS, ["#1f4e9c", "#c0392b", "#1e8449", "#7d3c98", "#a04000"], strict=True)
    )

    def draw(ax):
        for (name, accs), marker in zip(PAPER.items(), "sodv", strict=True):
            label = f"paper: {name}, L = r+1 (Fig. 3)"
            ax.plot(list(accs), list(accs.values()), ":", marker=marker, color="0.6", label=label)
        for i, model in enumerate(dict.fromkeys(row["model"] for row in rows)):
            pts = sorted((row["r"], row["train_accuracy"]) for row in rows if row["model"] == model)
            label = f"here: {model}, L = {LAYERS[model]}"
            ax.plot(*zip(*pts, strict=True), "-o", color=colours[model], label=label)
            for x, y in pts:  # 1.00 reads off the axis; label what fell short
                if y < 0.995:
                    box = dict(boxstyle="round,pad=0.1", fc="white", ec="none")
                    ax.annotate(f"{y:.2f}", (x, y), (8, 4 - 9 * (i % 3)), "data", "offset points",
                                fontsize=7, color=colours[model], bbox=box)  # fmt: skip
        radii = sorted({row["r"] for row in rows} | {r for accs in PAPER.values() for r in accs})
        ax.set_xticks(radii, [f"{r}\n{2**r} leaves\n{2**r / WIDTH:g}/dim" for r in radii])
        ax.set_xlabel(f"tree depth r (2^r leaves; leaves per dimension of the {WIDTH}-wide root)")
        ax.set_ylabel("training accuracy (best)")
        ax.axhline(0.9, color="0.3", lw=0.6, ls="--", label="0.9")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    title = "Tree-NeighborsMatch: training accuracy by tree depth"
    figure(path, draw, title=title, size=(10.0, 5.0), subtitle=subtitle)


def save(out: Path, rows: list[dict], settings: dict) -> dict[str, list[dict]]:
    """Write the run's rows, the paper's, the summary and the comparison as CSV."""
    paper = paper_rows()
    tables = {"neighbors_match": rows, "published": paper, "summary": summary(rows, paper),
              "comparison": comparison(rows, paper)}  # fmt: skip
    for name, table in tables.items():
        write_table(out / f"{name}.csv", table, settings=settings)
    return tables


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="seconds: r = 2, 3, tiny caps")
    group.add_argument("--demo", action="store_true", help="a few minutes: r = 2..4")
    parser.add_argument("--radii", type=int, nargs="+", help="tree depths r (2..7), all run")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--max-steps", type=int, help="steps per configuration (cap)")
    parser.add_argument("--max-seconds", type=float, help="CPU seconds per configuration (cap)")
    parser.add_argument("--seed", type=int, default=11)  # the paper's seed
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("outputs/neighbors_match"))
    args = parser.parse_args(argv)
    preset = PRESETS["quick" if args.quick else "demo" if args.demo else "full"]
    cfg = dict(zip(KEYS, preset, strict=True))
    for key in ("radii", "max_steps", "max_seconds"):
        cfg[key] = cfg[key] if getattr(args, key) is None else getattr(args, key)
    cfg["all_up_to"] = cfg["all_up_to"] if args.radii is None else max(args.radii)
    if not all(2 <= r <= 7 for r in cfg["radii"]):
        parser.error(f"--radii must lie in 2..7, got {cfg['radii']}")
    if cfg["max_steps"] < 1 or cfg["max_seconds"] <= 0 or args.threads < 1:
        parser.error("--max-steps, --max-seconds and --threads must be positive")
    torch.set_num_threads(args.threads)
    print(machine_line())
    print(f"settings: {cfg} models={args.models} seed={args.seed} width={WIDTH} heads={HEADS}")
    rows, kept, settings = [], {}, {**vars(args), **cfg}
    for r in cfg["radii"]:
        train, test = examples(r, args.seed, cfg["permutations"])
        for model in args.models:
            if r > cfg["all_up_to"] and not kept.get(model):
                continue
            rows.append(row := run(model, r, train, test, cfg, args.seed))
            kept[model] = row["train_accuracy"] >= 0.95
            print(f"r={r} {model:26s} L={row['layers']} train {row['train_accuracy']:.3f} "
                  f"test {row['test_accuracy']:.3f} steps {row['steps']} ({row['stopped_by']}, "
                  f"{row['cpu_s']:.0f} CPU s, {row['step_ms']:.1f} ms/step)")  # fmt: skip
            tables = save(args.out, rows, settings)  # after every configuration
    plot(args.out / "neighbors_match.png", rows, machine_line().removeprefix("machine: "))
    shown = ["model", "r", "layers", "train_accuracy", "test_accuracy", "steps", "stopped_by"]
    print_table(rows, [*shown, "step_ms"], title="training accuracy", fmt=".3f")
    print_table(tables["summary"], title="where training accuracy falls", fmt=".3f")
    print(f"wrote {', '.join(tables)} (.csv) and neighbors_match.png to {args.out}")
    return tables


if __name__ == "__main__":
    main()
