"""examples/sequence_study.py: a tiny run (`examples` marker), the tasks' ground truth, and the
receptive field."""

from __future__ import annotations

import math

import pytest
import torch

from ._studies import assert_receptive_field, load_example, run_tiny

study = load_example("sequence_study")

TINY = [
    "--length", "8", "--radius", "2", "--max-hops", "2", "--depths", "1", "2", "--steps", "3",
    "--d-model", "8", "--depth-heads", "4", "--width-length", "6", "--relations", "1", "3",
    "--heads", "1", "2", "--width-d-model", "6", "--width-steps", "3", "--width-batch", "2",
    "--value-dim", "2", "--batch", "2", "--test-seqs", "3", "--no-progress",
]  # fmt: skip


@pytest.mark.examples
def test_tiny_run_writes_every_table_and_figure(tmp_path, capsys):
    csvs, pngs = ("depth_vs_hops", "depth_vs_distance", "width_vs_relations"), ("depth_vs_hops",)
    result, printed = run_tiny(study, TINY, tmp_path, capsys, csvs=csvs, pngs=pngs)
    assert "(a) depth vs hops" in printed and "(b) width vs relation types" in printed
    assert (tmp_path / "width_vs_relations.png").read_bytes()[:4] == b"\x89PNG"
    cells = {(r["graph"], r["depth_L"], r["hops_h"]) for r in result["depth"]}
    assert cells == {(g, L, h) for g, L in [("window", 1), ("window", 2), ("full", 1)]
                     for h in (1, 2)}  # fmt: skip
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in result["depth"])
    width = {(r["relations_K"], r["heads_H"]): r for r in result["width"]}
    assert set(width) == {(1, 1), (1, 2), (3, 1), (3, 2)}
    assert width[3, 1]["reference"] == pytest.approx(2 / 3, abs=1e-4)
    assert width[1, 2]["reference"] == 0.0
    assert all(math.isfinite(r["test_nmse"]) for r in result["width"])


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        study.parse_args(["--length", "4", "--radius", "2", "--max-hops", "2"])  # D = 4 too far
    with pytest.raises(SystemExit):
        study.parse_args(["--heads", "5"])  # does not divide the width d_model


def test_copy_task_labels_the_token_d_places_back():
    x, y = study.copy_task(3, 7, 5, 4, torch.Generator().manual_seed(1))
    tokens = x.argmax(-1).view(3, 7)
    y = y.view(3, 7, 4)
    for d in range(1, 5):
        assert torch.equal(y[:, d:, d - 1], tokens[:, :-d])
        assert (y[:, :d, d - 1] == study.IGNORE).all()


def test_class_means_task_targets_are_the_class_means():
    gen = torch.Generator().manual_seed(2)
    values, classes, target = study.class_means_task(2, 6, 3, gen, value_dim=2)
    values, classes, target = values.view(2, 6, 2), classes.view(2, 6), target.view(2, 6, 3, 2)
    for s in range(2):
        assert torch.bincount(classes[s], minlength=3).tolist() == [2, 2, 2]  # balanced
        for k in range(3):
            mean = values[s][classes[s] == k].mean(0)  # (d_v,)
            torch.testing.assert_close(target[s, :, k], mean.expand(6, 2))


@pytest.mark.parametrize(("kind", "layers"), [("window", 1), ("window", 2), ("full", 1)])
def test_depth_model_sees_exactly_its_hops(kind, layers):
    args = study.parse_args(TINY)
    length, node = 12, 5
    pattern, edge_type, num_rel = study.sequence_graph(kind, 2, length, args.radius)
    torch.manual_seed(0)
    model = study.depth_model(args, layers, num_rel)
    x, _ = study.copy_task(2, length, args.vocab, 4, torch.Generator().manual_seed(3))
    position = torch.arange(2 * length)
    same = position // length == node // length
    steps = (position - node).abs().float()
    hops = torch.where(same, (steps / args.radius).ceil() if kind == "window" else 1.0, math.inf)
    hops[node] = 0
    with torch.no_grad():
        assert_receptive_field(
            lambda v: model(v, pattern, edge_type=edge_type).node, x, hops, node, layers
        )
