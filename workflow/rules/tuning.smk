# tuning.enabled: each tuned variant's search and the choice its twin trains with; never on the test split.
wildcard_constraints:
    rung=r"\d+",
    slot=r"\d+",


rule tuning_trial:
    """One configuration of a variant's search in one rung, trained in full and scored on validation only."""
    conda:
        CONDA_ENV
    input:
        unpack(trial_inputs),
    output:
        record=f"{TUNING_DIR}/{{variant}}/rung{{rung}}/trial{{slot}}.json",
        epochs=f"{TUNING_DIR}/{{variant}}/rung{{rung}}/trial{{slot}}.epochs.tsv",
    log:
        f"{LOGS}/tuning/{{variant}}/rung{{rung}}/trial{{slot}}.log",
    benchmark:
        f"{BENCHMARKS}/tuning/{{variant}}/rung{{rung}}/trial{{slot}}.tsv"
    threads: THREADS_PER_JOB
    resources:
        gpu=gpu_claim,
        gpu_share=gpu_share_claim,
    params:
        spec=trial_spec,
        resume=f"{TUNING_DIR}/{{variant}}/rung{{rung}}/trial{{slot}}.resume.pt",
    script:
        "../scripts/tuning_trial.py"


rule tuning_choice:
    """A variant's choice (its last rung's best on validation, tie-break stated) and every trial's numbers."""
    localrule: True  # reads a few JSON files
    conda:
        CONDA_ENV
    input:
        all_trials,
    output:
        # What the twin trains with (the chosen keys and epochs only: the same choice, the same bytes).
        choice=f"{TUNING_DIR}/{{variant}}/choice.json",
        search=f"{TUNING_DIR}/{{variant}}/search.json",
        trials=f"{TUNING_DIR}/{{variant}}/trials.tsv",
    log:
        f"{LOGS}/tuning/{{variant}}/choice.log",
    params:
        code=STAGE_CODE["choice"],
        plan=lambda wildcards: TUNING[wildcards.variant],
    script:
        "../scripts/tuning_choice.py"


rule plot_tuning:
    """What the tuning saw: validation accuracy against lr per variant, the choices, their cost, convergence."""
    localrule: True  # reads small tables
    conda:
        CONDA_ENV
    input:
        searches=expand(f"{TUNING_DIR}/{{variant}}/search.json", variant=list(TUNING)),
        trials=expand(f"{TUNING_DIR}/{{variant}}/trials.tsv", variant=list(TUNING)),
        twin_epochs=per_run("results/metrics/{variant}/seed{seed}.epochs.tsv", variants=list(TWINS)),
    output:
        figure="results/figures/tuning/search.png",
        table="results/tables/tuning.tsv",
        numbers=f"{TUNING_DIR}/numbers.json",
    log:
        f"{LOGS}/plot_tuning.log",
    params:
        code=PACKAGE_CODE,
        variants=list(TUNING),
        twin_runs=[(TWINS[v], s) for v, s in RUNS if v in TWINS],
    script:
        "../scripts/plot_tuning.py"
