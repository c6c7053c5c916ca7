# CMPT-726 Assignment 2 as one workflow: data → backbone → features → fine-tune →
# evaluate → figures → report; the theory questions join at the report.
import os
import sys

WORKFLOW_DIR = os.path.join(workflow.basedir, "workflow")
sys.path.insert(0, WORKFLOW_DIR)
# Jobs (scripts, cluster jobs) import the same package without an install step.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [WORKFLOW_DIR, os.environ.get("PYTHONPATH")]))

from cmpt726.config import validate_config


configfile: "config.yaml"


# Used only with `--sdm conda`; otherwise jobs run in the current environment (./setup.sh's .venv).
conda: "envs/workflow.yaml"


validate_config(config, os.path.join(WORKFLOW_DIR, "schemas", "config.schema.yaml"))


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/backbone.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        rules.report_html.output,
        rules.report_pdf.output,
