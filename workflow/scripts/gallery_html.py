from cmpt726.snakemake_job import run
from cmpt726.report.gallery import gallery_html

run(
    snakemake,
    lambda smk: gallery_html(
        smk.input.images,
        smk.params.runs,
        smk.input.scores,
        smk.input.q6,
        smk.output[0],
        smk.input.template,
        smk.input.script,
        title=smk.params.title,
        train_images=smk.input.get("train_images"),
        label_issues=smk.input.get("label_issues"),
        human_labels=smk.input.get("human_labels"),
        near_duplicates=smk.input.get("near_duplicates"),
    ),
)
