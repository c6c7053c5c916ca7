"""Theory questions 1-5: exact values where they exist, behaviour where they don't."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from cmpt726.theory import FIGURE_LABELS, QUESTIONS, write_question
from cmpt726.theory import q1_softmax as q1, q2_glm as q2, q3_backprop as q3, q4_vanishing as q4, q5_logreg as q5

REPO = Path(__file__).resolve().parents[1]
COURSE_DATA = REPO.parent / "shared/data/logreg/data.txt"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- the package
def test_package_init_does_not_import_torch_or_matplotlib():
    code = ("import sys; sys.path.insert(0, 'workflow'); import cmpt726.theory as t; "
            "assert len(t.QUESTIONS) == 5; "
            "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# --- Q1
def test_q1_triple_point_is_exact_and_probabilities_are_a_third():
    x1, x2 = q1.triple_point_exact()
    # The question's own formulas in exact arithmetic; by hand x1 - x2 = 1/2, 6 x1 - x2/2 = 1.
    assert 3 * x1 + x2 + 1 == x1 + 3 * x2 + 2 == -3 * x1 + Fraction(3, 2) * x2 + 2
    assert (x1, x2) == (Fraction(3, 22), Fraction(-4, 11))
    numbers = q1.q1_numbers(far=20.0)
    assert numbers["point_exact"] == ["3/22", "-4/11"]
    np.testing.assert_allclose(numbers["probabilities_at_point"], [1 / 3] * 3, rtol=0, atol=1e-15)


def test_q1_boundary_rays_tie_and_tend_to_a_half_and_each_region_is_its_class():
    numbers = q1.q1_numbers(far=30.0)
    point = np.array(numbers["point"])
    assert len(numbers["boundaries"]) == 3
    for b in numbers["boundaries"]:
        (i, j), k = (c - 1 for c in b["classes"]), b["other"] - 1
        a = q1.activations(point + 2.0 * np.array(b["direction"]))
        assert a[i] == pytest.approx(a[j], abs=1e-12) and a[i] > a[k]  # the tied two are the largest: a boundary
        p = np.array(b["probabilities_far"])
        assert p[i] == pytest.approx(0.5, abs=1e-12) and p[j] == pytest.approx(0.5, abs=1e-12) and p[k] < 1e-12
    for r in numbers["regions"]:  # deep inside each region its class wins
        k = r["class"] - 1
        assert np.argmax(q1.activations(point + 1.0 * np.array(r["direction"]))) == k
        assert r["probabilities_far"][k] > 1 - 1e-12 and 0 < r["distance_to_p99"] < 30.0


# --- Q2
def test_q2_boundary_is_the_unit_circle():
    numbers = q2.q2_numbers(n_angles=90, extent=2.0, grid=101)
    assert numbers["closed_form"]["radius"] == 1.0  # 6 + 2 r^2 = 8: r = 1, centred at the origin
    numeric = numbers["numeric"]
    for radius in (numeric["radius_min"], numeric["radius_max"], numeric["circle_fit"]["radius"]):
        assert radius == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(numeric["circle_fit"]["center"], [0, 0], atol=1e-12)
    y1, y2 = q2.outputs(0.0, 0.0)
    assert y2 > y1 and numbers["class_inside"] == 2
    y1, y2 = q2.outputs(1.5, 0.0)
    assert y1 > y2 and numbers["class_outside"] == 1


# --- Q3
@pytest.mark.parametrize("hidden", [[4, 3], [5, 2, 3]])
def test_q3_backprop_agrees_with_autograd_and_finite_differences(hidden):
    numbers = q3.q3_numbers(hidden, n_examples=3, init_std=1.0, fd_step=1e-4, seed=1)
    assert numbers["n_params"] == sum((a + 1) * b for a, b in zip(numbers["sizes"][:-1], numbers["sizes"][1:]))
    for row in numbers["layers"]:
        assert row["max_rel_err_autograd"] < 1e-10 and row["max_rel_err_fd"] < 1e-6, row
    # What the report concludes, computed here (the template only prints it).
    assert numbers["fd_best"]["max_rel_err"] == min(r["max_rel_err"] for r in numbers["fd_sweep"])
    deltas = numbers["example"]["deltas"]
    assert numbers["example"]["hidden_smaller"] == (max(map(abs, deltas[0])) < max(map(abs, deltas[-1])))


def test_q3_check_detects_a_wrong_delta_rule():
    """The comparison can fail: sigma instead of sigma' in the hidden deltas is caught."""
    rng = np.random.default_rng(0)
    params = q3.init_params([4, 3], 1.0, rng)
    x, t = rng.normal(size=3), 0.3
    _, zs = q3.forward(params, x)
    wrong = zs[2] * (params[2]["W"].T @ (zs[-1] - t))  # missing the (1 - z) factor
    assert q3.relative_error(np.outer(wrong, zs[1]), q3.autograd_grads(params, x, t)[1]["W"]).max() > 1e-3


