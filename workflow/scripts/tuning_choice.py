from cmpt726.snakemake_job import run
from cmpt726.tuning.choice import write_choice

run(snakemake, lambda smk: write_choice(list(smk.input), smk.output.choice, smk.output.search, smk.output.trials,
                                        plan=smk.params.plan, variant=smk.wildcards.variant))
