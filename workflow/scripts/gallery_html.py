from cmpt726.snakemake_job import run
from cmpt726.report.gallery import gallery_html

ANALYSES = ("train_images", "label_issues", "human_labels", "near_duplicates")
run(snakemake, lambda smk: gallery_html(smk.input.images, smk.params.runs, smk.input.scores, smk.input.q6,
                                        smk.output[0], smk.input.template, smk.input.script, title=smk.params.title,
                                        **{name: smk.input.get(name) for name in ANALYSES}))
