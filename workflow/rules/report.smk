# The assembled report: results → report/report.html (self-contained) → report/report.pdf.
TEMPLATES = os.path.join(WORKFLOW_DIR, "templates")


rule report_html:
    input:
        template=f"{TEMPLATES}/report.html.j2",
        sections=[f"{TEMPLATES}/sections/q6.html.j2", f"{TEMPLATES}/report.css"],
        data=rules.prepare_cifar10.output.summary,
        metrics=per_variant_seed(rules.evaluate_variant.output.metrics),
        epochs=per_variant_seed(rules.train_variant.output.epochs),
        benchmarks=per_variant_seed(f"{BENCHMARKS}/train/{{variant}}/seed{{seed}}.tsv"),
    output:
        "report/report.html",
    params:
        settings=SETTINGS,
        seeds=SEEDS,
        reference=config.get("reference_accuracy", {}),
        backbone=config["backbone"],
        title=config["report"]["title"],
        config=config,
    log:
        f"{LOGS}/report_html.log",
    benchmark:
        f"{BENCHMARKS}/report_html.tsv"
    script:
        "../scripts/report_html.py"


rule report_pdf:
    input:
        rules.report_html.output,
    output:
        "report/report.pdf",
    log:
        f"{LOGS}/report_pdf.log",
    benchmark:
        f"{BENCHMARKS}/report_pdf.tsv"
    script:
        "../scripts/report_pdf.py"
