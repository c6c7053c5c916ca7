"""Q5: logistic regression by gradient descent and SGD, the course starter's algorithm.

Data rows are (x1, x2, 1, t) with t in {0, 1}; the model is y = sigma(X w).
  E(w)      = -mean(t ln y + (1 - t) ln(1 - y))       (Bishop 4.90, averaged)
  grad E(w) =  mean((y - t) x)                         (Bishop 4.91, averaged)
  w <- w - eta grad E; stop when |E - E_prev| < tol or after max_iter iterations.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ._output import FIGSIZE, plt, save_figure, write_json

COLORS = ("tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple",
          "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")
ETAS = (0.5, 0.3, 0.1, 0.05, 0.01)  # learning rates, each run by GD and by SGD
TOL = 1e-5  # stop when the NLL changes by less than this between epochs
MAX_ITER = 500  # most epochs (GD steps, or SGD passes over the data)
W0 = (0.1, 0.0, 0.0)  # initial weights (on x1, x2 and the constant 1)
SGD_SEED = 0  # seed of SGD's permutations
# The stand-in for the course's data.txt when no data file is given: two Gaussian clouds of n_per_class points
# around `means`, sharing a covariance close to the per-class spread of data.txt, so that the clouds overlap.
GENERATED = {"seed": 0, "n_per_class": 100, "means": ((4.98, 0.94), (6.93, -0.87)), "cov": ((2.4, 1.7), (1.7, 3.2))}
# SGD makes N single-example updates an epoch in plain Python, a microsecond or two each, for each learning rate:
# len(etas) x N x max_iter above this (a data file of more than 40,000 rows) would run for many minutes; the
# generated data's most is 5e5.
MAX_SGD_UPDATES = 10**8


# --------------------------------------------------------------------------- data

def load_data(path: str | os.PathLike) -> np.ndarray:
    """Read rows "x1 x2 1 t" (whitespace-separated; blank lines and # comments skipped).

    Raises ValueError naming the file and line of the first bad row.
    """
    path = Path(path)
    rows = []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            fields = text.split()
            where = f"{path}, line {lineno}"
            if len(fields) != 4:
                raise ValueError(f"{where}: expected 4 numbers 'x1 x2 1 t', found {len(fields)}: {line.strip()!r}")
            try:
                x1, x2, one, t = (float(f) for f in fields)
            except ValueError:
                raise ValueError(f"{where}: not a number in {line.strip()!r}") from None
            if not all(math.isfinite(v) for v in (x1, x2, one, t)):
                raise ValueError(f"{where}: non-finite value in {line.strip()!r}")
            if one != 1.0:
                raise ValueError(f"{where}: the third column must be the constant 1, found {fields[2]!r}")
            if t not in (0.0, 1.0):
                raise ValueError(f"{where}: the target t must be 0 or 1, found {fields[3]!r}")
            rows.append((x1, x2, one, t))
    if not rows:
        raise ValueError(f"{path}: no data rows")
    data = np.array(rows)
    if len(np.unique(data[:, 3])) < 2:
        raise ValueError(f"{path}: all rows have t = {data[0, 3]:g}; logistic regression needs both classes")
    return data


def generate_data(seed: int, n_per_class: int, means, cov) -> np.ndarray:
    """Two Gaussian clouds with a shared covariance: class 0 around means[0], class 1 around means[1]."""
    cov = np.asarray(cov, float)
    rng = np.random.default_rng(seed)
    parts = []
    for label, mean in enumerate(means):
        x = rng.multivariate_normal(np.asarray(mean, float), cov, size=n_per_class)
        parts.append(np.column_stack([x, np.ones(n_per_class), np.full(n_per_class, float(label))]))
    return np.vstack(parts)


# --------------------------------------------------------------------------- model

def nll(X: np.ndarray, t: np.ndarray, w: np.ndarray) -> float:
    """Mean negative log-likelihood (4.90). Written as mean(log(1 + e^a) - t a), the same
    quantity without log(0) when sigma(a) rounds to 0 or 1."""
    a = X @ w
    return float(np.mean(np.logaddexp(0.0, a) - t * a))


def sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # = 1 / (1 + e^-a), without overflow


def gradient(X: np.ndarray, t: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mean gradient (4.91)."""
    return np.mean((sigmoid(X @ w) - t)[:, None] * X, axis=0)


def gradient_descent(X, t, eta: float, w0, tol: float, max_iter: int) -> dict:
    """The starter's loop: E is recorded before each update; after the update, stop if E
    moved less than tol since the previous iteration. `ws[k]` is w after k updates."""
    w = np.array(w0, float)
    ws, e_all = [w.copy()], []
    converged = False
    for it in range(max_iter):
        e_all.append(nll(X, t, w))
        w = w - eta * gradient(X, t, w)
        ws.append(w.copy())
        if it > 0 and abs(e_all[it] - e_all[it - 1]) < tol:
            converged = True
            break
    return {"w": w, "ws": np.array(ws), "nll": np.array(e_all), "iterations": len(e_all),
            "converged": converged}


def _sigmoid_scalar(a: float) -> float:
    if a >= 0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


TRACE_POINTS = 3000  # updates the per-update plot draws in the first epoch, and as many log-spaced after it


def trace_steps(n: int, total: int) -> np.ndarray:
    """The update counts whose w the per-update plot draws: those of the first epoch (0..n; every one up to
    TRACE_POINTS rows, else TRACE_POINTS evenly spaced), then TRACE_POINTS log-spaced up to `total`, the most a
    run can make. Recording only these keeps SGD's memory, and the plot's NLL of the whole set at each, bounded
    however large the data and however long the run (a run's last update is recorded too)."""
    first = np.linspace(0, min(n, total), min(n, total, TRACE_POINTS) + 1).astype(np.int64)
    later = np.geomspace(n, total, TRACE_POINTS).astype(np.int64) if total > n else []
    return np.unique(np.concatenate([first, later]).astype(np.int64))


def sgd(X, t, eta: float, w0, tol: float, max_iter: int, seed: int) -> dict:
    """Stochastic gradient descent with the same stopping rule, one epoch per iteration.

    Each epoch makes N single-example updates w <- w - eta (y_n - t_n) x_n, visiting every
    row once, in a fresh random order per epoch (a permutation: sampling without
    replacement). E of the whole set is recorded at the start
    of each epoch, as the GD loop records it before each update. `trace` holds w after the
    updates `trace_steps` names (`trace_steps` in the result: those this run reached, and its last).
    """
    rng = np.random.default_rng(seed)
    rows = [tuple(r) for r in np.asarray(X, float).tolist()]
    targets = np.asarray(t, float).tolist()
    w0_, w1_, w2_ = (float(v) for v in w0)
    ws, e_all = [(w0_, w1_, w2_)], []
    wanted = trace_steps(len(rows), len(rows) * max_iter).tolist()
    steps, trace = [0], [(w0_, w1_, w2_)]
    updates, next_wanted = 0, 1  # index into `wanted` (wanted[0] is 0, recorded above)
    converged = False
    for epoch in range(max_iter):
        e_all.append(nll(X, t, np.array([w0_, w1_, w2_])))
        # Plain floats: 200 updates per epoch are ~50x faster than numpy calls on 3-vectors.
        for n in rng.permutation(len(rows)):
            x0, x1, x2 = rows[n]
            g = eta * (_sigmoid_scalar(w0_ * x0 + w1_ * x1 + w2_ * x2) - targets[n])
            w0_, w1_, w2_ = w0_ - g * x0, w1_ - g * x1, w2_ - g * x2
            updates += 1
            if next_wanted < len(wanted) and updates == wanted[next_wanted]:
                steps.append(updates)
                trace.append((w0_, w1_, w2_))
                next_wanted += 1
        ws.append((w0_, w1_, w2_))
        if epoch > 0 and abs(e_all[epoch] - e_all[epoch - 1]) < tol:
            converged = True
            break
    if steps[-1] != updates:
        steps.append(updates)
        trace.append((w0_, w1_, w2_))
    return {"w": np.array([w0_, w1_, w2_]), "ws": np.array(ws), "nll": np.array(e_all),
            "iterations": len(e_all), "converged": converged, "trace": np.array(trace),
            "trace_steps": np.array(steps), "updates": updates}


def nll_many(X: np.ndarray, t: np.ndarray, ws: np.ndarray, values: int = 10**7) -> np.ndarray:
    """nll(X, t, w) for every row w of ws, vectorised in chunks of at most `values` activations (80 MB), so that
    memory stays bounded for a large data set too."""
    out = np.empty(len(ws))
    chunk = max(1, values // max(1, len(X)))
    for start in range(0, len(ws), chunk):
        a = X @ ws[start:start + chunk].T  # (N, chunk)
        out[start:start + chunk] = np.mean(np.logaddexp(0.0, a) - t[:, None] * a, axis=0)
    return out


def slope_intercept(w) -> tuple[float, float]:
    """The separator w1 x1 + w2 x2 + w3 = 0 as x2 = m x1 + b (the starter's get_mb)."""
    w = np.asarray(w, float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # w2 = 0 or tiny: no finite line
        return float(-w[0] / w[1]), float(-w[2] / w[1])


def _summary(run: dict, eta: float, X, t) -> dict:
    nlls = run["nll"]
    m, b = slope_intercept(run["w"])
    final = nll(X, t, run["w"])
    return {
        "eta": float(eta),
        "iterations": int(run["iterations"]),
        "converged": bool(run["converged"]),
        "final_nll": final,  # at the returned w (after the last update)
        "final_w": run["w"].tolist(),
        "nll_start": float(nlls[0]),
        "nll_after_one_epoch": float(nlls[1]) if len(nlls) > 1 else final,
        "nll_min": float(min(nlls.min(), final)),
        "nll_max": float(max(nlls.max(), final)),
        "nll_rises": int(np.sum(np.diff(np.append(nlls, final)) > 0)),
        "final_slope": m if math.isfinite(m) else None,
        "final_intercept": b if math.isfinite(b) else None,
        "accuracy": float(np.mean((X @ run["w"] > 0) == (t == 1))),
    }


def q5_runs(data: np.ndarray, etas, w0, tol: float, max_iter: int, seed: int):
    X, t = data[:, :3], data[:, 3]
    gd = [gradient_descent(X, t, eta, w0, tol, max_iter) for eta in etas]
    st = [sgd(X, t, eta, w0, tol, max_iter, seed) for eta in etas]
    return gd, st


# --------------------------------------------------------------------------- figures

def plot_nll(gd_runs, etas):
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for run, eta, color in zip(gd_runs, etas, COLORS):
        ax.plot(np.arange(len(run["nll"])), run["nll"], color=color, lw=1.5,
                label=f"η = {eta:g} ({run['iterations']} it.{', tol' if run['converged'] else ''})")
    ax.set_yscale("log")
    _plain_log_ticks(ax)
    ax.set(xlabel="iteration (one full-batch gradient step)", ylabel="negative log-likelihood $E(w)$ (mean)",
           title="Q5: gradient descent, NLL for each learning rate")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    return fig


def _panels(n: int):
    """A grid of small panels, one per learning rate; spare axes are hidden."""
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.1 * rows + 0.5), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n]), list(axes.flat[n:])


