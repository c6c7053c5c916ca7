from cmpt726.jobs import run
from cmpt726.report.q6 import q6_outputs

run(
    snakemake,
    lambda smk: q6_outputs(
        settings=smk.params.settings,
        seeds=smk.params.seeds,
        metrics=smk.input.metrics,
        epochs=smk.input.epochs,
        train_summaries=smk.input.train_summaries,
        scores=smk.input.scores,
        test_images=smk.input.test,
        reference=smk.params.reference,
        out=dict(smk.output.items()),
    ),
)
