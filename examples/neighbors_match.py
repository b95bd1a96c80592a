"""Tree-NeighborsMatch (Alon & Yahav, ICLR 2021): depth that reaches every leaf, and is not enough.

The root of a binary tree of depth r must name the value of the one leaf, among 2^r, whose key
matches its own: r + 1 layers reach every leaf, but all the root learns passes through its two
children's fixed-size vectors (over-squashing). GATConv and MultiHeadAttentionConv on the tree,
and MultiHeadAttentionConv on graphs that shorten the paths (full attention, a virtual node, a
random expander), with the paper's data, skeleton, recipe and stopping rule (tech-srl/bottleneck);
each configuration also stops at caps on steps and CPU seconds, which the CSV records.

    python examples/neighbors_match.py --quick    # seconds (the test suite runs it)
    python examples/neighbors_match.py --out results/neighbors_match   # the recorded run
"""

from __future__ import annotations

import math
import time
from itertools import chain, count, takewhile
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
from graphattn.experiments import RunFolder, machine_line, print_table, seed_everything, write_table
from graphattn.experiments.cli import ScriptParser, float_in, int_at_least, int_in, output_folder
from graphattn.experiments.plots import figure, series_styles
from graphattn.experiments.report import machine_info
from graphattn.graphs import expander

WIDTH, HEADS, LR = 32, 4, 1e-3
LAYERS = {"GATConv on tree": "r+1", "graphattn on tree": "r+1", "graphattn on full": "1",
          "graphattn on tree+VN": "3", "graphattn on tree+expander": "hops+1"}  # fmt: skip
MODELS = tuple(LAYERS)
LINE = ("r={r} {model:26s} L={layers} train {train_accuracy:.3f} test {test_accuracy:.3f} "
        "steps {steps} ({stopped_by}, {cpu_s:.0f} CPU s, {step_ms:.1f} ms/step)")  # fmt: skip
# Presets: above `all_up_to` a model runs only if it kept training accuracy >= 0.95 at the r
# before; value `permutations`; caps on steps and CPU s; evaluation interval; patience (evals).
KEYS = ("radii", "all_up_to", "permutations", "steps", "max_seconds", "eval_every", "patience")
PRESETS = {"quick": ([2, 3], 3, 24, 20, 2.0, 10, 20),
           "full": ([2, 3, 4, 5, 6], 5, 1000, 100000, 480.0, 250, 24)}  # fmt: skip
BATCH = {2: 64, 3: 64, 7: 2048}  # trees per step by r (else 1024), as the paper's GAT script
# Alon & Yahav (ICLR 2021), Figure 3 (also images/fig3.png in tech-srl/bottleneck): training
# accuracy by r, the values printed on the figure (r = 2, 3: every marker at 1.0).
PAPER = {
    "GGNN": {2: 1.0, 3: 1.0, 4: 1.0, 5: 0.60, 6: 0.38},
    "GAT": {2: 1.0, 3: 1.0, 4: 1.0, 5: 0.41},
    "GIN": {2: 1.0, 3: 1.0, 4: 0.77, 5: 0.29},
    "GCN": {2: 1.0, 3: 1.0, 4: 0.70, 5: 0.19, 6: 0.14},
}


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
    idx, labels = torch.arange(len(keys)), perms.gather(1, keys[:, None])[:, 0]
    train, test = train_test_split(idx, train_size=0.8, stratify=labels, random_state=seed)
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
        self.attended_edges = int((edges[0] != edges[1]).sum()) + self.nodes  # + self-loops

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
        conv = GATConv if model.startswith("GAT") else MultiHeadAttentionConv
        out = WIDTH // HEADS if conv is GATConv else WIDTH  # GATConv: channels per head
        self.convs = nn.ModuleList(conv(WIDTH, out, heads=HEADS) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(WIDTH) for _ in range(layers))

    def forward(self, x, graph, roots):
        x = self.embed(x)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(x + conv(x, graph))  # the paper's GAT: residual, layer norm, no activation
        return self.out(x[roots])


@torch.no_grad()
def accuracy(net, trees: Trees, split) -> float:  # no dropout or batch norm: no eval mode
    parts = zip(split[0].split(1024), split[1].split(1024), strict=True)
    hits = [trees.logits(net, k, p).argmax(-1) == p.gather(1, k[:, None])[:, 0] for k, p in parts]
    return int(sum(hit.sum() for hit in hits)) / len(split[0])


