from cmpt726.snakemake_job import run
from cmpt726.pretrain import pretrain

run(snakemake, lambda smk: pretrain(smk.input.train, smk.input.test, smk.output.backbone, smk.output.epochs,
                                    smk.output.summary, cfg=smk.params.pretrain, device=smk.params.device,
                                    resume_path=smk.params.resume, code=smk.params.code))
