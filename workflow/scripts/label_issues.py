from cmpt726.analysis.label_issues import write_label_issues
from cmpt726.data import load_arrays
from cmpt726.jobs import run

run(
    snakemake,
    lambda smk: write_label_issues(
        smk.input.scores,
        smk.output.table,
        load_arrays(smk.input.test)[2],
        summary_json=smk.output.summary,
        filter_by=smk.params.filter_by,
    ),
)
