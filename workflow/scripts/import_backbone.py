from cmpt726.backbone import import_backbone
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: import_backbone(smk.input[0], smk.output[0]))
