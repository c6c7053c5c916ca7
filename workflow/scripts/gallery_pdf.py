from cmpt726.snakemake_job import run
from cmpt726.report.gallery import gallery_pdf

run(
    snakemake,
    lambda smk: gallery_pdf(
        smk.input.images,
        smk.params.runs,
        smk.input.scores,
        smk.input.q6,
        smk.output[0],
        smk.input.template,
        title=smk.params.title,
        train_images=smk.input.get("train_images"),
        label_issues=smk.input.get("label_issues"),
        human_labels=smk.input.get("human_labels"),
        near_duplicates=smk.input.get("near_duplicates"),
    ),
)
