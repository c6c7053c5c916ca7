# CMPT-726 Assignment 2 as one workflow: data → backbone → fine-tune → evaluate → report; theory joins the report.
import atexit
import os
import sys

from snakemake.utils import min_version

# The oldest Snakemake this workflow is tested with.
min_version("9.19")

WORKFLOW_DIR = os.path.join(workflow.basedir, "workflow")
# This checkout's package (no torch); jobs import it as installed or through the link workflow/scripts/cmpt726.
sys.path.insert(0, WORKFLOW_DIR)
# OpenMP threads that spin while they wait make a CPU job 4-30x slower on a busy machine: jobs inherit this.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from cmpt726 import preflight
from cmpt726.specs import ConfigError, load


configfile: "config.yaml"


# The front page of `snakemake --report report.zip`.
report: "workflow/report/workflow.rst"


# One schema pass, then the plan (cmpt726.specs); a bad config ends the run with its message alone.
try:
    PLAN = load(config, command_line=workflow.config_settings.config)
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


# On the submitting host under a cluster executor: quick, and the report rules need wkhtmltopdf.
localrules:
    all,
    compare_variants,
    summarize_analyses,
    report_html,
    report_pdf,
    gallery_html,
    gallery_pdf,


# Pre-flight: a named file is an input only where it exists, so a missing one is said here (not in jobs).
DRY_RUN = workflow.output_settings.dryrun
if workflow.is_main_process:
    for _problem in [] if DRY_RUN else preflight.missing_files(config):
        print(f"pre-flight: {_problem}", file=sys.stderr)
    for _warning in unknown_name_warnings(config, SHIPPED_CONFIG) + preflight.bf16_warnings(config, PLAN):
        print(f"WARNING: {_warning}", file=sys.stderr)


# Before a real run's first job: what it lacks (refused), then its cost; a dry run (no onstart) checks at exit.
if workflow.is_main_process and DRY_RUN:
    atexit.register(preflight.before_jobs, workflow, config, PLAN, dry_run=True, workdir=os.getcwd())


onstart:
    if workflow.is_main_process:
        preflight.before_jobs(workflow, config, PLAN, dry_run=False)


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