def _legend(fig, axes, spare, **kwargs):
    """The legend of the first panel, in a spare panel when there is one."""
    handles, labels = axes[0].get_legend_handles_labels()
    if spare:
        spare[0].legend(handles, labels, loc="center", fontsize=9)
    else:
        axes[0].legend(handles, labels, fontsize=8, **kwargs)


def _plain_log_ticks(ax):
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_slope_intercept(gd_runs, etas):
    """The starter's Figure 2: every step of the separator in (slope, intercept) space."""
    fig, axes, _ = _panels(len(etas))
    for ax, run, eta, color in zip(axes, gd_runs, etas, COLORS):
        mb = np.array([slope_intercept(w) for w in run["ws"]])
        mb = mb[np.all(np.isfinite(mb), axis=1)]  # w0 has w2 = 0: no line yet
        if len(mb):
            ax.plot(mb[:, 0], mb[:, 1], "k-", lw=0.7)
            ax.plot(mb[-1, 0], mb[-1, 1], "o", color=color, markeredgecolor="k", ms=7, zorder=5,
                    label=f"final ({mb[-1, 0]:.2f}, {mb[-1, 1]:.2f})")
        else:  # w2 = 0 after every step (a tiny eta, or a gradient that is exactly 0): no line x2 = m x1 + b
            ax.text(0, -5, "no separator of the form\n$x_2 = m x_1 + b$:\n$w_2 = 0$ at every step", ha="center",
                    va="center", fontsize=9)
        ax.set_xlim(-5, 5)  # the starter's window
        ax.set_ylim(-10, 0)
        ax.set_title(f"η = {eta:g}: {run['iterations']} iterations", fontsize=10)
        ax.set_xlabel("slope $m = -w_1/w_2$", fontsize=9)
        ax.set_ylabel("intercept $b = -w_3/w_2$", fontsize=9)
        ax.grid(alpha=0.3)
        if len(mb):
            ax.legend(fontsize=8, loc="lower left")
    fig.suptitle("Q5: path of the GD separator $x_2 = m x_1 + b$ in slope-intercept space")
    fig.tight_layout()
    return fig


