"""Figures for studies and benchmarks: heat maps and line plots (matplotlib, off-screen).

Every figure made here is checked before it is saved, so that it reads at a glance:

- every axis is labelled;
- where an axes holds more than one line, band or set of points, each is in its legend: an
  unlabelled extra line (a reference level, a band) is an error, so it gets a legend label;
- no two series of one axes share both colour and marker (:func:`series_styles` hands out
  distinct ones, enough for every series);
- no bars stand on a log axis (a bar's length there depends on where the axis is cut);
- numbers written on heat-map cells are black or white by the cell's luminance
  (:func:`text_colour`), never white on a light cell;
- the machine line goes into a small footer, not the title; titles and footers are wrapped to
  the figure's width, never cut at its edges.

A figure that breaks a rule raises a ``ValueError`` naming the file and the rule.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from .files import atomic_path

__all__ = ["figure", "finish_axes", "heatmap", "lines", "panels", "series_styles", "text_colour"]

#: markers handed out with the colours: filled shapes that stay distinct at small sizes
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


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


def text_colour(rgba: Sequence[float]) -> str:
    """``"black"`` or ``"white"``, whichever contrasts more with a background of colour
    ``rgba`` (sRGB components in [0, 1]): WCAG's relative luminance L, black text where
    L > 0.179 (the luminance at which both contrast ratios are equal).

    >>> text_colour((0.99, 0.91, 0.15, 1.0)), text_colour((0.27, 0.0, 0.33, 1.0))
    ('black', 'white')
    """
    if len(rgba) < 3:
        raise ValueError(f"`rgba` needs red, green and blue components, got {rgba!r}")

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(float(c)) for c in rgba[:3])
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "black" if luminance > 0.179 else "white"


def series_styles(n: int) -> list[dict]:
    """``n`` plot styles (``color``, ``marker``), no two alike: distinct colours for up to 20
    series (matplotlib's ``tab10``, then ``tab20``), and a marker per series on top, so that
    series stay apart beyond 20 colours and in grey print. Pass one to ``ax.plot(**style)``.

    >>> [s["marker"] for s in series_styles(3)]
    ['o', 's', '^']
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"`n` must be an int >= 0, got {n!r}")
    plt = _pyplot()
    colours = plt.get_cmap("tab10" if n <= 10 else "tab20").colors
    return [
        {"color": colours[i % len(colours)], "marker": MARKERS[(i + i // len(colours)) % 10]}
        for i in range(n)
    ]


def _wrapped(title: str, width_in: float, per_inch: float = 12.0) -> str:
    """``title`` with each of its lines wrapped to the figure's width (``per_inch`` characters
    per inch at its font size), so that no title is cut at the figure's edges."""
    width = max(20, int(per_inch * width_in))
    return "\n".join(w for line in title.split("\n") for w in textwrap.wrap(line, width) or [""])


def _footer_text(footer: str | None, width_in: float) -> str:
    """The footer wrapped to the figure's width (about 15 characters per inch at its small
    font), so that a long machine line is not cut at the edges."""
    if not footer:
        return ""
    return "\n".join(textwrap.wrap(footer, max(30, int(15 * width_in))))


def _layout(fig, footer: str | None) -> None:
    """Tight layout above a footer line (the machine line) in small grey type."""
    text = _footer_text(footer, fig.get_figwidth())
    if not text:
        fig.tight_layout()
        return
    lines = text.count("\n") + 1
    height = (lines * 8.5 + 6) / 72 / fig.get_figheight()  # 7-point type, in figure fractions
    fig.text(0.01, 0.01, text, fontsize=7, color="0.35", ha="left", va="bottom")
    fig.tight_layout(rect=(0, height, 1, 1))


_AUTO_LABEL = re.compile(r"_child\d+")


def _check_axes(ax, where: str) -> None:
    """The rules of the module docstring, for one axes of a figure."""
    from matplotlib.colors import to_hex
    from matplotlib.container import BarContainer

    problems = []
    if ax.images or ax.lines or ax.collections or ax.patches:
        if not ax.get_xlabel().strip():
            problems.append("the x axis has no label")
        if not ax.get_ylabel().strip():
            problems.append("the y axis has no label")
    marks = [a for a in [*ax.lines, *ax.collections] if a.get_visible()] + list(ax.containers)
    if len(marks) > 1:
        unexplained = [a for a in marks if _AUTO_LABEL.fullmatch(str(a.get_label()))]
        if unexplained:
            kinds = sorted({type(a).__name__ for a in unexplained})
            problems.append(
                f"{len(unexplained)} unlabelled line(s)/band(s) ({', '.join(kinds)}) among "
                f"{len(marks)}: give each a label for the legend"
            )
        elif any(not str(a.get_label()).startswith("_") for a in marks) and not ax.get_legend():
            problems.append("labelled lines but no legend")
    seen = {}
    for line in ax.lines:
        label = str(line.get_label())
        if label.startswith("_"):
            continue
        style = (to_hex(line.get_color()), str(line.get_marker()), line.get_linestyle())
        if style in seen:
            problems.append(f"series {seen[style]!r} and {label!r} share colour and marker")
        seen.setdefault(style, label)
    bars = any(isinstance(c, BarContainer) for c in ax.containers)
    if bars and "log" in (ax.get_yscale(), ax.get_xscale()):
        problems.append("bars on a log axis (their length depends on where the axis is cut)")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))


def finish_axes(
    ax,
    xlabel: str,
    ylabel: str,
    *,
    legend: float | str | None = 8,
    xscale: str | tuple | None = None,
    yscale: str | tuple | None = None,
) -> None:
    """Label the axes, draw a light grid and, unless ``legend`` is ``None``, a legend in that
    font size; ``xscale`` / ``yscale``: ``"log"``, or ``("log", base)``.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([1, 2, 4], [1, 2, 3], label="y")
    >>> finish_axes(ax, "x", "y", xscale=("log", 2))
    >>> ax.get_xlabel(), ax.get_xscale(), ax.get_legend() is not None
    ('x', 'log', True)
    >>> plt.close(fig)
    """
    for setter, scale in ((ax.set_xscale, xscale), (ax.set_yscale, yscale)):
        if isinstance(scale, tuple):
            setter(scale[0], base=scale[1])
        elif scale is not None:
            setter(scale)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend is not None:
        ax.legend(fontsize=legend)


def figure(
    path: str | Path,
    draw: Callable,
    *,
    title: str = "",
    size: tuple[float, float] = (6.0, 4.0),
    footer: str | None = None,
    dpi: int = 100,
) -> Path:
    """Create a figure, let ``draw(ax)`` fill it, check it (the module's rules), save it as
    PNG and return the path.

    ``footer`` (e.g. the machine line) is printed small at the bottom, under the axes;
    ``dpi`` sets the resolution (100 keeps committed figures small).
    """
    plt = _pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=size)
    try:
        draw(ax)
        if title:
            ax.set_title(_wrapped(title, size[0], 13.0), fontsize=9)
        _check_axes(ax, str(path))
        _layout(fig, footer)
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
    footer: str | None = None,
) -> Path:
    """A grid of axes, filled by ``draw(ax)`` for every function in ``draws`` (row by row),
    checked (the module's rules), saved as PNG; unused cells are hidden. Returns the path."""
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
                _check_axes(ax, f"{path} (panel {i + 1})")
            else:
                ax.set_visible(False)
        if title:
            fig.suptitle(_wrapped(title, fig.get_figwidth()), fontsize=10)
        _layout(fig, footer)
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
    footer: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    label: str | None = None,
) -> Path:
    """``value`` over the grid of distinct ``row`` x ``col`` values, annotated cell by cell in
    black or white by each cell's luminance. ``xlabel``, ``ylabel`` and ``label`` (the colour
    bar's) default to the column names."""
    import numpy as np
    from matplotlib import colors

    rows = list(rows)
    if not rows:
        raise ValueError("`rows` is empty: nothing to plot")
    rks = sorted({r[row] for r in rows})
    cks = sorted({r[col] for r in rows})
    grid = np.full((len(rks), len(cks)), np.nan)
    for r in rows:
        grid[rks.index(r[row]), cks.index(r[col])] = r[value]

    def draw(ax):
        norm = colors.Normalize(
            vmin=np.nanmin(grid) if vmin is None else vmin,
            vmax=np.nanmax(grid) if vmax is None else vmax,
        )
        image = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto", origin="lower")
        ax.set_xticks(range(len(cks)), [str(c) for c in cks])
        ax.set_yticks(range(len(rks)), [str(r) for r in rks])
        ax.set_xlabel(xlabel or col)
        ax.set_ylabel(ylabel or row)
        for i in range(len(rks)):
            for j in range(len(cks)):
                if not np.isnan(grid[i, j]):
                    shade = image.cmap(norm(grid[i, j]))
                    ax.text(j, i, format(grid[i, j], fmt), ha="center", va="center", fontsize=8,
                            color=text_colour(shade))  # fmt: skip
        ax.figure.colorbar(image, ax=ax, label=label or value)

    return figure(path, draw, title=title, footer=footer)


def lines(
    path: str | Path,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    footer: str | None = None,
    markers: bool = True,
) -> Path:
    """One line per ``label -> (x, y)`` in ``series``, each in its own colour and marker
    (:func:`series_styles`); a legend when there is more than one."""
    if not series:
        raise ValueError("`series` is empty: nothing to plot")

    def draw(ax):
        for (label, (x, y)), style in zip(series.items(), series_styles(len(series)), strict=True):
            if not markers:
                style = {"color": style["color"]}
            ax.plot(x, y, markersize=3, label=label, **style)
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=8)

    return figure(path, draw, title=title, footer=footer)
