"""Q2: a generalized linear model y_k(x) = w_k . phi(x) with phi(x) = (1, x1^2, x2^2)."""

from __future__ import annotations

import numpy as np

from ._output import FIGSIZE, plt, save_figure, write_json

# y1 = 6 + 2 x1^2 + 2 x2^2, y2 = 8: the weights on phi = (1, x1^2, x2^2).
W1 = (6.0, 2.0, 2.0)
W2 = (8.0, 0.0, 0.0)
EXTENT = 2.0  # the plots show the square [-EXTENT, EXTENT]^2, around the unit circle
GRID = 300  # grid points per axis of the plots
N_ANGLES = 360  # directions along which the boundary is located by bisection


def features(x1, x2):
    """phi(x) = (1, x1^2, x2^2), stacked on a last axis."""
    x1, x2 = np.broadcast_arrays(np.asarray(x1, float), np.asarray(x2, float))
    return np.stack([np.ones_like(x1), x1**2, x2**2], axis=-1)


def outputs(x1, x2, w1=W1, w2=W2):
    """(y1, y2) at the points (x1, x2)."""
    phi = features(x1, x2)
    return phi @ np.asarray(w1, float), phi @ np.asarray(w2, float)


def closed_form_circle(w1=W1, w2=W2) -> dict:
    """y1 = y2  <=>  (w1 - w2) . phi = 0: a line in feature space, a circle in x when the
    x1^2 and x2^2 weights are equal and positive: x1^2 + x2^2 = (w2_0 - w1_0) / (w1_1 - w2_1)."""
    d = np.asarray(w1, float) - np.asarray(w2, float)
    if d[1] != d[2] or d[1] == 0:
        raise ValueError("the boundary is not a circle for these weights")
    r2 = -d[0] / d[1]
    if r2 <= 0:
        raise ValueError("the boundary is empty for these weights")
    return {"center": [0.0, 0.0], "radius": float(np.sqrt(r2)), "radius_squared": float(r2)}


def boundary_radii(n_angles: int, r_max: float = 100.0, w1=W1, w2=W2) -> tuple[np.ndarray, np.ndarray]:
    """For each of n_angles directions, the radius where y1 - y2 changes sign, by bisection.

    Found numerically, without using the closed form: y1 - y2 is increasing in r along
    every ray here (2 r^2 grows), so a sign change on [0, r_max] is bracketed.
    """
    theta = np.linspace(0.0, 2 * np.pi, n_angles, endpoint=False)
    c, s = np.cos(theta), np.sin(theta)

    def g(r):
        y1, y2 = outputs(r * c, r * s, w1, w2)
        return y1 - y2

    lo, hi = np.zeros_like(theta), np.full_like(theta, r_max)
    if np.any(np.sign(g(lo)) == np.sign(g(hi))):
        raise ValueError("no sign change of y1 - y2 along some ray")
    sign_lo = np.sign(g(lo))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        same = np.sign(g(mid)) == sign_lo
        lo = np.where(same, mid, lo)
        hi = np.where(same, hi, mid)
        if np.all(hi - lo < 1e-15 * np.maximum(1.0, hi)):
            break
    return theta, 0.5 * (lo + hi)


def fit_circle(x: np.ndarray, y: np.ndarray) -> dict:
    """Least-squares circle through points (Kasa fit: x^2 + y^2 + D x + E y + F = 0)."""
    a = np.column_stack([x, y, np.ones_like(x)])
    b = -(x**2 + y**2)
    (d, e, f), *_ = np.linalg.lstsq(a, b, rcond=None)
    cx, cy = -d / 2, -e / 2
    return {"center": [float(cx), float(cy)], "radius": float(np.sqrt(cx**2 + cy**2 - f))}


def q2_numbers(n_angles: int, extent: float, grid: int, w1=W1, w2=W2) -> dict:
    theta, radii = boundary_radii(n_angles, w1=w1, w2=w2)
    closed = closed_form_circle(w1, w2)
    fit = fit_circle(radii * np.cos(theta), radii * np.sin(theta))
    y1_0, y2_0 = outputs(0.0, 0.0, w1, w2)
    # Grid check: the share of the square labelled class 2 against the disc's area.
    axis = np.linspace(-extent, extent, grid)
    y1, y2 = outputs(*np.meshgrid(axis, axis), w1, w2)
    class2_share = float(np.mean(y2 > y1))
    return {
        "w1": list(w1),
        "w2": list(w2),
        "features": ["1", "x1^2", "x2^2"],
        "closed_form": {**closed, "equation": f"x1^2 + x2^2 = {closed['radius_squared']:g}",
                        "feature_space_line": f"z1 + z2 = {closed['radius_squared']:g} with z = (x1^2, x2^2)"},
        "numeric": {"n_angles": int(n_angles), "radius_mean": float(radii.mean()), "radius_min": float(radii.min()),
                    "radius_max": float(radii.max()),
                    "max_abs_radius_error": float(np.max(np.abs(radii - closed["radius"]))), "circle_fit": fit},
        "y_at_origin": [float(y1_0), float(y2_0)],
        "class_inside": 2 if y2_0 > y1_0 else 1,
        "class_outside": 1 if y2_0 > y1_0 else 2,
        "grid_class2_share": class2_share,
        "disc_share": float(np.pi * closed["radius_squared"] / (2 * extent) ** 2),
        "extent": float(extent),
    }


