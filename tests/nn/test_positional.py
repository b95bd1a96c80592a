"""Positional encodings: known sinusoidal values, learned tables, grid interpolation."""

from __future__ import annotations

import math

import pytest
import torch

from graphattn.nn import (
    GridPositionalEncoding,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    interpolate_grid,
    positions_in_graph,
    sinusoidal_table,
)


def test_sinusoidal_known_values():
    """PE(p, 2i) = sin(p / 10000^(2i/C)), PE(p, 2i+1) = cos(...) (Vaswani et al., 2017)."""
    channels = 10
    positions = [0, 1, 7, 100, 4095]
    got = SinusoidalPositionalEncoding(channels)(torch.tensor(positions))
    for row, p in enumerate(positions):
        for i in range(channels // 2):
            angle = p / 10000 ** (2 * i / channels)
            assert got[row, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert got[row, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)
    torch.testing.assert_close(got[0], torch.tensor([0.0, 1.0] * 5))
    assert got[1, 0].item() == pytest.approx(0.8414710, abs=1e-6)  # sin(1)


def test_sinusoidal_odd_channels_and_float64():
    got = sinusoidal_table(torch.arange(5, dtype=torch.float64), 7)
    assert got.shape == (5, 7) and got.dtype == torch.float64
    full = sinusoidal_table(torch.arange(5, dtype=torch.float64), 8)
    # the odd size drops the last cosine; the frequencies depend on C, so compare the formula
    assert got[3, 6].item() == pytest.approx(math.sin(3 / 10000 ** (6 / 7)), abs=1e-12)
    assert full.shape == (5, 8)


def test_sinusoidal_relative_shift_is_a_rotation():
    """The property the encoding was designed for: PE(p + k) is a fixed rotation of PE(p)."""
    channels, k = 8, 5
    table = sinusoidal_table(torch.arange(40, dtype=torch.float64), channels)
    a, b = table[:-k].view(-1, channels // 2, 2), table[k:].view(-1, channels // 2, 2)
    # per frequency pair, (sin, cos) at p+k has the same norm and a constant angle difference
    torch.testing.assert_close(a.norm(dim=-1), b.norm(dim=-1))
    delta = torch.atan2(b[..., 0], b[..., 1]) - torch.atan2(a[..., 0], a[..., 1])
    delta = torch.remainder(delta, 2 * math.pi)
    torch.testing.assert_close(delta, delta[:1].expand_as(delta), atol=1e-9, rtol=0)


def test_learned_lookup_and_range():
    enc = LearnedPositionalEncoding(6, max_len=9)
    pos = torch.tensor([3, 0, 8, 3])
    torch.testing.assert_close(enc(pos), enc.weight[pos])
    enc(pos).sum().backward()
    assert enc.weight.grad[3].abs().sum() > 0 and enc.weight.grad[1].abs().sum() == 0
    with pytest.raises(ValueError, match="max_len"):
        enc(torch.tensor([9]))


def test_grid_interpolation_to_same_size_is_identity():
    table = torch.randn(5, 7, 4)
    torch.testing.assert_close(interpolate_grid(table, (5, 7)), table, atol=1e-6, rtol=0)


def test_grid_interpolation_to_another_size():
    # a constant table stays constant at any size
    const = torch.full((4, 4, 3), 0.25)
    torch.testing.assert_close(interpolate_grid(const, (9, 6)), torch.full((9, 6, 3), 0.25))

    # a smooth field sampled at pixel centres is resampled close to the field itself
    def field(rows, cols):
        r = (torch.arange(rows) + 0.5) / rows
        c = (torch.arange(cols) + 0.5) / cols
        return torch.sin(2 * r)[:, None, None] * torch.cos(3 * c)[None, :, None]

    up = interpolate_grid(field(8, 8), (16, 12))
    assert up.shape == (16, 12, 1)
    inner = (slice(2, -2), slice(2, -2))  # bicubic clamps at the border; check the interior
    err = (up - field(16, 12))[inner].abs().max().item()
    assert err < 0.02, err
    # ...and it is not simply nearest-neighbour copying
    nearest = torch.nn.functional.interpolate(
        field(8, 8).permute(2, 0, 1)[None], size=(16, 12), mode="nearest"
    )[0].permute(1, 2, 0)
    assert (nearest - field(16, 12))[inner].abs().max().item() > 2 * err


def test_grid_encoding_lookup_resize_and_gradients():
    torch.manual_seed(0)
    enc = GridPositionalEncoding(5, (3, 4))
    pos = torch.tensor([[0, 0], [2, 3], [1, 2]])
    torch.testing.assert_close(enc(pos), enc.weight[pos[:, 0], pos[:, 1]])
    big = enc(torch.tensor([[5, 5]]), grid_size=(6, 8))
    assert big.shape == (1, 5)
    big.sum().backward()
    assert enc.weight.grad.abs().sum() > 0  # the interpolation is differentiable
    want = interpolate_grid(enc.weight.detach(), (6, 8))
    enc.resize_((6, 8))
    assert enc.grid_size == (6, 8) and enc.weight.shape == (6, 8, 5)
    torch.testing.assert_close(enc.weight.detach(), want)
    with pytest.raises(ValueError, match="grid_size"):
        enc(torch.tensor([[6, 0]]))


def test_positions_in_graph_unsorted_batch():
    batch = torch.tensor([1, 0, 1, 2, 0, 1])
    assert positions_in_graph(batch, 6).tolist() == [0, 0, 1, 0, 1, 2]
    assert positions_in_graph(None, 3).tolist() == [0, 1, 2]
    assert positions_in_graph(torch.zeros(0, dtype=torch.long), 0).tolist() == []


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: SinusoidalPositionalEncoding(0), ValueError, "channels"),
        (lambda: SinusoidalPositionalEncoding(4)(torch.tensor([0.5])), TypeError, "pos"),
        (lambda: SinusoidalPositionalEncoding(4)(torch.tensor([-1])), ValueError, "pos"),
        (
            lambda: SinusoidalPositionalEncoding(4)(torch.zeros(2, 2, dtype=torch.long)),
            ValueError,
            "pos",
        ),
        (lambda: LearnedPositionalEncoding(4, max_len=0), ValueError, "max_len"),
        (lambda: GridPositionalEncoding(4, (3,)), TypeError, "grid_size"),
        (lambda: GridPositionalEncoding(4, (3, 0)), ValueError, "grid_size"),
        (lambda: GridPositionalEncoding(4, (3, 3))(torch.tensor([1, 2])), ValueError, "pos"),
        (lambda: interpolate_grid(torch.randn(3, 3), (4, 4)), ValueError, "table"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_sinusoidal_grid_encoding_rows_then_columns_and_scaled_centres():
    from graphattn.nn import SinusoidalGridEncoding

    enc = SinusoidalGridEncoding(10, (4, 4))
    pos = torch.tensor([[0, 3], [2, 1], [7, 9]])  # any position, also past the trained grid
    got = enc(pos)
    torch.testing.assert_close(got[:, :5], sinusoidal_table(pos[:, 0].double(), 5).float())
    torch.testing.assert_close(got[:, 5:], sinusoidal_table(pos[:, 1].double(), 5).float())
    assert torch.equal(enc(pos, (4, 4)), got)  # the trained grid: nothing to map
    # on an 8x6 grid, patch (r, c) sits where (r + 1/2) * 4/8 - 1/2, (c + 1/2) * 4/6 - 1/2 would
    centres = torch.tensor([[1.25, 2.0 / 3.0 * 9.5 - 0.5], [0.75, 0.5]], dtype=torch.float64)
    scaled = enc(torch.tensor([[3, 9], [2, 1]]), (8, 6))
    torch.testing.assert_close(scaled[:, :5], sinusoidal_table(centres[:, 0], 5).float())
    torch.testing.assert_close(scaled[:, 5:], sinusoidal_table(centres[:, 1], 5).float())
    assert list(enc.parameters()) == [] and "grid_size=(4, 4)" in repr(enc)
    for make, err, word in (
        (lambda: SinusoidalGridEncoding(1, (4, 4)), ValueError, "channels"),
        (lambda: SinusoidalGridEncoding(8, (4,)), TypeError, "grid_size"),
        (lambda: enc(torch.tensor([1, 2])), ValueError, "pos"),
        (lambda: enc(pos, (0, 4)), ValueError, "grid_size"),
    ):
        with pytest.raises(err, match=word):
            make()


def test_model_with_a_sinusoidal_grid_runs_on_other_grids():
    from graphattn import FullGraph
    from graphattn.nn import GraphTransformer, GraphTransformerConfig, SinusoidalGridEncoding

    config = GraphTransformerConfig(
        in_channels=3, channels=8, heads=2, positional="grid-sinusoidal", grid_size=(2, 3)
    )
    torch.manual_seed(0)
    model = GraphTransformer(config)
    assert isinstance(model.positional, SinusoidalGridEncoding)
    x = torch.randn(2 * 6, 3)
    default = model(x, FullGraph.from_sizes([6, 6])).node  # row-major positions of a 2x3 grid
    pos = torch.stack([torch.arange(6) // 3, torch.arange(6) % 3], 1).repeat(2, 1)
    torch.testing.assert_close(model(x, FullGraph.from_sizes([6, 6]), pos=pos).node, default)
    bigger = model(torch.randn(12, 3), FullGraph(12), grid_size=(3, 4)).node
    assert bigger.shape == (12, 1) and torch.isfinite(bigger).all()
    with pytest.raises(ValueError, match="grid_size"):
        GraphTransformerConfig(in_channels=3, channels=8, heads=2, positional="grid-sinusoidal")
    with pytest.raises(ValueError, match="grid_size"):
        GraphTransformer(GraphTransformerConfig(in_channels=3, channels=8, heads=2))(
            x, FullGraph(12), grid_size=(3, 4)
        )
