"""Q1: softmax over three linear activations a_k = w_k . x + b_k in the plane."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import numpy as np

from ._output import FIGSIZE, WIDE_FIGSIZE, plt, save_figure, write_json

# a1 = 3x1 + x2 + 1, a2 = x1 + 3x2 + 2, a3 = -3x1 + 1.5x2 + 2 (the question).
WEIGHTS = ((3.0, 1.0), (1.0, 3.0), (-3.0, 1.5))
BIASES = (1.0, 2.0, 2.0)
COLORS = ("tab:blue", "tab:orange", "tab:purple")
EXTENT = 3.0  # the region plot shows the square [-EXTENT, EXTENT]^2
GRID = 500  # grid points per axis of the region plot
RAY_LENGTH = 4.0  # largest distance from the triple point in the probability-along-a-ray plots
FAR = 20.0  # distance from the triple point of the "far" probabilities


def activations(x: np.ndarray, weights=WEIGHTS, biases=BIASES) -> np.ndarray:
    """a(x) for points x of shape (..., 2) -> (..., 3)."""
    return np.asarray(x, float) @ np.asarray(weights, float).T + np.asarray(biases, float)


def softmax(a: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the max so exp never overflows."""
    z = np.exp(a - a.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def triple_point_exact(weights=WEIGHTS, biases=BIASES) -> tuple[Fraction, Fraction]:
    """The x where a1 = a2 = a3, by Cramer's rule in exact rational arithmetic.

    a1 = a2 and a1 = a3 give two linear equations (w1 - wj) . x = bj - b1.
    """
    w = [[Fraction(c) for c in row] for row in weights]
    b = [Fraction(c) for c in biases]
    rows = [[w[0][0] - w[j][0], w[0][1] - w[j][1], b[j] - b[0]] for j in (1, 2)]
    det = rows[0][0] * rows[1][1] - rows[0][1] * rows[1][0]
    if det == 0:
        raise ValueError("the three boundaries are parallel: no common point")
    x1 = (rows[0][2] * rows[1][1] - rows[0][1] * rows[1][2]) / det
    x2 = (rows[0][0] * rows[1][2] - rows[0][2] * rows[1][0]) / det
    return x1, x2


def boundary_direction(i: int, j: int, weights=WEIGHTS) -> np.ndarray:
    """Unit direction of the ray from the triple point along which a_i = a_j > a_k.

    Along p + s d every activation changes by s (w . d); the tie holds when
    (w_i - w_j) . d = 0, and it is the top two when (w_i - w_k) . d > 0.
    """
    w = np.asarray(weights, float)
    (k,) = {0, 1, 2} - {i, j}
    n = w[i] - w[j]
    d = np.array([-n[1], n[0]]) / np.linalg.norm(n)
    return d if (w[i] - w[k]) @ d > 0 else -d


def region_direction(k: int, weights=WEIGHTS, biases=BIASES) -> np.ndarray:
    """Unit direction into the middle of region k: the bisector of its two boundary rays."""
    others = [j for j in range(3) if j != k]
    d = sum(boundary_direction(min(k, j), max(k, j), weights) for j in others)
    d = d / np.linalg.norm(d)
    p = np.array([float(c) for c in triple_point_exact(weights, biases)])
    # A region wider than 180 degrees has its bisector on the other side.
    if np.argmax(activations(p + d, weights, biases)) != k:
        d = -d
    return d


def probabilities_along(direction: np.ndarray, distances: np.ndarray, weights=WEIGHTS, biases=BIASES):
    """p(C_k | p + s d) for each distance s -> (len(s), 3)."""
    p = np.array([float(c) for c in triple_point_exact(weights, biases)])
    points = p + np.outer(distances, direction)
    return softmax(activations(points, weights, biases))


def _distance_to(level: float, direction: np.ndarray, k: int, weights, biases) -> float:
    """Distance along `direction` (into region k) at which p_k reaches `level`, by bisection.

    p_k rises monotonically there because every margin a_k - a_j grows linearly.
    """
    def pk(s):
        return probabilities_along(direction, np.array([s]), weights, biases)[0, k]

    lo, hi = 0.0, 1.0
    while pk(hi) < level:
        lo, hi = hi, 2 * hi
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if pk(mid) < level else (lo, mid)
    return hi


def _angle_deg(d: np.ndarray) -> float:
    return float(np.degrees(np.arctan2(d[1], d[0])))


def q1_numbers(far: float = FAR, weights=WEIGHTS, biases=BIASES) -> dict:
    """Everything the report says about Q1, as plain numbers."""
    x1, x2 = triple_point_exact(weights, biases)
    point = np.array([float(x1), float(x2)])
    w = np.asarray(weights, float)
    boundaries = []
    for i, j in combinations(range(3), 2):
        (k,) = {0, 1, 2} - {i, j}
        d = boundary_direction(i, j, weights)
        gap = float((w[i] - w[k]) @ d)  # a_i - a_k grows by this per unit distance
        limit = [0.0, 0.0, 0.0]
        limit[i] = limit[j] = 0.5
        boundaries.append({
            "classes": [i + 1, j + 1],
            "other": k + 1,
            "direction": d.tolist(),
            "angle_deg": _angle_deg(d),
            "gap_slope": gap,
            # Along the ray p_k = 1 / (1 + 2 exp(gap s)): below 0.01 once s > ln(49.5) / gap.
            "distance_other_below_1pct": float(np.log(49.5) / gap),
            "probabilities_far": probabilities_along(d, np.array([far]), weights, biases)[0].tolist(),
            "limit": limit,
        })
    regions = []
    for k in range(3):
        d = region_direction(k, weights, biases)
        margins = [float((w[k] - w[j]) @ d) for j in range(3) if j != k]
        limit = [0.0, 0.0, 0.0]
        limit[k] = 1.0
        regions.append({"class": k + 1, "direction": d.tolist(), "angle_deg": _angle_deg(d), "margin_slopes": margins,
                        "distance_to_p99": _distance_to(0.99, d, k, weights, biases),
                        "probabilities_far": probabilities_along(d, np.array([far]), weights, biases)[0].tolist(),
                        "limit": limit})
    a = activations(point, weights, biases)
    return {"weights": [list(row) for row in weights], "biases": list(biases), "point": point.tolist(),
            "point_exact": [str(x1), str(x2)], "activation_at_point": float(a[0]), "activations_at_point": a.tolist(),
            "probabilities_at_point": softmax(a).tolist(), "far_distance": float(far), "boundaries": boundaries,
            "regions": regions}


def plot_regions(numbers: dict, extent: float, grid: int):
    point = np.array(numbers["point"])
    axis = np.linspace(-extent, extent, grid)
    xx, yy = np.meshgrid(axis, axis)
    cls = np.argmax(activations(np.stack([xx, yy], axis=-1)), axis=-1)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(["#c6dbef", "#fdd0a2", "#dadaeb"])
    ax.imshow(cls, origin="lower", extent=(-extent, extent, -extent, extent), cmap=cmap,
              vmin=-0.5, vmax=2.5, interpolation="nearest")
    reach = 3 * extent  # long enough to leave the window; clipped by the axes
    for b in numbers["boundaries"]:
        d = np.array(b["direction"])
        end = point + reach * d
        ax.plot([point[0], end[0]], [point[1], end[1]], color="k", lw=1.8)
        i, j = b["classes"]
        at = point + 0.5 * extent * d
        angle = np.degrees(np.arctan2(d[1], d[0]))
        angle = angle - 180 if angle > 90 else angle + 180 if angle < -90 else angle
        ax.text(at[0], at[1], f"$a_{i}=a_{j}$", rotation=angle, rotation_mode="anchor",
                ha="center", va="bottom", fontsize=10,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7))
    for r in numbers["regions"]:
        at = point + 0.45 * extent * np.array(r["direction"])
        ax.text(at[0], at[1], f"$C_{r['class']}$", fontsize=16, ha="center", va="center",
                color=COLORS[r["class"] - 1], fontweight="bold")
    ax.plot(*point, "o", color="limegreen", markeredgecolor="k", markersize=10, zorder=5,
            label=f"$a_1=a_2=a_3$ at ({numbers['point_exact'][0]}, {numbers['point_exact'][1]})")
    ax.set(xlim=(-extent, extent), ylim=(-extent, extent), aspect="equal", xlabel="$x_1$", ylabel="$x_2$",
           title="Q1: decision regions (largest $a_k$) and boundaries")
    ax.legend(loc="lower left", fontsize=9, framealpha=0.9)
    return fig


