"""Measure a configuration in its own process, and its peak memory.

Benchmarks run every configuration in a fresh interpreter (:func:`run_isolated`) so that one
configuration's allocations, caches and compiled code cannot flatter or burden the next, and
measure the peak extra memory of the steps with :class:`PeakMemory`: the kernel's peak
resident-set counter is reset (``/proc/self/clear_refs``) after set-up, and the peak
(``VmHWM``) minus the resident set at that moment is what the steps added. This counts all
memory the process touches (allocator slack included), not only tensors.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

__all__ = ["PeakMemory", "process_peak_mb", "process_seconds", "run_isolated"]


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def process_peak_mb() -> float:
    """The process's peak resident memory so far, in MB (10**6 bytes): ``VmHWM``, or
    ``ru_maxrss`` where ``/proc`` is missing. (:class:`PeakMemory` measures one block.)"""
    peak = _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * 1024 / 1e6


def process_seconds() -> float | None:
    """Wall seconds since this process started, imports included (Linux; else ``None``)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class PeakMemory:
    """``with PeakMemory() as mem: ...`` then ``mem.extra_mb``: the peak resident memory the
    block added over what the process held when it started, in MB (10**6 bytes);
    ``mem.peak_mb``: the process's peak resident memory during the block (what it held
    before plus ``extra_mb``).

    ``mem.method`` says how it was measured: ``"VmHWM"`` (the peak counter reset at the start
    of the block) or ``"ru_maxrss"`` where the counter cannot be reset, which misses a peak
    below an earlier one in the process.

    Garbage is collected first, so that cyclic garbage freed during the block cannot hide
    its peak; not under ``GRAPHATTN_IN_PROCESS=1`` (:func:`in_process`), where the figures
    mean nothing and a full collection in a long-lived process (a test session) costs more
    than the smoke run's work.
    """

    def __enter__(self) -> PeakMemory:
        if not in_process():
            gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.method = "VmHWM"
        except OSError:
            self.method = "ru_maxrss"
        self._base_kib = _status_kib("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(self, *exc) -> None:
        peak = _status_kib("VmHWM") if self.method == "VmHWM" else None
        if peak is None:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.extra_mb = max(0, peak - self._base_kib) * 1024 / 1e6
        self.peak_mb = max(peak, self._base_kib) * 1024 / 1e6


def run_isolated(
    target: str, spec: dict, *, timeout: float | None = None, env: dict[str, str] | None = None
) -> dict:
    """Call ``function(spec)`` in a fresh Python process and return its (JSON) result.

    ``target`` is ``"path/to/script.py:function"`` or ``"package.module:function"``; the
    function takes the ``spec`` dict and returns a JSON-serialisable dict. A failure in the
    child raises a ``RuntimeError`` with its output; past ``timeout`` seconds,
    :class:`subprocess.TimeoutExpired`. ``env`` adds (or overrides) environment variables
    of the child, e.g. ``{"MALLOC_MMAP_THRESHOLD_": "65536"}``.

    With the environment variable ``GRAPHATTN_IN_PROCESS=1`` the function runs in this
    process instead (its result still round-trips through JSON): for smoke tests of scripts,
    where starting interpreters costs more than the work; memory figures are then meaningless.
    """
    _split_target(target)
    if in_process():
        return json.loads(json.dumps(_load(target)(spec)))
    # run this file as a script: the child imports only what the target imports
    cmd = [sys.executable, str(Path(__file__).resolve()), target, json.dumps(spec)]
    child_env = None if env is None else {**os.environ, **env}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env)
    marker = "@@graphattn-result@@"
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(marker):
            return json.loads(line[len(marker) :])
    raise RuntimeError(
        f"{target} failed (exit {done.returncode}) for {spec}:\n{done.stdout[-2000:]}"
        f"{done.stderr[-4000:]}"
    )


def in_process() -> bool:
    """Whether ``GRAPHATTN_IN_PROCESS=1`` asks isolated runs to stay in this process."""
    return os.environ.get("GRAPHATTN_IN_PROCESS") == "1"


def _split_target(target: str) -> tuple[str, str]:
    where, _, name = target.rpartition(":")
    if not where or not name:
        raise ValueError(
            f"`target` must be 'file.py:function' or 'module:function', got {target!r}"
        )
    return where, name


def _load(target: str):
    where, name = _split_target(target)
    if where.endswith(".py"):
        path = Path(where).resolve()
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    return getattr(module, name)


def _main() -> None:  # pragma: no cover - runs in the child
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p != here]  # run as a script: don't shadow packages
    target, spec = sys.argv[1], json.loads(sys.argv[2])
    result = _load(target)(spec)
    print("@@graphattn-result@@" + json.dumps(result), flush=True)


if __name__ == "__main__":  # pragma: no cover
    _main()