# --- Q4
def test_q4_sigmoid_derivative_peaks_at_a_quarter():
    numbers = q4.activation_numbers(6.0)
    assert numbers["sigmoid_derivative_max"] == pytest.approx(0.25, abs=1e-15)
    assert numbers["sigmoid_derivative_argmax"] == 0.0
    np.testing.assert_array_equal(q4.relu_derivative(np.array([-2.0, -1e-9, 1e-9, 3.0])), [0, 0, 1, 1])


def test_q4_gradients_vanish_with_sigmoid_not_with_relu():
    v = q4.vanishing_numbers(depth=10, width=32, batch=64, repeats=2, init={"sigmoid": "xavier", "relu": "kaiming"},
                             seed=0)
    # Unit-gain weights: the sigmoid's backward factor is at most sigma' <= 0.25 per layer; He init keeps scale.
    assert v["sigmoid"]["shrink_factor_per_layer"] < 0.3 and v["sigmoid"]["mean_derivative"] <= 0.25
    assert v["sigmoid"]["first_over_last_hidden"] < 1e-4
    assert 0.7 < v["relu"]["delta_shrink_factor_per_layer"] < 1.4


def test_q4_dead_relu_units_get_no_gradient_and_stay_dead():
    d = q4.dead_relu_numbers(in_features=8, width=16, n_samples=64, bias_shifts=[0.0, -10.0], lr=0.1, steps=30,
                             seed=0)
    control, pushed = d["rows"]
    assert control["before"]["dead_unit_fraction"] < 0.2 and control["losses"][-1] < control["losses"][0]
    assert pushed["before"]["dead_unit_fraction"] == pushed["after"]["dead_unit_fraction"] == 1.0
    assert pushed["before"]["dead_max_abs_grad"] == pushed["dead_units_max_param_change"] == 0.0
    assert pushed["revived_units"] == 0


def write(name: str, tmp_path, **settings) -> dict:
    """Question `name` with `settings` over the assignment's: its numbers, every file written (numbers.json holds
    no NaN or infinity: files.write_json refuses one)."""
    outputs = {stem: tmp_path / f"{stem}.{'json' if stem == 'numbers' else 'png'}"
               for stem in ("numbers", *QUESTIONS[name].figures)}
    numbers = write_question(name, outputs, settings)
    assert all(path.stat().st_size > 0 for path in outputs.values())
    return numbers


def test_q4_one_hidden_layer_to_fit_has_no_factor_per_layer(tmp_path):
    """depth 2 leaves hidden layer 2 alone for the fit (an SVD that would not converge)."""
    numbers = write("q4", tmp_path, depth=2, repeats=1, dead_relu={**q4.DEAD_RELU, "steps": 5})
    for activation in ("sigmoid", "relu"):
        assert numbers["vanishing"][activation]["shrink_factor_per_layer"] is None


