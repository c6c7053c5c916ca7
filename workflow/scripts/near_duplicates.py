from cmpt726.analysis.near_duplicates import write_near_duplicates
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: write_near_duplicates(smk.input.train, smk.input.test, smk.input.train_features,
                                                 smk.input.test_features, smk.output.table,
                                                 summary_json=smk.output.summary, k=smk.params.settings["mad_k"],
                                                 candidates=smk.params.settings["candidates"]))
