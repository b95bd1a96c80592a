"""The plumbing that studies (``examples/``) and benchmarks (``benchmarks/``) share.

- :mod:`.report`: the machine, result CSVs with their settings, printed tables;
- :mod:`.files`: atomic file writes, run folders filled all at once, cache keys;
- :mod:`.cli`: the scripts' parser: range-checked ``argparse`` types, presets as data (``--quick``);
- :mod:`.runs`: one run of a script: its folder, command, settings, tables and verdicts;
- :mod:`.verdicts`: a claim's verdict from its numbers, printed and saved as CSV;
- :mod:`.tables`: README/docs tables generated from result CSVs, and the check that they match;
- :mod:`.train`: seeding, splits, a training loop with progress, metrics;
- :mod:`.plots`: heat maps and line plots (matplotlib, the ``studies`` extra);
- :mod:`.isolate`: one configuration per process, and its peak memory;
- :mod:`.graphs`: the graphs the speed and memory benchmarks time the sparse engines on.

Nothing here is needed to use the layers; it is what makes the studies repeatable.
"""

from .files import RunFolder, atomic_path, cache_key, write_text
from .graphs import benchmark_graph
from .isolate import PeakMemory, process_peak_mb, process_seconds, run_isolated
from .report import (
    Goal,
    judge_goals,
    machine_info,
    machine_line,
    print_grid,
    print_table,
    read_table,
    write_table,
)
from .runs import Run
from .train import (
    accuracy,
    fit,
    fit_batches,
    normalised_mse,
    progress,
    seed_everything,
    split_indices,
)
from .verdicts import VERDICTS, Verdict, write_verdicts

__all__ = [
    "VERDICTS",
    "Goal",
    "PeakMemory",
    "Run",
    "RunFolder",
    "accuracy",
    "atomic_path",
    "benchmark_graph",
    "cache_key",
    "fit",
    "fit_batches",
    "judge_goals",
    "machine_info",
    "machine_line",
    "normalised_mse",
    "print_grid",
    "process_peak_mb",
    "process_seconds",
    "print_table",
    "progress",
    "read_table",
    "run_isolated",
    "seed_everything",
    "split_indices",
    "Verdict",
    "write_table",
    "write_text",
    "write_verdicts",
]
