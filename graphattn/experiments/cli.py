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
import copy
import math
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "VOCABULARY",
    "ScriptParser",
    "command_line",
    "float_in",
    "int_at_least",
    "int_in",
    "output_folder",
    "probability",
    "settings_of",
    "summary",
]


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


#: One vocabulary across the examples and benchmarks: a flag means the same thing in every
#: script, and an option declared without a help text gets this one. (``--d-model`` is the total
#: width, as the layer's ``out_channels``; ``--steps`` counts optimiser steps; ``--only`` names
#: parts of a run; ``--quick`` is every script's small setting.)
VOCABULARY = {
    "--quick": "small settings: the same code paths in a minute or so",
    "--smoke": "tiny settings that only exercise the code (the tests): the numbers mean nothing",
    "--out": "output folder: created before any compute; the run's files land there together",
    "--seed": "random seed (a run is repeatable for a given seed)",
    "--seeds": "independent runs (seeds) to average over",
    "--threads": "torch CPU threads",
    "--no-progress": "hide the progress bars",
    "--d-model": "model width d_model, all heads together (heads must divide it)",
    "--heads": "attention heads (they split --d-model)",
    "--layers": "transformer blocks (model depth)",
    "--steps": "optimiser steps",
    "--lr": "peak learning rate",
    "--nodes": "nodes N of the random graph",
    "--agents": "agents (nodes) per economy",
    "--degree": "edges per node: E = degree * N",
    "--repeats": "timed steps per configuration (the median is reported)",
    "--rounds": "sweeps over all configurations, in turn; medians over rounds are reported",
    "--radius": "window radius r: each token attends to |i - j| <= r",
    "--partition": "how nodes are split over processes (METIS via pymetis, or random)",
    "--cache": "folder where generated graphs and partitions are kept between runs",
}


def summary(doc: str | None) -> str:
    """The first paragraph of a script's docstring as one line: its ``--help`` description
    (cutting at the first line break cut sentences in half).

    >>> summary("Where the fused engine\\nbeats the reference.\\n\\nDetails.")
    'Where the fused engine beats the reference.'
    """
    return " ".join((doc or "").strip().split("\n\n")[0].split())


class ScriptParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` for the examples and benchmarks: the description is the
    docstring's first paragraph (pass ``doc=__doc__``), and an option declared without a help
    text gets its :data:`VOCABULARY` entry, so one flag reads the same in every script.

    ``presets`` makes a script's settings data (as nanoGPT's configs): a dict of named levels,
    each mapping option names (their ``dest``) to values. The first level is the default; every
    other one gets a flag of its name (``--quick``, ``--smoke``; one at a time). After parsing,
    every option the command line left at ``None`` takes its value from the chosen level, and
    ``args.preset`` names that level. An option the command line sets keeps its value; a key
    that no option declares is a setting of the level the command line does not change (set
    on ``args`` as it is). Every level must set the same keys.

    >>> p = ScriptParser(presets={"full": {"steps": 600}, "quick": {"steps": 30}})
    >>> _ = p.add_argument("--steps", type=int_at_least(1))
    >>> args = p.parse_args(["--quick"])
    >>> args.steps, args.preset, args.quick
    (30, 'quick', True)
    >>> p.parse_args(["--quick", "--steps", "5"]).steps, p.parse_args([]).steps
    (5, 600)

    ``script`` (the script's path from the repository root) makes ``args.command`` the command
    that reproduces the run (:func:`command_line` of the arguments parsed), for the headers of
    its tables; :meth:`add_run_options` adds the options every run has (``out=`` adds them with
    their defaults).
    """

    def __init__(
        self,
        *args,
        doc: str | None = None,
        presets: dict | None = None,
        script: str | None = None,
        out: str | None = None,
        **kwargs,
    ):
        if doc is not None and "description" not in kwargs:
            kwargs["description"] = summary(doc)
        super().__init__(*args, **kwargs)
        if script is not None and (not isinstance(script, str) or not script.endswith(".py")):
            raise ValueError(
                f"`script` must be the script's path, e.g. 'examples/x.py', got {script!r}"
            )
        self.script = script
        self.presets = _check_presets(presets)
        if out is not None:
            self.add_run_options(out)
        if self.presets:
            group = self.add_mutually_exclusive_group()
            for level in list(self.presets)[1:]:
                group.add_argument(f"--{level}", action="store_true")

    def _fill_help(self) -> None:
        for action in self._actions:
            if action.help is None and action.option_strings:
                action.help = VOCABULARY.get(action.option_strings[-1])

    def add_run_options(
        self, out: str, *, threads: int | None = 1, progress: bool = True, seed: int | None = None
    ) -> None:
        """Add ``--out`` (default ``out``, checked by :func:`output_folder`), ``--threads``
        (default ``threads``; ``None``: no such option), with ``progress`` ``--no-progress``,
        and with a ``seed`` ``--seed`` (that default)."""
        self.add_argument("--out", type=output_folder, default=Path(out))
        if threads is not None:
            self.add_argument("--threads", type=int_at_least(1), default=threads,
                              help=f"torch CPU threads (default {threads})")  # fmt: skip
        if progress:
            self.add_argument("--no-progress", action="store_true")
        if seed is not None:
            self.add_argument("--seed", type=int_at_least(0), default=seed)

    def parse_known_args(self, args=None, namespace=None):
        self._fill_help()
        argv = sys.argv[1:] if args is None else list(args)
        parsed, rest = super().parse_known_args(argv, namespace)
        if self.script is not None:
            parsed.command = command_line(self.script, argv)
        if self.presets:
            chosen = [level for level in list(self.presets)[1:] if getattr(parsed, level)]
            parsed.preset = chosen[0] if chosen else next(iter(self.presets))
            for key, value in self.presets[parsed.preset].items():
                if getattr(parsed, key, None) is None:  # unset, or a setting with no option
                    setattr(parsed, key, copy.deepcopy(value))  # a list stays the preset's own
        return parsed, rest

    def format_help(self) -> str:
        self._fill_help()
        return super().format_help()

    def check_divides(self, args: argparse.Namespace, heads: str, width: str) -> None:
        """Stop with a usage error naming both flags unless every value of option ``heads``
        (an int or a list) divides option ``width`` (the model width they split).

        >>> p = ScriptParser(exit_on_error=False)
        >>> p.check_divides(argparse.Namespace(heads=[1, 2, 4], d_model=32), "heads", "d_model")
        """
        value, total = getattr(args, heads), getattr(args, width)
        bad = [h for h in (value if isinstance(value, list) else [value]) if total % h]
        if bad:
            shown = bad if isinstance(value, list) else bad[0]
            self.error(f"--{heads.replace('_', '-')} {shown} must divide "
                       f"--{width.replace('_', '-')} {total}")  # fmt: skip


def _check_presets(presets: object) -> dict[str, dict] | None:
    if presets is None:
        return None
    if not isinstance(presets, dict) or not presets:
        raise TypeError("`presets` must be a non-empty dict: level name -> {option: value}")
    for level, values in presets.items():
        if not isinstance(level, str) or not level.isidentifier():
            raise ValueError(f"`presets` level names must be identifiers (flags), got {level!r}")
        if not isinstance(values, dict):
            raise TypeError(f"`presets[{level!r}]` must be a dict, got {type(values).__name__}")
    keys = [set(values) for values in presets.values()]
    if any(k != keys[0] for k in keys):
        raise ValueError(
            f"`presets` levels must set the same keys, got {[sorted(k) for k in keys]}"
        )
    return presets


def settings_of(args: argparse.Namespace, *names: str) -> dict:
    """The settings a table records: the preset level (``setting``) and the options ``names``.

    >>> settings_of(argparse.Namespace(preset="quick", steps=30, lr=0.01), "steps")
    {'setting': 'quick', 'steps': 30}
    """
    missing = [n for n in ("preset", *names) if not hasattr(args, n)]
    if missing:
        raise ValueError(f"`args` has no {missing}")
    return {"setting": args.preset, **{n: getattr(args, n) for n in names}}


def command_line(
    script: str, argv: list[str], *, drop: tuple[str, ...] = ("--no-progress",)
) -> str:
    """The command that reproduces a run's numbers: ``python <script> <argv>``, without
    ``--out`` (and its value) or the flags in ``drop``, which change where the files go or
    what is shown, not the numbers; an argument with spaces is quoted for the shell.

    >>> command_line("examples/x.py", ["--quick", "--out", "/tmp/x", "--no-progress"])
    'python examples/x.py --quick'
    >>> command_line("x.py", ["--models", "a, b"])
    "python x.py --models 'a, b'"
    """
    if not isinstance(script, str) or not script:
        raise ValueError(f"`script` must be a script's path, got {script!r}")
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--out":
            skip = True
        elif not arg.startswith("--out=") and arg not in drop:
            kept.append(arg)
    return shlex.join(["python", script, *kept])  # quoted: an argument may hold spaces
