from cmpt726.analysis.human_labels import write_human_labels
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: write_human_labels(smk.input.counts, smk.input.test, smk.params.runs, smk.input.scores,
                                              smk.output.table, smk.output.metrics,
                                              unsure_below=smk.params.unsure_below, sha256=smk.params.sha256))
