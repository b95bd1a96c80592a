"""Figures for studies and benchmarks: heat maps and line plots (matplotlib, off-screen)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from .files import atomic_path

__all__ = ["figure", "heatmap", "lines", "panels"]


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - matplotlib is in the studies extra
        raise ImportError(
            "matplotlib is needed for figures: pip install 'graphattn[studies]'"
        ) from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _format(path: Path, plt) -> str:
    """The image format of ``path`` (by its suffix, as matplotlib chooses it; the temporary
    file a figure is first written to has another name)."""
    return path.suffix[1:].lower() or plt.rcParams["savefig.format"]


def _heading(title: str, subtitle: str | None, width_in: float) -> str:
    """Title and subtitle, the subtitle wrapped to the figure's width (about 12 characters per
    inch at the small font) so that a long machine line is not cut at the edges."""
    if not subtitle:
        return title
    lines = textwrap.wrap(subtitle, max(20, int(12 * width_in)))
    return "\n".join([title, *lines] if title else lines)


def figure(
    path: str | Path,
    draw: Callable,
    *,
    title: str = "",
    size: tuple[float, float] = (6.0, 4.0),
    subtitle: str | None = None,
    dpi: int = 100,
) -> Path:
    """Create a figure, let ``draw(ax)`` fill it, save it as PNG and return the path.

    ``subtitle`` (e.g. the machine line) is printed small under the title; ``dpi`` sets the
    resolution (100 keeps committed figures small).
    """
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=size)
    try:
        draw(ax)
        if title or subtitle:
            ax.set_title(_heading(title, subtitle, size[0]), fontsize=9)
        fig.tight_layout()
        with atomic_path(path) as tmp:  # the old figure or the new, never a cut file
            fig.savefig(tmp, dpi=dpi, format=_format(path, plt))
    finally:
        plt.close(fig)
    return path


def panels(
    path: str | Path,
    draws: Sequence[Callable],
    *,
    ncols: int = 2,
    title: str = "",
    panel_size: tuple[float, float] = (4.0, 3.0),
    subtitle: str | None = None,
) -> Path:
    """A grid of axes, filled by ``draw(ax)`` for every function in ``draws`` (row by row),
    saved as PNG; unused cells are hidden. Returns the path."""
    if not draws:
        raise ValueError("`draws` is empty: nothing to plot")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"`ncols` must be an int >= 1, got {ncols!r}")
    plt = _pyplot()
    path = Path(path)
    ncols = min(ncols, len(draws))
    nrows = -(-len(draws) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows), squeeze=False
    )
    try:
        for i, ax in enumerate(axes.flat):
            if i < len(draws):
                draws[i](ax)
            else:
                ax.set_visible(False)
        if title or subtitle:
            fig.suptitle(_heading(title, subtitle, fig.get_figwidth()), fontsize=10)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format=_format(path, plt))
    finally:
        plt.close(fig)
    return path


def heatmap(
    path: str | Path,
    rows: Iterable[dict],
    row: str,
    col: str,
    value: str,
    *,
    title: str = "",
    fmt: str = ".2f",
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
    subtitle: str | None = None,
) -> Path:
    """``value`` over the grid of distinct ``row`` x ``col`` values, annotated cell by cell."""
    import numpy as np

    rows = list(rows)
    if not rows:
        raise ValueError("`rows` is empty: nothing to plot")
    rks = sorted({r[row] for r in rows})
    cks = sorted({r[col] for r in rows})
    grid = np.full((len(rks), len(cks)), np.nan)
    for r in rows:
        grid[rks.index(r[row]), cks.index(r[col])] = r[value]

    def draw(ax):
        image = ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", origin="lower")
        ax.set_xticks(range(len(cks)), [str(c) for c in cks])
        ax.set_yticks(range(len(rks)), [str(r) for r in rks])
        ax.set_xlabel(col)
        ax.set_ylabel(row)
        lo, hi = np.nanmin(grid), np.nanmax(grid)
        mid = (lo + hi) / 2
        for i in range(len(rks)):
            for j in range(len(cks)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, format(grid[i, j], fmt), ha="center", va="center", fontsize=8,
                            color="white" if grid[i, j] < mid else "black")  # fmt: skip
        ax.figure.colorbar(image, ax=ax, label=value)

    return figure(path, draw, title=title, subtitle=subtitle)


def lines(
    path: str | Path,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    subtitle: str | None = None,
    markers: bool = True,
) -> Path:
    """One line per ``label -> (x, y)`` in ``series``."""
    if not series:
        raise ValueError("`series` is empty: nothing to plot")

    def draw(ax):
        for label, (x, y) in series.items():
            ax.plot(x, y, marker="o" if markers else None, markersize=3, label=label)
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=8)

    return figure(path, draw, title=title, subtitle=subtitle)
