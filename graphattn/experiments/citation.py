"""Node classification on the Planetoid citation graphs (Cora, CiteSeer), the field's standard
recipe: data, full-batch and mini-batch training, test accuracy at the best validation epoch.

The raw Planetoid files ship with the repository (``data/planetoid``, MIT licence) and are read
with PyG's own reader, so nothing is downloaded or written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data

from .._checks import check_int
from .train import check_rates

__all__ = [
    "PLANETOID",
    "NodeResult",
    "fit_nodes",
    "fit_nodes_khop",
    "load_planetoid",
    "planetoid_root",
]

#: the data sets shipped in ``data/planetoid`` (PubMed is not: its raw files are large)
PLANETOID = ("Cora", "CiteSeer")


class NodeResult(NamedTuple):
    """One training run: accuracies at the epoch of best validation accuracy (the first such
    epoch, as PyG's ``examples/gat.py`` keeps it)."""

    val_acc: float
    test_acc: float
    best_epoch: int
    seconds: float


def planetoid_root(root: str | Path | None = None) -> Path:
    """The folder holding ``<name>/raw/ind.<name>.*``: ``root`` when given, else
    ``data/planetoid`` of the working directory or of the repository this package lives in."""
    if root is not None:
        return Path(root)
    here = Path(__file__).resolve().parents[2] / "data" / "planetoid"
    for candidate in (Path("data/planetoid"), here):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "no `data/planetoid` folder in the working directory or beside the package; run from "
        "a clone of graphattn or pass `root=` (a folder with <name>/raw/ind.<name>.* files)"
    )


def load_planetoid(
    name: str, root: str | Path | None = None, *, normalize_features: bool = True
) -> Data:
    """``Cora`` or ``CiteSeer`` with the standard public split, read offline.

    ``normalize_features`` row-normalises the bag-of-words features (PyG's
    ``NormalizeFeatures``, as in the GAT recipe).

    >>> data = load_planetoid("Cora")
    >>> data.num_nodes, data.num_features, int(data.train_mask.sum())
    (2708, 1433, 140)
    """
    from torch_geometric.io import read_planetoid_data
    from torch_geometric.transforms import NormalizeFeatures

    if name not in PLANETOID:
        raise ValueError(f"`name` must be one of {PLANETOID}, got {name!r}")
    raw = planetoid_root(root) / name / "raw"
    missing = [
        f"ind.{name.lower()}.{part}"
        for part in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
        if not (raw / f"ind.{name.lower()}.{part}").is_file()
    ]
    if missing:
        raise FileNotFoundError(f"{raw} lacks the raw Planetoid file(s) {missing}")
    data = read_planetoid_data(str(raw), name.lower())
    return NormalizeFeatures()(data) if normalize_features else data


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(-1) == y).float().mean()) if y.numel() else float("nan")


def _adam(model: nn.Module, lr: float, weight_decay: float, no_decay=()) -> torch.optim.Adam:
    """Adam with L2 weight decay (PyG's recipe), none for parameters named in ``no_decay``;
    frozen parameters are left out."""
    decay, free = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (free if any(s in name for s in no_decay) else decay).append(p)
    groups = [{"params": decay}] + ([{"params": free, "weight_decay": 0.0}] if free else [])
    return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)