def _plot_rays(items: list[dict], title_of, suptitle: str, ray_length: float, legend_loc: str):
    distances = np.linspace(0.0, ray_length, 400)
    fig, axes = plt.subplots(1, len(items), figsize=WIDE_FIGSIZE, sharey=True)
    for ax, item in zip(axes, items):
        probs = probabilities_along(np.array(item["direction"]), distances)
        for k in range(3):
            ax.plot(distances, probs[:, k], color=COLORS[k], lw=2,
                    ls=("-", "--", ":")[k], label=f"$p(C_{k + 1}|x)$")
        ax.set_title(title_of(item), fontsize=10)
        ax.set(xlabel="distance from the triple point", ylim=(-0.03, 1.03))
        ax.axhline(1 / 3, color="grey", lw=0.6, ls="-.")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("probability")
    axes[0].legend(fontsize=9, loc=legend_loc)
    fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def write_q1(numbers_path, regions_path, boundary_probs_path, region_probs_path, *,
             extent: float = EXTENT, grid: int = GRID, ray_length: float = RAY_LENGTH, far: float = FAR) -> dict:
    """Compute Q1, write its JSON and three figures; return the numbers."""
    numbers = q1_numbers(far)
    save_figure(plot_regions(numbers, extent, grid), regions_path)
    save_figure(_plot_rays(
        numbers["boundaries"],
        lambda b: f"boundary $a_{b['classes'][0]}=a_{b['classes'][1]}$ (ray at {b['angle_deg']:.0f}°)",
        "Q1: class probabilities moving out along each decision boundary", ray_length, "upper right",
    ), boundary_probs_path)
    save_figure(_plot_rays(
        numbers["regions"],
        lambda r: f"into region $C_{r['class']}$ (bisector at {r['angle_deg']:.0f}°)",
        "Q1: class probabilities moving into each decision region", ray_length, "center right",
    ), region_probs_path)
    write_json(numbers_path, numbers)
    return numbers
