# Q6 figures; the report (HTML → PDF) and the per-image gallery (HTML, and a print grid of the focus variant).
TEMPLATES = project_path(os.path.join(WORKFLOW_DIR, "templates"))
Q6_FIGURES = "results/figures/q6"


rule compare_variants:
    """Q6: variant table with intervals, paired tests, figures and every number of the discussion."""
    conda:
        CONDA_ENV
    input:
        test=rules.prepare_cifar10.output.test,
        # Only its digest, for numbers.json (runs compared by cmpt726.compare_runs).
        backbone=BACKBONE,
        metrics=per_run(rules.evaluate_variant.output.metrics),
        scores=per_run(rules.evaluate_variant.output.scores),
        epochs=per_run(rules.train_variant.output.epochs),
        # What each run trained with and what it cost, as its training job recorded it.
        train_summaries=per_run(rules.train_variant.output.summary),
    output:
        curves=q6_figure("curves", "q6_curves", "training curves"),
        variants=q6_figure("variants", "q6_intervals", "accuracy with 95% intervals"),
        pairs=q6_figure("pairs", "q6_pairs", "paired comparisons"),
        confusion=q6_figure("confusion", "q6_confusion", "confusion matrix"),
        per_class=q6_figure("per_class", "q6_per_class", "per-class accuracy"),
        reliability=q6_figure("reliability", "q6_reliability", "reliability diagram"),
        mistakes=q6_figure("mistakes", "q6_mistakes", "confident mistakes"),
        table=report(
            "results/tables/q6_variants.tsv",
            caption="../report/q6_variants.rst",
            category="Question 6",
            labels={"figure": "variant table"},
        ),
        numbers=f"{Q6_FIGURES}/numbers.json",
    log:
        f"{LOGS}/compare_variants.log",
    benchmark:
        f"{BENCHMARKS}/compare_variants.tsv"
    params:
        code=PACKAGE_CODE,
        # Canonical slices (keys sorted): a --config that changes no value plans nothing here.
        spec={
            **canonical(
                {
                    "runs": RUNS,
                    "reference": config["reference_accuracy"],
                    "statistics": {
                        k: config["report"][k]
                        for k in ("alpha", "bootstrap_replicates", "comparisons", "smallest_effect")
                    },
                    "focus": config["report"]["gallery_variant"],
                    "replica_2019": config["training"]["replicate_2019_bugs"],
                }
            ),
            # twin → its variant, in config order: the report sets each beside the assignment's setting.
            "twins": TWINS,
            "recipes": PLAN.recipes,
        },
    script:
        "../scripts/compare_variants.py"


# Questions 1-5: each rule's outputs (numbers.json + figures) feed one section of the report.
THEORY = {f"q{n}": getattr(rules, f"theory_q{n}").output for n in range(1, 6)}


rule report_html:
    """The assignment's answer as one self-contained HTML file (Q1-Q6, provenance)."""
    conda:
        CONDA_ENV
    input:
        unpack(backbone_summary),
        **{f"theory_{question}": outputs for question, outputs in THEORY.items()},
        template=f"{TEMPLATES}/report.html.j2",
        sections=[f"{TEMPLATES}/sections/{q}.html.j2" for q in [*THEORY, "q6", "tuning", "analysis"]]
        + [f"{TEMPLATES}/report.css"],
        data=rules.prepare_cifar10.output.summary,
        q6=rules.compare_variants.output,
        analysis=rules.summarize_analyses.output,
        # tuning.enabled: what the tuning saw (figure, table of choices and their cost, convergence).
        tuning=rules.plot_tuning.output if TWINS else [],
    output:
        html="report/report.html",
    log:
        f"{LOGS}/report_html.log",
    benchmark:
        f"{BENCHMARKS}/report_html.tsv"
    params:
        code=PACKAGE_CODE,
        # Of the config only what differs from the shipped config.yaml, for the provenance table.
        spec=verbatim(
            {
                "title": config["report"]["title"],
                "backbone": canonical(config["backbone"]),
                "theory": list(THEORY),
                "config_changes": CONFIG_CHANGES,
            }
        ),
    script:
        "../scripts/report_html.py"


rule report_pdf:
    """report/report.html printed to A4 by wkhtmltopdf."""
    conda:
        CONDA_ENV
    input:
        html=rules.report_html.output[0],
    output:
        "report/report.pdf",
    log:
        f"{LOGS}/report_pdf.log",
    benchmark:
        f"{BENCHMARKS}/report_pdf.tsv"
    params:
        code=PACKAGE_CODE,
    script:
        "../scripts/report_pdf.py"


rule gallery_html:
    """Every test image with its scores: one self-contained, sortable and filterable HTML file."""
    conda:
        CONDA_ENV
    input:
        unpack(gallery_analyses),
        template=f"{TEMPLATES}/gallery.html.j2",
        script=f"{TEMPLATES}/gallery.js",
        images=rules.prepare_cifar10.output.test,
        scores=per_run(rules.evaluate_variant.output.scores),
        q6=rules.compare_variants.output.numbers,
    output:
        report(
            "report/gallery.html",
            caption="../report/gallery.rst",
            category="Gallery",
            labels={"file": "gallery.html"},
        ),
    log:
        f"{LOGS}/gallery_html.log",
    benchmark:
        f"{BENCHMARKS}/gallery_html.tsv"
    params:
        code=PACKAGE_CODE,
        runs=RUNS,
        title=verbatim(config["report"]["title"]),
    script:
        "../scripts/gallery_html.py"


rule gallery_pdf:
    """Every test image of the focus variant with its scores, as a print grid (wkhtmltopdf)."""
    conda:
        CONDA_ENV
    input:
        unpack(gallery_analyses),
        template=f"{TEMPLATES}/gallery_print.html.j2",
        images=rules.prepare_cifar10.output.test,
        scores=per_run(rules.evaluate_variant.output.scores),
        q6=rules.compare_variants.output.numbers,
    output:
        "report/gallery.pdf",
    log:
        f"{LOGS}/gallery_pdf.log",
    benchmark:
        f"{BENCHMARKS}/gallery_pdf.tsv"
    params:
        code=PACKAGE_CODE,
        runs=RUNS,
        title=verbatim(config["report"]["title"]),
    script:
        "../scripts/gallery_pdf.py"
