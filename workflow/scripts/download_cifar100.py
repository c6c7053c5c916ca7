from cmpt726.cifar100 import download_cifar100
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: download_cifar100(smk.params.folder, receipt=smk.output[0]))
