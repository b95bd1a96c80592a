"""examples/image_study.py and image_positional.py: tiny runs (`examples` marker), the tasks'
ground truth, and the receptive field."""

from __future__ import annotations

import pytest
import torch

from ._studies import assert_receptive_field, load_example, run_tiny

study = load_example("image_study")
positional = load_example("image_positional")

TINY = [
    "--max-hops", "2", "--depths", "1", "2", "--steps", "2", "--relations", "1", "2",
    "--heads", "1", "2", "--width-steps", "2", "--width-tasks", "sectors", "neighbours",
    "--d-model", "8", "--model-heads", "2", "--width-d-model", "8", "--batch", "2",
    "--test-limit", "40", "--no-progress",
]  # fmt: skip
TINY_POSITIONAL = [
    "--sizes", "8x8", "12x8", "--pe-steps", "2", "--d-model", "8", "--model-heads", "2",
    "--batch", "2", "--test-limit", "40", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def digits():
    return study.load_digits_split(0)


@pytest.mark.examples
def test_tiny_runs_write_every_table_and_figure(tmp_path, capsys):
    names = ("depth_vs_hops", "width_vs_relations")
    result, printed = run_tiny(study, TINY, tmp_path, capsys, csvs=names, pngs=names)
    assert "(a) depth vs hops" in printed and "(b) width vs relation types" in printed
    rows, printed = run_tiny(positional, TINY_POSITIONAL, tmp_path, capsys, csvs=["positional"],
                             pngs=["positional"])  # fmt: skip
    assert "(c) positional" in printed
    assert {(r["depth_L"], r["hops_h"]) for r in result["depth"]} == {
        (1, 1), (1, 2), (2, 1), (2, 2)
    }  # fmt: skip
    assert len(result["width"]) == 8  # 2 tasks x 2 K x 2 H
    assert [r["size"] for r in rows] == ["8x8", "12x8"]
    # at the training size, "interpolated" and "not interpolated" are the same model call
    assert rows[0]["learned, interpolated"] == rows[0]["learned, not interpolated"]
    assert rows[0]["sinusoidal, index"] == rows[0]["sinusoidal, scaled"]


def test_bad_arguments_are_refused():
    for argv in (["--relations", "5"], ["--heads", "5"]):
        with pytest.raises(SystemExit):
            study.parse_args(argv)
    for argv in (["--sizes", "12x12", "8x8"], ["--sizes", "8x8", "big"], ["--patch", "3"]):
        with pytest.raises(SystemExit):
            positional.parse_args(argv)
    assert positional.parse_size("12x8") == (12, 8)


def test_sectors_split_the_window_into_four_sides_of_six():
    dy, dx = torch.meshgrid(torch.arange(-2, 3), torch.arange(-2, 3), indexing="ij")
    side = study.sector(dy.flatten(), dx.flatten())
    assert torch.bincount(side).tolist() == [6, 6, 6, 6, 1]
    assert side[12] == 4  # the centre
    # the four neighbours are the four sides: east, south, west, north
    at = {
        (int(a), int(b)): int(s) for a, b, s in zip(dy.flatten(), dx.flatten(), side, strict=True)
    }
    assert [at[0, 1], at[1, 0], at[0, -1], at[-1, 0]] == [0, 1, 2, 3]


def test_width_targets_are_the_sides(digits):
    images = digits["test"][0][:3]
    target, valid = study.width_targets(images, "neighbours", 4)
    target, valid = target.view(3, 8, 8, 4), valid.view(3, 8, 8, 4)
    torch.testing.assert_close(target[:, :, :-1, 0], images[:, :, 1:])  # east neighbour
    torch.testing.assert_close(target[:, 1:, :, 3], images[:, :-1, :])  # north neighbour
    assert not valid[:, :, -1, 0].any() and valid[:, :, :-1, 0].all()
    target, valid = study.width_targets(images, "sectors", 1)
    target = target.view(3, 8, 8)
    east = torch.stack([images[:, 3, 4], images[:, 3, 5], images[:, 2, 5], images[:, 4, 4],
                        images[:, 4, 5], images[:, 5, 5]]).mean(0)  # fmt: skip
    torch.testing.assert_close(target[:, 3, 3], east)


def test_digit_canvas_labels_the_digit_h_patches_right(digits):
    images, labels = digits["test"]
    x, y = study.digit_canvas(images, labels, 2, 2, 4, 3, torch.Generator().manual_seed(0))
    assert x.shape == (2 * 2 * 4, 64)
    y = y.view(2, 2, 4, 3)
    # every patch is a digit of the set; the label h to the right is that digit's class
    match = (x.unsqueeze(1) == images.reshape(1, -1, 64)).all(-1)  # (patches, digits)
    cls = labels[match.float().argmax(1)].view(2, 2, 4)
    assert torch.equal(y[:, :, :3, 0], cls[:, :, 1:])
    assert torch.equal(y[:, :, :1, 2], cls[:, :, 3:])
    assert (y[:, :, 3:, 0] == study.IGNORE).all()


@pytest.mark.parametrize("layers", [1, 2])
def test_depth_model_sees_exactly_its_hops(digits, layers):
    args = study.parse_args(TINY)
    rows, cols, node = 3, 6, 1 * 6 + 2  # (row 1, col 2)
    pattern, edge_type = study.canvas_graph(1, rows, cols)
    x, _ = study.digit_canvas(*digits["test"], 1, rows, cols, 2, torch.Generator().manual_seed(4))
    r, c = torch.arange(rows * cols) // cols, torch.arange(rows * cols) % cols
    hops = torch.maximum((r - 1).abs(), (c - 2).abs()).float()  # Chebyshev distance
    torch.manual_seed(0)
    model = study.depth_model(args, layers)
    with torch.no_grad():
        assert_receptive_field(
            lambda v: model(v, pattern, edge_type=edge_type).node, x, hops, node, layers
        )
