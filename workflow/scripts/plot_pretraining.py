from cmpt726.snakemake_job import run
from cmpt726.report.figures import plot_pretraining

run(snakemake, lambda smk: plot_pretraining(smk.input.epochs, smk.output[0], smk.params.published_top1))
