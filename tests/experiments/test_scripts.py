"""What the example scripts share: presets as data, the run context, verdicts, fit_batches."""

from __future__ import annotations

import argparse
import shlex

import pytest
import torch
from torch import nn

from graphattn.experiments import Run, Verdict, fit_batches, read_table, write_verdicts
from graphattn.experiments.cli import ScriptParser, command_line, int_at_least, settings_of

MACHINE = {"cpu": "test cpu", "cores": "2", "torch": "x", "torch_threads": "1"}
PRESETS = {"full": {"steps": 600, "sizes": [1, 2]}, "quick": {"steps": 30, "sizes": [1]},
           "smoke": {"steps": 2, "sizes": [1]}}  # fmt: skip


def _parser(presets=PRESETS) -> ScriptParser:
    p = ScriptParser(presets=presets)
    p.add_argument("--steps", type=int_at_least(1))
    p.add_argument("--sizes", type=int_at_least(1), nargs="+")
    return p


def test_presets_fill_what_the_command_line_leaves_unset():
    args = _parser().parse_args([])
    assert (args.preset, args.steps, args.sizes, args.quick, args.smoke) == (
        "full", 600, [1, 2], False, False,
    )  # fmt: skip
    args = _parser().parse_args(["--quick", "--sizes", "7"])
    assert (args.preset, args.steps, args.sizes) == ("quick", 30, [7])  # the flag wins
    assert _parser().parse_args(["--smoke"]).steps == 2
    args.sizes.append(9)  # a run's list is its own: the preset stays as it was
    assert _parser().parse_args(["--quick"]).sizes == [1] and PRESETS["quick"]["sizes"] == [1]


def test_preset_levels_are_exclusive_and_bad_presets_are_refused(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["--quick", "--smoke"])
    assert "not allowed with" in capsys.readouterr().err
    fixed = _parser({"full": {"steps": 3, "width": 8}, "quick": {"steps": 1, "width": 4}})
    assert vars(fixed.parse_args(["--quick"]))["width"] == 4  # a setting with no option
    with pytest.raises(ValueError, match="same keys"):
        _parser({"full": {"steps": 1}, "quick": {"stepz": 1}})
    with pytest.raises(TypeError, match="presets"):
        ScriptParser(presets=[("full", {})])
    with pytest.raises(ValueError, match="identifiers"):
        ScriptParser(presets={"full": {}, "very quick": {}})


def test_settings_command_line_and_divisibility(capsys):
    args = _parser().parse_args(["--quick"])
    assert settings_of(args, "steps") == {"setting": "quick", "steps": 30}
    with pytest.raises(ValueError, match="lr"):
        settings_of(args, "lr")
    argv = ["--quick", "--out", "/tmp/x", "--steps", "3", "--no-progress", "--out=/y"]
    assert command_line("examples/a.py", argv) == "python examples/a.py --quick --steps 3"
    spaced = command_line("b.py", ["--models", "GATConv", "graphattn, out_projection=False"])
    assert shlex.split(spaced)[3:] == ["GATConv", "graphattn, out_projection=False"]
    with pytest.raises(ValueError, match="script"):
        command_line("", [])
    p = ScriptParser()
    p.check_divides(argparse.Namespace(heads=[1, 2, 4], d_model=8), "heads", "d_model")
    with pytest.raises(SystemExit):
        p.check_divides(argparse.Namespace(heads=[2, 3], width_d_model=8), "heads", "width_d_model")
    assert "--heads [3] must divide --width-d-model 8" in capsys.readouterr().err


def test_write_verdicts_checks_and_records_every_row(tmp_path, capsys):
    path = tmp_path / "x_verdict.csv"
    verdicts = [
        ("(x) first", Verdict("x = 1.0", "confirmed", "a")),
        ("(y) second", ("y = 2", "partly", "b")),
    ]
    rows = write_verdicts(path, verdicts, command="python x.py --quick", settings={"n": 1},
                          machine=MACHINE)  # fmt: skip
    assert "verdict (y) second: partly -- y = 2; b" in capsys.readouterr().out
    table, meta = read_table(path)
    assert table == rows and [r["claim"] for r in table] == ["(x) first", "(y) second"]
    assert list(table[0]) == ["claim", "command", "number", "verdict", "reason"]
    assert meta["command"] == table[0]["command"] == "python x.py --quick"
    for bad, match in (
        ([("c", Verdict("1", "maybe", "r"))], "verdict 'maybe'"),
        ([("c", Verdict("", "partly", "r"))], "number"),
        ([("c", ("1", "partly"))], "Verdict"),
        ([], "non-empty"),
    ):
        with pytest.raises((ValueError, TypeError), match=match):
            write_verdicts(path, bad, command="c", machine=MACHINE)


