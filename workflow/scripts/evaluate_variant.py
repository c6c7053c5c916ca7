from cmpt726.evaluation import evaluate_variant
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: evaluate_variant(smk.input.checkpoint, smk.input.test, smk.output.scores, smk.output.metrics,
                                            normalize=smk.params.normalize, channels_last=smk.params.channels_last,
                                            device=smk.params.device))
