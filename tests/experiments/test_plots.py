"""The shared plotting helpers: annotation colours by luminance, distinct series styles, and the
checks every figure passes before it is saved (labelled axes, explained lines and bands, no two
series alike, no bars on log axes, the machine line in a footer)."""

from __future__ import annotations

import pytest

from graphattn.experiments import plots

pytest.importorskip("matplotlib")


def _labelled(ax):
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def test_text_colour_follows_luminance():
    from matplotlib import colormaps

    viridis = colormaps["viridis"]
    assert plots.text_colour(viridis(1.0)) == "black"  # bright yellow: the low-error cells
    assert plots.text_colour(viridis(0.0)) == "white"  # dark purple
    assert plots.text_colour((1.0, 1.0, 1.0)) == "black"
    assert plots.text_colour((0.0, 0.0, 0.0)) == "white"
    assert plots.text_colour((0.5, 0.5, 0.5)) == "black"  # L = 0.214: black contrasts more
    assert plots.text_colour((0.0, 0.0, 1.0)) == "white"  # pure blue is dark (L = 0.072)
    with pytest.raises(ValueError, match="rgba"):
        plots.text_colour((0.5,))


@pytest.mark.parametrize("cmap", ["viridis", "viridis_r", "magma"])
def test_heatmap_writes_dark_text_on_light_cells_and_light_on_dark(tmp_path, monkeypatch, cmap):
    """The midpoint rule wrote white numbers on viridis' bright-yellow low-error cells."""
    from matplotlib import colors

    seen = []

    def capture(path, draw, **kwargs):
        plt = plots._pyplot()
        fig, ax = plt.subplots()
        try:
            draw(ax)
            image = ax.images[0]
            for text in ax.texts:
                x, y = text.get_position()
                shade = image.cmap(image.norm(image.get_array()[round(y), round(x)]))
                seen.append((plots.text_colour(shade), text.get_color(), colors.to_rgb(shade)))
        finally:
            plt.close(fig)
        return path

    monkeypatch.setattr(plots, "figure", capture)
    rows = [{"L": a, "k": b, "nmse": (a * 3 + b) / 12} for a in range(4) for b in range(3)]
    plots.heatmap(tmp_path / "h.png", rows, "L", "k", "nmse", cmap=cmap)
    assert len(seen) == 12
    assert all(want == got for want, got, _ in seen)
    assert {got for _, got, _ in seen} == {"black", "white"}  # both occur on this scale


def test_series_styles_are_distinct_for_every_series():
    for n in (1, 5, 10, 11, 20, 21, 40):
        styles = plots.series_styles(n)
        pairs = {(s["color"], s["marker"]) for s in styles}
        assert len(pairs) == n, n  # no two series alike
        if n <= 20:
            assert len({s["color"] for s in styles}) == n, n  # distinct colours up to 20
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="`n`"):
            plots.series_styles(bad)


def test_lines_gives_eleven_series_eleven_colours(tmp_path, monkeypatch):
    """dense_vs_sparse's 11 series shared matplotlib's 10-colour cycle."""
    seen = {}

    real = plots._check_axes

    def spy(ax, where):
        seen["colours"] = [line.get_color() for line in ax.lines]
        real(ax, where)

    monkeypatch.setattr(plots, "_check_axes", spy)
    series = {f"s{i}": ([1, 2], [i, i + 1]) for i in range(11)}
    plots.lines(tmp_path / "l.png", series, xlabel="N", ylabel="s")
    assert len({tuple(c) for c in seen["colours"]}) == 11


@pytest.mark.parametrize(
    "draw, rule",
    [
        (lambda ax: ax.plot([0, 1], [0, 1]), "no label"),
        (
            lambda ax: (
                ax.plot([0, 1], [0, 1], label="a"),
                ax.axhline(0.5),
                ax.legend(),
                _labelled(ax),
            ),
            "unlabelled line",
        ),  # fmt: skip
        (
            lambda ax: (
                ax.plot([0, 1], [0, 1], label="a"),
                ax.fill_between([0, 1], 0, 1),
                ax.legend(),
                _labelled(ax),
            ),
            "unlabelled line",
        ),  # fmt: skip
        (
            lambda ax: (
                ax.plot([0, 1], [0, 1], label="a"),
                ax.plot([0, 1], [1, 0], label="b"),
                _labelled(ax),
            ),
            "no legend",
        ),  # fmt: skip
        (
            lambda ax: (
                ax.plot([0, 1], [0, 1], "o-", color="C0", label="a"),
                ax.plot([0, 1], [1, 0], "o-", color="C0", label="b"),
                ax.legend(),
                _labelled(ax),
            ),
            "share colour and marker",
        ),  # fmt: skip
        (
            lambda ax: (ax.bar([0, 1], [10, 1000]), ax.set_yscale("log"), _labelled(ax)),
            "log axis",
        ),
        (
            lambda ax: (
                ax.bar([0, 1], [0.5, 0.9], label="accuracy"),
                ax.axhline(0.1),
                ax.legend(),
                _labelled(ax),
            ),
            "unlabelled line",
        ),  # fmt: skip
    ],
)
def test_figures_that_do_not_read_at_a_glance_are_refused(tmp_path, draw, rule):
    with pytest.raises(ValueError, match=rule):
        plots.figure(tmp_path / "f.png", draw)
    assert not (tmp_path / "f.png").exists()


def test_explained_lines_and_bands_pass_and_the_machine_line_is_a_footer(tmp_path, monkeypatch):
    def draw(ax):
        ax.plot([0, 1], [0, 1], label="measured")
        ax.axhline(0.5, ls=":", color="grey", label="chance")
        ax.fill_between([0, 1], 0.2, 0.8, alpha=0.2, label="random pruning: min to max")
        ax.legend()
        _labelled(ax)

    texts = {}
    real = plots._layout

    def spy(fig, footer):
        real(fig, footer)
        texts["title"] = fig.axes[0].get_title()
        texts["figure"] = [t.get_text() for t in fig.texts]
        texts["bottom"] = [t.get_position()[1] for t in fig.texts]

    monkeypatch.setattr(plots, "_layout", spy)
    machine = "machine: AMD EPYC, 2 cores, 24 GiB, torch 2.13.0+cpu (1 threads), load 1.0 " * 2
    title = "pruning heads by importance against pruning them at random, " * 2
    path = plots.figure(tmp_path / "f.png", draw, title=title, footer=machine)
    assert path.stat().st_size > 1000
    assert "machine" not in texts["title"]  # the machine line is not in the title
    lines = texts["title"].split("\n")
    assert len(lines) > 1 and " ".join(lines) == title.strip()  # wrapped, not cut
    assert max(map(len, lines)) <= 13 * 6  # the figure is 6 inches wide
    assert " ".join(texts["figure"][0].split()) == machine.strip()  # whole, wrapped
    assert texts["bottom"][0] < 0.05  # at the bottom of the figure
