"""Q4: vanishing gradients (sigmoid vs. ReLU in a deep MLP) and dead ReLUs."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ._output import FIGSIZE, WIDE_FIGSIZE, plt, save_figure, write_json

DTYPE = torch.float64  # tiny gradients (~0.25^20) stay far from float32's limits anyway; exactness is cheap here
X_RANGE = 6.0  # the activation plot shows a in [-X_RANGE, X_RANGE]
# The deep MLP: DEPTH hidden layers (Linear + activation) of WIDTH units, then a Linear output layer, differentiated
# on a batch of BATCH examples, REPEATS times from seeds SEED, SEED + 1, ...
DEPTH = 20
WIDTH = 64
BATCH = 256
REPEATS = 5
SEED = 0
# Weight initialisation per activation: xavier is Glorot-normal (var 2/(fan_in+fan_out)), kaiming is He-normal
# (var 2/fan_in). Biases start at 0.
INIT = {"sigmoid": "xavier", "relu": "kaiming"}
# The dead-ReLU network (`dead_relu_numbers`): one network per bias shift of its first hidden layer (0 is the
# control), trained with full-batch SGD on one fixed batch.
DEAD_RELU = {"in_features": 10, "width": 64, "n_samples": 256, "bias_shifts": (0.0, -1.0, -1.5, -5.0), "lr": 0.1,
             "steps": 300, "seed": 0}


def sigmoid_derivative(a: np.ndarray) -> np.ndarray:
    s = 1.0 / (1.0 + np.exp(-a))
    return s * (1.0 - s)


def relu_derivative(a: np.ndarray) -> np.ndarray:
    # The derivative at exactly 0 is a convention; PyTorch uses 0.
    return (np.asarray(a) > 0).astype(float)


def activation_numbers(x_range: float, n: int = 200001) -> dict:
    a = np.linspace(-x_range, x_range, n)  # odd n: a = 0 is on the grid
    d = sigmoid_derivative(a)
    i = int(np.argmax(d))
    return {"sigmoid_derivative_max": float(d[i]), "sigmoid_derivative_argmax": float(a[i]),
            "sigmoid_derivative_at_range": float(sigmoid_derivative(np.array(x_range))),
            "sigmoid_derivative_at_2": float(sigmoid_derivative(np.array(2.0))),
            "sigmoid_derivative_at_4": float(sigmoid_derivative(np.array(4.0))), "relu_derivative_negative": 0.0,
            "relu_derivative_positive": 1.0, "x_range": float(x_range)}


def deep_mlp(depth: int, width: int, activation: str, init: str, generator: torch.Generator) -> nn.Sequential:
    """`depth` hidden (Linear + activation) layers of `width` units, then a Linear to 1 output."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width, dtype=DTYPE), nn.Sigmoid() if activation == "sigmoid" else nn.ReLU()]
    layers.append(nn.Linear(width, 1, dtype=DTYPE))
    for module in layers:
        if isinstance(module, nn.Linear):
            _initialise(module, init, generator)
    return nn.Sequential(*layers)


def _initialise(linear: nn.Linear, init: str, generator: torch.Generator) -> None:
    fan_out, fan_in = linear.weight.shape
    with torch.no_grad():
        if init == "xavier":  # Glorot normal: var 2 / (fan_in + fan_out)
            std = (2.0 / (fan_in + fan_out)) ** 0.5
        elif init == "kaiming":  # He normal: var 2 / fan_in, keeps ReLU signals at scale
            std = (2.0 / fan_in) ** 0.5
        elif init == "default":  # nn.Linear's own: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            bound = 1.0 / fan_in**0.5
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)
            return
        else:
            raise ValueError(f"unknown init {init!r}")
        linear.weight.normal_(0.0, std, generator=generator)
        linear.bias.zero_()


def layer_gradients(depth: int, width: int, batch: int, activation: str, init: str, seed: int) -> dict:
    """Gradient norms at initialisation, per Linear layer (1 = next to the input).

    Loss: 1/2 mean (y - t)^2 on a batch of standard-normal inputs and targets.
    """
    gen = torch.Generator().manual_seed(seed)
    model = deep_mlp(depth, width, activation, init, gen)
    x = torch.randn(batch, width, generator=gen, dtype=DTYPE)
    t = torch.randn(batch, 1, generator=gen, dtype=DTYPE)
    pre = []  # pre-activations a_l, to read dL/da_l (the deltas)
    h = x
    for module in model:
        h = module(h)
        if isinstance(module, nn.Linear) and len(pre) < depth:
            h.retain_grad()
            pre.append(h)
    loss = 0.5 * ((h - t) ** 2).mean()
    loss.backward()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    return {
        "weight_grad_norms": [float(m.weight.grad.norm()) for m in linears],
        "delta_norms": [float(a.grad.norm()) for a in pre],
        "mean_derivative": float(np.mean([
            (torch.sigmoid(a) * (1 - torch.sigmoid(a))).mean().item() if activation == "sigmoid"
            else (a > 0).to(DTYPE).mean().item() for a in pre])),
    }


