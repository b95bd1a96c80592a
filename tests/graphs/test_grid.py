"""Grid patterns, the grid builder and patchify."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphattn import FullGraph, GridGraph
from graphattn.graphs import grid, patchify


def brute_force(height, width, allowed, num_graphs=1):
    pairs = []
    n = height * width
    for g in range(num_graphs):
        for i in range(n):
            for j in range(n):
                dy, dx = j // width - i // width, j % width - i % width
                if allowed(dy, dx):
                    pairs.append((g * n + j, g * n + i))
    return torch.tensor(pairs, dtype=torch.long).t()


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 7),
    width=st.integers(1, 7),
    radius=st.integers(0, 4),
    metric=st.sampled_from(["chebyshev", "manhattan"]),
    num_graphs=st.integers(1, 3),
)
def test_grid_edges(height, width, radius, metric, num_graphs):
    if metric == "chebyshev":

        def allowed(dy, dx):
            return max(abs(dy), abs(dx)) <= radius
    else:

        def allowed(dy, dx):
            return abs(dy) + abs(dx) <= radius

    pattern = GridGraph(height, width, radius=radius, metric=metric, num_graphs=num_graphs)
    expected = brute_force(height, width, allowed, num_graphs)
    assert torch.equal(pattern.edge_index(), expected)


@pytest.mark.parametrize(
    "neighbourhood, allowed",
    [(4, lambda dy, dx: abs(dy) + abs(dx) <= 1), (8, lambda dy, dx: max(abs(dy), abs(dx)) <= 1)],
)
def test_grid_builder_neighbourhoods(neighbourhood, allowed):
    data = grid(4, 5, neighbourhood=neighbourhood, num_graphs=2, materialize=True)
    assert data.num_nodes == 40
    assert torch.equal(data.edge_index, brute_force(4, 5, allowed, num_graphs=2))
    # interior node (row 1, col 2) has itself plus 4 or 8 neighbours
    degree = torch.bincount(data.edge_index[1], minlength=40)
    assert int(degree[1 * 5 + 2]) == neighbourhood + 1


def test_grid_builder_radius_and_full():
    data = grid(3, 6, radius=2, metric="manhattan")
    assert data.pattern == GridGraph(3, 6, radius=2, metric="manhattan")
    full = grid(3, 6, full=True, num_graphs=2)
    assert full.pattern == FullGraph.from_sizes([18, 18])


def test_grid_from_sizes_allows_empty_graphs():
    pattern = GridGraph.from_sizes([6, 0, 6], height=2, width=3, radius=1)
    single = GridGraph(2, 3, radius=1).edge_index()
    assert torch.equal(pattern.edge_index(), torch.cat([single, single + 6], dim=1))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: grid(3, 3), ValueError, "exactly one"),
        (lambda: grid(3, 3, neighbourhood=4, radius=1), ValueError, "exactly one"),
        (lambda: grid(3, 3, neighbourhood=6), ValueError, "neighbourhood"),
        (lambda: GridGraph(0, 3), ValueError, "height"),
        (lambda: GridGraph(3, 3, metric="euclid"), ValueError, "metric"),
        (lambda: GridGraph.from_sizes([9, 4], height=3, width=3), ValueError, "height \\* width"),
        (lambda: patchify(torch.zeros(4, 4), 2), ValueError, "image"),
        (lambda: patchify(torch.zeros(1, 4, 4), 0), ValueError, "patch_size"),
        (lambda: patchify([[1.0]], 2), TypeError, "image"),
    ],
)
def test_bad_input_names_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("height, width, patch", [(8, 12, 4), (7, 10, 3), (5, 5, 5), (2, 9, 4)])
def test_patchify_round_trip_and_padding(height, width, patch):
    channels = 3
    image = torch.randn(channels, height, width)
    data = patchify(image, patch, pad_value=-7.0)
    rows, cols = -(-height // patch), -(-width // patch)
    assert data.grid_size == (rows, cols)
    assert data.num_nodes == rows * cols
    assert data.x.shape == (rows * cols, channels * patch * patch)
    # undo the patching by hand, patch by patch, in raster order
    canvas = torch.full((channels, rows * patch, cols * patch), float("nan"))
    for idx in range(rows * cols):
        r, c = divmod(idx, cols)
        assert data.pos[idx].tolist() == [r, c]
        block = data.x[idx].view(channels, patch, patch)
        canvas[:, r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = block
    assert torch.equal(canvas[:, :height, :width], image)
    padding = torch.ones(rows * patch, cols * patch, dtype=torch.bool)
    padding[:height, :width] = False
    assert bool((canvas[:, padding] == -7.0).all())
    # a patch is padding-marked iff it holds a padded pixel; fractions count real pixels
    per_patch = padding.view(rows, patch, cols, patch).permute(0, 2, 1, 3).reshape(rows * cols, -1)
    assert torch.equal(data.pad_mask, per_patch.any(dim=1))
    expected_fraction = 1.0 - per_patch.float().mean(dim=1)
    torch.testing.assert_close(data.valid_fraction, expected_fraction)


def test_patchify_of_a_batch_is_every_image_in_turn():
    images = torch.randn(3, 2, 5, 7)
    data = patchify(images, 4, pad_value=-1.0)
    alone = [patchify(image, 4, pad_value=-1.0) for image in images]
    assert torch.equal(data.x, torch.cat([d.x for d in alone]))
    assert torch.equal(data.pos, torch.cat([d.pos for d in alone]))
    assert torch.equal(data.pad_mask, torch.cat([d.pad_mask for d in alone]))
    assert data.batch.tolist() == [0] * 4 + [1] * 4 + [2] * 4 and data.num_nodes == 12
    assert data.grid_size == (2, 2) and data.image_size == (5, 7)
    with pytest.raises(ValueError, match="image"):
        patchify(torch.zeros(1, 1, 1, 4, 4), 2)


def test_edge_offsets_are_source_minus_target_within_each_grid():
    from graphattn.graphs import edge_offsets

    edge_index = grid(3, 4, radius=1, num_graphs=2, materialize=True).edge_index
    dy, dx = edge_offsets(edge_index, 3, 4)
    src, dst = edge_index % 12
    assert torch.equal(dy * 4 + dx, src - dst)  # within a row, dx alone; across rows, dy too
    assert dy.abs().max() == 1 and dx.abs().max() == 1 and ((dy == 0) & (dx == 0)).sum() == 24
    with pytest.raises(ValueError, match="edge_index"):
        edge_offsets(torch.zeros(3, 2, dtype=torch.long), 3, 4)
    with pytest.raises((TypeError, ValueError), match="cols"):
        edge_offsets(edge_index, 3, 0)
