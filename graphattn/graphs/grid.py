"""Attention graphs over image patches: a patchify helper and grid neighbourhoods.

:func:`patchify` cuts an image ``[C, H, W]`` (or a batch ``[B, C, H, W]``) into non-overlapping
``p x p`` patches in raster order (row by row), padding the bottom and right edges when ``H`` or
``W`` is not a multiple of ``p`` and marking the patches that contain padding. :func:`grid`
builds the attention graph over a ``rows x cols`` patch grid: the 4- or 8-neighbourhood, a
radius ``r``, or full attention. Every node attends to itself. The builders return PyG ``Data``
with the structured pattern in ``data.pattern``. :func:`edge_offsets` gives every edge's
direction on the grid, e.g. to type the edges by direction (``edge_type``).

>>> import torch
>>> patches = patchify(torch.zeros(3, 5, 7), patch_size=4)
>>> patches.x.shape, patches.grid_size, patches.pad_mask.tolist()
(torch.Size([4, 48]), (2, 2), [False, True, True, True])
>>> grid(2, 2, neighbourhood=4).pattern.num_edges  # 4 self-loops + 8 neighbour pairs
12
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from .._checks import check_int
from ..patterns import FullGraph, GridGraph
from .sequence import pattern_data

__all__ = ["edge_offsets", "grid", "patchify"]


def patchify(image: Tensor, patch_size: int, *, pad_value: float = 0.0) -> Data:
    """Turn an image, or a batch of images of one size, into patch tokens.

    Args:
        image (Tensor): ``[C, H, W]`` image, or ``[B, C, H, W]`` images.
        patch_size (int): side ``p`` of the square patches.
        pad_value (float, optional): value of the padding pixels. (default: :obj:`0.0`)

    Returns:
        ``Data`` with ``x`` ``[P, C * p * p]`` (patches in raster order, each flattened as
        ``[C, p, p]``), ``pos`` ``[P, 2]`` (patch row, column), ``pad_mask`` ``[P]`` (True for
        patches containing padding), ``valid_fraction`` ``[P]`` (share of real pixels),
        ``grid_size`` ``(rows, cols)``, ``image_size`` ``(H, W)`` and ``num_nodes = P``. For a
        batch, the ``P`` patches of every image in turn (``B * P`` nodes, ``pos``,
        ``pad_mask`` and ``valid_fraction`` repeated per image) and ``batch`` ``[B * P]``, the
        image of every patch; ``grid_size`` and ``image_size`` are those of one image.

    >>> images = torch.arange(2 * 16.0).view(2, 1, 4, 4)  # two 4x4 images
    >>> data = patchify(images, 2)
    >>> data.x.shape, data.batch.tolist()
    (torch.Size([8, 4]), [0, 0, 0, 0, 1, 1, 1, 1])
    >>> bool(torch.equal(data.x[4:], patchify(images[1], 2).x))  # image 1, patch by patch
    True
    """
    if not isinstance(image, Tensor):
        raise TypeError(f"`image` must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() == 4:  # a batch: its images as the channels of one, then split back
        num = image.size(0)
        data = patchify(image.flatten(0, 1), patch_size, pad_value=pad_value)
        num_patches = data.num_nodes
        data.x = data.x.view(num_patches, num, -1).transpose(0, 1).reshape(num * num_patches, -1)
        data.pos = data.pos.repeat(num, 1)
        data.pad_mask = data.pad_mask.repeat(num)
        data.valid_fraction = data.valid_fraction.repeat(num)
        data.batch = torch.arange(num, device=image.device).repeat_interleave(num_patches)
        data.num_nodes = num * num_patches
        return data
    if image.dim() != 3:
        raise ValueError(
            f"`image` must have shape [C, H, W] or [B, C, H, W], got {list(image.shape)}"
        )
    if isinstance(patch_size, bool) or not isinstance(patch_size, int):
        raise TypeError(f"`patch_size` must be an int, got {type(patch_size).__name__}")
    if patch_size < 1:
        raise ValueError(f"`patch_size` must be >= 1, got {patch_size}")
    channels, height, width = image.shape
    if height == 0 or width == 0:
        raise ValueError(f"`image` must have H, W >= 1, got {list(image.shape)}")
    p = patch_size
    rows, cols = -(-height // p), -(-width // p)
    pad_h, pad_w = rows * p - height, cols * p - width
    padded = F.pad(image, (0, pad_w, 0, pad_h), value=pad_value)  # (C, rows*p, cols*p)
    x = (
        padded.reshape(channels, rows, p, cols, p)
        .permute(1, 3, 0, 2, 4)  # (rows, cols, C, p, p)
        .reshape(rows * cols, channels * p * p)
    )
    real = torch.zeros(rows * p, cols * p, device=image.device)
    real[:height, :width] = 1.0
    valid_fraction = real.view(rows, p, cols, p).mean(dim=(1, 3)).flatten()  # (P,)
    ys, xs = torch.meshgrid(
        torch.arange(rows, device=image.device),
        torch.arange(cols, device=image.device),
        indexing="ij",
    )
    return Data(
        x=x,
        pos=torch.stack([ys.flatten(), xs.flatten()], dim=1),
        pad_mask=valid_fraction < 1.0,
        valid_fraction=valid_fraction,
        grid_size=(rows, cols),
        image_size=(height, width),
        num_nodes=rows * cols,
    )


def grid(
    rows: int,
    cols: int,
    *,
    neighbourhood: int | None = None,
    radius: int | None = None,
    metric: str = "chebyshev",
    full: bool = False,
    num_graphs: int = 1,
    materialize: bool = False,
) -> Data:
    """The attention graph over a ``rows x cols`` patch grid (raster order), self included.

    Give exactly one of:

    - ``neighbourhood=4`` (up, down, left, right) or ``neighbourhood=8`` (and diagonals);
    - ``radius=r``: every patch within ``max(|dy|, |dx|) <= r`` (``metric="chebyshev"``, a
      square window) or ``|dy| + |dx| <= r`` (``metric="manhattan"``);
    - ``full=True``: every patch of the image (served by the ``dense`` engine).

    Args:
        rows (int): patch rows. cols (int): patch columns.
        num_graphs (int, optional): number of images in the batch. (default: :obj:`1`)
        materialize (bool, optional): also store ``edge_index``. (default: :obj:`False`)

    >>> grid(3, 4, radius=1).pattern
    GridGraph(num_nodes=12, num_graphs=1, height=3, width=4, radius=1, metric='chebyshev')
    >>> grid(3, 4, full=True, num_graphs=2).pattern
    FullGraph(num_nodes=24, num_graphs=2)
    """
    for name, value in (("rows", rows), ("cols", cols), ("num_graphs", num_graphs)):
        check_int(name, value, 0)  # named as the caller knows them (GridGraph says height/width)
    chosen = (neighbourhood is not None) + (radius is not None) + bool(full)
    if chosen != 1:
        raise ValueError("give exactly one of `neighbourhood`, `radius` or `full=True`")
    if full:
        for name, value in (("rows", rows), ("cols", cols), ("num_graphs", num_graphs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative int, got {value!r}")
        pattern = FullGraph.from_sizes([rows * cols] * num_graphs)
    elif neighbourhood is not None:
        if neighbourhood not in (4, 8) or isinstance(neighbourhood, bool):
            raise ValueError(f"`neighbourhood` must be 4 or 8, got {neighbourhood!r}")
        metric = "manhattan" if neighbourhood == 4 else "chebyshev"
        pattern = GridGraph(rows, cols, radius=1, metric=metric, num_graphs=num_graphs)
    else:
        pattern = GridGraph(rows, cols, radius=radius, metric=metric, num_graphs=num_graphs)
    return pattern_data(pattern, materialize=materialize)


def edge_offsets(edge_index: Tensor, rows: int, cols: int) -> tuple[Tensor, Tensor]:
    """The offset ``(dy, dx)`` from target to source of every edge of a batch of ``rows x
    cols`` grids (nodes in raster order, graph after graph): source row minus target row, and
    the same for columns. A small relation vocabulary follows, e.g. the 8 directions of the
    8-neighbourhood and the self-loop as ``(dy + 1) * 3 + (dx + 1)``.

    >>> edge_index = grid(2, 3, neighbourhood=4, materialize=True).edge_index
    >>> dy, dx = edge_offsets(edge_index, 2, 3)
    >>> sorted(set(zip(dy.tolist(), dx.tolist())))
    [(-1, 0), (0, -1), (0, 0), (0, 1), (1, 0)]
    """
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError("`edge_index` must be a [2, E] tensor")
    for name, value in (("rows", rows), ("cols", cols)):
        check_int(name, value, 1)
    src, dst = edge_index % (rows * cols)  # positions within each graph
    return src // cols - dst // cols, src % cols - dst % cols