def shrink_factor(norms: list[float]) -> float | None:
    """Geometric-mean factor by which a norm changes per layer toward the input:
    exp of minus the least-squares slope of log(norm) against the layer index.

    None where there is no such factor: fewer than two layers (depth 2 leaves one hidden layer to fit), or a norm
    that is exactly 0 (every unit of a layer dead, or a gradient below the smallest float) and has no logarithm."""
    norms = np.asarray(norms, float)
    if len(norms) < 2 or not np.all(np.isfinite(norms) & (norms > 0)):
        return None
    slope = np.polyfit(np.arange(len(norms)), np.log(norms), 1)[0]
    factor = float(np.exp(-slope))
    return factor if math.isfinite(factor) else None  # a slope beyond exp's range: no finite factor either


def _ratio(first: float, last: float) -> float | None:
    """first / last, None where it is no finite number (a last norm of exactly 0)."""
    ratio = first / last if last else math.inf
    return float(ratio) if math.isfinite(ratio) else None


def vanishing_numbers(depth: int, width: int, batch: int, repeats: int, init: dict, seed: int) -> dict:
    out = {}
    for activation in ("sigmoid", "relu"):
        runs = [layer_gradients(depth, width, batch, activation, init[activation], seed + r) for r in range(repeats)]
        weight = np.array([r["weight_grad_norms"] for r in runs])
        delta = np.array([r["delta_norms"] for r in runs])
        # Geometric means over repeats: the norms span orders of magnitude (a norm of 0 in any repeat gives 0).
        with np.errstate(divide="ignore"):
            weight_gm = np.exp(np.log(weight).mean(axis=0))
            delta_gm = np.exp(np.log(delta).mean(axis=0))
        hidden = weight_gm[1:depth]  # hidden layers 2..depth: all see sigmoid/ReLU outputs as inputs
        out[activation] = {"init": init[activation], "weight_grad_norms": weight_gm.tolist(),
                           "weight_grad_norms_runs": weight.tolist(), "delta_norms": delta_gm.tolist(),
                           "shrink_factor_per_layer": shrink_factor(hidden.tolist()),
                           "delta_shrink_factor_per_layer": shrink_factor(delta_gm.tolist()),
                           "first_over_last_hidden": _ratio(weight_gm[0], weight_gm[depth - 1]),
                           # layers whose gradient is exactly 0: dead ReLUs, or a sigmoid gradient below 1e-308
                           "zero_gradient_layers": int(np.sum(weight_gm == 0)),
                           "mean_derivative": float(np.mean([r["mean_derivative"] for r in runs]))}
    return out


def dead_relu_net(in_features: int, width: int, shift: float, generator: torch.Generator) -> nn.Sequential:
    model = nn.Sequential(
        nn.Linear(in_features, width, dtype=DTYPE), nn.ReLU(),
        nn.Linear(width, width, dtype=DTYPE), nn.ReLU(),
        nn.Linear(width, 1, dtype=DTYPE),
    )
    for module in model:
        if isinstance(module, nn.Linear):
            _initialise(module, "default", generator)
    with torch.no_grad():
        model[0].bias.fill_(shift)  # the push: every unit of hidden layer 1 gets this bias
    return model


def _layer1_state(model: nn.Sequential, x: torch.Tensor, t: torch.Tensor) -> dict:
    """Zero outputs of hidden layer 1 over the batch, and the gradient its units receive."""
    model.zero_grad()
    out1 = model[1](model[0](x))
    loss = 0.5 * ((model[4](model[3](model[2](out1))) - t) ** 2).mean()
    loss.backward()
    zero = out1 == 0
    dead = zero.all(dim=0)  # zero on every example of the batch
    grad = torch.cat([model[0].weight.grad, model[0].bias.grad[:, None]], dim=1)  # per unit: weights, bias
    return {"loss": float(loss.detach()), "zero_output_fraction": float(zero.to(DTYPE).mean()),
            "dead_unit_fraction": float(dead.to(DTYPE).mean()), "dead_units": int(dead.sum()),
            "dead_max_abs_grad": float(grad[dead].abs().max()) if dead.any() else None,
            "alive_max_abs_grad": float(grad[~dead].abs().max()) if (~dead).any() else None, "_dead_mask": dead}


