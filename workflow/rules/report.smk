# Q6 figures from the results; the assembled report: report/report.html (self-contained) → report/report.pdf;
# the per-image gallery of one variant: report/gallery.html (interactive) and report/gallery.pdf (print grid).
# Figures and tables carry report(...) so that `snakemake --report report.zip` shows them too.
TEMPLATES = os.path.join(WORKFLOW_DIR, "templates")
Q6_FIGURES = "results/figures/q6"
# The gallery shows report.gallery_variant (null: the first variant), first seed.
GALLERY_VARIANT = config["report"]["gallery_variant"] or VARIANTS[0]
GALLERY_SEED = SEEDS[0]


rule plot_q6:
    input:
        test=rules.prepare_cifar10.output.test,
        metrics=per_variant_seed(rules.evaluate_variant.output.metrics),
        scores=per_variant_seed(rules.evaluate_variant.output.scores),
        epochs=per_variant_seed(rules.train_variant.output.epochs),
        train_summaries=per_variant_seed(rules.train_variant.output.summary),
        code=package_sources("report.q6"),
    output:
        curves=q6_figure("curves", "q6_curves", "training curves"),
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
        f"{LOGS}/plot_q6.log",
    benchmark:
        f"{BENCHMARKS}/plot_q6.tsv"
    threads: 1
    params:
        settings=SETTINGS,
        seeds=SEEDS,
        reference=config.get("reference_accuracy", {}),
    script:
        "../scripts/plot_q6.py"


# Questions 1-5: each rule's outputs (numbers.json + figures) feed one section of the report.
THEORY = {f"q{n}": getattr(rules, f"theory_q{n}").output for n in range(1, 6)}


rule report_html:
    input:
        unpack(backbone_summary),
        **{f"theory_{question}": outputs for question, outputs in THEORY.items()},
        template=f"{TEMPLATES}/report.html.j2",
        sections=[f"{TEMPLATES}/sections/{q}.html.j2" for q in [*THEORY, "q6"]]
        + [f"{TEMPLATES}/report.css"],
        data=rules.prepare_cifar10.output.summary,
        q6=rules.plot_q6.output,
        code=package_sources("report.assemble"),
    output:
        "report/report.html",
    log:
        f"{LOGS}/report_html.log",
    benchmark:
        f"{BENCHMARKS}/report_html.tsv"
    threads: 1
    params:
        backbone=config["backbone"],
        gallery={"variant": GALLERY_VARIANT, "seed": GALLERY_SEED},
        theory=list(THEORY),
        title=config["report"]["title"],
        config=config,
        repo=workflow.basedir,
    script:
        "../scripts/report_html.py"


rule report_pdf:
    input:
        html=rules.report_html.output[0],
        code=package_sources("report.render"),
    output:
        "report/report.pdf",
    log:
        f"{LOGS}/report_pdf.log",
    benchmark:
        f"{BENCHMARKS}/report_pdf.tsv"
    threads: 1
    script:
        "../scripts/report_pdf.py"


rule gallery_html:
    input:
        template=f"{TEMPLATES}/gallery.html.j2",
        images=rules.prepare_cifar10.output.test,
        scores=expand(
            rules.evaluate_variant.output.scores,
            variant=GALLERY_VARIANT,
            seed=GALLERY_SEED,
        ),
        code=package_sources("report.gallery"),
    output:
        report(
            "report/gallery.html",
            caption="../report/gallery.rst",
            category="Gallery",
            labels={"variant": GALLERY_VARIANT, "seed": str(GALLERY_SEED)},
        ),
    log:
        f"{LOGS}/gallery_html.log",
    benchmark:
        f"{BENCHMARKS}/gallery_html.tsv"
    threads: 1
    params:
        variant=GALLERY_VARIANT,
        seed=GALLERY_SEED,
        title=config["report"]["title"],
    script:
        "../scripts/gallery_html.py"


rule gallery_pdf:
    input:
        template=f"{TEMPLATES}/gallery_print.html.j2",
        images=rules.prepare_cifar10.output.test,
        scores=rules.gallery_html.input.scores,
        code=package_sources("report.gallery"),
    output:
        "report/gallery.pdf",
    log:
        f"{LOGS}/gallery_pdf.log",
    benchmark:
        f"{BENCHMARKS}/gallery_pdf.tsv"
    threads: 1
    params:
        variant=GALLERY_VARIANT,
        seed=GALLERY_SEED,
        title=config["report"]["title"],
    script:
        "../scripts/gallery_pdf.py"
