from cmpt726.jobs import run
from cmpt726.theory.q3_backprop import write_q3

run(
    snakemake,
    lambda smk: write_q3(
        smk.output.numbers,
        smk.output.formulas,
        smk.output.network,
        smk.output.fd_error,
        **smk.params.settings,
    ),
)
