"""The plumbing that studies (``examples/``) and benchmarks (``benchmarks/``) share.

- :mod:`.report`: the machine, result CSVs with their settings, printed tables;
- :mod:`.files`: atomic file writes, run folders filled all at once, cache keys;
- :mod:`.cli`: ``argparse`` types that range-check command-line values;
- :mod:`.tables`: README/docs tables generated from result CSVs, and the check that they match;
- :mod:`.train`: seeding, splits, a training loop with progress, metrics;
- :mod:`.plots`: heat maps and line plots (matplotlib, the ``studies`` extra);
- :mod:`.isolate`: one configuration per process, and its peak memory.

Nothing here is needed to use the layers; it is what makes the studies repeatable.
"""

from .files import RunFolder, atomic_path, cache_key, write_text
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
from .train import accuracy, fit, normalised_mse, progress, seed_everything, split_indices

__all__ = [
    "Goal",
    "PeakMemory",
    "RunFolder",
    "accuracy",
    "atomic_path",
    "cache_key",
    "fit",
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
    "write_table",
    "write_text",
]
