"""A seeded training loop, train/test splits and the metrics the studies report."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "accuracy",
    "fit",
    "normalised_mse",
    "progress",
    "seed_everything",
    "split_indices",
]

T = TypeVar("T")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a torch generator seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """A seeded random split of ``range(n)`` into ``(train, test)`` index tensors.

    >>> train, test = split_indices(10, 0.3, seed=0)
    >>> len(train), len(test), sorted(train.tolist() + test.tolist()) == list(range(10))
    (7, 3, True)
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"`test_fraction` must be in (0, 1), got {test_fraction}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    num_test = max(1, int(round(n * test_fraction)))
    return perm[num_test:], perm[:num_test]


def progress(items: Iterable[T], desc: str, total: int | None = None, *, enable: bool = True):
    """``items`` with a progress bar (tqdm, when installed and ``enable``)."""
    if not enable:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the studies extra
        return items
    return tqdm(items, desc=desc, total=total, leave=False, dynamic_ncols=True)


def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, T], Tensor],
    batches: Callable[[int], Iterable[T]],
    *,
    epochs: int,
    lr: float,
    weight_decay: float = 0.0,
    schedule: str = "onecycle",
    clip: float | None = 1.0,
    desc: str = "train",
    show_progress: bool = False,
    stop: Callable[[int], bool] | None = None,
) -> list[float]:
    """Train ``model`` with AdamW; returns the mean loss of every epoch.

    ``batches(epoch)`` yields the batches of one epoch and ``loss_fn(model, batch)`` returns a
    scalar loss. ``schedule`` is ``"onecycle"`` (warm-up, then cosine decay to zero over all
    steps) or ``"constant"``. Gradients are clipped to norm ``clip`` (``None``: no clipping).
    ``stop(epoch)``, when given, is called after every epoch (the model in eval mode) and
    ends training early by returning ``True``; the schedule still spans all ``epochs``.
    """
    if schedule not in ("onecycle", "constant"):
        raise ValueError(f"`schedule` must be 'onecycle' or 'constant', got {schedule!r}")
    epoch_batches = [list(batches(e)) for e in range(epochs)]
    total = sum(len(b) for b in epoch_batches)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = None
    if schedule == "onecycle" and total > 0:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total)
    history = []
    model.train()
    for epoch in progress(range(epochs), desc, enable=show_progress):
        losses = []
        for batch in epoch_batches[epoch]:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model, batch)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            if sched is not None:
                sched.step()
            losses.append(float(loss.detach()))
        history.append(sum(losses) / max(len(losses), 1))
        if stop is not None:
            model.eval()
            done = stop(epoch)
            model.train()
            if done:
                break
    model.eval()
    return history


def accuracy(logits: Tensor, target: Tensor) -> float:
    """Share of rows whose arg-max equals ``target``.

    >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0]))
    0.5
    """
    if target.numel() == 0:
        raise ValueError("`target` is empty")
    return float((logits.argmax(-1) == target).float().mean())


def normalised_mse(pred: Tensor, target: Tensor) -> float:
    """Mean squared error over the variance of ``target``: 1 for predicting the mean, 0 for a
    perfect fit.

    >>> normalised_mse(torch.zeros(4), torch.tensor([1.0, -1.0, 1.0, -1.0]))
    1.0
    """
    var = target.float().var(correction=0)
    if var <= 0:
        raise ValueError("`target` is constant: the normalised MSE is undefined")
    return float(((pred.float() - target.float()) ** 2).mean() / var)
