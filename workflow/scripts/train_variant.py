from cmpt726.finetune import train_variant
from cmpt726.snakemake_job import paths, run

run(snakemake, lambda smk: train_variant(smk.params.spec, paths(smk) | {"resume": smk.params.resume}))
