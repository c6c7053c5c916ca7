"""Theory questions 1-5: one module per question, each with a `write_qN` entry point.

Each question's settings are the assignment's: module-level constants, the keyword defaults of its functions (tests
pass smaller ones). `QUESTIONS` is the one table of the questions (workflow/rules/theory.smk makes a rule per
question from it). This init stays light (no torch, matplotlib or other cmpt726 module): Snakemake imports it while
it builds the DAG.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    """One question: `<module>.<function>(numbers_path, <figure>_path..., **settings)` writes its numbers.json and
    a PNG per figure; `files`: the config keys of theory.<question> that name an input file (Q5's `data`)."""

    module: str
    function: str
    figures: tuple[str, ...]
    files: tuple[str, ...] = ()


QUESTIONS = {
    "q1": Question("q1_softmax", "write_q1", ("regions", "boundary_probs", "region_probs")),
    "q2": Question("q2_glm", "write_q2", ("functions", "regions", "feature_space")),
    "q3": Question("q3_backprop", "write_q3", ("formulas", "network", "fd_error")),
    "q4": Question("q4_vanishing", "write_q4", ("activations", "gradient_norms", "dead_relu")),
    "q5": Question("q5_logreg", "write_q5", ("nll", "slope_intercept", "separators", "sgd"), files=("data",)),
}

# Each figure's label in Snakemake's report; its caption is workflow/report/theory_<question>_<figure>.rst.
FIGURE_LABELS = {
    "regions": "decision regions",
    "boundary_probs": "probabilities along the boundaries",
    "region_probs": "probabilities into the regions",
    "functions": "discriminant functions",
    "feature_space": "feature space",
    "formulas": "backpropagation formulas",
    "network": "network",
    "fd_error": "finite-difference error",
    "activations": "activations and derivatives",
    "gradient_norms": "gradient norm per layer",
    "dead_relu": "dead ReLUs",
    "nll": "NLL per iteration",
    "slope_intercept": "separator path",
    "separators": "final separators",
    "sgd": "SGD against GD",
}


def write_question(name: str, outputs: Mapping[str, str], settings: dict) -> dict:
    """Compute question `name`: write outputs["numbers"] and outputs[<figure>] for each of its
    figures, with `settings` (config theory.<name>: Q5's data file, nothing for the others) over the
    question's own; return its numbers."""
    question = QUESTIONS[name]
    write = getattr(importlib.import_module(f"{__name__}.{question.module}"), question.function)
    paths = {f"{output}_path": outputs[output] for output in ("numbers", *question.figures)}
    return write(**paths, **settings)
