"""``argparse`` types that check a command-line value's range while the line is parsed.

A script declares ``p.add_argument("--heads", type=int_at_least(1))``; a bad value then stops
the script at once with argparse's usage message naming the flag (``argument --heads: must
be an int >= 1, got '0'``), before any data is generated or any model trained.

>>> import argparse
>>> p = argparse.ArgumentParser(exit_on_error=False)
>>> _ = p.add_argument("--lr", type=float_in(0, None, low_open=True))
>>> p.parse_args(["--lr", "0.01"]).lr
0.01
>>> float_in(0, None, low_open=True)("nan")
Traceback (most recent call last):
    ...
argparse.ArgumentTypeError: must be a finite number > 0, got 'nan'
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["float_in", "int_at_least", "int_in", "output_folder", "probability"]


def _named(fn: Callable, name: str, bounds: tuple) -> Callable:
    fn.__name__ = name  # argparse names the type in some messages
    fn.bounds = bounds  # (low, high, low_open, high_open): what the tests probe just outside
    return fn


def int_in(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An int in ``[low, high]`` (``None``: no bound on that side)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an int, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            if high is None:
                want = f">= {low}"
            elif low is None:
                want = f"<= {high}"
            else:
                want = f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"must be an int {want}, got {text!r}")
        return value

    return _named(parse, "int", (low, high, False, False))


def int_at_least(low: int) -> Callable[[str], int]:
    """An int ``>= low``."""
    return int_in(low, None)


def float_in(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[str], float]:
    """A finite float between ``low`` and ``high`` (``None``: no bound on that side), the
    bounds included unless ``low_open`` / ``high_open``. NaN and infinities are refused."""
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    want = " and ".join(parts)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        ok = math.isfinite(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if not ok:
            raise argparse.ArgumentTypeError(
                f"must be a finite number{' ' + want if want else ''}, got {text!r}"
            )
        return value

    return _named(parse, "float", (low, high, low_open, high_open))


probability = float_in(0.0, 1.0)
"""A float in ``[0, 1]``."""


def output_folder(text: str) -> Path:
    """A folder that can be created or written: not a file, and its nearest existing ancestor
    a writable folder. (The run still creates it at start, which is the final word.)"""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file, not a folder")
    probe = path
    while not probe.exists():
        parent = probe.parent
        if parent == probe:
            break
        probe = parent
    if probe.exists() and not probe.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} cannot be created: {str(probe)!r} is a file")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text!r} is not writable ({str(probe)!r} is read-only)")
    return path
