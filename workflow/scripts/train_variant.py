from cmpt726.finetune import train_variant, with_choice
from cmpt726.jobs import run

run(
    snakemake,
    lambda smk: train_variant(
        smk.input.backbone,
        smk.input.train,
        smk.output.checkpoint,
        smk.output.epochs,
        # A tuned twin: the settings its variant's search chose.
        settings=with_choice(smk.params.settings, smk.input.get("choice")),
        seed=int(smk.wildcards.seed),
        device=smk.params.device,
        resume_path=smk.params.resume,
        summary_out=smk.output.summary,
        split_path=smk.input.get("split"),
        code=smk.params.code,
        variant=smk.wildcards.variant,
    ),
)
