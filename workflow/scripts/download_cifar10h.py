from cmpt726.analysis.human_labels import download_counts
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: download_counts(smk.params.url, smk.params.sha256, smk.output[0]))
