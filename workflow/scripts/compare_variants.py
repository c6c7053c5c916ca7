from cmpt726.report.compare_variants import q6_outputs
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: q6_outputs(dict(smk.input.items()), dict(smk.output.items()), smk.params.spec))
