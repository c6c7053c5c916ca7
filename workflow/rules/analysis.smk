# What the per-image test scores reveal: label errors, agreement with people, train-test near-duplicates.
ANALYSIS = "results/analysis"


rule label_issues:
    """Likely label errors in the test set: cleanlab on the chosen variants' test probabilities."""
    conda:
        CONDA_ENV
    input:
        # every seed of analysis.label_issues.variants (default: the variants that train everything)
        scores=per_run(rules.evaluate_variant.output.scores, PLAN.label_issue_variants),
        test=rules.prepare_cifar10.output.test,
    output:
        table=f"{ANALYSIS}/label_issues.tsv",
        summary=f"{ANALYSIS}/label_issues.json",
    log:
        f"{LOGS}/label_issues.log",
    benchmark:
        f"{BENCHMARKS}/label_issues.tsv"
    params:
        code=PACKAGE_CODE,
        filter_by=config["analysis"]["label_issues"]["filter_by"],
        # each score file's variant and family (a twin's is its variant's), for the suspects found without it
        variants=per_run("{variant}", PLAN.label_issue_variants),
        families=[PLAN.family(v) for v in per_run("{variant}", PLAN.label_issue_variants)],
    script:
        "../scripts/label_issues.py"


rule human_labels:
    """Every variant against CIFAR-10H's people: accuracy vs their majority, cross-entropy vs their votes."""
    conda:
        CONDA_ENV
    input:
        counts=downloaded("download_cifar10h", CIFAR10H_COUNTS, CIFAR10H_DOWNLOAD),
        test=rules.prepare_cifar10.output.test,
        scores=per_run(rules.evaluate_variant.output.scores),
    output:
        table=f"{ANALYSIS}/human_labels.tsv",
        metrics=f"{ANALYSIS}/human_labels.json",
    log:
        f"{LOGS}/human_labels.log",
    benchmark:
        f"{BENCHMARKS}/human_labels.tsv"
    params:
        code=PACKAGE_CODE,
        runs=RUNS,
        unsure_below=config["analysis"]["human_labels"]["unsure_below"],
        sha256=CIFAR10H["sha256"] if CIFAR10H["verify"] else None,
    script:
        "../scripts/human_labels.py"


rule near_duplicates:
    """Every test image's nearest training image, by pixels (flags near-duplicates) and by backbone features."""
    conda:
        CONDA_ENV
    input:
        train=rules.prepare_cifar10.output.train,
        test=rules.prepare_cifar10.output.test,
        train_features=f"results/features/{DEFAULT_NORM}/train.npz",
        test_features=f"results/features/{DEFAULT_NORM}/test.npz",
    output:
        table=f"{ANALYSIS}/near_duplicates.tsv",
        summary=f"{ANALYSIS}/near_duplicates.json",
    log:
        f"{LOGS}/near_duplicates.log",
    benchmark:
        f"{BENCHMARKS}/near_duplicates.tsv"
    threads: 1  # matrix products of small blocks: one thread is as fast on a busy machine
    params:
        code=PACKAGE_CODE,
        settings=canonical(config["analysis"]["near_duplicates"]),
    script:
        "../scripts/near_duplicates.py"


rule summarize_analyses:
    """The analyses as the report shows them: suspects, people vs models, near-duplicate pairs, numbers."""
    conda:
        CONDA_ENV
    input:
        unpack(human_label_outputs),
        label_issues=rules.label_issues.output.table,
        label_issues_summary=rules.label_issues.output.summary,
        near_duplicates=rules.near_duplicates.output.table,
        near_duplicates_summary=rules.near_duplicates.output.summary,
        # the hand-checked pairs that measure the flag's precision and recall (analysis/duplicate_check.py)
        duplicate_sample=project_path(os.path.join(WORKFLOW_DIR, "resources", "near_duplicates_checked.json")),
        train=rules.prepare_cifar10.output.train,
        test=rules.prepare_cifar10.output.test,
        scores=per_run(rules.evaluate_variant.output.scores),
        q6="results/figures/q6/numbers.json",  # rule compare_variants (report.smk): the focus variant
    output:
        suspects=analysis_figure("suspects", "likely label errors"),
        humans=analysis_figure("humans", "models against people"),
        duplicates=analysis_figure("duplicates", "near-duplicates"),
        numbers=f"{ANALYSIS}/numbers.json",
    log:
        f"{LOGS}/summarize_analyses.log",
    benchmark:
        f"{BENCHMARKS}/summarize_analyses.tsv"
    params:
        code=PACKAGE_CODE,
        runs=RUNS,
    script:
        "../scripts/summarize_analyses.py"
