from cmpt726.finetune import train_seeds
from cmpt726.snakemake_job import paths, run

run(snakemake, lambda smk: train_seeds(smk.params.spec, paths(smk)))
