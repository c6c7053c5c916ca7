# Theory questions 1-5: rules theory_q1 ... theory_q5, one per row of the table
# cmpt726.theory.QUESTIONS. Each writes results/theory/<question>/numbers.json and its figures
# (theory_outputs in common.smk) with the assignment's settings, fixed in the question's module; the
# config sets only Q5's data file (theory_settings in common.smk).
# One rule per question, made in a loop, rather than one rule with a {question} wildcard:
# the questions write different figures, and a rule's outputs cannot differ from one wildcard value
# to the next; per-question rules also keep each one's code and data inputs, log and report entries.
for question in QUESTIONS:

    rule:
        """A theory question (Q1-Q5): its numbers and figures, computed by the question's module."""
        name:
            f"theory_{question}"
        localrule: True  # seconds of CPU: run on the submitting host under a cluster executor
        conda:
            CONDA_ENV
        input:
            **theory_inputs(question),
        output:
            **theory_outputs(question),
        log:
            f"{LOGS}/theory/{question}.log",
        benchmark:
            f"{BENCHMARKS}/theory/{question}.tsv"
        threads: 1
        params:
            question=question,
            settings=theory_settings(question),
            code=PACKAGE_CODE,
        script:
            "../scripts/theory.py"
