"""Positional encodings: sinusoidal and learned 1-D tables, learned and sinusoidal 2-D grids.

Each encoding maps integer positions to ``[N, channels]`` vectors that the model adds to its node
embeddings. Positions are given per node, so a batch of sequences (or images) of different sizes
needs nothing special: :func:`positions_in_graph` gives every node its index within its own graph.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import cumsum, degree

from .._checks import check_index_tensor

__all__ = [
    "GridPositionalEncoding",
    "LearnedPositionalEncoding",
    "SinusoidalGridEncoding",
    "SinusoidalPositionalEncoding",
    "interpolate_grid",
    "positions_in_graph",
    "sinusoidal_table",
]


def sinusoidal_table(pos: Tensor, channels: int, base: float = 10000.0) -> Tensor:
    r"""The sinusoidal encoding of Vaswani et al. (2017) for integer or real positions.

    .. math::
        PE_{p, 2i} = \sin(p / b^{2i/C}), \qquad PE_{p, 2i+1} = \cos(p / b^{2i/C})

    Args:
        pos: positions ``[N]`` (any real dtype).
        channels (int): encoding size :math:`C` (odd sizes drop the last cosine).
        base (float, optional): wavelength base :math:`b`. (default: :obj:`10000.0`)

    Returns:
        float32 (or float64 for float64 ``pos``) ``[N, channels]``.

    >>> sinusoidal_table(torch.tensor([0, 1]), 4)
    tensor([[0.0000, 1.0000, 0.0000, 1.0000],
            [0.8415, 0.5403, 0.0100, 0.9999]])
    """
    _check_positive_int("channels", channels)
    dtype = torch.float64 if pos.dtype == torch.float64 else torch.float32
    half = (channels + 1) // 2
    # angles in float64: in float32 the angle of position 4095 is off by ~4e-4
    wide = torch.float64 if pos.device.type == "cpu" else dtype
    freq = torch.exp(  # frequency of pair i: b^(-2i/C)
        torch.arange(half, device=pos.device, dtype=wide) * (-2.0 * math.log(base) / channels)
    )
    angle = pos.to(wide).unsqueeze(-1) * freq  # (N, ceil(C/2))
    table = torch.stack([angle.sin(), angle.cos()], dim=-1)  # (N, ceil(C/2), 2)
    return table.flatten(-2)[..., :channels].to(dtype)  # (N, C): sin, cos interleaved


def positions_in_graph(batch: Tensor | None, num_nodes: int) -> Tensor:
    """Index of every node within its own graph (0, 1, ... per graph), int64 ``[N]``.

    Nodes keep their order within a graph; ``batch`` need not be sorted.

    >>> positions_in_graph(torch.tensor([0, 0, 1, 1, 1]), 5).tolist()
    [0, 1, 0, 1, 2]
    """
    if batch is None:
        return torch.arange(num_nodes)
    batch = batch.long()
    if num_nodes == 0:
        return batch.new_zeros(0)
    perm = torch.argsort(batch, stable=True)  # nodes grouped by graph, order kept
    sorted_batch = batch[perm]
    ptr = cumsum(degree(sorted_batch, int(sorted_batch.max()) + 1, dtype=torch.long))
    rank = torch.arange(num_nodes, device=batch.device) - ptr[sorted_batch]
    out = torch.empty_like(rank)
    out[perm] = rank
    return out


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed sinusoidal 1-D encoding (no parameters); works for any position.

    Args:
        channels (int): encoding size.
        base (float, optional): wavelength base. (default: :obj:`10000.0`)

    >>> SinusoidalPositionalEncoding(6)(torch.arange(3)).shape
    torch.Size([3, 6])
    """

    def __init__(self, channels: int, base: float = 10000.0):
        super().__init__()
        _check_positive_int("channels", channels)
        if not base > 1.0:
            raise ValueError(f"`base` must be > 1, got {base}")
        self.channels = channels
        self.base = float(base)

    def forward(self, pos: Tensor) -> Tensor:
        _check_positions("pos", pos, dims=1)
        return sinusoidal_table(pos, self.channels, self.base)

    def extra_repr(self) -> str:
        return f"{self.channels}"


