from cmpt726.cifar100 import prepare_cifar100
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: prepare_cifar100(smk.params.source, smk.params.kind, smk.output.train, smk.output.test,
                                            smk.output.summary, verify=smk.params.verify))