def run(model: str, r: int, train, test, cfg: dict, seed: int) -> dict:
    """Train one configuration; the best training accuracy and the test accuracy then."""
    gen = seed_everything(seed)
    trees = Trees(model, r, seed)
    net = Net(model, trees.layers, r)
    opt = torch.optim.Adam(net.parameters(), lr=LR)  # halved after patience / 2 evaluations:
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5,
                patience=cfg["patience"] // 2, threshold_mode="abs")  # fmt: skip
    best, test_acc, best_step, stale, step_cpu, n = -1.0, 0.0, 0, 0, [], len(train[0])
    start, wall = time.process_time(), time.perf_counter()
    epochs = (torch.randperm(n, generator=gen).split(BATCH.get(r, 1024)) for _ in count())
    for steps, idx in enumerate(chain.from_iterable(epochs), start=1):
        t0 = time.process_time()
        keys, perms = train[0][idx], train[1][idx]
        loss = F.cross_entropy(trees.logits(net, keys, perms), perms.gather(1, keys[:, None])[:, 0])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step_cpu.append(time.process_time() - t0)
        capped = steps >= cfg["steps"] or time.process_time() - start >= cfg["max_seconds"]
        if steps % cfg["eval_every"] and not capped:
            continue
        acc = accuracy(net, trees, train)
        sched.step(acc)
        stale += 1
        if acc > best + 1e-4:
            best, best_step, stale, test_acc = acc, steps, 0, accuracy(net, trees, test)
        cap = "step cap" if steps >= cfg["steps"] else "time cap"
        stop = "fit" if best == 1.0 else "plateau" if stale >= cfg["patience"] else capped and cap
        if stop:
            break
    return {"model": model, "r": r, "leaves": 2**r, "leaves_per_dim": 2**r / WIDTH,
            "layers": trees.layers, "edges_per_tree": trees.attended_edges,
            "train_accuracy": best, "test_accuracy": test_acc, "best_step": best_step,
            "steps": steps, "stopped_by": stop, "max_steps": cfg["steps"],
            "max_cpu_s": cfg["max_seconds"], "cpu_s": time.process_time() - start,
            "wall_s": time.perf_counter() - wall,
            "step_ms": 1e3 * sorted(step_cpu)[len(step_cpu) // 2],
            "batch": BATCH.get(r, 1024), "train_trees": n}  # fmt: skip


def paper_rows() -> list[dict]:
    """The paper's numbers, with the step budget of its released code: at most 50,000 epochs,
    stopped after 20 evaluations (every 100 epochs; 1000 at r = 2) without a gain."""
    rows = []
    for name, accs in PAPER.items():
        for r, acc in accs.items():
            train = math.floor(0.8 * min(1000, math.factorial(2**r), 32000 // 2**r) * 2**r)
            epoch = math.ceil(train / BATCH.get(r, 1024))  # steps per epoch
            rows.append({"model": name, "r": r, "leaves": 2**r, "train_accuracy": acc,
                         "max_steps": 50000 * epoch,
                         "stop_after_steps_without_gain": 20 * (1000 if r == 2 else 100) * epoch,
                         "source": "Alon & Yahav (ICLR 2021), Figure 3"})  # fmt: skip
    return rows


def summary(rows: list[dict], paper: list[dict]) -> list[dict]:
    """Per model: the largest r up to which training accuracy stays >= 0.95, and the first r
    at which it falls below 0.9, with the steps it was given there (the paper's GAT last)."""
    out, there = [], ("train_accuracy", "steps", "max_steps", "max_cpu_s")
    for source, table in (("here", rows), ("paper", [p for p in paper if p["model"] == "GAT"])):
        for model in dict.fromkeys(row["model"] for row in table):
            mine = sorted((row for row in table if row["model"] == model), key=lambda q: q["r"])
            kept = [row["r"] for row in takewhile(lambda q: q["train_accuracy"] >= 0.95, mine)]
            below = next((row for row in mine if row["train_accuracy"] < 0.9), {"stopped_by": ""})
            out.append({"source": source, "model": model, "layers": LAYERS.get(model, "r+1"),
                        "kept_0.95_up_to_r": kept[-1] if kept else "",
                        "first_r_below_0.9": below.get("r", ""),
                        **{f"{key}_there": below.get(key, "") for key in there},
                        "stopped_by": below.get("stopped_by", "not reported")})  # fmt: skip
    return out


def comparison(rows: list[dict], paper: list[dict]) -> list[dict]:
    """The paper's training accuracy beside ours, r labelled with its leaves per dimension."""
    return [{"model": f"{source}: {row['model']} (L = {LAYERS.get(row['model'], 'r+1')})",
             "r": f"{row['r']} ({2 ** row['r']} leaves, {2 ** row['r'] / WIDTH:g}/dim)",
             "train_accuracy": row["train_accuracy"]}
            for source, table in (("paper", paper), ("here", rows)) for row in table]  # fmt: skip


def plot(path: Path, rows: list[dict], footer: str) -> Path:
    """Training accuracy by r: the paper's Figure 3 (grey) beside every model of ``rows``."""
    styles = dict(zip(MODELS, series_styles(len(MODELS)), strict=True))
    box = {"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none"}

    def draw(ax):
        for (name, accs), marker in zip(PAPER.items(), "sodv", strict=True):
            label = f"paper: {name}, L = r+1 (Fig. 3)"
            ax.plot(list(accs), list(accs.values()), ":", marker=marker, color="0.6", label=label)
        for i, model in enumerate(dict.fromkeys(row["model"] for row in rows)):
            pts = sorted((row["r"], row["train_accuracy"]) for row in rows if row["model"] == model)
            label, colour = f"here: {model}, L = {LAYERS[model]}", styles[model]["color"]
            ax.plot(*zip(*pts, strict=True), "-", label=label, **styles[model])
            for x, y in (pt for pt in pts if pt[1] < 0.995):  # 1.00 reads off the axis
                ax.annotate(f"{y:.2f}", (x, y), (8, 4 - 9 * (i % 3)), "data", "offset points",
                            fontsize=7, color=colour, bbox=box)  # fmt: skip
        radii = sorted({row["r"] for row in rows} | {r for accs in PAPER.values() for r in accs})
        ax.set_xticks(radii, [f"{r}\n{2**r} leaves\n{2**r / WIDTH:g}/dim" for r in radii])
        ax.set_xlabel(f"tree depth r (2^r leaves; leaves per dimension of the {WIDTH}-wide root)")
        ax.set_ylabel("training accuracy (best)")
        ax.axhline(0.9, color="0.3", lw=0.6, ls="--", label="0.9")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    cap = f"here at most {rows[0]['max_cpu_s']:g} CPU s or {rows[0]['max_steps']} steps a point"
    title = f"Tree-NeighborsMatch: training accuracy by tree depth\n{cap}; the paper: 50,000 epochs"
    return figure(path, draw, title=title, size=(10.0, 5.0), footer=footer)


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    p = ScriptParser(doc=__doc__)
    p.add_argument("--quick", action="store_true", help="seconds: r = 2, 3; 20 steps, 2 CPU s")
    p.add_argument("--radii", type=int_in(2, 7), nargs="+", help="tree depths r (2..6)")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="models")
    p.add_argument("--steps", type=int_at_least(1), help="steps per configuration (100000)")
    p.add_argument("--max-seconds", type=float_in(0, None, low_open=True),
                   help="CPU seconds per configuration (480)")  # fmt: skip
    p.add_argument("--seed", type=int_at_least(0), default=11)  # the paper's seed
    p.add_argument("--threads", type=int_at_least(1), default=1)
    p.add_argument("--out", type=output_folder, default=Path("outputs/neighbors_match"))
    args = p.parse_args(argv)
    cfg = dict(zip(KEYS, PRESETS["quick" if args.quick else "full"], strict=True))
    cfg.update({key: getattr(args, key) for key in ("radii", "steps", "max_seconds")
                if getattr(args, key) is not None})  # fmt: skip
    cfg["all_up_to"] = cfg["all_up_to"] if args.radii is None else max(args.radii)
    torch.set_num_threads(args.threads)
    folder = RunFolder(args.out)  # writable? checked now; the files land together at the end
    info, rows, kept = machine_info(), [], {}
    print(machine_line(info))
    print(f"settings: {cfg} models={args.models} seed={args.seed} width={WIDTH} heads={HEADS}")
    for r in cfg["radii"]:
        train, test = examples(r, args.seed, cfg["permutations"])
        for model in [m for m in args.models if r <= cfg["all_up_to"] or kept.get(m)]:
            rows.append(row := run(model, r, train, test, cfg, args.seed))
            kept[model] = row["train_accuracy"] >= 0.95
            print(LINE.format(**row), flush=True)
    paper = paper_rows()
    settings = {**vars(args), **cfg}
    tables = {"neighbors_match": rows, "published": paper, "summary": summary(rows, paper),
              "comparison": comparison(rows, paper)}  # fmt: skip
    with folder:
        for name, table in tables.items():
            write_table(args.out / f"{name}.csv", table, settings=settings, machine=info)
        plot(args.out / "neighbors_match.png", rows, machine_line(info))
    print_table(tables["summary"], title="where training accuracy falls", fmt=".3f")
    print(f"wrote {', '.join(tables)} (.csv) and neighbors_match.png to {args.out}")
    return tables


if __name__ == "__main__":
    main()
