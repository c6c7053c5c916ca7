from cmpt726.analysis.label_issues import label_issues_of_test_set
from cmpt726.snakemake_job import run

run(snakemake, lambda smk: label_issues_of_test_set(smk.input.scores, smk.input.test, smk.output.table,
                                                    smk.output.summary, filter_by=smk.params.filter_by,
                                                    variants=smk.params.variants, families=smk.params.families))
