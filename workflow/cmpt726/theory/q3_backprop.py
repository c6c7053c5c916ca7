"""Q3: error backpropagation by hand (the delta rules), checked against autograd and
central finite differences, all in float64.

Network: x (3 inputs) -> logistic hidden layers -> one identity output, E = 1/2 (y - t)^2.
Parameters per layer l: W[l] of shape (out, in) and b[l] of shape (out,); the bias is the
weight w_j0 on a constant input z_0 = 1.
"""

from __future__ import annotations

import numpy as np

from ._output import FIGSIZE, plt, save_figure, write_json

N_INPUTS = 3
HIDDEN = (4, 3)  # widths of the two logistic hidden layers
N_EXAMPLES = 5  # random (x, t) pairs at which every gradient is checked
INIT_STD = 1.0  # standard deviation of the normal initial weights and biases
# Step eps of the central finite difference (E(w+eps) - E(w-eps)) / (2 eps): 1e-4 balances truncation (~eps^2)
# against rounding (~1e-16/eps) for this network.
FD_STEP = 1e-4
SEED = 0  # seed of the weights and examples


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def init_params(hidden: list[int], init_std: float, rng: np.random.Generator) -> list[dict]:
    sizes = [N_INPUTS, *hidden, 1]
    return [{"W": rng.normal(0.0, init_std, (n_out, n_in)), "b": rng.normal(0.0, init_std, n_out)}
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def forward(params: list[dict], x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pre-activations a[l] and unit outputs z[l] (z[0] = x; the last z is y = a)."""
    zs, acts = [np.asarray(x, float)], []
    for l, layer in enumerate(params):
        a = layer["W"] @ zs[-1] + layer["b"]
        acts.append(a)
        zs.append(a if l == len(params) - 1 else sigmoid(a))  # identity output unit
    return acts, zs


def error(params: list[dict], x: np.ndarray, t: float) -> float:
    _, zs = forward(params, x)
    return 0.5 * float((zs[-1][0] - t) ** 2)


def backprop(params: list[dict], x: np.ndarray, t: float) -> tuple[list[dict], list[np.ndarray]]:
    """dE/dW and dE/db of every layer by the delta rules; also the deltas themselves.

    delta_out = y - t                          (identity output, squared error)
    delta_j   = h'(a_j) sum_k w_kj delta_k     with h' = sigma (1 - sigma) = z_j (1 - z_j)
    dE/dw_ji  = delta_j z_i                    (z_i = x_i in the first layer, z_0 = 1 for biases)
    """
    _, zs = forward(params, x)
    deltas = [None] * len(params)
    deltas[-1] = zs[-1] - t
    for l in range(len(params) - 2, -1, -1):
        z = zs[l + 1]
        deltas[l] = z * (1.0 - z) * (params[l + 1]["W"].T @ deltas[l + 1])
    grads = [{"W": np.outer(deltas[l], zs[l]), "b": deltas[l].copy()} for l in range(len(params))]
    return grads, deltas


def autograd_grads(params: list[dict], x: np.ndarray, t: float) -> list[dict]:
    """The same gradients by torch autograd (float64), as an independent reference."""
    import torch

    leaves = [{k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in layer.items()}
              for layer in params]
    z = torch.tensor(x, dtype=torch.float64)
    for l, layer in enumerate(leaves):
        a = layer["W"] @ z + layer["b"]
        z = a if l == len(leaves) - 1 else torch.sigmoid(a)
    e = 0.5 * (z[0] - t) ** 2
    e.backward()
    return [{k: v.grad.numpy().copy() for k, v in layer.items()} for layer in leaves]


def finite_difference_grads(params: list[dict], x: np.ndarray, t: float, step: float) -> list[dict]:
    """Central differences (E(w + eps) - E(w - eps)) / (2 eps), one weight at a time."""
    out = []
    for layer in params:
        grads = {}
        for key, value in layer.items():
            g = np.zeros_like(value)
            for idx in np.ndindex(value.shape):
                keep = value[idx]
                value[idx] = keep + step
                e_plus = error(params, x, t)
                value[idx] = keep - step
                e_minus = error(params, x, t)
                value[idx] = keep  # restore exactly
                g[idx] = (e_plus - e_minus) / (2 * step)
            grads[key] = g
        out.append(grads)
    return out


# Gradients smaller than this are compared absolutely: a relative error of two
# numbers that are both ~0 says nothing.
REL_FLOOR = 1e-8
TOLERANCE = 1e-6  # the question's bar for "the hand-written gradients are right"


def relative_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| / max(|a|, |b|, REL_FLOOR), elementwise."""
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), REL_FLOOR)


FD_SWEEP_STEPS = tuple(10.0 ** -k for k in range(1, 11))