def _check_fit(model: object, data: object, epochs: object, lr: object, wd: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(data, Data):
        raise TypeError(f"`data` must be a torch_geometric Data, got {type(data).__name__}")
    missing = [k for k in ("x", "edge_index", "y", *_MASKS) if getattr(data, k, None) is None]
    if missing:
        raise ValueError(f"`data` lacks {missing} (load_planetoid gives all of them)")
    check_int("epochs", epochs, 1)
    check_rates(lr, wd)


_MASKS = ("train_mask", "val_mask", "test_mask")


def fit_nodes(
    model: nn.Module,
    data: Data,
    *,
    epochs: int = 200,
    lr: float = 0.005,
    weight_decay: float = 5e-4,
    forward: Callable[[nn.Module, Data], torch.Tensor] | None = None,
    no_decay: tuple[str, ...] = (),
) -> NodeResult:
    """Full-batch training with Adam, cross-entropy on the training nodes; after every epoch
    the model is evaluated, and the test accuracy at the best validation accuracy is kept.

    ``forward(model, data)`` returns the logits of all nodes (default:
    ``model(data.x, data.edge_index)``). Parameters whose name contains a string of
    ``no_decay`` get no weight decay (an ablation; PyG's recipe decays every parameter).
    """
    _check_fit(model, data, epochs, lr, weight_decay)
    if forward is not None and not callable(forward):
        raise TypeError(f"`forward` must be callable, got {type(forward).__name__}")
    forward = forward or (lambda m, d: m(d.x, d.edge_index))
    opt = _adam(model, lr, weight_decay, no_decay)
    best = NodeResult(-1.0, float("nan"), -1, 0.0)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        opt.zero_grad()
        logits = forward(model, data)
        F.cross_entropy(logits[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            logits = forward(model, data)
        val = _accuracy(logits[data.val_mask], data.y[data.val_mask])
        if val > best.val_acc:
            test = _accuracy(logits[data.test_mask], data.y[data.test_mask])
            best = NodeResult(val, test, epoch, 0.0)
    return best._replace(seconds=time.perf_counter() - start)


def fit_nodes_khop(
    model: nn.Module,
    data: Data,
    *,
    num_hops: int,
    batch_size: int,
    eval_batch_size: int = 1024,
    epochs: int = 200,
    lr: float = 0.005,
    weight_decay: float = 5e-4,
    generator: torch.Generator | None = None,
) -> NodeResult:
    """:func:`fit_nodes` on mini-batches: every epoch walks the training nodes in shuffled
    batches of ``batch_size`` seeds, each with its exact ``num_hops``-hop in-neighbourhood
    (:class:`~graphattn.loader.KHopLoader`), one optimiser step per batch; validation and test
    accuracies are computed through the loader as well, in batches of ``eval_batch_size``
    seeds (exact, so they equal full-graph inference). ``model(x, edge_index)`` must have
    ``num_hops`` message-passing layers.
    """
    from ..loader import KHopLoader

    _check_fit(model, data, epochs, lr, weight_decay)
    check_int("num_hops", num_hops, 0)
    check_int("batch_size", batch_size, 1)
    check_int("eval_batch_size", eval_batch_size, 1)

    def loader(mask: torch.Tensor, size: int, shuffle: bool) -> KHopLoader:
        return KHopLoader(
            data, num_hops, input_nodes=mask, batch_size=size, shuffle=shuffle,
            generator=generator,
        )  # fmt: skip

    train = loader(data.train_mask, batch_size, True)
    # the evaluation subgraphs do not change between epochs: extracted once
    evaluate = list(loader(data.val_mask | data.test_mask, eval_batch_size, False))
    opt = _adam(model, lr, weight_decay)
    best = NodeResult(-1.0, float("nan"), -1, 0.0)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for batch in train:
            opt.zero_grad()
            logits = model(batch.x, batch.edge_index)[: batch.batch_size]
            F.cross_entropy(logits, batch.y[: batch.batch_size]).backward()
            opt.step()
        model.eval()
        pred = torch.empty(data.num_nodes, dtype=torch.long)
        with torch.no_grad():
            for batch in evaluate:
                seeds = batch.n_id[: batch.batch_size]
                pred[seeds] = model(batch.x, batch.edge_index)[: batch.batch_size].argmax(-1)
        val = float((pred[data.val_mask] == data.y[data.val_mask]).float().mean())
        if val > best.val_acc:
            test = float((pred[data.test_mask] == data.y[data.test_mask]).float().mean())
            best = NodeResult(val, test, epoch, 0.0)
    return best._replace(seconds=time.perf_counter() - start)
