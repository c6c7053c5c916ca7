"""Theory settings inside the schema's ranges never fail at run time: each either runs with finite numbers (a limit
reached is said in the numbers: no separator line, no factor per layer, SGD diverged at step k) or is refused with
the config, naming its keys (cmpt726.config.check_theory)."""

from __future__ import annotations

import math

import pytest
import yaml

from cmpt726 import specs
from cmpt726.config import THEORY_SCHEMA_PATH, ConfigError, theory_settings
from cmpt726.theory import QUESTIONS, write_question
from conftest import REPO

TINY = 5e-324  # the smallest positive float: what an exclusive minimum of 0 lets through


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def nested(key: str, value) -> dict:
    """{"a": {"b": value}} for "a.b"."""
    out = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def non_finite(value, where: str = "") -> list[str]:
    """Where `value` holds NaN or an infinity."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [where]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return [w for key, item in items for w in non_finite(item, f"{where}.{key}")]


def runs_or_is_refused(question: str, override: dict, tmp_path) -> dict | str:
    """The numbers of `question` with `override` (finite, every file written), or the refusal's message, which
    must name a key of that question."""
    try:
        settings = theory_settings({question: override})[question]
    except ConfigError as error:
        assert f"theory.{question}." in str(error), error
        return str(error)
    outputs = {name: str(tmp_path / f"{name}.{'json' if name == 'numbers' else 'png'}")
               for name in ("numbers", *QUESTIONS[question].figures)}
    numbers = write_question(question, outputs, settings)
    assert non_finite(numbers) == []
    assert all((tmp_path / f"{name}.png").stat().st_size > 0 for name in QUESTIONS[question].figures)
    return numbers


# --------------------------------------------------------------------------- what the probes found
def test_q4_one_hidden_layer_to_fit_has_no_factor_per_layer(tmp_path):
    """depth 2 leaves hidden layer 2 alone for the fit (an SVD that did not converge)."""
    numbers = runs_or_is_refused("q4", {"depth": 2, "repeats": 1, "dead_relu": {"steps": 5}}, tmp_path)
    for activation in ("sigmoid", "relu"):
        assert numbers["vanishing"][activation]["shrink_factor_per_layer"] is None


def test_q4_a_layer_with_no_gradient_has_no_factor_per_layer(tmp_path):
    """Two ReLU units a layer die: gradients of exactly 0 have no logarithm (NaN in numbers.json)."""
    numbers = runs_or_is_refused("q4", {"width": 2, "dead_relu": {"steps": 5}}, tmp_path)
    relu = numbers["vanishing"]["relu"]
    assert relu["zero_gradient_layers"] > 0 and relu["shrink_factor_per_layer"] is None
    assert relu["first_over_last_hidden"] is None


def test_q4_sgd_that_diverges_stops_at_the_step_and_says_so(tmp_path):
    """Learning rate 10 on a bias of 1000: the loss overflowed (inf in numbers.json)."""
    numbers = runs_or_is_refused("q4", {"depth": 2, "repeats": 1,
                                        "dead_relu": {"lr": 10, "bias_shifts": [1000], "steps": 200}}, tmp_path)
    (row,) = numbers["dead_relu"]["rows"]
    assert row["diverged_at_step"] is not None and row["steps_run"] == row["diverged_at_step"] - 1
    assert len(row["losses"]) == row["steps_run"] + 1 and row["after"]["loss"] == row["losses"][-1]


def test_q4_sgd_that_converges_runs_every_step_unchanged():
    from cmpt726.theory import q4_vanishing as q4

    numbers = q4.dead_relu_numbers(in_features=4, width=8, n_samples=16, bias_shifts=[0.0], lr=0.1, steps=30, seed=0)
    (row,) = numbers["rows"]
    assert row["diverged_at_step"] is None and len(row["losses"]) == 31 and row["after"]["loss"] == row["losses"][-1]


@pytest.mark.parametrize("override", [
    {"etas": [TINY]},  # w2 stays 0 at every step: no line x2 = m x1 + b to draw (an empty index)
    {"generated": {"means": [[-1000, -1000], [1000, 1000]]}},  # saturated at once: the gradient is exactly 0
    {"etas": [100], "max_iter": 1, "w0": [0, 0, 0]},
])
def test_q5_no_separator_line_is_drawn_as_none(override, tmp_path):
    numbers = runs_or_is_refused("q5", override, tmp_path)
    assert isinstance(numbers, dict)


def test_q5_sgd_keeps_a_bounded_trace_however_long_it_runs():
    from cmpt726.theory import q5_logreg as q5

    data = q5.generate_data(**theory_settings({})["q5"]["generated"])
    run = q5.sgd(data[:, :3], data[:, 3], 0.01, [0.1, 0, 0], 0.0, 2000, "permutation", 0)
    assert run["updates"] == 2000 * len(data) and run["trace_steps"][-1] == run["updates"]
    assert len(run["trace"]) == len(run["trace_steps"]) <= len(data) + 1 + q5.TRACE_POINTS
    assert list(run["trace_steps"][:len(data) + 1]) == list(range(len(data) + 1))  # the first epoch, update by update
    # a large data set: the first epoch is sampled too, so the plot's NLL over the whole set stays affordable
    steps = q5.trace_steps(100_000, 100_000 * 500)
    assert len(steps) <= 2 * q5.TRACE_POINTS + 1 and steps[0] == 0 and 100_000 in steps


@pytest.mark.parametrize("question, override, keys", [
    ("q5", {"generated": {"cov": [[1, 1], [1, 1]]}}, ["theory.q5.generated.cov"]),
    ("q5", {"generated": {"cov": [[1, 0.5], [0, 1]]}}, ["theory.q5.generated.cov"]),
    ("q5", {"generated": {"cov": [[-1, 0], [0, 1]]}}, ["theory.q5.generated.cov"]),
    ("q5", {"generated": {"n_per_class": 100000}}, ["theory.q5.max_iter", "theory.q5.generated.n_per_class"]),
    ("q5", {"etas": [0.1] * 10, "max_iter": 100000}, ["theory.q5.max_iter", "theory.q5.etas"]),
    ("q3", {"hidden": [64] * 6, "n_examples": 100}, ["theory.q3.hidden", "theory.q3.n_examples"]),
    ("q4", {"depth": 200, "width": 2048}, ["theory.q4.depth", "theory.q4.width"]),
    ("q4", {"batch": 8192, "width": 2048}, ["theory.q4.batch", "theory.q4.width"]),
    ("q4", {"dead_relu": {"steps": 100000, "bias_shifts": [0.0] * 10, "width": 1, "n_samples": 1}},
     ["theory.q4.dead_relu.steps", "theory.q4.dead_relu.bias_shifts"]),
    ("q4", {"dead_relu": {"n_samples": 100000, "width": 1024, "steps": 1}}, ["theory.q4.dead_relu.n_samples"]),
])
def test_settings_past_a_limit_are_refused_with_the_config_naming_the_keys(question, override, keys):
    with pytest.raises(ConfigError) as error:
        theory_settings({question: override})
    assert all(key in str(error.value) for key in keys), error.value
    config = yaml.safe_load((REPO / "config.yaml").read_text())  # the Snakefile's one pass says the same
    config["theory"] = {question: override}
    with pytest.raises(ConfigError, match=keys[0].replace(".", r"\.")):
        specs.load(config)


def test_a_q5_data_file_too_long_for_max_iter_is_refused_before_any_update(tmp_path):
    from cmpt726.theory import q5_logreg as q5

    data = tmp_path / "data.txt"
    data.write_text("".join(f"{i % 7} {i % 5} 1 {i % 2}\n" for i in range(300)))
    settings = theory_settings({"q5": {"data": str(data), "max_iter": 100000}})["q5"]
    outputs = {f"{name}_path": str(tmp_path / name) for name in ("numbers", *QUESTIONS["q5"].figures)}
    with pytest.raises(ValueError, match=r"theory\.q5\.max_iter, theory\.q5\.etas and theory\.q5\.data: 5 "
                                         r"learning rates x 300 rows"):
        q5.write_q5(**outputs, **settings)
    assert list(tmp_path.iterdir()) == [data]


# --------------------------------------------------------------------------- every corner of the schema
def _corners(schema: dict, key: str = ""):
    """(dotted key, value) at the ends of every numeric range of the schema (an array's items: all at one end)."""
    if schema.get("type") == "object":
        for name, sub in schema.get("properties", {}).items():
            yield from _corners(sub, f"{key}.{name}" if key else name)
        return
    if schema.get("type") == "array":
        items = schema["items"]
        if items.get("type") in ("number", "integer"):
            default = schema["default"]
            for end in _ends(items):
                yield key, [end] * len(default)
            for size in {schema.get("minItems", 1), schema.get("maxItems", len(default))}:
                yield key, (default * size)[:size]
        elif items.get("type") == "array":  # q5 means and cov: every entry at one end
            for end in _ends(items["items"]):
                yield key, [[end] * len(row) for row in schema["default"]]
        return
    if schema.get("type") in ("number", "integer"):
        for end in _ends(schema):
            yield key, end


def _ends(schema: dict) -> list:
    low = schema.get("minimum", TINY if "exclusiveMinimum" in schema else None)
    high = schema.get("maximum", 2**63 - 1 if schema.get("type") == "integer" else None)
    return [end for end in (low, high) if end is not None]


CORNERS = sorted({(k.split(".", 1)[0], k.split(".", 1)[1], repr(v))
                  for k, v in _corners(yaml.safe_load(THEORY_SCHEMA_PATH.read_text()))})
# Extremes together: the largest steps with the most iterations, the smallest grids, the deepest narrow nets.
COMBINATIONS = [
    ("q1", {"extent": 100, "grid": 50, "ray_length": 100, "far": 1000}),
    ("q1", {"extent": 0.5, "grid": 2000, "ray_length": TINY, "far": 1}),
    ("q2", {"extent": 100, "grid": 20, "n_angles": 3}),
    ("q3", {"hidden": [64] * 6, "n_examples": 1, "init_std": 10, "fd_step": 1e-9}),
    ("q3", {"hidden": [1] * 6, "init_std": TINY, "fd_step": 1e-2}),
    ("q4", {"depth": 200, "width": 2, "init": {"sigmoid": "default", "relu": "default"}}),
    ("q4", {"depth": 200, "batch": 1, "repeats": 1}),
    ("q4", {"dead_relu": {"lr": 10, "bias_shifts": [1000, -1000], "steps": 1000}}),
    ("q4", {"dead_relu": {"width": 1, "in_features": 1, "n_samples": 1, "lr": 10}}),
    ("q5", {"etas": [100] * 10, "tol": TINY, "max_iter": 100000}),
    ("q5", {"etas": [100], "w0": [1000, 1000, 1000],
            "generated": {"means": [[-1000, -1000], [1000, 1000]], "cov": [[TINY, 0], [0, TINY]]}}),
    ("q5", {"etas": [TINY], "max_iter": 1, "generated": {"n_per_class": 2}}),
    ("q5", {"generated": {"cov": [[1000, 0], [0, 1000]], "n_per_class": 50000}, "max_iter": 100, "etas": [0.01]}),
    ("q5", {"generated": {"cov": [[1000, 999.999999], [999.999999, 1000]]}}),  # all but singular
]


@pytest.mark.slow
@pytest.mark.parametrize("question, key, value", CORNERS, ids=[f"{q}.{k}={v[:20]}" for q, k, v in CORNERS])
def test_every_end_of_every_range_runs_or_is_refused(question, key, value, tmp_path):
    runs_or_is_refused(question, nested(key, eval(value)), tmp_path)  # noqa: S307 (our own repr of numbers)


@pytest.mark.slow
@pytest.mark.parametrize("question, override", COMBINATIONS, ids=[f"{q}-{i}" for i, (q, _) in enumerate(COMBINATIONS)])
def test_extremes_together_run_or_are_refused(question, override, tmp_path):
    runs_or_is_refused(question, override, tmp_path)


def test_the_corner_list_covers_every_numeric_key():
    """A numeric key added to the schema joins the sweep by itself."""
    keys = {f"{q}.{k}" for q, k, _ in CORNERS}
    assert {"q1.far", "q3.fd_step", "q4.dead_relu.lr", "q5.generated.cov", "q5.etas", "q5.max_iter"} <= keys
    assert len(CORNERS) > 60
