"""One run of a script: its output folder, the command that reproduces it, its settings.

Every example and claim script does the same around its own work: it checks its output folder
before any compute, prints the machine, the command and the settings at once, writes its tables
with that command, settings and machine in their headers, lands its files together at the end,
and says what it wrote and how long it took. :class:`Run` does exactly that, so a script holds
only its experiment::

    with Run(args.out, command=command_line(SCRIPT, argv), settings=settings) as run:
        rows = measure(...)
        run.table("results", rows)                      # results.csv
        run.heatmap("results", rows, "depth", "hops", "error")   # results.png
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from .._checks import check_positive_int
from . import plots
from .files import RunFolder
from .report import machine_info, machine_line, print_table, write_table
from .train import progress
from .verdicts import Verdict, write_verdicts

__all__ = ["Run"]


class Run:
    """The context of one run (use it as ``with Run(...) as run:``).

    Creating it checks (and creates) the output folder, as :class:`RunFolder` does: a folder
    that cannot be written stops the script before any compute. Entering it sets torch's
    threads (when ``threads`` is given; restored at exit), takes the machine line and prints
    it with the command and the settings. Files written under ``out`` inside the block land
    there together when it ends without an error (none when it fails).

    Args:
        out: the output folder.
        command (str): the command that reproduces the run's numbers, recorded in every table
            (:func:`~graphattn.experiments.cli.command_line`).
        settings (dict or argparse.Namespace, optional): recorded in every table that is not
            given its own; parsed arguments are recorded whole (paths as text, without the
            ``command`` :class:`~graphattn.experiments.cli.ScriptParser` adds).
        threads (int, optional): torch threads for the run. (default: leave them)
        exclusive (bool, optional): the folder holds this run's files only
            (:class:`RunFolder`). (default: :obj:`False`)
        progress (bool, optional): show progress bars (:meth:`progress`). (default:
            :obj:`True`)

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> with Run(out, command="python demo.py", settings={"n": 1}) as run:  # doctest: +ELLIPSIS
    ...     _ = run.table("numbers", [{"n": 1, "square": 1}])
    machine: ...
    command: python demo.py
    settings: {'n': 1}
    wrote .../numbers.csv
    wrote 1 file(s) into ... in ... s
    >>> sorted(p.name for p in out.iterdir())
    ['numbers.csv']
    """

    def __init__(
        self,
        out: str | Path,
        *,
        command: str,
        settings: dict | argparse.Namespace | None = None,
        threads: int | None = None,
        exclusive: bool = False,
        progress: bool = True,
    ):
        if not isinstance(command, str) or not command:
            raise ValueError(f"`command` must be a non-empty str, got {command!r}")
        if isinstance(settings, argparse.Namespace):
            settings = {k: str(v) if isinstance(v, Path) else v
                        for k, v in vars(settings).items() if k != "command"}  # fmt: skip
        if settings is not None and not isinstance(settings, dict):
            raise TypeError(f"`settings` must be a dict, got {type(settings).__name__}")
        if threads is not None:
            check_positive_int("threads", threads)
        self.out = Path(out)
        self.command = command
        self.settings = dict(settings or {})
        self.threads = threads
        self.show_progress = bool(progress)
        self.folder = RunFolder(self.out, exclusive=exclusive)  # writable? checked now
        self.machine: dict[str, str] | None = None
        self._threads_before = torch.get_num_threads()
        self._start = time.perf_counter()
        self._active = False

    @classmethod
    def from_args(cls, args: argparse.Namespace, **kwargs) -> Run:
        """The run that parsed arguments describe: ``args.out``, ``args.command`` (a
        :class:`~graphattn.experiments.cli.ScriptParser` with ``script=``), the arguments as the
        settings, ``args.threads`` and ``--no-progress`` where the script has them; ``kwargs``
        override any of these."""
        if not isinstance(args, argparse.Namespace):
            raise TypeError(f"`args` must be parsed arguments, got {type(args).__name__}")
        for name in ("out", "command"):
            if not hasattr(args, name):
                raise ValueError(f"`args` has no `{name}`: give ScriptParser `script=` and --out")
        options = {
            "command": args.command,
            "settings": args,
            "threads": getattr(args, "threads", None),
            "progress": not getattr(args, "no_progress", False),
        }
        return cls(args.out, **{**options, **kwargs})

    def progress(self, items, desc: str, total: int | None = None):
        """``items`` with a progress bar, unless the run hides them
        (:func:`~graphattn.experiments.progress`)."""
        return progress(items, desc, total, enable=self.show_progress)

    def __enter__(self) -> Run:
        self._threads_before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        self.machine = machine_info()  # after the threads: the line names the ones used
        print(machine_line(self.machine))
        print(f"command: {self.command}")
        print(f"settings: {self.settings}", flush=True)
        self.folder.__enter__()
        self._active = True
        self._start = time.perf_counter()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self._active = False
        files = self.folder.files()
        try:
            self.folder.__exit__(kind, value, traceback)
        finally:
            torch.set_num_threads(self._threads_before)
        if kind is None:
            print(f"wrote {len(files)} file(s) into {self.out}/ in {self.seconds:.1f} s")

    @property
    def seconds(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self._start

    @property
    def footer(self) -> str:
        """The machine line, for the footer of the run's figures."""
        return machine_line(self.machine)

    def table(
        self,
        name: str,
        rows: Sequence[dict],
        settings: dict | None = None,
        *,
        title: str | None = None,
        fmt: str = ".4g",
    ) -> Path:
        """Write ``rows`` as ``<out>/<name>.csv`` with the run's command, machine and
        ``settings`` (default: the run's); with a ``title``, print them first as a table
        (:func:`~graphattn.experiments.print_table`, cells formatted with ``fmt``). Returns the
        path."""
        self._check_active("table")
        if title is not None:
            print_table(rows, title=title, fmt=fmt)
        path = write_table(
            self.out / f"{name}.csv",
            rows,
            settings=self.settings if settings is None else settings,
            machine=self.machine,
            command=self.command,
        )
        print(f"wrote {path}")
        return path

    def figure(self, name: str, draw, **kwargs) -> Path:
        """``<out>/<name>.png`` drawn by ``draw(ax)``
        (:func:`~graphattn.experiments.plots.figure`), the machine line as its footer."""
        self._check_active("figure")
        return plots.figure(self.out / f"{name}.png", draw, footer=self.footer, **kwargs)

    def heatmap(self, name: str, rows: Sequence[dict], row: str, col: str, value: str, **kwargs):
        """``<out>/<name>.png``: ``value`` over ``row`` x ``col``
        (:func:`~graphattn.experiments.plots.heatmap`), the machine line as its footer."""
        self._check_active("heatmap")
        return plots.heatmap(self.out / f"{name}.png", rows, row, col, value, footer=self.footer,
                             **kwargs)  # fmt: skip

    def verdict(self, name: str, claim: str, verdict: Verdict) -> Verdict:
        """Print the verdict on ``claim`` and write ``<out>/<name>_verdict.csv``
        (:meth:`verdicts` of one claim); returns the verdict."""
        self.verdicts(name, [(claim, verdict)])
        return verdict

    def verdicts(
        self, name: str, verdicts: Sequence[tuple[str, Verdict]], settings: dict | None = None
    ) -> list[dict]:
        """Print the claims' verdicts and write ``<out>/<name>_verdict.csv``
        (:func:`~graphattn.experiments.write_verdicts`); returns its rows."""
        self._check_active("verdicts")
        rows = write_verdicts(
            self.out / f"{name}_verdict.csv",
            verdicts,
            command=self.command,
            settings=self.settings if settings is None else settings,
            machine=self.machine,
        )
        print(f"wrote {self.out / f'{name}_verdict.csv'}")
        return rows

    def _check_active(self, what: str) -> None:
        if not self._active:
            raise RuntimeError(f"Run.{what}() is for inside `with Run(...) as run:`")
