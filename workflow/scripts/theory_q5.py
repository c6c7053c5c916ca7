from cmpt726.jobs import run
from cmpt726.theory.q5_logreg import write_q5

run(
    snakemake,
    lambda smk: write_q5(
        smk.output.numbers,
        smk.output.nll,
        smk.output.slope_intercept,
        smk.output.separators,
        smk.output.sgd,
        **smk.params.settings,
    ),
)
