from cmpt726.snakemake_job import run
from cmpt726.report.summarize_analyses import analysis_outputs

run(
    snakemake,
    lambda smk: analysis_outputs(
        runs=smk.params.runs,
        scores=smk.input.scores,
        q6_numbers=smk.input.q6,
        train_images=smk.input.train,
        test_images=smk.input.test,
        label_issues=smk.input.label_issues,
        label_issues_summary=smk.input.label_issues_summary,
        near_duplicates=smk.input.near_duplicates,
        near_duplicates_summary=smk.input.near_duplicates_summary,
        duplicate_sample=smk.input.duplicate_sample,
        human_labels=smk.input.get("human_labels"),
        human_metrics=smk.input.get("human_metrics"),
        out=dict(smk.output.items()),
    ),
)
