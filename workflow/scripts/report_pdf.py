from cmpt726.snakemake_job import run
from cmpt726.report.render import html_to_pdf

run(snakemake, lambda smk: html_to_pdf(smk.input.html, smk.output[0]))
