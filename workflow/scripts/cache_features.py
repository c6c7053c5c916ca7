from cmpt726.snakemake_job import run
from cmpt726.features import extract_features

run(snakemake, lambda smk: extract_features(smk.input.backbone, smk.input.images, smk.output[0], smk.params.normalize,
                                            smk.params.device))
