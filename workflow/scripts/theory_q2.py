from cmpt726.jobs import run
from cmpt726.theory.q2_glm import write_q2

run(
    snakemake,
    lambda smk: write_q2(
        smk.output.numbers,
        smk.output.functions,
        smk.output.regions,
        smk.output.feature_space,
        **smk.params.settings,
    ),
)
