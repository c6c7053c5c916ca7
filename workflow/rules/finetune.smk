# Frozen features once, then every variant × seed: train, evaluate.


rule cache_features:
    """The frozen backbone's 64-d features of every image, computed once for all head-only variants."""
    conda:
        CONDA_ENV
    input:
        backbone=BACKBONE,
        images="results/data/cifar10/{split}.npz",
    output:
        "results/features/{norm}/{split}.npz",
    log:
        f"{LOGS}/cache_features/{{norm}}/{{split}}.log",
    benchmark:
        f"{BENCHMARKS}/cache_features/{{norm}}/{{split}}.tsv"
    threads: THREADS_PER_JOB
    resources:
        gpu=GPU_PER_JOB,
        gpu_share=GPU_SHARE,
    params:
        code=STAGE_CODE["features"],
        normalize=lambda wildcards: NORMALIZATIONS[wildcards.norm],
        device=config["device"],
    script:
        "../scripts/cache_features.py"


rule train_variant:
    """Fine-tune one variant with one seed; keep the best validation epoch; resumable per epoch."""
    conda:
        CONDA_ENV
    input:
        unpack(variant_split),
        unpack(twin_choice),
        backbone=BACKBONE,
        train=variant_input("train"),
    output:
        checkpoint="results/models/{variant}/seed{seed}.pt",
        epochs="results/metrics/{variant}/seed{seed}.epochs.tsv",
        # Training seconds and peak memory, as the job measured them (the report's cost columns).
        summary="results/metrics/{variant}/seed{seed}.train.json",
    log:
        f"{LOGS}/train/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{variant}}/seed{{seed}}.tsv"
    wildcard_constraints:
        variant=UNSTACKED,
    threads: THREADS_PER_JOB
    resources:
        gpu=gpu_claim,
        gpu_share=gpu_share_claim,
    params:
        spec=training_spec,
        # Epoch checkpoints of an interrupted run (not an output, so a failed job keeps them).
        resume="results/models/{variant}/seed{seed}.resume.pt",
    script:
        "../scripts/train_variant.py"


for _seeds, _variants in STACKED.items():

    rule:
        """Every seed of a variant as one stacked model in one CUDA job (config cuda.stack_seeds)."""
        name:
            "train_seeds_" + "_".join(map(str, _seeds))
        conda:
            CONDA_ENV
        input:
            unpack(variant_split),
            unpack(twin_choice),
            backbone=BACKBONE,
            train=variant_input("train"),
        output:
            checkpoint=expand("results/models/{{variant}}/seed{seed}.pt", seed=_seeds),
            epochs=expand("results/metrics/{{variant}}/seed{seed}.epochs.tsv", seed=_seeds),
            summary=expand("results/metrics/{{variant}}/seed{seed}.train.json", seed=_seeds),
        log:
            f"{LOGS}/train/{{variant}}/seeds.log",
        benchmark:
            f"{BENCHMARKS}/train/{{variant}}/seeds.tsv"
        wildcard_constraints:
            variant="|".join(_variants),
        threads: THREADS_PER_JOB
        resources:
            gpu=gpu_claim,
            gpu_share=gpu_share_claim,
        params:
            spec=stacked_spec(_seeds),
        script:
            "../scripts/train_seeds.py"


rule evaluate_variant:
    """Score one fine-tuned model on the test set: per-image scores and metrics."""
    conda:
        CONDA_ENV
    input:
        checkpoint=rules.train_variant.output.checkpoint,
        test=variant_input("test"),
    output:
        scores="results/scores/{variant}/seed{seed}.tsv",
        metrics="results/metrics/{variant}/seed{seed}.json",
    log:
        f"{LOGS}/evaluate/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{variant}}/seed{{seed}}.tsv"
    threads: THREADS_PER_JOB
    resources:
        gpu=gpu_claim,
        gpu_share=gpu_share_claim,
    params:
        code=STAGE_CODE["evaluate"],
        normalize=lambda wildcards: SETTINGS[wildcards.variant]["normalize"],
        channels_last=lambda wildcards: SETTINGS[wildcards.variant]["channels_last"],
        device=lambda wildcards: job_device(wildcards.variant),
    script:
        "../scripts/evaluate_variant.py"
