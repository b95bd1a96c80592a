"""Every script's command line refuses bad values before any compute: each numeric flag through
a range-checked ``argparse`` type (probed just outside its range, with NaN, inf and text), each
output folder checked at parse time and created at start, and the checks across flags."""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import pytest

from graphattn.experiments import RunFolder
from graphattn.experiments.cli import output_folder
from tests.benchmarks._scripts import load_script
from tests.examples._studies import load_example

# script -> (how to load it, the arguments a call needs besides the one under test)
SCRIPTS = {
    "examples/claims_table": (load_example, "claims_table", []),
    "examples/distributed_training": (load_example, "distributed_training", []),
    "examples/economy_shocks": (load_example, "economy_shocks", []),
    "examples/economy_shocks_learn": (load_example, "economy_shocks_learn", []),
    "examples/economy_shocks_theory": (load_example, "economy_shocks_theory", []),
    "examples/economy_study": (load_example, "economy_study", []),
    "examples/image_positional": (load_example, "image_positional", []),
    "examples/image_study": (load_example, "image_study", []),
    "examples/karate_club": (load_example, "karate_club", []),
    "examples/neighbors_match": (load_example, "neighbors_match", []),
    "examples/quickstart": (load_example, "quickstart", None),  # main() reads sys.argv
    "examples/sequence_study": (load_example, "sequence_study", []),
    **{
        f"examples/claims/{name}": (load_example, f"claims/{name}", [])
        for name in (
            "heads_copy",
            "heads_diversity",
            "heads_motifs",
            "heads_sparse",
            "heads_prune",
            "transformer_variance",
            "transformer_params",
            "transformer_logits",
            "transformer_depth",
            "transformer_memory",
        )
    },  # fmt: skip
    "benchmarks/auto_crossover": (load_script, "auto_crossover", []),
    "benchmarks/citation": (load_script, "citation", []),
    "benchmarks/dense_vs_sparse": (load_script, "dense_vs_sparse", []),
    "benchmarks/distributed_scaling": (load_script, "distributed_scaling", []),
    "benchmarks/fused_kernels": (load_script, "fused_kernels", []),
    "benchmarks/gather_floor": (load_script, "gather_floor", []),
    "benchmarks/import_time": (load_script, "import_time", []),
    "benchmarks/mha": (load_script, "mha", []),
    "benchmarks/ordering": (load_script, "ordering", []),
    "benchmarks/precision": (load_script, "precision", []),
    "benchmarks/sparse_scaling": (load_script, "sparse_scaling", []),
    "benchmarks/test_time": (load_script, "test_time", []),
    "benchmarks/window_floor": (load_script, "window_floor", []),
}
_MODULES: dict[str, object] = {}


class _Parsed(Exception):
    """Raised where the script would go on to compute: the values were accepted."""


def _module(script: str):
    if script not in _MODULES:
        load, name, _ = SCRIPTS[script]
        _MODULES[script] = load(name)
    return _MODULES[script]


def _call(script: str, argv: list[str], monkeypatch) -> None:
    module = _module(script)
    prefix = SCRIPTS[script][2]
    if prefix is None:
        monkeypatch.setattr(sys, "argv", [f"{script}.py", *argv])
        module.main()
    else:
        module.main([*prefix, *argv])


