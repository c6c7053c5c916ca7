from cmpt726.snakemake_job import run
from cmpt726.theory import write_question

run(
    snakemake,
    lambda smk: write_question(smk.params.question, dict(smk.output.items()), smk.params.settings),
)