class LearnedPositionalEncoding(nn.Module):
    """A learned table of ``max_len`` 1-D positions (as GPT-2 / nanoGPT ``wpe``).

    Args:
        channels (int): encoding size.
        max_len (int): number of positions; larger positions raise a ``ValueError``.

    >>> LearnedPositionalEncoding(6, max_len=10)(torch.arange(3)).shape
    torch.Size([3, 6])
    """

    def __init__(self, channels: int, max_len: int):
        super().__init__()
        _check_positive_int("channels", channels)
        _check_positive_int("max_len", max_len)
        self.channels = channels
        self.max_len = max_len
        self.weight = nn.Parameter(torch.empty(max_len, channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, pos: Tensor) -> Tensor:
        _check_positions("pos", pos, dims=1)
        if pos.numel() > 0 and int(pos.max()) >= self.max_len:
            raise ValueError(
                f"`pos` goes up to {int(pos.max())} but the learned encoding has "
                f"max_len={self.max_len}; raise `max_len` or use 'sinusoidal'"
            )
        return F.embedding(pos.long(), self.weight)

    def extra_repr(self) -> str:
        return f"{self.channels}, max_len={self.max_len}"


def interpolate_grid(table: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a ``[H, W, C]`` grid table to ``[H', W', C]`` by bicubic interpolation.

    As vision transformers do when they run at another image size (``F.interpolate`` with
    ``mode="bicubic"``, ``align_corners=False``). Resizing to the same size returns the table
    unchanged (up to rounding), and gradients flow back to ``table``.

    >>> interpolate_grid(torch.randn(4, 4, 8), (6, 5)).shape
    torch.Size([6, 5, 8])
    """
    if not isinstance(table, Tensor) or table.dim() != 3:
        raise ValueError("`table` must be a [H, W, C] tensor")
    size = _check_grid_size("size", size)
    grid = table.permute(2, 0, 1).unsqueeze(0)  # (1, C, H, W)
    grid = F.interpolate(grid, size=size, mode="bicubic", align_corners=False)  # (1, C, H', W')
    return grid.squeeze(0).permute(1, 2, 0)  # (H', W', C)


class GridPositionalEncoding(nn.Module):
    """A learned 2-D table over a ``grid_size`` grid (as ViT), resizable to other grids.

    ``forward(pos, grid_size=None)`` looks up ``(row, col)`` positions in the table, first
    interpolated bicubically to ``grid_size`` when that differs from the trained size, so a model
    trained on one image size runs on another. :meth:`resize_` replaces the table itself by its
    interpolation (for fine-tuning at the new size).

    Args:
        channels (int): encoding size.
        grid_size (tuple of int): ``(rows, cols)`` of the trained grid.

    >>> enc = GridPositionalEncoding(8, (4, 4))
    >>> enc(torch.tensor([[0, 0], [5, 5]]), grid_size=(6, 6)).shape
    torch.Size([2, 8])
    """

    def __init__(self, channels: int, grid_size: tuple[int, int]):
        super().__init__()
        _check_positive_int("channels", channels)
        self.channels = channels
        self.grid_size = _check_grid_size("grid_size", grid_size)
        self.weight = nn.Parameter(torch.empty(*self.grid_size, channels))  # (H, W, C)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.weight, std=0.02)

    def table(self, grid_size: tuple[int, int] | None = None) -> Tensor:
        """The ``[H, W, C]`` table at ``grid_size`` (default: the trained size)."""
        if grid_size is None or tuple(grid_size) == self.grid_size:
            return self.weight
        return interpolate_grid(self.weight, grid_size)

    def forward(self, pos: Tensor, grid_size: tuple[int, int] | None = None) -> Tensor:
        _check_positions("pos", pos, dims=2)
        rows, cols = (
            self.grid_size if grid_size is None else _check_grid_size("grid_size", grid_size)
        )
        if pos.numel() > 0:
            max_r, max_c = (int(m) for m in pos.max(dim=0).values)
            if max_r >= rows or max_c >= cols:
                raise ValueError(
                    f"`pos` reaches (row {max_r}, col {max_c}) outside the {rows}x{cols} grid; "
                    "pass the grid's `grid_size`"
                )
        table = self.table((rows, cols))
        return table[pos[:, 0].long(), pos[:, 1].long()]  # (N, C)

    @torch.no_grad()
    def resize_(self, grid_size: tuple[int, int]) -> GridPositionalEncoding:
        """Replace the table by its bicubic interpolation to ``grid_size`` (in place)."""
        grid_size = _check_grid_size("grid_size", grid_size)
        self.weight = nn.Parameter(interpolate_grid(self.weight, grid_size).contiguous())
        self.grid_size = grid_size
        return self

    def extra_repr(self) -> str:
        return f"{self.channels}, grid_size={self.grid_size}"


class SinusoidalGridEncoding(nn.Module):
    """A fixed 2-D sinusoidal encoding of ``(row, col)`` positions (no parameters): the first
    half of the channels encodes the row, the second half the column
    (:func:`sinusoidal_table` of each).

    ``forward(pos, grid_size=None)`` has the signature of :class:`GridPositionalEncoding`, so
    a model takes either (``GraphTransformerConfig(positional="grid-sinusoidal")``). Without
    ``grid_size`` a patch is encoded at its own ``(row, col)``, any position allowed. With
    ``grid_size`` (the grid the input comes from) every patch centre is first mapped onto the
    trained ``self.grid_size``: ``(p + 1/2) * trained / grid_size - 1/2``, so a larger image
    spans the same range of angles as the trained one (the sinusoidal counterpart of
    interpolating a learned table).

    Args:
        channels (int): encoding size (at least 2: a row and a column part).
        grid_size (tuple of int): ``(rows, cols)`` of the trained grid.
        base (float, optional): wavelength base. (default: :obj:`10000.0`)

    >>> enc = SinusoidalGridEncoding(8, (4, 4))
    >>> pos = torch.tensor([[0, 0], [7, 7]])
    >>> enc(pos).shape, bool(torch.equal(enc(pos, (4, 4)), enc(pos)))
    (torch.Size([2, 8]), True)
    >>> bool(torch.allclose(enc(torch.tensor([[7, 7]]), (8, 8)), enc(torch.tensor([[3.25, 3.25]]))))
    True
    """

    def __init__(self, channels: int, grid_size: tuple[int, int], base: float = 10000.0):
        super().__init__()
        _check_positive_int("channels", channels)
        if channels < 2:
            raise ValueError(f"`channels` must be >= 2 (a row and a column part), got {channels}")
        if not base > 1.0:
            raise ValueError(f"`base` must be > 1, got {base}")
        self.channels = channels
        self.grid_size = _check_grid_size("grid_size", grid_size)
        self.base = float(base)

    def forward(self, pos: Tensor, grid_size: tuple[int, int] | None = None) -> Tensor:
        if not isinstance(pos, Tensor) or pos.dim() != 2 or pos.size(1) != 2:
            raise ValueError("`pos` must be a [N, 2] (row, col) tensor")
        where = pos.double()
        if grid_size is not None:  # patch centres onto the trained grid
            size = torch.tensor(_check_grid_size("grid_size", grid_size), dtype=torch.float64)
            scale = torch.tensor(self.grid_size, dtype=torch.float64) / size
            where = (where + 0.5) * scale.to(where.device) - 0.5
        half = self.channels // 2
        rows = sinusoidal_table(where[:, 0], half, self.base)
        cols = sinusoidal_table(where[:, 1], self.channels - half, self.base)
        return torch.cat([rows, cols], dim=1).float()  # (N, channels)

    def extra_repr(self) -> str:
        return f"{self.channels}, grid_size={self.grid_size}"


# ---- validation -------------------------------------------------------------------------------
def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"`{name}` must be > 0, got {value}")


def _check_grid_size(name: str, size: object) -> tuple[int, int]:
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise TypeError(f"`{name}` must be a (rows, cols) pair of ints, got {size!r}")
    for s in size:
        _check_positive_int(name, s)
    return int(size[0]), int(size[1])


def _check_positions(name: str, pos: object, dims: int) -> None:
    check_index_tensor(name, pos)
    want = "[N]" if dims == 1 else "[N, 2] (row, col)"
    if (dims == 1 and pos.dim() != 1) or (dims == 2 and (pos.dim() != 2 or pos.size(1) != 2)):
        raise ValueError(f"`{name}` must have shape {want}, got {list(pos.shape)}")
    if pos.numel() > 0 and int(pos.min()) < 0:
        raise ValueError(f"`{name}` must be >= 0, got {int(pos.min())}")