def _stop_after_parsing(monkeypatch, record: list | None = None) -> None:
    real = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        if record is not None:
            record.append(self)
            raise _Parsed
        real(self, args, namespace)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options of ``parser`` and of its sub-commands (once each)."""
    seen, out = set(), []
    todo = [parser]
    while todo:
        p = todo.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
            elif action.option_strings and action.option_strings[0] not in seen:
                seen.add(action.option_strings[0])
                out.append(action)
    return out


def _parser(script: str, monkeypatch) -> argparse.ArgumentParser:
    record: list = []
    with monkeypatch.context() as m:
        _stop_after_parsing(m, record)
        with pytest.raises(_Parsed):
            _call(script, [], m)
    return record[0]


def _outside(bounds: tuple, kind: str) -> list[str]:
    """Values just outside a type's range, and ones no number type takes."""
    low, high, low_open, high_open = bounds
    bad = ["x"]
    if kind == "int":
        bad.append("1.5")
        bad += [str(low - 1)] if low is not None else []
        bad += [str(high + 1)] if high is not None else []
    else:
        bad += ["nan", "inf", "-inf"]
        bad += [repr(low if low_open else low - 1.0)] if low is not None else []
        bad += [repr(high if high_open else high + 1.0)] if high is not None else []
    return bad


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_every_numeric_flag_refuses_values_outside_its_range(script, monkeypatch, capsys, tmp_path):
    """``--heads 0``, ``--threads 0``, ``--steps 0``, ``--lr nan``, ``--graphml-max-nodes -5``
    and the like are argparse's usage error naming the flag, before anything runs (not a
    crash deep inside, nor a run that goes on silently)."""
    actions = _actions(_parser(script, monkeypatch))
    unchecked = [a.option_strings[0] for a in actions if a.type in (int, float)]
    assert not unchecked, f"{script}: flags without a range-checked type: {unchecked}"
    (tmp_path / "file").write_text("x")
    cases = []
    for action in actions:
        flag = action.option_strings[0]
        bounds = getattr(action.type, "bounds", None)
        if bounds is not None:
            cases += [(flag, value) for value in _outside(bounds, action.type.__name__)]
        elif action.type is output_folder:
            cases += [(flag, str(tmp_path / "file")), (flag, str(tmp_path / "file" / "sub"))]
    numeric = [a for a in actions if getattr(a.type, "bounds", None) is not None]
    assert cases or script == "examples/claims_table", script
    assert numeric or script in ("examples/claims_table", "benchmarks/test_time"), script
    _stop_after_parsing(monkeypatch)
    for flag, value in cases:
        with pytest.raises(SystemExit) as info:
            _call(script, [flag, value], monkeypatch)
        err = capsys.readouterr().err
        assert info.value.code == 2 and f"argument {flag}" in err, (flag, value, err)


#: flags that meant what another flag means elsewhere, and the one that means it now
RETIRED = {
    "--channels": "--d-model",
    "--dim": "--d-model (the total width; heads split it)",
    "--epochs": "--steps (optimiser steps)",
    "--depth": "--layers (blocks of one model; --depths is a sweep)",
    "--economies": "--train-economies",
    "--parts": "--only (parts of a run) or --partitions (graph parts)",
    "--skip": "--only",
}
#: scripts without --quick, and why
NO_QUICK = {
    "examples/claims_table": "it only reads CSVs",
    "examples/quickstart": "it is small already",
    "benchmarks/test_time": "it measures make test and make demo themselves",
}


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out += list(dict.fromkeys(action.choices.values()))
    return out


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_help_is_complete_and_speaks_one_vocabulary(script, monkeypatch):
    """Every option has a help text and every description is whole (not cut at the
    docstring's first line break, mid-sentence); no help names an issue; no script uses a
    retired flag; every script has --quick unless it says why not; --scenarios names
    scenarios in every script (never a count)."""
    parser = _parser(script, monkeypatch)
    help_text = "\n".join(p.format_help() for p in _parsers(parser))  # fills vocabulary help
    description = " ".join((parser.description or "").split())
    assert description and description[-1] in ".)", f"{script}: description {description!r}"
    assert not re.search(r"\bissues? #?\d+|#\d+\b", help_text), script
    actions = _actions(parser)
    flags = {flag for action in actions for flag in action.option_strings}
    undocumented = [a.option_strings[0] for a in actions if a.help in (None, "")]
    assert not undocumented, f"{script}: options without help: {undocumented}"
    retired = sorted(flags & set(RETIRED))
    assert not retired, f"{script}: " + ", ".join(f"{f} is now {RETIRED[f]}" for f in retired)
    assert ("--quick" in flags) != (script in NO_QUICK), script
    for action in actions:
        if "--scenarios" in action.option_strings:
            assert action.choices, (
                f"{script}: --scenarios names scenarios; counts are --*-scenarios"
            )