def test_q4_a_layer_with_no_gradient_has_no_factor_per_layer():
    """Two ReLU units a layer die: gradients of exactly 0 have no logarithm."""
    relu = q4.vanishing_numbers(depth=q4.DEPTH, width=2, batch=q4.BATCH, repeats=q4.REPEATS, init=q4.INIT,
                                seed=0)["relu"]
    assert relu["zero_gradient_layers"] > 0 and relu["shrink_factor_per_layer"] is None
    assert relu["first_over_last_hidden"] is None


def test_q4_sgd_that_diverges_stops_at_the_step_and_says_so(tmp_path):
    """Learning rate 10 on a bias of 1000: the loss overflows."""
    numbers = write("q4", tmp_path, depth=2, repeats=1,
                    dead_relu={**q4.DEAD_RELU, "lr": 10, "bias_shifts": [1000], "steps": 200})
    (row,) = numbers["dead_relu"]["rows"]
    assert row["diverged_at_step"] is not None and row["steps_run"] == row["diverged_at_step"] - 1
    assert len(row["losses"]) == row["steps_run"] + 1 and row["after"]["loss"] == row["losses"][-1]


def test_q4_sgd_that_converges_runs_every_step_unchanged():
    numbers = q4.dead_relu_numbers(in_features=4, width=8, n_samples=16, bias_shifts=[0.0], lr=0.1, steps=30, seed=0)
    (row,) = numbers["rows"]
    assert row["diverged_at_step"] is None and len(row["losses"]) == 31 and row["after"]["loss"] == row["losses"][-1]


# --- Q5
def _generated():
    return q5.generate_data(**q5.GENERATED)


def test_q5_nll_and_gradient_are_bishop_4_90_and_4_91():
    data = _generated()
    X, t = data[:, :3], data[:, 3]
    w = np.array([0.3, -0.2, -1.0])
    y = 1 / (1 + np.exp(-X @ w))
    assert q5.nll(X, t, w) == pytest.approx(-np.mean(t * np.log(y) + (1 - t) * np.log(1 - y)), rel=1e-12)
    eps = 1e-6
    fd = [(q5.nll(X, t, w + eps * e) - q5.nll(X, t, w - eps * e)) / (2 * eps) for e in np.eye(3)]
    np.testing.assert_allclose(q5.gradient(X, t, w), fd, rtol=1e-6, atol=1e-9)


def test_q5_generated_data_is_seeded_and_shaped():
    data = _generated()
    assert data.shape == (200, 4)
    assert np.all(data[:, 2] == 1) and set(np.unique(data[:, 3])) == {0.0, 1.0}
    np.testing.assert_array_equal(data, _generated())
    np.testing.assert_allclose(data[data[:, 3] == 0, :2].mean(axis=0), [4.98, 0.94], atol=0.6)
    np.testing.assert_allclose(data[data[:, 3] == 1, :2].mean(axis=0), [6.93, -0.87], atol=0.6)


@pytest.mark.parametrize("eta", [0.1, 0.05, 0.01])
def test_q5_gd_nll_never_rises_for_small_eta(eta):
    data = _generated()
    assert np.all(np.diff(q5.gradient_descent(data[:, :3], data[:, 3], eta, [0.1, 0, 0], 1e-5, 500)["nll"]) <= 1e-15)


def test_q5_gd_stops_by_tol_for_the_largest_eta_on_separable_ish_data():
    # Centred, well-conditioned clouds with little overlap: a finite optimum GD reaches quickly.
    data = q5.generate_data(seed=0, n_per_class=100, means=[[-1.5, 0.0], [1.5, 0.0]], cov=[[1, 0], [0, 1]])
    fast, slow = (q5.gradient_descent(data[:, :3], data[:, 3], eta, [0.1, 0, 0], 1e-5, 500) for eta in (0.5, 0.01))
    assert fast["converged"] and fast["iterations"] < 500
    assert not slow["converged"] and slow["iterations"] == 500


