from cmpt726.snakemake_job import run
from cmpt726.tuning.summary import tuning_outputs


def main(smk):
    variants, twin_epochs = smk.params.variants, {}
    for (variant, _seed), path in zip(smk.params.twin_runs, smk.input.twin_epochs):
        twin_epochs.setdefault(variant, []).append(path)
    tuning_outputs(searches=dict(zip(variants, smk.input.searches)), trials=dict(zip(variants, smk.input.trials)),
                   twin_epochs=twin_epochs, figure=smk.output.figure, table=smk.output.table,
                   numbers=smk.output.numbers)


run(snakemake, main)