def fd_sweep(params: list[dict], seed: int, steps=FD_SWEEP_STEPS, n_examples: int = 3) -> list[dict]:
    """Largest relative error of central differences against backprop, per step size.

    Shows the trade-off behind the chosen step: truncation error ~ eps^2 for large eps,
    rounding error ~ machine-eps * E / eps for small eps.
    """
    rng = np.random.default_rng(seed + 1)
    examples = [(rng.normal(0.0, 1.0, N_INPUTS), float(rng.normal(0.0, 1.0))) for _ in range(n_examples)]
    rows = []
    for step in steps:
        worst = 0.0
        for x, t in examples:
            ours, _ = backprop(params, x, t)
            fd = finite_difference_grads(params, x, t, step)
            for layer_ours, layer_fd in zip(ours, fd):
                for key in layer_ours:
                    worst = max(worst, float(relative_error(layer_ours[key], layer_fd[key]).max()))
        rows.append({"step": step, "max_rel_err": worst})
    return rows


def q3_numbers(hidden: list[int], n_examples: int, init_std: float, fd_step: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    params = init_params(hidden, init_std, rng)
    names = [(f"W{l + 1}", f"b{l + 1}") for l in range(len(params))]
    worst = {name: {"autograd": 0.0, "fd": 0.0, "max_abs_grad": 0.0, "min_abs_grad": np.inf}
             for pair in names for name in pair}
    example = None
    for n in range(n_examples):
        x = rng.normal(0.0, 1.0, N_INPUTS)
        t = float(rng.normal(0.0, 1.0))
        ours, deltas = backprop(params, x, t)
        auto = autograd_grads(params, x, t)
        fd = finite_difference_grads(params, x, t, fd_step)
        for l, (w_name, b_name) in enumerate(names):
            for key, name in (("W", w_name), ("b", b_name)):
                row = worst[name]
                row["autograd"] = max(row["autograd"], float(relative_error(ours[l][key], auto[l][key]).max()))
                row["fd"] = max(row["fd"], float(relative_error(ours[l][key], fd[l][key]).max()))
                row["max_abs_grad"] = max(row["max_abs_grad"], float(np.abs(ours[l][key]).max()))
                row["min_abs_grad"] = min(row["min_abs_grad"], float(np.abs(ours[l][key]).min()))
        if n == 0:
            _, zs = forward(params, x)
            example = {"x": x.tolist(), "t": t, "y": float(zs[-1][0]), "E": error(params, x, t),
                       "deltas": [d.tolist() for d in deltas]}
    layers = []
    for l, (w_name, b_name) in enumerate(names):
        for key, name in (("W", w_name), ("b", b_name)):
            shape = list(params[l][key].shape)
            layers.append({"name": name, "layer": l + 1, "kind": "weights" if key == "W" else "biases",
                           "shape": shape, "count": int(np.prod(shape)),
                           "max_rel_err_autograd": worst[name]["autograd"],
                           "max_rel_err_fd": worst[name]["fd"],
                           "max_abs_grad": worst[name]["max_abs_grad"],
                           "min_abs_grad": worst[name]["min_abs_grad"]})
    if example is not None:
        # What the prose concludes from the worked example: the first hidden layer's deltas are smaller than the
        # output's (each logistic layer multiplies by sigma' <= 1/4 on the way back).
        example["hidden_smaller"] = max(map(abs, example["deltas"][0])) < max(map(abs, example["deltas"][-1]))
    sweep = fd_sweep(params, seed)
    return {
        "fd_sweep": sweep,
        "fd_best": min(sweep, key=lambda row: row["max_rel_err"]),  # the step with the smallest error
        "sizes": [N_INPUTS, *hidden, 1],
        "hidden": list(hidden),
        "n_params": int(sum(row["count"] for row in layers)),
        "n_examples": int(n_examples),
        "init_std": float(init_std),
        "fd_step": float(fd_step),
        "rel_floor": REL_FLOOR,
        "seed": int(seed),
        "layers": layers,
        "max_rel_err_autograd": max(row["max_rel_err_autograd"] for row in layers),
        "max_rel_err_fd": max(row["max_rel_err_fd"] for row in layers),
        "tolerance": TOLERANCE,
        "passed": all(max(row["max_rel_err_autograd"], row["max_rel_err_fd"]) < TOLERANCE for row in layers),
        "example": example,
    }


FORMULAS = [
    ("Forward pass", None),
    (None, r"$a_j = \sum_i w_{ji}\, z_i + w_{j0}, \qquad z_j = \sigma(a_j) = \frac{1}{1 + e^{-a_j}}"
           r"\qquad (z_i = x_i$ in the first layer$)$"),
    (None, r"$y = \sum_j w_{kj}\, z_j + w_{k0}, \qquad E = \frac{1}{2}\,(y - t)^2$"),
    ("Backward pass (delta rules)", None),
    (None, r"$\delta_k \equiv \frac{\partial E}{\partial a_k} = y - t$        (identity output unit)"),
    (None, r"$\delta_j = \sigma'(a_j) \sum_k w_{kj}\, \delta_k = z_j\,(1 - z_j) \sum_k w_{kj}\, \delta_k$"
           r"        (logistic hidden unit)"),
    (None, r"$\frac{\partial E}{\partial w_{ji}} = \delta_j\, z_i, \qquad"
           r"\frac{\partial E}{\partial w_{j0}} = \delta_j$        (every layer)"),
    ("Checks", None),
    (None, r"$g^{\mathrm{FD}}_{ji} = \frac{E(w_{ji} + \epsilon) - E(w_{ji} - \epsilon)}{2\,\epsilon},"
           r"\qquad \mathrm{rel.\,err} = \frac{|g - g^{\mathrm{ref}}|}{\max(|g|,\, |g^{\mathrm{ref}}|,\, 10^{-8})}$"),
]


def plot_formulas():
    fig = plt.figure(figsize=(8.0, 4.6))
    y = 0.95
    for heading, formula in FORMULAS:
        if heading:
            fig.text(0.03, y, heading, fontsize=13, fontweight="bold", va="top")
            y -= 0.085
        else:
            fig.text(0.06, y, formula, fontsize=13, va="top")
            y -= 0.115
    fig.text(0.03, 1.04, "Q3: backpropagation for logistic hidden units and an identity output",
             fontsize=13, va="top")
    return fig


def plot_network(sizes: list[int]):
    """Units as circles, weights as lines; the arrow shows the deltas flowing back."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    xs = np.linspace(0.0, 1.0, len(sizes))
    pos = []
    for x, n in zip(xs, sizes):
        ys = np.linspace(0.5 - 0.09 * (n - 1), 0.5 + 0.09 * (n - 1), n) if n > 1 else np.array([0.5])
        pos.append([(x, y) for y in ys])
    for left, right in zip(pos[:-1], pos[1:]):
        for a in left:
            for b in right:
                ax.plot([a[0], b[0]], [a[1], b[1]], color="grey", lw=0.7, zorder=1)
    names = ["input $x$", *[f"hidden {l}\nlogistic $\\sigma$" for l in range(1, len(sizes) - 1)],
             "output $y$\nidentity"]
    for l, (layer, name) in enumerate(zip(pos, names)):
        for i, (x, y) in enumerate(layer):
            color = "#c6dbef" if l == 0 else "#fdd0a2" if l == len(sizes) - 1 else "#dadaeb"
            ax.add_patch(plt.Circle((x, y), 0.035, facecolor=color, edgecolor="k", zorder=2))
            if l == 0:
                ax.text(x, y, f"$x_{i + 1}$", ha="center", va="center", fontsize=10, zorder=3)
        ax.text(layer[0][0], min(y for _, y in layer) - 0.09, name, ha="center", va="top", fontsize=9)
    ax.annotate("", xy=(0.15, 0.93), xytext=(0.85, 0.93),
                arrowprops=dict(arrowstyle="->", color="tab:red", lw=1.5))
    ax.text(0.5, 0.95, r"deltas $\delta$ flow backwards", color="tab:red", ha="center", va="bottom")
    ax.set(xlim=(-0.1, 1.1), ylim=(0.0, 1.05), aspect="equal")
    ax.axis("off")
    ax.set_title(f"Q3: the network checked ({' - '.join(map(str, sizes))} units)")
    return fig


def plot_fd_sweep(numbers: dict):
    fig, ax = plt.subplots(figsize=FIGSIZE)
    steps = [row["step"] for row in numbers["fd_sweep"]]
    errs = [max(row["max_rel_err"], 1e-17) for row in numbers["fd_sweep"]]
    ax.loglog(steps, errs, "o-", color="tab:blue", label="central differences vs. backprop")
    ax.axvline(numbers["fd_step"], color="tab:green", ls="--", label=f"step used: {numbers['fd_step']:g}")
    ax.axhline(max(numbers["max_rel_err_autograd"], 1e-17), color="tab:orange", ls=":",
               label="autograd vs. backprop")
    ax.axhline(numbers["tolerance"], color="grey", lw=0.8, label=f"tolerance {numbers['tolerance']:g}")
    ax.set(xlabel=r"finite-difference step $\epsilon$", ylabel="largest relative error over all weights",
           title="Q3: gradient check error against the step size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    return fig


def write_q3(numbers_path, formulas_path, network_path, fd_error_path, *, hidden=HIDDEN, n_examples: int = N_EXAMPLES,
             init_std: float = INIT_STD, fd_step: float = FD_STEP, seed: int = SEED) -> dict:
    """Run the gradient check, write its JSON and three figures; return the numbers."""
    numbers = q3_numbers(hidden, n_examples, init_std, fd_step, seed)
    save_figure(plot_formulas(), formulas_path)
    save_figure(plot_network(numbers["sizes"]), network_path)
    save_figure(plot_fd_sweep(numbers), fd_error_path)
    write_json(numbers_path, numbers)
    return numbers
