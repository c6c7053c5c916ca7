from cmpt726.snakemake_job import paths, run
from cmpt726.tuning.trials import run_trial

run(snakemake, lambda smk: run_trial(smk.params.spec, paths(smk) | {"resume": smk.params.resume}))