def plot_functions(numbers: dict, extent: float, grid: int):
    # A polar grid: a round bowl, so the far wall does not hide the boundary circle.
    r_grid, t_grid = np.meshgrid(np.linspace(0, extent, max(grid // 6, 20)),
                                 np.linspace(0, 2 * np.pi, max(grid // 3, 40)))
    xx, yy = r_grid * np.cos(t_grid), r_grid * np.sin(t_grid)
    y1, y2 = outputs(xx, yy)
    fig = plt.figure(figsize=FIGSIZE)
    ax = fig.add_subplot(projection="3d", computed_zorder=False)
    ax.plot_surface(xx, yy, y2, color="tab:orange", alpha=0.35, linewidth=0, zorder=1)
    ax.plot_surface(xx, yy, y1, cmap="viridis", alpha=0.55, linewidth=0, antialiased=True, zorder=2)
    t = np.linspace(0, 2 * np.pi, 200)
    r = numbers["closed_form"]["radius"]
    ax.plot(r * np.cos(t), r * np.sin(t), np.full_like(t, numbers["w2"][0]), color="red", lw=3,
            zorder=3, label="$y_1 = y_2$: the boundary")
    ax.set(xlabel="$x_1$", ylabel="$x_2$", zlabel="$y$")
    ax.set_title("Q2: $y_1 = 6 + 2x_1^2 + 2x_2^2$ (bowl) and $y_2 = 8$ (plane)", fontsize=11)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=plt.get_cmap("viridis")(0.5), label="$y_1(x)$"),
                       Patch(color="tab:orange", alpha=0.6, label="$y_2(x) = 8$"),
                       *ax.get_legend_handles_labels()[0]],
              loc="upper left", bbox_to_anchor=(0.0, 0.95), fontsize=9)
    ax.view_init(elev=38, azim=-60)
    return fig


def plot_regions(numbers: dict, extent: float, grid: int):
    axis = np.linspace(-extent, extent, grid)
    xx, yy = np.meshgrid(axis, axis)
    y1, y2 = outputs(xx, yy)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    from matplotlib.colors import ListedColormap

    ax.imshow((y2 > y1).astype(int), origin="lower", extent=(-extent, extent, -extent, extent),
              cmap=ListedColormap(["#c6dbef", "#fdd0a2"]), vmin=0, vmax=1, interpolation="nearest")
    levels = np.linspace(-6, 6, 13)
    cs = ax.contour(xx, yy, y1 - y2, levels=levels[levels != 0], colors="grey", linewidths=0.6)
    ax.clabel(cs, fontsize=7, fmt="%g")
    theta, radii = boundary_radii(72)
    r = numbers["closed_form"]["radius"]
    t = np.linspace(0, 2 * np.pi, 400)
    ax.plot(r * np.cos(t), r * np.sin(t), "k-", lw=2, label=f"closed form: $x_1^2+x_2^2={r**2:g}$")
    ax.plot(radii * np.cos(theta), radii * np.sin(theta), "r.", ms=5,
            label="numeric: sign change of $y_1-y_2$")
    ax.text(0, 0, "$C_2$\n$y_2 > y_1$", ha="center", va="center", fontsize=13)
    ax.text(-0.62 * extent, 0.8 * extent, "$C_1$: $y_1 > y_2$", ha="center", va="center", fontsize=13,
            bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))
    ax.set(aspect="equal", xlabel="$x_1$", ylabel="$x_2$", title="Q2: decision regions; grey contours of $y_1 - y_2$")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    return fig


def plot_feature_space(numbers: dict, extent: float):
    """The same boundary in feature space (x1^2, x2^2): a straight line."""
    rng = np.random.default_rng(0)
    pts = rng.uniform(-extent, extent, size=(1500, 2))
    z = features(pts[:, 0], pts[:, 1])[:, 1:]
    y1, y2 = outputs(pts[:, 0], pts[:, 1])
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.scatter(z[y1 > y2, 0], z[y1 > y2, 1], s=6, color="tab:blue", label="class 1 ($y_1 > y_2$)")
    ax.scatter(z[y2 > y1, 0], z[y2 > y1, 1], s=6, color="tab:orange", label="class 2 ($y_2 > y_1$)")
    r2 = numbers["closed_form"]["radius_squared"]
    ax.plot([0, r2], [r2, 0], "k-", lw=2, label=f"boundary $z_1 + z_2 = {r2:g}$")
    ax.set(xlim=(-0.1, min(extent**2, 3 * r2) + 0.1), ylim=(-0.1, min(extent**2, 3 * r2) + 0.1), aspect="equal",
           xlabel="$z_1 = x_1^2$", ylabel="$z_2 = x_2^2$", title="Q2: in feature space the boundary is a line")
    ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
    return fig


def write_q2(numbers_path, functions_path, regions_path, feature_space_path, *,
             extent: float = EXTENT, grid: int = GRID, n_angles: int = N_ANGLES) -> dict:
    """Compute Q2, write its JSON and three figures; return the numbers."""
    numbers = q2_numbers(n_angles, extent, grid)
    save_figure(plot_functions(numbers, extent, grid), functions_path)
    save_figure(plot_regions(numbers, extent, grid), regions_path)
    save_figure(plot_feature_space(numbers, extent), feature_space_path)
    write_json(numbers_path, numbers)
    return numbers