def test_run_records_its_command_and_lands_its_files_together(tmp_path, capsys):
    out = tmp_path / "out"
    threads = torch.get_num_threads()
    with Run(out, command="python demo.py", settings={"k": 2}, threads=1) as run:
        assert torch.get_num_threads() == 1
        run.table("a", [{"x": 1}])
        run.table("b", [{"y": 2}], settings={"other": True})
        run.verdicts("c", [("(c) claim", Verdict("3", "refuted", "why"))])
        assert not out.joinpath("a.csv").exists()  # staged until the run ends
    assert torch.get_num_threads() == threads
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.csv", "c_verdict.csv"]
    (_, meta_a), (_, meta_b) = read_table(out / "a.csv"), read_table(out / "b.csv")
    assert meta_a["command"] == "python demo.py" and meta_a["settings"] == '{"k": 2}'
    assert meta_b["settings"] == '{"other": true}' and meta_a["machine"] == meta_b["machine"]
    printed = capsys.readouterr().out
    assert "command: python demo.py" in printed and "wrote 3 file(s)" in printed
    with pytest.raises(RuntimeError, match="inside"):
        run.table("late", [{"x": 1}])  # after the block: nothing would stage it


def test_a_failed_run_leaves_the_folder_as_it_was(tmp_path):
    out = tmp_path / "out"
    with Run(out, command="python demo.py") as run:
        run.table("a", [{"x": 1}])
    before = (out / "a.csv").read_text()
    with pytest.raises(KeyError), Run(out, command="python demo.py") as run:
        run.table("a", [{"x": 2}])
        raise KeyError("interrupted")
    assert (out / "a.csv").read_text() == before
    for kwargs, match in (({"command": ""}, "command"), ({"command": "c", "threads": 0}, "threads"),
                          ({"command": "c", "settings": [1]}, "settings")):  # fmt: skip
        with pytest.raises((ValueError, TypeError), match=match):
            Run(out, **kwargs)


def test_fit_batches_takes_one_step_per_batch():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    w = torch.tensor([[1.0, -2.0, 0.5]])
    data = []
    for _ in range(200):
        x = torch.randn(16, 3)
        data.append((x, x @ w.t()))
    history, seconds = fit_batches(model, lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), data,
                                   lr=0.05, schedule="constant")  # fmt: skip
    assert len(history) == 200 and seconds >= 0.0
    assert history[-1] < 1e-3 < history[0]
    with pytest.raises(TypeError, match="batches"):
        fit_batches(model, lambda m, b: m(b).sum(), iter(data), lr=0.1)


def test_a_script_parser_gives_the_run_its_command_folder_and_options(tmp_path, capsys):
    p = ScriptParser(presets=PRESETS, script="examples/demo.py", out=str(tmp_path / "default"))
    p.add_argument("--steps", type=int_at_least(1))
    args = p.parse_args(
        ["--quick", "--steps", "4", "--out", str(tmp_path / "out"), "--no-progress"]
    )
    assert (
        args.command == "python examples/demo.py --quick --steps 4"
    )  # --out, --no-progress left out
    assert (args.threads, args.no_progress) == (1, True)
    assert ScriptParser(script="examples/demo.py", out="x").parse_args([]).out.name == "x"
    with Run.from_args(args) as run:
        assert run.threads == 1 and not run.show_progress
        assert list(run.progress([1, 2], "items")) == [1, 2]
        run.table("t", [{"x": 1}])
    _, meta = read_table(tmp_path / "out" / "t.csv")
    assert meta["command"] == args.command
    assert '"steps": 4' in meta["settings"] and "command" not in meta["settings"]
    seeded = ScriptParser()
    seeded.add_run_options("out", threads=None, progress=False, seed=3)
    parsed = seeded.parse_args([])
    assert (
        parsed.seed == 3 and not hasattr(parsed, "threads") and not hasattr(parsed, "no_progress")
    )
    with pytest.raises(ValueError, match="script"):
        ScriptParser(script="examples/demo")
    with pytest.raises(ValueError, match="command"):
        Run.from_args(seeded.parse_args([]))  # no script=: no command to record
