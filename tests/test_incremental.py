"""Incremental rebuilds: after a finished run, a change reruns exactly the jobs that depend on it. One small
project runs once on a private workflow copy; each scenario makes an edit, asks `snakemake -n`, and undoes it."""

import pytest
from conftest import make_project, smoke_config
from workflow_helpers import (copy_project, copy_workflow, edited_config, edited_file, job, parse_jobs,
                              planned_jobs, snakemake)

pytestmark = pytest.mark.slow

# The cheap rules (report, gallery, analyses, theory) rerun on any package code change (code_digest.package_digest)
# and after any change upstream of them; a scenario names exactly the other jobs it reruns.
REPORT_PREFIXES = ("report_", "gallery_", "plot_", "compare_variants", "summarize_analyses", "label_issues",
                   "human_labels", "near_duplicates", "theory_")
DOCUMENT = {"report_html", "report_pdf"}
# A change of meaning (a new module-level name), unlike a comment or a docstring.
REAL_CHANGE = "\n_EDITED_BY_TEST = 1\n"


def is_report(name: str) -> bool:
    return name.split("[")[0].startswith(REPORT_PREFIXES)


def variant_jobs(variant, seed=0):
    return {job("train_variant", variant=variant, seed=seed), job("evaluate_variant", variant=variant, seed=seed)}


def assert_plan(jobs, core, document=True):
    """`core`: exactly the non-report jobs expected; with document, the report is rebuilt as well."""
    assert {j for j in jobs if not is_report(j)} == core, sorted(jobs)
    if document:
        assert DOCUMENT <= jobs, sorted(jobs)


@pytest.fixture(scope="module")
def project(tiny_inputs, tmp_path_factory):
    root = tmp_path_factory.mktemp("incremental")
    snakefile = copy_workflow(root / "workflow-copy")
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
    config["variants"] = {"a": {"train": "head"}, "b": {"train": "head", "weight_decay": 0.001}}
    config["report"]["gallery_variant"] = "a"
    workdir = make_project(root / "project", config)
    snakemake(workdir, "--cores", "2", snakefile=snakefile)
    return {"dir": workdir, "snakefile": snakefile, "workflow": snakefile.parent / "workflow"}


def plan(project):
    return planned_jobs(project["dir"], snakefile=project["snakefile"])


def test_finished_run_has_nothing_to_do(project):
    proc = snakemake(project["dir"], "-n", snakefile=project["snakefile"])
    assert parse_jobs(proc.stdout + proc.stderr) == set()
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_lr_of_one_variant_reruns_only_it_and_the_report(project, tmp_path):
    def edit(config):
        config["variants"]["b"]["lr"] = 0.05
    with edited_config(project["dir"], edit):
        planned = plan(project)
    assert_plan(planned, variant_jobs("b"))
    # The plan is what really runs; afterwards nothing is left to do.
    copy = copy_project(project["dir"], tmp_path / "project")
    with edited_config(copy, edit):
        ran = snakemake(copy, "--cores", "2", snakefile=project["snakefile"])
        assert parse_jobs(ran.stderr + ran.stdout) == planned
        assert planned_jobs(copy, snakefile=project["snakefile"]) == set()


def test_new_variant_trains_alone_and_reuses_cached_features(project):
    with edited_config(project["dir"], lambda config: config["variants"].update(c={"train": "head", "lr": 0.02})):
        jobs = plan(project)
    assert_plan(jobs, variant_jobs("c"))  # no cache_features, no prepare_cifar10


@pytest.mark.parametrize("template", ["report.css", "report.html.j2", "sections/q6.html.j2"])
def test_report_template_edit_reruns_only_report_rules(project, template):
    comment = "\n/* edited */\n" if template.endswith(".css") else "\n{# edited #}\n"
    with edited_file(project["workflow"] / "templates" / template, comment):
        assert_plan(plan(project), set())
    assert plan(project) == set()


def test_gallery_script_edit_reruns_only_the_gallery_html(project):
    # gallery.js is inlined into gallery.html at build time: an input of that rule alone
    with edited_file(project["workflow"] / "templates" / "gallery.js", "\n// edited\n"):
        assert plan(project) == {"gallery_html"}
    assert plan(project) == set()


def test_new_seed_runs_only_its_jobs(project):
    with edited_config(project["dir"], lambda config: config.update(seeds=[0, 1])):
        assert_plan(plan(project), variant_jobs("a", 1) | variant_jobs("b", 1))


@pytest.mark.parametrize("module, core, document", [
    ("evaluation.py", {job("evaluate_variant", variant=v, seed=0) for v in "ab"}, True),
    ("report/assemble.py", set(), True),
    ("report/render.py", set(), True),
    ("data.py", None, True),
])
def test_module_edit_reruns_the_rules_that_run_it(project, module, core, document):
    with edited_file(project["workflow"] / "cmpt726" / module, REAL_CHANGE):
        jobs = plan(project)
    if core is None:  # data.py: everything from the prepared arrays on
        assert "prepare_cifar10" in jobs and "import_backbone" not in jobs, sorted(jobs)
    else:
        assert_plan(jobs, core, document)


def test_runtime_module_edit_reruns_features_training_and_downstream(project):
    with edited_file(project["workflow"] / "cmpt726" / "runtime.py", REAL_CHANGE):
        jobs = plan(project)
    rules = sorted(j.split("[")[0] for j in jobs if not is_report(j))
    assert rules == sorted(["cache_features"] * 2 + ["train_variant"] * 2 + ["evaluate_variant"] * 2), jobs
    assert DOCUMENT <= jobs


@pytest.mark.parametrize("module", ["files.py", "loop.py", "report/compare_variants.py"])
def test_comment_and_docstring_edits_plan_nothing(project, module):
    path = project["workflow"] / "cmpt726" / module
    source = path.read_text()
    first_def = source.index("\ndef ")
    # A comment, a blank line and a rewritten docstring of the first function: the syntax tree is the same.
    edited = source[:first_def] + "\n# a comment\n\n" + source[first_def:]
    head, sep, rest = edited.partition('"""')
    edited = head + sep + "Reworded. " + rest
    with edited_file(path, ""):
        path.write_text(edited)
        assert plan(project) == set()


def test_changed_line_in_loop_reruns_training_jobs_only(project):
    with edited_file(project["workflow"] / "cmpt726" / "loop.py", REAL_CHANGE):
        jobs = plan(project)
    rules = {j.split("[")[0] for j in jobs if not is_report(j)}
    assert rules == {"train_variant", "evaluate_variant"}, sorted(jobs)
