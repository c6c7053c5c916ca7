from cmpt726.data import prepare_cifar10
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: prepare_cifar10(smk.params.folder, smk.output.train, smk.output.test, smk.output.summary,
                                           verify=smk.params.verify, subset_train=smk.params.subset["train"],
                                           subset_test=smk.params.subset["test"]))
