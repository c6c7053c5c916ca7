"""The figures' drawing choices that a reader relies on, read back from the matplotlib figure itself."""

from __future__ import annotations

from cmpt726.report import figures


def _history(values):
    return [{"epoch": i + 1, "train_loss": 1.0 / (i + 1), "val_acc": v} for i, v in enumerate(values)]


def test_a_tuned_twin_is_dashed_in_its_variants_colour(monkeypatch, tmp_path):
    """Twenty variants share ten colours: a twin must not take another variant's colour, so it takes its own
    variant's, dashed; variants without a twin keep distinct colours."""
    drawn = {}
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: drawn.update(fig=fig))
    curves = {name: [_history([50, 60, 65])] for name in ("head", "all", "all-tuned", "head-tuned", "all_augment")}
    figures.plot_curves(curves, tmp_path / "curves.png", twins={"all-tuned": "all", "head-tuned": "head"})
    lines = {line.get_label(): line for line in drawn["fig"].axes[1].get_lines()}
    assert lines["all-tuned"].get_color() == lines["all"].get_color()
    assert lines["head-tuned"].get_color() == lines["head"].get_color()
    assert len({lines[n].get_color() for n in ("head", "all", "all_augment")}) == 3
    assert lines["all-tuned"].get_linestyle() == "--" and lines["all"].get_linestyle() == "-"


def test_without_twins_every_variant_has_its_own_colour(monkeypatch, tmp_path):
    drawn = {}
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: drawn.update(fig=fig))
    curves = {f"v{i}": [_history([40 + i, 50 + i])] for i in range(10)}
    figures.plot_curves(curves, tmp_path / "curves.png")
    colors = [line.get_color() for line in drawn["fig"].axes[0].get_lines()]
    assert len(set(map(tuple, colors))) == 10
