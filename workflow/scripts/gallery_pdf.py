from cmpt726.snakemake_job import run
from cmpt726.report.gallery import gallery_pdf

ANALYSES = ("train_images", "label_issues", "human_labels", "near_duplicates")
run(snakemake, lambda smk: gallery_pdf(smk.input.images, smk.params.runs, smk.input.scores, smk.input.q6, smk.output[0],
                                       smk.input.template, title=smk.params.title,
                                       **{name: smk.input.get(name) for name in ANALYSES}))