@pytest.mark.parametrize("eta", [0.1, 0.05, 0.01])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_q5_sgd_is_ahead_of_gd_per_data_pass_early_on(eta, seed):
    data = _generated()
    X, t = data[:, :3], data[:, 3]
    gd_run = q5.gradient_descent(X, t, eta, [0.1, 0, 0], 0.0, 11)
    sgd_run = q5.sgd(X, t, eta, [0.1, 0, 0], 0.0, 11, seed)
    # After k passes GD has made k updates and SGD k * N; SGD's NLL is noisy, so compare its median and best.
    assert np.median(sgd_run["nll"][1:11]) < gd_run["nll"][10]
    assert min(sgd_run["nll"][1:4]) < gd_run["nll"][3]


def test_q5_sgd_visits_every_row_once_per_epoch():
    data = _generated()
    run, same = (q5.sgd(data[:, :3], data[:, 3], 0.05, [0.1, 0, 0], 0.0, 3, 0) for _ in range(2))
    assert run["iterations"] == 3 and len(run["trace"]) == 3 * len(data) + 1
    np.testing.assert_array_equal(run["w"], same["w"])  # seeded


@pytest.mark.parametrize("content, message", [
    ("1 2 1 0\n3 4 1\n", "line 2: expected 4 numbers"),
    ("1 2 1 0\n# comment\n\n3 x 1 1\n", "line 4: not a number"),
    ("1 2 1 0\n3 4 1 2\n", "line 2: the target t must be 0 or 1"),
    ("1 2 0 0\n", "line 1: the third column must be the constant 1"),
    ("1 2 1 nan\n", "line 1: non-finite"),
    ("# only a comment\n", "no data rows"),
    ("1 2 1 0\n3 4 1 0\n", "needs both classes"),
])
def test_q5_bad_data_file_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        q5.load_data(path)
    assert str(path) in str(info.value)


@pytest.mark.skipif(not COURSE_DATA.exists(), reason=f"course data not found at {COURSE_DATA}")
def test_q5_on_the_course_data():
    data = q5.load_data(COURSE_DATA)
    assert data.shape == (200, 4)
    etas = [0.5, 0.3, 0.1, 0.05, 0.01]
    gd_runs, sgd_runs = q5.q5_runs(data, etas, [0.1, 0, 0], 1e-5, 500, 0)
    for eta, run in zip(etas, gd_runs):
        assert run["iterations"] <= 500 and run["nll"][-1] < run["nll"][0], eta
        assert eta > 0.1 or np.all(np.diff(run["nll"]) <= 1e-15), eta
    # Larger (stable) steps get further in the same 500 iterations.
    assert gd_runs[2]["nll"][-1] < gd_runs[3]["nll"][-1] < gd_runs[4]["nll"][-1]
    for gd_run, sgd_run in zip(gd_runs[2:], sgd_runs[2:]):
        assert sgd_run["nll"][1] < gd_run["nll"][1]


@pytest.mark.parametrize("settings, gd_line", [
    ({"etas": [5e-324]}, False),  # w2 stays 0 at every step: no line x2 = m x1 + b to draw
    ({"generated": {**q5.GENERATED, "means": [[-1000, -1000], [1000, 1000]]}}, False),  # saturated: no gradient
    ({"etas": [100], "max_iter": 1, "w0": [0, 0, 0]}, True),
])
def test_q5_no_separator_line_is_drawn_as_none(settings, gd_line, tmp_path):
    numbers = write("q5", tmp_path, **settings)
    assert all((run["final_slope"] is not None) == gd_line for run in numbers["gd"])


def test_q5_sgd_keeps_a_bounded_trace_however_long_it_runs():
    data = _generated()
    run = q5.sgd(data[:, :3], data[:, 3], 0.01, [0.1, 0, 0], 0.0, 2000, 0)
    assert run["updates"] == 2000 * len(data) and run["trace_steps"][-1] == run["updates"]
    assert len(run["trace"]) == len(run["trace_steps"]) <= len(data) + 1 + q5.TRACE_POINTS
    assert list(run["trace_steps"][:len(data) + 1]) == list(range(len(data) + 1))  # the first epoch, update by update
    # a large data set: the first epoch is sampled too, so the plot's NLL over the whole set stays affordable
    steps = q5.trace_steps(100_000, 100_000 * 500)
    assert len(steps) <= 2 * q5.TRACE_POINTS + 1 and steps[0] == 0 and 100_000 in steps


