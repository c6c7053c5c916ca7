from cmpt726.jobs import run
from cmpt726.report.gallery import gallery_pdf

run(
    snakemake,
    lambda smk: gallery_pdf(
        smk.input.images,
        smk.input.scores[0],
        smk.output[0],
        smk.input.template,
        variant=smk.params.variant,
        seed=smk.params.seed,
        title=smk.params.title,
    ),
)
