"""What the tuning saw, for the report: validation accuracy against lr per tuned variant, and a table row each
(choice, cost, convergence). No test-set number enters here."""

import json
import math
from collections import defaultdict

from matplotlib.ticker import NullFormatter

from ..files import read_json, read_tsv, write_json, write_tsv
from ..plotting import plt, save_figure
from .choice import runs_convergence

TABLE_COLUMNS = ["variant", "twin", "method", "chosen", "val_acc", "kept_epoch", "epochs", "configs", "trials",
                 "trial_epochs", "grid_epochs", "device_hours", "search_kept_is_last", "search_last_fifth_rise",
                 "runs_kept_last", "runs", "runs_last_fifth_rise"]


def describe_config(config: dict, tried: dict | None = None) -> str:
    """A chosen configuration in words: "lr 0.03 (the lowest tried), weight decay 0.0005" (tried: key → values)."""
    parts = []
    for key, value in config.items():
        text = f"{key.replace('_', ' ')} " + (f"{value:g}" if isinstance(value, (int, float))
                                              and not isinstance(value, bool) else str(value))
        edge = at_edge(value, (tried or {}).get(key, []))
        parts.append(f"{text} ({edge})" if edge else text)
    return ", ".join(parts)


def at_edge(value, tried: list) -> str | None:
    """"the lowest tried" / "the highest tried" when a value chosen from several numbers ends their range."""
    numbers = sorted({v for v in tried if isinstance(v, (int, float)) and not isinstance(v, bool)})
    if len(numbers) < 2 or value not in numbers:
        return None
    if value == numbers[0] and value != 0:  # 0 (no weight decay) is an end nothing lies beyond
        return "the lowest tried"
    return "the highest tried" if value == numbers[-1] else None


def tried_values(trials_path) -> dict:
    """Searched key → every value the search's first rung tried (results/tuning/<v>/trials.tsv)."""
    tried = defaultdict(list)
    for record in read_tsv(trials_path):
        if record["rung"] == 0:
            for key, value in json.loads(record["config"]).items():
                tried[key].append(value)
    return dict(tried)


def describe_rungs(rungs: list[dict]) -> str:
    """A search's rungs in words: "2, 6, 15 epochs with 6, 2, 1 trials" (one rung: "1 epoch with 6 trials")."""
    epochs, trials = [r["epochs"] for r in rungs], [r["trials"] for r in rungs]
    return (", ".join(map(str, epochs)) + (" epoch" if epochs == [1] else " epochs") + " with "
            + ", ".join(map(str, trials)) + (" trial" if trials == [1] else " trials"))


def summary_rows(searches: dict, twin_epochs: dict, trials: dict | None = None) -> list[dict]:
    """searches: variant → search.json path; twin_epochs: variant → the twin's epochs TSV paths (one per seed)."""
    rows = []
    for variant, path in searches.items():
        choice = read_json(path)
        tried = tried_values(trials[variant]) if trials else {}
        runs = runs_convergence([read_tsv(p) for p in twin_epochs.get(variant, [])])
        rows.append({
            "variant": variant, "twin": choice["twin"], "method": choice["method"],
            "chosen": json.dumps(choice["config"], sort_keys=True),
            "chosen_text": describe_config(choice["config"], tried),
            "at_edge": any(at_edge(v, tried.get(k, [])) for k, v in choice["config"].items()),
            "rungs": describe_rungs(choice["rungs"]), "selected_by": choice["selected_by"],
            "devices": choice["devices"], "val_acc": choice["val_acc"],
            "kept_epoch": choice["kept_epoch"], "epochs": choice["epochs"], "configs": choice["configs"],
            "trials": choice["trials"], "trial_epochs": choice["trial_epochs"], "grid_epochs": choice["grid_epochs"],
            "device_hours": choice["device_hours"], "trial_seconds": choice["trial_seconds"],
            "search_kept_is_last": choice["converged"]["kept_is_last"],
            "search_last_fifth_rise": choice["converged"]["last_fifth_rise"],
            "runs_kept_last": runs["kept_last"], "runs": runs["runs"], "runs_last_fifth_rise": runs["last_fifth_rise"],
        })
    return rows


def plot_search(trials: dict, out_png) -> None:
    """One panel per variant: validation accuracy against lr, the first rung as lines, the choice circled."""
    names = list(trials)
    cols = min(4, len(names))
    rows_n = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.4 * cols, 2.8 * rows_n), squeeze=False, layout="constrained")
    for ax, name in zip(axes.flat, names):
        records = read_tsv(trials[name])
        lines = defaultdict(list)
        for r in records:
            config = json.loads(r["config"])
            rest = ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}"
                             for k, v in config.items() if k != "lr")
            lines[(r["rung"], rest)].append((config.get("lr", math.nan), r["val_acc"], r["epochs"], r["chosen"]))
        for (rung, rest), points in sorted(lines.items()):
            points.sort()
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            if rung == 0:
                ax.plot(xs, ys, marker="o", ms=3, lw=1, label=rest or None)
            else:
                ax.scatter(xs, ys, s=18 + 10 * rung, marker="s", color="0.3", zorder=3)
            for x, y, _, chosen in points:
                if chosen:
                    ax.scatter([x], [y], s=120, facecolors="none", edgecolors="red", zorder=4)
        ax.set_xscale("log")
        tried = sorted({float(json.loads(r["config"]).get("lr", math.nan)) for r in records} - {math.nan})
        if tried:  # the tried rates as the ticks, without the log axis's crowded minor labels
            ax.set_xticks(tried, [f"{x:g}" for x in tried])
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("learning rate", fontsize=8)
        ax.set_ylabel("validation accuracy (%)", fontsize=8)
        ax.tick_params(labelsize=7)
        if any(rest for _, rest in lines):
            ax.legend(fontsize=6, title="first rung", title_fontsize=6)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("Tuning on the validation split: lines the first rung, squares later rungs, red the choice",
                 fontsize=9)
    save_figure(fig, out_png)


def tuning_outputs(searches: dict, trials: dict, twin_epochs: dict, figure, table, numbers) -> list[dict]:
    rows = summary_rows(searches, twin_epochs, trials)
    write_tsv(table, TABLE_COLUMNS, rows)
    totals = {"trials": sum(r["trials"] for r in rows), "trial_epochs": sum(r["trial_epochs"] for r in rows),
              "grid_epochs": sum(r["grid_epochs"] for r in rows), "device_hours": sum(r["device_hours"] for r in rows),
              "trial_seconds": sum(r["trial_seconds"] for r in rows)}
    budgets = {(r["trials"], r["trial_epochs"]) for r in rows}
    write_json(numbers, {"variants": rows, "total": totals, "equal_budgets": len(budgets) == 1,
                         "at_edge": [r["variant"] for r in rows if r["at_edge"]],
                         "devices": sorted({d for r in rows for d in r["devices"]})})
    plot_search(trials, figure)
    return rows
