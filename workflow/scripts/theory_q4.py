from cmpt726.jobs import run
from cmpt726.theory.q4_vanishing import write_q4

run(
    snakemake,
    lambda smk: write_q4(
        smk.output.numbers,
        smk.output.activations,
        smk.output.gradient_norms,
        smk.output.dead_relu,
        **smk.params.settings,
    ),
)
