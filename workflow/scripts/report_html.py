from cmpt726.io import read_json
from cmpt726.jobs import run
from cmpt726.report.assemble import write_report

run(
    snakemake,
    lambda smk: write_report(
        smk.output[0],
        smk.input.template,
        settings=smk.params.settings,
        seeds=smk.params.seeds,
        metrics=smk.input.metrics,
        epochs=smk.input.epochs,
        benchmarks=smk.input.benchmarks,
        reference=smk.params.reference,
        theory={},
        backbone=smk.params.backbone,
        data=read_json(smk.input.data),
        config=smk.params.config,
        title=smk.params.title,
    ),
)
