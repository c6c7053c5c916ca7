# CIFAR-10: download when absent, then prepare compact uint8 arrays once.
from cmpt726.cifar import CIFAR10, files as layout_files

CIFAR10_DIR = str(Path(config["data"]["cifar10"]["root"]) / CIFAR10.folder)
# Every batch file is an input of its own: a file replaced in place (same folder mtime) reruns prepare.
CIFAR10_FILES = [str(Path(CIFAR10_DIR) / name) for name in layout_files(CIFAR10)]
DOWNLOADS = "results/downloads"

# The data root may be shared by runs, so no rule outputs a file there (Snakemake deletes a failed job's
# outputs): a download's output is a receipt, and only a folder holding none of the files gets a download rule.
CIFAR10_DOWNLOAD = not any(map(os.path.exists, CIFAR10_FILES))

if CIFAR10_DOWNLOAD:

    # A checkpoint: its readers then name the data files as inputs (`downloaded`), as in a run that found them.
    checkpoint download_cifar10:
        """Download CIFAR-10 (torchvision, md5-checked) where data.cifar10.root has none."""
        localrule: True  # a download: compute nodes of a cluster may have no internet
        conda:
            CONDA_ENV
        output:
            f"{DOWNLOADS}/cifar10.json",
        log:
            f"{LOGS}/download_cifar10.log",
        benchmark:
            f"{BENCHMARKS}/download_cifar10.tsv"
        params:
            folder=verbatim(CIFAR10_DIR),
            url=verbatim(config["data"]["cifar10"]["url"]),
            receipt_seen=stale_receipt(f"{DOWNLOADS}/cifar10.json"),
        script:
            "../scripts/download_cifar10.py"


rule prepare_cifar10:
    """Read the CIFAR-10 batches once (md5, shapes, labels) into compact uint8 arrays."""
    conda:
        CONDA_ENV
    input:
        batches=downloaded("download_cifar10", CIFAR10_FILES, CIFAR10_DOWNLOAD),
    output:
        train="results/data/cifar10/train.npz",
        test="results/data/cifar10/test.npz",
        summary="results/data/cifar10/summary.json",
    log:
        f"{LOGS}/prepare_cifar10.log",
    benchmark:
        f"{BENCHMARKS}/prepare_cifar10.tsv"
    params:
        code=STAGE_CODE["data"],
        folder=verbatim(CIFAR10_DIR),
        verify=config["data"]["cifar10"]["verify"],
        subset=config["data"]["subset"],
    script:
        "../scripts/prepare_cifar10.py"


rule split_cifar10:
    """Hold out a validation split of the training images (stratified, data.split_seed)."""
    conda:
        CONDA_ENV
    input:
        train=rules.prepare_cifar10.output.train,
    output:
        "results/data/cifar10/validation_{n_val}.npz",
    log:
        f"{LOGS}/split_cifar10/validation_{{n_val}}.log",
    benchmark:
        f"{BENCHMARKS}/split_cifar10/validation_{{n_val}}.tsv"
    params:
        code=STAGE_CODE["data"],
        seed=config["data"]["split_seed"],
    script:
        "../scripts/split_cifar10.py"


# CIFAR-10H (human labels of the test images), only when data.cifar10h.enabled; downloaded as CIFAR-10 is.
CIFAR10H = config["data"]["cifar10h"]
CIFAR10H_COUNTS = str(Path(CIFAR10H["root"]) / "cifar10h-counts.npy")
CIFAR10H_DOWNLOAD = CIFAR10H["enabled"] and not Path(CIFAR10H_COUNTS).exists()

if CIFAR10H_DOWNLOAD:

    checkpoint download_cifar10h:
        """Download CIFAR-10H's vote counts (sha256-checked) where data.cifar10h.root has none."""
        localrule: True  # a compute node may have no internet
        conda:
            CONDA_ENV
        output:
            f"{DOWNLOADS}/cifar10h.json",
        log:
            f"{LOGS}/download_cifar10h.log",
        params:
            counts=verbatim(CIFAR10H_COUNTS),
            url=verbatim(CIFAR10H["url"]),
            sha256=CIFAR10H["sha256"],
            receipt_seen=stale_receipt(f"{DOWNLOADS}/cifar10h.json"),
        script:
            "../scripts/download_cifar10h.py"
