from cmpt726.jobs import run
from cmpt726.training import train_variant

run(
    snakemake,
    lambda smk: train_variant(
        smk.input.backbone,
        smk.input.train,
        smk.input.test,
        smk.output.checkpoint,
        smk.output.epochs,
        settings=smk.params.settings,
        seed=int(smk.wildcards.seed),
        device=smk.params.device,
        resume_path=smk.params.resume,
    ),
)
