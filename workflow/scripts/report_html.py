from cmpt726.files import read_json
from cmpt726.snakemake_job import run
from cmpt726.report.assemble import write_report

run(
    snakemake,
    lambda smk: write_report(
        smk.output[0],
        smk.input.template,
        q6=smk.input.q6,
        analysis=smk.input.analysis,
        tuning=smk.input.tuning,
        theory={question: smk.input[f"theory_{question}"] for question in smk.params.theory},
        backbone=smk.params.backbone,
        backbone_summary=smk.input.get("backbone"),
        backbone_curves=smk.input.get("backbone_curves"),
        data=read_json(smk.input.data),
        config_changes=smk.params.config_changes,
        title=smk.params.title,
    ),
)