def test_a_q5_data_file_too_long_is_refused_before_any_update(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("".join(f"{i % 7} {i % 5} 1 {i % 2}\n" for i in range(300)))
    outputs = {f"{name}_path": str(tmp_path / name) for name in ("numbers", *QUESTIONS["q5"].figures)}
    with pytest.raises(ValueError, match=r"theory\.q5\.data: 5 learning rates x 300 rows"):
        q5.write_q5(**outputs, data=str(data), max_iter=100000)
    assert list(tmp_path.iterdir()) == [data]


def test_q5_findings_name_the_runs_the_prose_discusses():
    def run(eta, final, rises=0, converged=False, start=0.7, top=0.7):
        return {"eta": eta, "final_nll": final, "nll_rises": rises, "converged": converged, "nll_start": start,
                "nll_max": top}

    def etas(rows):
        return [r["eta"] for r in rows]

    gd = [run(0.5, 0.30, rises=4), run(0.1, 0.35, converged=True), run(0.01, 0.50)]
    sgd = [run(0.5, 0.40, top=0.9), run(0.1, 0.32, top=0.8), run(0.01, 0.45, converged=True)]
    f = q5.findings(gd, sgd)
    assert f["gd_best"]["eta"] == 0.5 and f["sgd_best"]["eta"] == 0.1
    assert etas(f["gd_rising"]) == [0.5] and etas(f["gd_monotone"]) == [0.1, 0.01]
    assert etas(f["gd_converged"]) == [0.1] and etas(f["sgd_converged"]) == [0.01]
    assert etas(f["sgd_wild"]) == [0.5, 0.1] and f["sgd_wild_max"] == 0.9
    assert q5.findings(gd, [run(0.5, 0.4)])["sgd_wild_max"] is None


# --- outputs and templates
# Smaller than the assignment's settings (the entry points' keyword defaults), for speed.
SMALL = {
    "q1": {"grid": 120},
    "q2": {"grid": 80, "n_angles": 36},
    "q3": {"n_examples": 2},
    "q4": {"depth": 6, "width": 16, "batch": 32, "repeats": 1,
           "dead_relu": {**q4.DEAD_RELU, "width": 16, "n_samples": 64, "steps": 20}},
    "q5": {"max_iter": 40, "etas": [0.3, 0.05]},
}
KEYS = {
    "q1": ["point", "point_exact", "probabilities_at_point", "boundaries", "regions", "far_distance"],
    "q2": ["closed_form", "numeric", "class_inside", "class_outside"],
    "q3": ["layers", "max_rel_err_autograd", "max_rel_err_fd", "fd_step", "fd_sweep", "fd_best", "example"],
    "q4": ["activations", "vanishing", "dead_relu"],
    "q5": ["data_source", "gd", "sgd", "etas", "tol", "max_iter", "sgd_sampling_text", "findings"],
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root, paths = tmp_path_factory.mktemp("theory"), {}
    for name, question in QUESTIONS.items():  # as the rules do: one call of the package's dispatcher
        outputs = {"numbers": root / name / "numbers.json",
                   **{stem: root / name / f"{stem}.png" for stem in question.figures}}
        write_question(name, outputs, SMALL[name])
        paths[name] = list(outputs.values())
    return paths


def test_every_output_is_written_with_its_keys_and_a_real_image(written):
    from PIL import Image

    for name, files in written.items():
        numbers = json.loads(files[0].read_text())
        assert [key for key in KEYS[name] if key not in numbers] == [], name
        for png in files[1:]:
            with Image.open(png) as image:
                assert image.format == "PNG"
                pixels = np.asarray(image.convert("L"))
            # Not blank: many distinct grey levels and a fair share of non-white pixels.
            assert pixels.shape[0] > 200 and pixels.shape[1] > 200 and len(np.unique(pixels)) > 20, png
            assert np.mean(pixels < 250) > 0.02, png
        assert not list(files[0].parent.glob(".*")), "temporary files left behind"


def test_section_templates_render_from_the_outputs(written):
    """Every number a template shows exists (StrictUndefined) and every figure is embedded."""
    render = pytest.importorskip("cmpt726.report.render")
    env = render.environment(REPO / "workflow/templates")
    theory = {name: render.load_outputs(files) for name, files in written.items()}
    for name in theory:
        html = env.get_template(f"sections/{name}.html.j2").render(theory=theory)
        assert f"<h2>Question {name[1:]}:" in html
        for stem, uri in theory[name]["figures"].items():
            assert uri in html, f"{name}: figure {stem} not shown"


# --- the table and the rules
def test_question_table_names_every_argument_of_its_entry_point():
    """write_question passes numbers_path, <figure>_path for each figure of the table and the config's settings
    (the files); every other argument is a setting of the assignment, a keyword with its default."""
    assert list(QUESTIONS) == ["q1", "q2", "q3", "q4", "q5"]
    for name, question in QUESTIONS.items():
        write = getattr(importlib.import_module(f"cmpt726.theory.{question.module}"), question.function)
        params = inspect.signature(write).parameters
        paths = [p for p in params if p.endswith("_path")]
        assert paths == ["numbers_path", *(f"{figure}_path" for figure in question.figures)], name
        settings = [p for p in params.values() if p.name not in paths]
        assert all(p.kind is p.KEYWORD_ONLY and p.default is not p.empty for p in settings), name
        assert set(question.files) <= {p.name for p in settings}, name
        for figure in question.figures:  # its label and caption in Snakemake's report
            assert FIGURE_LABELS[figure]
            assert (REPO / "workflow/report" / f"theory_{name}_{figure}.rst").read_text().strip(), figure


@pytest.mark.slow
def test_theory_rules_run_alone_with_logs_benchmarks_and_report_entries(tmp_path):
    from conftest import make_project, snakemake, smoke_config
    from workflow_helpers import parse_jobs

    # The CIFAR-10 data and backbone are never read: only the theory rules run.
    config = smoke_config(tmp_path / "cifar10", tmp_path / "backbone.pth")
    config["theory"] = {"q5": {"data": "points.txt"}}
    workdir = make_project(tmp_path / "project", config)
    rng = np.random.default_rng(0)
    rows = [f"{rng.normal(5 + t, 1):.4f} {rng.normal(t, 1):.4f} 1 {t}" for t in (0, 1) for _ in range(20)]
    (workdir / "points.txt").write_text("\n".join(rows) + "\n")
    targets = [f"results/theory/{name}/numbers.json" for name in QUESTIONS]
    snakemake(workdir, "--cores", "2", *targets)
    for name, question in QUESTIONS.items():
        for stem in ["numbers.json", *(f"{figure}.png" for figure in question.figures)]:
            assert (workdir / "results/theory" / name / stem).stat().st_size > 0, (name, stem)
        assert (workdir / f"results/logs/theory/{name}.log").exists()
        assert (workdir / f"results/benchmarks/theory/{name}.tsv").exists()
    assert json.loads((workdir / "results/theory/q5/numbers.json").read_text())["data_source"] == "points.txt"
    # Every figure is in Snakemake's report, with its caption.
    snakemake(workdir, "--report", "report.zip", *targets)
    with zipfile.ZipFile(workdir / "report.zip") as archive:
        names = archive.namelist()
        html = next(archive.read(n).decode() for n in names if n.endswith("report.html"))
    assert len([n for n in names if n.endswith(".png")]) == sum(len(q.figures) for q in QUESTIONS.values())
    assert "Questions 1-5" in html
    assert "4, 3, and one identity output" in html  # q3's caption
    # Q5's data file is an input: editing it reruns Q5 alone.
    with open(workdir / "points.txt", "a") as handle:
        handle.write("5.5 0.5 1 1\n")
    proc = snakemake(workdir, "-n", *targets)
    assert parse_jobs(proc.stdout + proc.stderr) == {"theory_q5"}