def _stop_at_the_run_folder(monkeypatch) -> None:
    def refuse(self, *args, **kwargs):
        raise _Parsed

    monkeypatch.setattr(RunFolder, "__init__", refuse)


SHOCKS_TINY = ["--agents", "120"]
ACROSS = [
    # (script, argv, what the error names): checks after parsing, still before any compute
    ("examples/economy_shocks", [*SHOCKS_TINY, "--shock", "500:goods:0.5"], "--shock"),
    ("examples/economy_shocks", [*SHOCKS_TINY, "--shock", "3:steel:0.5"], "--shock"),
    ("examples/economy_shocks", [*SHOCKS_TINY, "--shock", "5:goods:0"], "--shock"),
    ("examples/economy_shocks", [*SHOCKS_TINY, "--shock", "5:goods"], "--shock"),
    ("examples/economy_shocks", [*SHOCKS_TINY, "--tier", "bank"], "--tier"),
    ("examples/economy_shocks_theory", ["--shapes", "0.5"], "--shapes"),
    ("examples/economy_shocks_learn", ["--d-model", "30", "--heads", "4"], "--heads"),
    ("examples/economy_shocks_theory", ["--vol-agents", "60"], "--vol-agents"),
    ("examples/claims/transformer_logits", ["--d-model", "300"], "--d-model"),
    ("examples/distributed_training", ["--backend", "nccl"], "--backend"),
    ("examples/distributed_training", ["--backend", "gloo"], "--backend"),
    ("examples/distributed_training", ["--d-model", "30", "--heads", "4"], "--heads"),
    ("examples/distributed_training", ["--tag", "../elsewhere"], "--tag"),
    ("examples/economy_study", ["--heads", "5"], "--heads"),
    ("examples/sequence_study", ["--length", "4", "--radius", "2", "--max-hops", "3"], "--length"),
    ("examples/image_positional", ["--patch", "3"], "--patch"),
    ("examples/image_positional", ["--sizes", "12x12", "8x8"], "--sizes"),
    ("benchmarks/mha", ["--d-model", "30", "--heads", "4"], "--heads"),
]


@pytest.mark.parametrize(("script", "argv", "flag"), ACROSS, ids=lambda v: str(v)[:40])
def test_checks_across_flags_come_before_any_compute(script, argv, flag, monkeypatch, capsys):
    _stop_at_the_run_folder(monkeypatch)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(SystemExit) as info:
        _call(script, argv, monkeypatch)
    assert info.value.code == 2 and flag in capsys.readouterr().err


def test_an_output_folder_that_cannot_be_made_stops_the_run_before_compute(tmp_path, monkeypatch):
    """A read-only ``--out`` stops the run before any compute. (As root, ``os.access``
    grants everything, so the run's own attempt to create the folder is the final check.)"""
    shocks = _module("examples/economy_shocks")
    out = tmp_path / "out"
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self == out:
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    def no_compute(*args, **kwargs):
        raise AssertionError("the economy was generated before the output folder was checked")

    monkeypatch.setattr(Path, "mkdir", read_only)
    monkeypatch.setattr(shocks, "economy_data", no_compute)
    with pytest.raises(ValueError, match="cannot write into the output folder"):
        shocks.main([*SHOCKS_TINY, "--out", str(out)])


def test_the_argparse_types_name_what_they_want():
    from graphattn.experiments.cli import float_in, int_in, probability

    with pytest.raises(argparse.ArgumentTypeError, match=r"an int in \[1, 4\], got '5'"):
        int_in(1, 4)("5")
    with pytest.raises(argparse.ArgumentTypeError, match="finite number > 0, got 'nan'"):
        float_in(0, None, low_open=True)("nan")
    assert probability("0.25") == 0.25 and math.isclose(float_in(0, 1)("1e-3"), 1e-3)
