from cmpt726.data import download_cifar10
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: download_cifar10(smk.params.folder, url=smk.params.url, receipt=smk.output[0]))
