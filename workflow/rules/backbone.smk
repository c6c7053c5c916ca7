# The CIFAR-100 ResNet-20 from backbone.source, named after it: switching source rebuilds what follows.
BACKBONE_SOURCE = config["backbone"]["source"]
BACKBONE = f"results/backbone/{BACKBONE_SOURCE}.pt"

if BACKBONE_SOURCE == "download":

    rule fetch_backbone:
        """Download the published CIFAR-100 ResNet-20 (torch.hub, sha256-prefix checked)."""
        localrule: True  # a download: compute nodes of a cluster may have no internet
        conda:
            CONDA_ENV
        output:
            BACKBONE,
        log:
            f"{LOGS}/fetch_backbone.log",
        benchmark:
            f"{BENCHMARKS}/fetch_backbone.tsv"
        params:
            url=verbatim(config["backbone"]["url"]),
        script:
            "../scripts/fetch_backbone.py"

elif BACKBONE_SOURCE == "path":

    rule import_backbone:
        """Check a local CIFAR-100 ResNet-20 state_dict (strict load) and use it."""
        conda:
            CONDA_ENV
        input:
            preflight.present(config["backbone"]["path"]),
        output:
            BACKBONE,
        log:
            f"{LOGS}/import_backbone.log",
        benchmark:
            f"{BENCHMARKS}/import_backbone.tsv"
        params:
            code=STAGE_CODE["backbone"],
        script:
            "../scripts/import_backbone.py"

else:  # pretrain: CIFAR-100 → ResNet-20 trained here (rules prepare_cifar100, pretrain_backbone)

    include: "pretrain.smk"
