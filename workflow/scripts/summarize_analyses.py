from cmpt726.report.summarize_analyses import analysis_outputs
from cmpt726.snakemake_job import paths, run

run(snakemake, lambda smk: analysis_outputs({"runs": smk.params.runs}, paths(smk)))
