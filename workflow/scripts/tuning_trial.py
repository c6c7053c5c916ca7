from cmpt726.snakemake_job import run
from cmpt726.tuning.trials import run_trial

run(
    snakemake,
    lambda smk: run_trial(
        smk.input.backbone,
        smk.input.train,
        smk.input.split,
        smk.output.record,
        smk.output.epochs,
        smk.output.state,
        plan=smk.params.plan,
        rung=int(smk.wildcards.rung),
        slot=int(smk.wildcards.slot),
        device=smk.params.device,
        previous=list(smk.input.get("previous", [])),
        previous_states=list(smk.input.get("states", [])),
    ),
)
