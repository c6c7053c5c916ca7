from cmpt726.report.assemble import write_report
from cmpt726.snakemake_job import paths, run

run(snakemake, lambda smk: write_report(smk.params.spec, paths(smk)))
