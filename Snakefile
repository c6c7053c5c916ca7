# CMPT-726 Assignment 2 as one workflow: data → backbone → features → fine-tune →
# evaluate → figures → report; the theory questions join at the report.
import atexit
import os
import sys

from snakemake.utils import min_version

# The oldest Snakemake this workflow is tested with.
min_version("9.19")

WORKFLOW_DIR = os.path.join(workflow.basedir, "workflow")
# The Snakefile imports this checkout's package (light modules only: no torch). Jobs import it as
# installed (`pip install -e .`, setup.sh) or, in a conda env of `--sdm conda`, through
# workflow/scripts/cmpt726, a link to the package beside the scripts (Snakemake puts a script's
# folder on its sys.path).
sys.path.insert(0, WORKFLOW_DIR)

from cmpt726 import preflight
from cmpt726.preflight import estimate
from cmpt726.specs import ConfigError, load


configfile: "config.yaml"


# The front page of `snakemake --report report.zip`.
report: "workflow/report/workflow.rst"


# One schema pass (typed --config values, every default filled, theory included), then the plan: each job's
# settings resolved once (cmpt726.specs). A bad config ends the run with its message alone (no traceback).
try:
    PLAN = load(
        config,
        os.path.join(WORKFLOW_DIR, "schemas", "config.schema.yaml"),
        command_line=workflow.config_settings.config,
    )
except ConfigError as error:
    sys.exit(str(error))


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/backbone.smk"
include: "workflow/rules/tuning.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


# Under a cluster executor these run on the submitting host: quick (seconds), and the report
# rules need wkhtmltopdf. The theory rules say so themselves (`localrule: True` in theory.smk).
localrules:
    all,
    compare_variants,
    summarize_analyses,
    report_html,
    report_pdf,
    gallery_html,
    gallery_pdf,


# Pre-flight: files the config names are inputs only where they exist (preflight.present), so the plan is
# made; a missing one is said here, and with everything else a run lacks before its first job (below).
# Jobs (a local subprocess, a cluster node) re-read this file and skip it: the main process checked.
DRY_RUN = workflow.output_settings.dryrun
if workflow.is_main_process:
    for _problem in [] if DRY_RUN else preflight.missing_files(config):
        print(f"pre-flight: {_problem}", file=sys.stderr)
    _warnings = warmup_warnings(TUNING) + unknown_name_warnings(config, SHIPPED_CONFIG)
    for _warning in _warnings + preflight.bf16_warnings(config, PLAN):
        print(f"WARNING: {_warning}", file=sys.stderr)


def _resource(name):
    value = workflow.global_resources.get(name)
    return getattr(value, "value", value)


def before_jobs(dry_run):
    """The pre-flight of the jobs Snakemake will run (the executor known): named files, CUDA where jobs run here,
    downloads that cannot reach their server, wkhtmltopdf when a PDF is due; a real run refuses to start on any,
    naming them all in one message, a dry run warns. Then what the jobs cost (cmpt726.preflight.estimate)."""
    if workflow.dag is None or (dry_run and workflow.scheduler is None):  # the DAG was never built
        return
    jobs = list(workflow.dag.needrun_jobs(exclude_finished=False))
    rules = {job.rule.name for job in jobs}
    # The rules that declare a `gpu` resource are the ones that run on config["device"].
    gpu_rules = {job.rule.name for job in jobs if "gpu" in job.rule.resources}
    problems = preflight.run_problems(config, rules, gpu_rules, local=workflow.local_exec)
    if problems and not dry_run:
        sys.exit(preflight.message(problems))
    for problem in problems:
        print(f"WARNING: pre-flight: {problem}", file=sys.stderr)
    if workflow.touch:  # --touch trains nothing
        return
    lines = estimate.report(
        PLAN,
        config,
        [(job.rule.name, job.wildcards_dict, job.threads) for job in jobs],
        cores=_resource("_cores") or os.cpu_count() or 1,
        local=workflow.local_exec,
        gpu_share=_resource("gpu_share"),
    )
    print("\n".join(lines), file=sys.stderr, flush=True)


# Snakemake calls no onstart in a dry run: its checks run once the dry run has listed the jobs, as warnings.
if workflow.is_main_process and DRY_RUN:
    atexit.register(before_jobs, dry_run=True)


# Before any job of a real run: what it lacks (the run refuses), then its cost: the main job's first lines.
onstart:
    if workflow.is_main_process:
        before_jobs(dry_run=False)


# Finished means told: where the outputs are (absolute: with --directory they are not under the checkout).
onsuccess:
    if workflow.is_main_process:
        _report = os.path.abspath("report")
        print(
            f"Done. The report: {_report}/report.html (and report.pdf); every test image: {_report}/gallery.html."
        )


rule all:
    """The report (HTML and PDF) and the gallery (HTML and PDF): the default target."""
    default_target: True
    input:
        rules.report_html.output,
        rules.report_pdf.output,
        rules.gallery_html.output,
        rules.gallery_pdf.output,
