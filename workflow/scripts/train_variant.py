from cmpt726.finetune import train_variant
from cmpt726.snakemake_job import run

run(
    snakemake,
    lambda smk: train_variant(
        smk.input.backbone,
        smk.input.train,
        smk.output.checkpoint,
        smk.output.epochs,
        settings=smk.params.settings,
        seed=int(smk.wildcards.seed),
        device=smk.params.device,
        resume_path=smk.params.resume,
        summary_out=smk.output.summary,
        split_path=smk.input.get("split"),
        code=smk.params.code,
        variant=smk.wildcards.variant,
        choice_path=smk.input.get("choice"),
        searched=smk.params.searched,
    ),
)