def _finite(loss: torch.Tensor, model: nn.Module) -> bool:
    """Whether a loss, every parameter and every gradient are finite numbers."""
    tensors = [loss, *(p for p in model.parameters()), *(p.grad for p in model.parameters() if p.grad is not None)]
    return all(bool(torch.isfinite(tensor).all()) for tensor in tensors)


def dead_relu_numbers(in_features: int, width: int, n_samples: int, bias_shifts: list[float],
                      lr: float, steps: int, seed: int) -> dict:
    """For each shift: layer-1 state before and after `steps` full-batch SGD steps.

    The batch is the whole training set, so "zero on every example of the batch" means the
    unit receives exactly zero gradient at every step; it cannot come back.

    A learning rate too large for a shift makes SGD diverge: the step after which the loss, a weight or a
    gradient is no finite number is `diverged_at_step`, training stops there, and "after" is the network of the
    step before (every number finite). None where training ran all its steps.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n_samples, in_features, generator=gen, dtype=DTYPE)
    u = torch.randn(in_features, generator=gen, dtype=DTYPE) / in_features**0.5
    t = (torch.sin(2 * x @ u) + 0.5 * x[:, 0] ** 2)[:, None]  # a smooth non-linear target
    rows = []
    for shift in bias_shifts:
        model = dead_relu_net(in_features, width, shift, torch.Generator().manual_seed(seed + 1))
        before = _layer1_state(model, x, t)
        w0 = torch.cat([model[0].weight, model[0].bias[:, None]], dim=1).detach().clone()
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        losses, diverged_at = [before["loss"]], None
        opt.zero_grad()
        loss = 0.5 * ((model(x) - t) ** 2).mean()
        loss.backward()  # the gradient at the start; each step below uses the one at its own start
        for step in range(1, steps + 1):
            kept = [p.detach().clone() for p in model.parameters()]
            opt.step()
            opt.zero_grad()
            loss = 0.5 * ((model(x) - t) ** 2).mean()
            loss.backward()
            if not _finite(loss, model):  # diverged: back to the last finite network, and stop
                with torch.no_grad():
                    for p, value in zip(model.parameters(), kept):
                        p.copy_(value)
                diverged_at = step
                break
            losses.append(float(loss.detach()))
        after = _layer1_state(model, x, t)
        w1 = torch.cat([model[0].weight, model[0].bias[:, None]], dim=1).detach()
        dead_before = before.pop("_dead_mask")
        dead_after = after.pop("_dead_mask")
        change = (w1 - w0).abs().max(dim=1).values
        rows.append({
            "shift": float(shift),
            "before": before,
            "after": after,
            "revived_units": int((dead_before & ~dead_after).sum()),
            "dead_units_max_param_change": float(change[dead_before].max()) if dead_before.any() else None,
            "alive_units_max_param_change": float(change[~dead_before].max()) if (~dead_before).any() else None,
            "losses": losses,
            "steps_run": len(losses) - 1,
            "diverged_at_step": diverged_at,
        })
    return {"in_features": in_features, "width": width, "n_samples": n_samples, "lr": lr, "steps": steps,
            "layer": 1, "target": "sin(2 x.u) + x_1^2 / 2", "rows": rows,
            # The best a network with a dead layer can do: predict the mean target.
            "constant_prediction_loss": float(0.5 * ((t - t.mean()) ** 2).mean())}


def plot_activations(x_range: float):
    a = np.linspace(-x_range, x_range, 1001)
    fig, (left, right) = plt.subplots(1, 2, figsize=WIDE_FIGSIZE)
    left.plot(a, 1 / (1 + np.exp(-a)), lw=2, label=r"$\sigma(a)$")
    left.plot(a, sigmoid_derivative(a), lw=2, ls="--", label=r"$\sigma'(a) = \sigma(a)(1-\sigma(a))$")
    left.plot([0], [0.25], "o", color="tab:red", label=r"max $\sigma'(0) = 0.25$")
    left.set_title("sigmoid")
    right.plot(a, np.maximum(a, 0), lw=2, label=r"ReLU$(a) = \max(0, a)$")
    right.plot(a, relu_derivative(a), lw=2, ls="--", label="ReLU$'(a)$ (0 or 1)")
    right.set_title("ReLU")
    for ax in (left, right):
        ax.set(xlabel="pre-activation $a$", ylabel="value")
        ax.axhline(0, color="grey", lw=0.6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9, loc="upper left")
    right.set_ylim(-0.3, min(x_range, 6.0) + 0.3)
    fig.suptitle("Q4: activations and their derivatives")
    fig.tight_layout()
    return fig


def plot_gradient_norms(vanishing: dict, depth: int):
    fig, ax = plt.subplots(figsize=FIGSIZE)
    layers = np.arange(1, depth + 2)
    for activation, color in (("sigmoid", "tab:blue"), ("relu", "tab:orange")):
        v = vanishing[activation]
        for run in v["weight_grad_norms_runs"]:
            ax.semilogy(layers, run, color=color, alpha=0.2, lw=0.8)
        factor = v["shrink_factor_per_layer"]
        ax.semilogy(layers, v["weight_grad_norms"], "o-", color=color, ms=4,
                    label=f"{'sigmoid' if activation == 'sigmoid' else 'ReLU'} ({v['init']} init): "
                          + (f"x{factor:.3g} per layer" if factor is not None else "no factor per layer"))
    ax.set(xlabel="layer (1 = next to the input, last = output layer)",
           ylabel=r"$\|\partial E / \partial W_l\|_F$ at initialisation",
           title=f"Q4: gradient norm per layer, {depth}-hidden-layer MLP")
    ax.set_xticks(layers[::2] if depth > 12 else layers)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    return fig


def plot_dead_relu(dead: dict):
    fig, (left, right) = plt.subplots(1, 2, figsize=WIDE_FIGSIZE)
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.85, len(dead["rows"])))
    for row, color in zip(dead["rows"], colors):
        left.semilogy(row["losses"], color=color, lw=2, label=f"bias {row['shift']:g}")
    left.set(xlabel="SGD step (full batch)", ylabel="training loss $E$", title="loss while training")
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=9)
    idx = np.arange(len(dead["rows"]))
    bars = (("zero_output_fraction", "before", -0.3, "#f4a582", None, "zero outputs, before"),
            ("zero_output_fraction", "after", -0.1, "#d9d9d9", None, "zero outputs, after"),
            ("dead_unit_fraction", "before", 0.1, "tab:red", "//", "dead units, before"),
            ("dead_unit_fraction", "after", 0.3, "dimgray", "//", "dead units, after"))
    for key, when, offset, color, hatch, label in bars:
        right.bar(idx + offset, [r[when][key] for r in dead["rows"]], 0.2, color=color, hatch=hatch,
                  edgecolor="k", linewidth=0.5, label=label)
    right.set_xticks(idx, [f"bias {r['shift']:g}" for r in dead["rows"]])
    right.set_ylim(0, 1.35)
    right.set_yticks(np.linspace(0, 1, 6))
    right.set_ylabel("fraction in hidden layer 1")
    right.set_title(f"zero outputs and dead units (before / after {dead['steps']} steps)", fontsize=10)
    right.legend(fontsize=8, loc="upper left", ncol=2)
    fig.suptitle("Q4: a ReLU layer pushed to a negative bias")
    fig.tight_layout()
    return fig


def write_q4(numbers_path, activations_path, gradient_norms_path, dead_relu_path, *,
             x_range: float = X_RANGE, depth: int = DEPTH, width: int = WIDTH, batch: int = BATCH,
             repeats: int = REPEATS, init: dict = INIT, seed: int = SEED, dead_relu: dict = DEAD_RELU) -> dict:
    """Measure Q4, write its JSON and three figures; return the numbers."""
    numbers = {"activations": activation_numbers(x_range),
               "depth": depth, "width": width, "batch": batch, "repeats": repeats, "seed": seed,
               "vanishing": vanishing_numbers(depth, width, batch, repeats, init, seed),
               "dead_relu": dead_relu_numbers(**dead_relu)}
    save_figure(plot_activations(x_range), activations_path)
    save_figure(plot_gradient_norms(numbers["vanishing"], depth), gradient_norms_path)
    save_figure(plot_dead_relu(numbers["dead_relu"]), dead_relu_path)
    write_json(numbers_path, numbers)
    return numbers