def plot_separators(data, gd_runs, sgd_runs, etas, data_source: str):
    fig, ax = plt.subplots(figsize=(7.6, 4.8))
    c0, c1 = data[data[:, 3] == 0], data[data[:, 3] == 1]
    # Grey markers, so the coloured separators stand out.
    ax.plot(c0[:, 0], c0[:, 1], "o", mfc="none", mec="0.3", ms=5, label="class t = 0")
    ax.plot(c1[:, 0], c1[:, 1], "x", color="0.3", ms=5, label="class t = 1")
    x_lo, x_hi = data[:, 0].min() - 1, data[:, 0].max() + 1
    y_lo, y_hi = data[:, 1].min() - 1, data[:, 1].max() + 1
    xs = np.linspace(x_lo, x_hi, 2)
    for gd_run, sgd_run, eta, color in zip(gd_runs, sgd_runs, etas, COLORS):
        for run, style, name in ((gd_run, "-", "GD"), (sgd_run, ":", "SGD")):
            m, b = slope_intercept(run["w"])
            w = run["w"]
            if math.isfinite(m):
                line = (xs, m * xs + b)
            elif w[0] != 0 and math.isfinite(-w[2] / w[0]):  # w2 = 0: the vertical line x1 = -w3 / w1
                line = ([-w[2] / w[0]] * 2, [y_lo, y_hi])
            else:  # w1 = w2 = 0: no line at all
                continue
            ax.plot(*line, style, color=color, lw=1.8 if name == "GD" else 1.4,
                    label=f"{name} η = {eta:g}" if name == "GD" else None)
    ax.plot([], [], "k:", label="SGD (same colour)")
    ax.set(xlim=(x_lo, x_hi), ylim=(y_lo, y_hi), xlabel="$x_1$", ylabel="$x_2$")
    ax.set_title(f"Q5: data and final separators\n({data_source})", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return fig


def plot_sgd(X, t, gd_runs, sgd_runs, etas):
    """Whole-set NLL after every single-example SGD update, against GD, one panel per rate."""
    fig, axes, spare = _panels(len(etas))
    n = len(t)
    for ax, gd_run, sgd_run, eta, color in zip(axes, gd_runs, sgd_runs, etas, COLORS):
        # The first epoch's updates, then log-spaced ones (`trace_steps`): the x axis is logarithmic.
        trace = nll_many(X, t, sgd_run["trace"])
        ax.plot(sgd_run["trace_steps"] / n, trace, "-", color=color, lw=0.6, label="SGD, after each update (colour: η)")
        ax.plot(np.arange(len(sgd_run["nll"])), sgd_run["nll"], "k.", ms=2, label="SGD, epoch start")
        ax.plot(np.arange(len(gd_run["nll"])), gd_run["nll"], "k--", lw=1.2, label="GD")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_yscale("log")
        _plain_log_ticks(ax)
        ax.set_title(f"η = {eta:g}: SGD {sgd_run['iterations']} epochs"
                     f"{' (tol)' if sgd_run['converged'] else ''}", fontsize=10)
        ax.set_xlabel("epochs = passes over the data", fontsize=9)
        ax.set_ylabel("NLL of the whole set", fontsize=9)
        ax.grid(alpha=0.3, which="both")
    _legend(fig, axes, spare, loc="lower left")
    fig.suptitle("Q5: SGD (N single-example updates per epoch, a random order each epoch) against GD")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- what the prose concludes

def findings(gd: list[dict], sgd: list[dict]) -> dict:
    """The runs the discussion names, from the per-rate summaries: the lowest final NLL of GD and of SGD,
    the GD runs whose NLL rose at some step and those where it only fell, the runs the tolerance
    stopped, and the SGD runs whose NLL went above its start (with the highest value they reached)."""
    wild = [r for r in sgd if r["nll_max"] > sgd[0]["nll_start"]]
    return {"gd_best": min(gd, key=lambda r: r["final_nll"]), "sgd_best": min(sgd, key=lambda r: r["final_nll"]),
            "gd_converged": [r for r in gd if r["converged"]], "gd_rising": [r for r in gd if r["nll_rises"] > 0],
            "gd_monotone": [r for r in gd if not r["nll_rises"] > 0],
            "sgd_converged": [r for r in sgd if r["converged"]], "sgd_wild": wild,
            "sgd_wild_max": max((r["nll_max"] for r in wild), default=None)}


# --------------------------------------------------------------------------- entry point

def write_q5(numbers_path, nll_path, slope_intercept_path, separators_path, sgd_path, *,
             data: str | None = None, etas=ETAS, tol: float = TOL, max_iter: int = MAX_ITER, w0=W0,
             sgd_seed: int = SGD_SEED, generated: dict = GENERATED) -> dict:
    """Run GD and SGD for every eta on the data file `data` (None: the generated clouds); write the JSON and four
    figures; return the numbers."""
    if data:
        points = load_data(data)
        source = str(data)
        if (updates := len(etas) * len(points) * max_iter) > MAX_SGD_UPDATES:
            raise ValueError(f"config key theory.q5.data: {len(etas)} learning rates x {len(points):,} rows of {data} "
                             f"x {max_iter:,} epochs are {updates:,} single-example SGD updates, more than "
                             f"{MAX_SGD_UPDATES:,} (a microsecond or two each, in Python); use a file of fewer rows")
    else:
        points = generate_data(**generated)
        source = f"generated (seed {generated['seed']})"
    gd_runs, sgd_runs = q5_runs(points, etas, w0, tol, max_iter, sgd_seed)
    X, t = points[:, :3], points[:, 3]
    sampling = f"each epoch visits all N rows once, in a fresh random permutation (numpy default_rng, seed {sgd_seed})"
    numbers = {"data_source": source, "data_path": str(data) if data else None,
               "generated": dict(generated) if not data else None, "n_points": int(len(points)),
               "n_per_class": [int(np.sum(t == 0)), int(np.sum(t == 1))],
               "feature_mean": X[:, :2].mean(axis=0).tolist(), "feature_std": X[:, :2].std(axis=0).tolist(),
               "w0": list(map(float, w0)), "tol": float(tol), "max_iter": int(max_iter), "etas": list(map(float, etas)),
               "sgd_sampling": "permutation", "sgd_sampling_text": sampling, "sgd_seed": int(sgd_seed),
               "gd": [_summary(run, eta, X, t) for run, eta in zip(gd_runs, etas)],
               "sgd": [_summary(run, eta, X, t) for run, eta in zip(sgd_runs, etas)]}
    numbers["findings"] = findings(numbers["gd"], numbers["sgd"])
    save_figure(plot_nll(gd_runs, etas), nll_path)
    save_figure(plot_slope_intercept(gd_runs, etas), slope_intercept_path)
    save_figure(plot_separators(points, gd_runs, sgd_runs, etas, source), separators_path)
    save_figure(plot_sgd(X, t, gd_runs, sgd_runs, etas), sgd_path)
    write_json(numbers_path, numbers)
    return numbers
