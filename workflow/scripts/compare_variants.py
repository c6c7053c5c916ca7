from cmpt726.jobs import run
from cmpt726.report.q6 import q6_outputs

run(
    snakemake,
    lambda smk: q6_outputs(
        settings=smk.params.settings,
        runs=smk.params.runs,
        metrics=smk.input.metrics,
        epochs=smk.input.epochs,
        train_summaries=smk.input.train_summaries,
        scores=smk.input.scores,
        test_images=smk.input.test,
        backbone=smk.input.backbone,
        reference=smk.params.reference,
        comparisons=smk.params.statistics["comparisons"],
        alpha=smk.params.statistics["alpha"],
        replicates=smk.params.statistics["bootstrap_replicates"],
        smallest_effect=smk.params.statistics["smallest_effect"],
        focus=smk.params.focus,
        replica_2019=smk.params.replica_2019,
        choices=dict(zip(smk.params.twins, smk.input.choices)),
        twins=smk.params.twins,
        out=dict(smk.output.items()),
    ),
)
