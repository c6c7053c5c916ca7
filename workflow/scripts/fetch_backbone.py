from cmpt726.backbone import download_backbone
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: download_backbone(smk.params.url, smk.output[0]))
