"""The figures' drawing choices that a reader relies on, read back from the matplotlib figure itself."""

import json

import pytest

from cmpt726.files import write_tsv
from cmpt726.report import figures
from cmpt726.tuning import summary as tuning_summary


def _history(values):
    return [{"epoch": i + 1, "train_loss": 1.0 / (i + 1), "val_acc": v} for i, v in enumerate(values)]


@pytest.fixture
def drawn(monkeypatch):  # the figure plot_curves would save
    kept = {}
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: kept.update(fig=fig))
    return kept


def test_a_tuned_twin_is_dashed_in_its_variants_colour(drawn, tmp_path):
    """Ten colours for up to twenty variants: a twin takes its own variant's colour, dashed; the rest stay distinct."""
    curves = {name: [_history([50, 60, 65])] for name in ("head", "all", "all-tuned", "head-tuned", "all_augment")}
    figures.plot_curves(curves, tmp_path / "curves.png", twins={"all-tuned": "all", "head-tuned": "head"})
    lines = {line.get_label(): line for line in drawn["fig"].axes[1].get_lines()}
    assert lines["all-tuned"].get_color() == lines["all"].get_color()
    assert lines["head-tuned"].get_color() == lines["head"].get_color()
    assert len({lines[n].get_color() for n in ("head", "all", "all_augment")}) == 3
    assert lines["all-tuned"].get_linestyle() == "--" and lines["all"].get_linestyle() == "-"


def test_without_twins_every_variant_has_its_own_colour(drawn, tmp_path):
    figures.plot_curves({f"v{i}": [_history([40 + i, 50 + i])] for i in range(10)}, tmp_path / "curves.png")
    colors = [line.get_color() for line in drawn["fig"].axes[0].get_lines()]
    assert len(set(map(tuple, colors))) == 10


def test_tuning_panels_do_not_overlap_with_ten_variants(monkeypatch, tmp_path):
    """Ten search panels in three rows: no panel's title runs into the x label above it; the suptitle tops all."""
    drawn, trials = {}, {}
    monkeypatch.setattr(tuning_summary, "save_figure", lambda fig, path: drawn.update(fig=fig))
    for v in range(10):
        rows = [{"rung": 0, "slot": i, "config": json.dumps({"lr": lr, "weight_decay": wd}), "epochs": 2,
                 "val_acc": 70 + i, "val_loss": 1.0, "chosen": i == 5}
                for i, (lr, wd) in enumerate((lr, wd) for lr in (0.01, 0.1, 1.0) for wd in (0.0, 0.001))]
        trials[f"variant_{v}"] = tmp_path / f"{v}.tsv"
        write_tsv(trials[f"variant_{v}"], list(rows[0]), rows)
    tuning_summary.plot_search(trials, tmp_path / "search.png")
    fig = drawn["fig"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.get_title()]
    grid = {ax.get_title(): ax for ax in axes}
    assert len(grid) == 10
    for below, above in [(f"variant_{v + 4}", f"variant_{v}") for v in range(6)]:
        title = grid[below].title.get_window_extent(renderer)
        xlabel = grid[above].xaxis.label.get_window_extent(renderer)
        assert title.y1 < xlabel.y0 or title.y0 > xlabel.y1 or title.x1 < xlabel.x0 or title.x0 > xlabel.x1, \
            f"the title of {below} overlaps the x label of {above}"
    top = max(ax.title.get_window_extent(renderer).y1 for ax in axes)
    assert fig._suptitle.get_window_extent(renderer).y0 >= top
