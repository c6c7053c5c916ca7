# backbone.source: pretrain. CIFAR-100 (pickle layout under data.cifar100.root, downloaded when
# absent; or an ImageFolder tree at data.cifar100.imagefolder, which wins when set) → compact
# arrays → ResNet-20 trained here → BACKBONE, used by fine-tuning exactly like the published one.
from cmpt726.cifar100 import source_of

CIFAR100_KIND, CIFAR100_SOURCE = source_of(config["data"]["cifar100"])

# As for CIFAR-10: only a missing folder gets a download rule, so no run replaces a user's copy.
if CIFAR100_KIND == "pickle" and not Path(CIFAR100_SOURCE).exists():

    rule download_cifar100:
        """Download CIFAR-100 (torchvision, md5-checked) where data.cifar100.root has none."""
        localrule: True  # a download: compute nodes of a cluster may have no internet
        conda:
            CONDA_ENV
        output:
            protected(directory(CIFAR100_SOURCE)),
        log:
            f"{LOGS}/download_cifar100.log",
        benchmark:
            f"{BENCHMARKS}/download_cifar100.tsv"
        script:
            "../scripts/download_cifar100.py"


rule prepare_cifar100:
    """Read CIFAR-100 (pickle batches or an ImageFolder tree) into compact uint8 arrays."""
    conda:
        CONDA_ENV
    input:
        source=CIFAR100_SOURCE,
    output:
        train="results/data/cifar100/train.npz",
        test="results/data/cifar100/test.npz",
        summary="results/data/cifar100/summary.json",
    log:
        f"{LOGS}/prepare_cifar100.log",
    benchmark:
        f"{BENCHMARKS}/prepare_cifar100.tsv"
    params:
        code=package_code("cifar100"),
        kind=CIFAR100_KIND,
        verify=config["data"]["cifar100"]["verify"],
    script:
        "../scripts/prepare_cifar100.py"


rule pretrain_backbone:
    """Pretrain the ResNet-20 on CIFAR-100 (backbone.source: pretrain), resumable per epoch."""
    conda:
        CONDA_ENV
    input:
        train=rules.prepare_cifar100.output.train,
        test=rules.prepare_cifar100.output.test,
    output:
        backbone=BACKBONE,
        epochs="results/backbone/pretrain_epochs.tsv",
        summary="results/backbone/pretrain_summary.json",
    log:
        f"{LOGS}/pretrain_backbone.log",
    benchmark:
        f"{BENCHMARKS}/pretrain_backbone.tsv"
    threads: 8
    resources:
        gpu=GPU_PER_JOB,
        gpu_share=GPU_SHARE,
    params:
        code=package_code("pretrain"),
        pretrain=canonical(config["backbone"]["pretrain"]),
        device=config["device"],
        # Epoch checkpoint of an interrupted run (not an output, so a failed job keeps it).
        resume="results/backbone/pretrain.resume.pt",
    script:
        "../scripts/pretrain_backbone.py"


rule plot_pretraining:
    """Plot the backbone's CIFAR-100 pretraining curves beside the published top-1."""
    conda:
        CONDA_ENV
    input:
        epochs=rules.pretrain_backbone.output.epochs,
    output:
        report(
            "results/figures/pretrain/curves.png",
            caption="../report/pretrain_curves.rst",
            category="Backbone",
            labels={"figure": "pretraining curves"},
        ),
    log:
        f"{LOGS}/plot_pretraining.log",
    benchmark:
        f"{BENCHMARKS}/plot_pretraining.tsv"
    threads: 1
    params:
        code=package_code("report.figures"),
        published_top1=config["backbone"]["pretrain"]["published_top1"],
    script:
        "../scripts/plot_pretraining.py"
