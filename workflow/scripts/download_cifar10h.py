from cmpt726.analysis.human_labels import fetch_counts
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: fetch_counts(smk.params.url, smk.params.sha256, smk.params.counts, smk.output[0]))
