from cmpt726.jobs import run
from cmpt726.theory.q1_softmax import write_q1

run(
    snakemake,
    lambda smk: write_q1(
        smk.output.numbers,
        smk.output.regions,
        smk.output.boundary_probs,
        smk.output.region_probs,
        **smk.params.settings,
    ),
)
