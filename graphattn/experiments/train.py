"""A seeded training loop, train/test splits and the metrics the studies report."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import check_int

__all__ = [
    "accuracy",
    "fit",
    "fit_batches",
    "normalised_mse",
    "progress",
    "seed_everything",
    "split_indices",
]

T = TypeVar("T")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a torch generator seeded with ``seed``."""
    check_int("seed", seed, 0)
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
    check_int("n", n, 2)  # at least one node on each side
    check_int("seed", seed, 0)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise TypeError(f"`test_fraction` must be a float, got {type(test_fraction).__name__}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"`test_fraction` must be in (0, 1), got {test_fraction}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    num_test = min(n - 1, max(1, int(round(n * test_fraction))))
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


def check_rates(lr: object, weight_decay: object, clip: object = None) -> None:
    """``lr`` a finite number > 0, ``weight_decay`` one >= 0, ``clip`` one > 0 or ``None``."""
    for name, value in (("lr", lr), ("weight_decay", weight_decay), ("clip", clip)):
        if value is None and name == "clip":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"`{name}` must be a number, got {type(value).__name__}")
        low_ok = value >= 0 if name == "weight_decay" else value > 0
        if not (math.isfinite(value) and low_ok):
            want = ">= 0" if name == "weight_decay" else "> 0"
            raise ValueError(f"`{name}` must be a finite number {want}, got {value}")


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
    for name, fn in (("loss_fn", loss_fn), ("batches", batches)):
        if not callable(fn):
            raise TypeError(f"`{name}` must be callable, got {type(fn).__name__}")
    check_int("epochs", epochs, 0)
    check_rates(lr, weight_decay, clip)
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


def fit_batches(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, T], Tensor],
    batches: Sequence[T],
    *,
    lr: float,
    **kwargs,
) -> tuple[list[float], float]:
    """:func:`fit` with one optimiser step per item of ``batches``, in order (each its own
    epoch, so the history holds every step's loss and the schedule spans all of them).
    ``kwargs`` go to :func:`fit`. Returns the history and the seconds training took.

    >>> model = nn.Linear(2, 1)
    >>> data = [(torch.randn(8, 2), torch.randn(8, 1)) for _ in range(5)]
    >>> mse = lambda m, b: ((m(b[0]) - b[1]) ** 2).mean()
    >>> history, seconds = fit_batches(model, mse, data, lr=0.01)
    >>> len(history)
    5
    """
    if isinstance(batches, (str, bytes)) or not isinstance(batches, Sequence):
        raise TypeError(f"`batches` must be a sequence of batches, got {type(batches).__name__}")
    start = time.perf_counter()
    history = fit(
        model, loss_fn, lambda epoch: [batches[epoch]], epochs=len(batches), lr=lr, **kwargs
    )
    return history, time.perf_counter() - start


def _check_pair(a: object, b: object, name_a: str, name_b: str, *, same_shape: bool) -> None:
    for name, t in ((name_a, a), (name_b, b)):
        if not isinstance(t, Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor, got {type(t).__name__}")
    if same_shape and a.shape != b.shape:
        raise ValueError(
            f"`{name_a}` {list(a.shape)} and `{name_b}` {list(b.shape)} must have one shape"
        )


def accuracy(logits: Tensor, target: Tensor) -> float:
    """Share of rows whose arg-max equals ``target``.

    >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0]))
    0.5
    """
    _check_pair(logits, target, "logits", "target", same_shape=False)
    if target.numel() == 0:
        raise ValueError("`target` is empty")
    if logits.shape[:-1] != target.shape:
        raise ValueError(
            f"`logits` {list(logits.shape)} must be `target` {list(target.shape)} plus a class "
            "dimension"
        )
    return float((logits.argmax(-1) == target).float().mean())


def normalised_mse(pred: Tensor, target: Tensor) -> float:
    """Mean squared error over the variance of ``target``: 1 for predicting the mean, 0 for a
    perfect fit.

    >>> normalised_mse(torch.zeros(4), torch.tensor([1.0, -1.0, 1.0, -1.0]))
    1.0
    """
    _check_pair(pred, target, "pred", "target", same_shape=True)
    if target.numel() == 0:
        raise ValueError("`target` is empty")
    var = target.float().var(correction=0)
    if var <= 0:
        raise ValueError("`target` is constant: the normalised MSE is undefined")
    return float(((pred.float() - target.float()) ** 2).mean() / var)
