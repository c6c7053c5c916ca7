from cmpt726.data import write_split
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: write_split(smk.input.train, smk.output[0], int(smk.wildcards.n_val), smk.params.seed))
