# backbone.source: pretrain. CIFAR-100 (pickle layout or ImageFolder tree) → arrays → ResNet-20 → BACKBONE.
from cmpt726.cifar import CIFAR100, files as layout_files
from cmpt726.cifar100 import source_of, tree_digest

CIFAR100_KIND, CIFAR100_SOURCE = source_of(config["data"]["cifar100"])
# The pickle files are inputs one by one; an ImageFolder tree is the folder plus a digest of its files.
CIFAR100_FILES = (
    [str(Path(CIFAR100_SOURCE) / name) for name in layout_files(CIFAR100)]
    if CIFAR100_KIND == "pickle"
    else preflight.present(CIFAR100_SOURCE)
)

# As for CIFAR-10: only a folder holding none of the files gets a download rule, whose output is a receipt.
CIFAR100_DOWNLOAD = CIFAR100_KIND == "pickle" and not any(map(os.path.exists, CIFAR100_FILES))

if CIFAR100_DOWNLOAD:

    checkpoint download_cifar100:
        """Download CIFAR-100 (torchvision, md5-checked) where data.cifar100.root has none."""
        localrule: True  # a download: compute nodes of a cluster may have no internet
        conda:
            CONDA_ENV
        output:
            f"{DOWNLOADS}/cifar100.json",
        log:
            f"{LOGS}/download_cifar100.log",
        benchmark:
            f"{BENCHMARKS}/download_cifar100.tsv"
        params:
            folder=verbatim(CIFAR100_SOURCE),
            receipt_seen=stale_receipt(f"{DOWNLOADS}/cifar100.json"),
        script:
            "../scripts/download_cifar100.py"


rule prepare_cifar100:
    """Read CIFAR-100 (pickle batches or an ImageFolder tree) into compact uint8 arrays."""
    conda:
        CONDA_ENV
    input:
        source=downloaded("download_cifar100", CIFAR100_FILES, CIFAR100_DOWNLOAD),
    output:
        train="results/data/cifar100/train.npz",
        test="results/data/cifar100/test.npz",
        summary="results/data/cifar100/summary.json",
    log:
        f"{LOGS}/prepare_cifar100.log",
    benchmark:
        f"{BENCHMARKS}/prepare_cifar100.tsv"
    params:
        code=STAGE_CODE["cifar100"],
        kind=CIFAR100_KIND,
        # The folder the files lie in (pickle), or the tree itself (imagefolder).
        source=verbatim(CIFAR100_SOURCE),
        # Evaluated only when the job is planned: an ImageFolder tree's files, edited in place, rerun it.
        tree=lambda wildcards: (
            tree_digest(CIFAR100_SOURCE)
            if CIFAR100_KIND == "imagefolder" and preflight.present(CIFAR100_SOURCE)
            else None
        ),
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
        code=STAGE_CODE["pretrain"],
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
    params:
        code=PACKAGE_CODE,
        published_top1=config["backbone"]["pretrain"]["published_top1"],
    script:
        "../scripts/plot_pretraining.py"
