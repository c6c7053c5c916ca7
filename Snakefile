# CMPT-726 Assignment 2 as one workflow: data → backbone → features → fine-tune →
# evaluate → figures → report; the theory questions join at the report.
import os
import sys

WORKFLOW_DIR = os.path.join(workflow.basedir, "workflow")
sys.path.insert(0, WORKFLOW_DIR)
# Jobs (scripts, cluster jobs) import the same package without an install step.
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [WORKFLOW_DIR, os.environ.get("PYTHONPATH")])
)

from cmpt726.config import validate_config


configfile: "config.yaml"


# Used only with `--sdm conda`; otherwise jobs run in the current environment (./setup.sh's .venv).
conda: "envs/workflow.yaml"


# The front page of `snakemake --report report.zip`.
report: "workflow/report/workflow.rst"


# One schema pass: typed --config values, every default filled (theory included), errors naming the key.
validate_config(
    config,
    os.path.join(WORKFLOW_DIR, "schemas", "config.schema.yaml"),
    command_line=workflow.config_settings.config,
)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/backbone.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


# Under a cluster executor these run on the submitting host: quick (seconds), and the report
# rules need wkhtmltopdf. The theory rules say so themselves (`localrule: True` in theory.smk).
localrules:
    all,
    plot_q6,
    plot_analysis,
    report_html,
    report_pdf,
    gallery_html,
    gallery_pdf,


rule all:
    default_target: True
    input:
        rules.report_html.output,
        rules.report_pdf.output,
        rules.gallery_html.output,
        rules.gallery_pdf.output,
