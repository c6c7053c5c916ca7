# Helpers only: the plan's names for the rules, variant × seed expansion, input functions.
from pathlib import Path
from types import SimpleNamespace

from cmpt726.code_digest import STAGES, package_digest, stage_digest
from cmpt726.config import canonical, config_changes, normalization_key, shipped_config, unknown_name_warnings
from cmpt726.device import gpus_per_job
from cmpt726.specs import stacked_variants
from cmpt726.theory import FIGURE_LABELS, QUESTIONS

TWINS = PLAN.twins
TUNING = PLAN.searches
TUNING_DIR = "results/tuning"
SETTINGS = PLAN.settings
RUNS = PLAN.runs
# Feature caches are keyed by normalisation, the only setting they depend on besides the backbone.
NORMALIZATIONS = PLAN.normalizations
# The frozen backbone's features under the training defaults' normalisation: the near-duplicate search's.
DEFAULT_NORM = normalization_key(PLAN.default_normalize)
# The heavy rules claim a GPU only where they will use one; on a CPU they pack by `threads_per_job`.
GPU_PER_JOB = gpus_per_job(config["device"])
# A card is 1000 shares (profiles/default's limit); a job on it claims 1000 // gpu_jobs_per_device.
GPU_SHARE = GPU_PER_JOB * (1000 // config["gpu_jobs_per_device"])
THREADS_PER_JOB = config["threads_per_job"]
# With cuda.heads_on_cpu, a head on cached features trains and scores on the CPU while the rest uses CUDA.
HEADS_ON_CPU = {name for name in SETTINGS if GPU_PER_JOB and config["cuda"]["heads_on_cpu"] and PLAN.cached(name)}
# With cuda.stack_seeds on CUDA: seed list → the variants whose seeds train as one job (rule train_seeds_…).
STACKED = stacked_variants(
    {name: seeds for name, seeds in PLAN.seeds.items() if name not in HEADS_ON_CPU},
    GPU_PER_JOB and config["cuda"]["stack_seeds"],
)
UNSTACKED = "|".join(name for name in SETTINGS if not any(name in names for names in STACKED.values()))
LOGS = "results/logs"
# Every rule's software with `--sdm conda` (the pins of requirements.txt); relative to the rule files.
CONDA_ENV = "../../envs/workflow.yaml"
BENCHMARKS = "results/benchmarks"
# The `code` param: the expensive stages' declared modules, else the whole package (code_digest.py).
STAGE_CODE = {stage: stage_digest(stage, WORKFLOW_DIR) for stage in STAGES}
PACKAGE_CODE = package_digest(WORKFLOW_DIR)
# The report's configuration table: the keys that differ from the config.yaml shipped with the workflow.
SHIPPED_CONFIG = shipped_config(os.path.join(workflow.basedir, "config.yaml"))
CONFIG_CHANGES = config_changes(config, SHIPPED_CONFIG)


wildcard_constraints:
    variant="|".join(PLAN.settings),
    seed=r"\d+",
    split="train|test",
    norm=r"[0-9a-f]{10}",
    n_val=r"\d+",


def job_device(variant):
    """Where a variant's training and scoring run: config `device`, or the CPU for a head (cuda.heads_on_cpu)."""
    return "cpu" if variant in HEADS_ON_CPU else config["device"]


def gpu_claim(wildcards):
    return 0 if wildcards.variant in HEADS_ON_CPU else GPU_PER_JOB


def gpu_share_claim(wildcards):
    return 0 if wildcards.variant in HEADS_ON_CPU else GPU_SHARE


def verbatim(text):
    """A user's text as a param, never formatted by Snakemake (a string param's braces are read as wildcards)."""
    return lambda wildcards: text


def training_spec(wildcards):
    """What one training job trains; a tuned twin also names the configurations its search tried (sorted)."""
    tuned = TWINS.get(wildcards.variant)
    return {
        "variant": wildcards.variant,
        "seed": int(wildcards.seed),
        "settings": SETTINGS[wildcards.variant],
        "device": job_device(wildcards.variant),
        "code": STAGE_CODE["train"],
        "searched": sorted(canonical(TUNING[tuned]["configs"]), key=repr) if tuned else None,
    }


def stacked_spec(seeds):
    """What a stacked job trains: training_spec's, for the given seeds, with the `cuda` settings."""

    def spec(wildcards):
        return {
            **training_spec(SimpleNamespace(variant=wildcards.variant, seed=seeds[0])),
            "seeds": list(seeds),
            "cuda_graph": config["cuda"]["cuda_graph"],
            "cudnn_benchmark": config["cuda"]["cudnn_benchmark"],
        }

    return spec


def trial_spec(wildcards):
    """One trial of a variant's search: the search's plan, the trial's rung and slot, the device."""
    return {
        "variant": wildcards.variant,
        "plan": TUNING[wildcards.variant],
        "rung": int(wildcards.rung),
        "slot": int(wildcards.slot),
        "device": job_device(wildcards.variant),
        "code": STAGE_CODE["trial"],
    }


def downloaded(checkpoint, files, download):
    """An input function: the data files `files`, once the download checkpoint (planned when `download`) is done."""

    def inputs(wildcards):
        if download:
            getattr(checkpoints, checkpoint).get()
        return files

    return inputs


def stale_receipt(path):
    """A download rule's param: the mtime of an earlier receipt at `path`, which vouches for files now gone, so
    that Snakemake downloads again instead of taking it as done."""
    return lambda wildcards: os.stat(path).st_mtime_ns if os.path.exists(path) else None


def variant_input(split):
    """Cached features for frozen-backbone variants, prepared images otherwise."""

    def choose(wildcards):
        if PLAN.cached(wildcards.variant):
            return f"results/features/{normalization_key(SETTINGS[wildcards.variant]['normalize'])}/{split}.npz"
        return f"results/data/cifar10/{split}.npz"

    return choose


def per_run(pattern, variants=None):
    """`pattern` for every (variant, seed) in RUNS, in that order (only those of `variants`, when given)."""
    runs = [(v, s) for v, s in RUNS if variants is None or v in variants]
    return expand(pattern, zip, variant=[v for v, _ in runs], seed=[s for _, s in runs])


def human_label_outputs(wildcards):
    """CIFAR-10H's per-image table and the models-vs-people metrics, when data.cifar10h is enabled."""
    if not config["data"]["cifar10h"]["enabled"]:
        return {}
    return {"human_labels": rules.human_labels.output.table, "human_metrics": rules.human_labels.output.metrics}


def gallery_analyses(wildcards):
    """What the gallery marks on each image."""
    return {
        "label_issues": rules.label_issues.output.table,
        "near_duplicates": rules.near_duplicates.output.table,
        "train_images": rules.prepare_cifar10.output.train,
        **({"human_labels": rules.human_labels.output.table} if config["data"]["cifar10h"]["enabled"] else {}),
    }


def analysis_figure(name, label):
    return report(
        f"results/figures/analysis/{name}.png",
        caption=f"../report/analysis_{name}.rst",
        category="Question 6",
        subcategory="What the test images reveal",
        labels={"figure": label},
    )


def variant_split(wildcards):
    """The validation split a variant trains with (training.validation images held out), or none."""
    n_val = SETTINGS[wildcards.variant]["validation"]
    return {"split": f"results/data/cifar10/validation_{n_val}.npz"} if n_val else {}


def q6_figure(name, caption, label):
    return report(
        f"{Q6_FIGURES}/{name}.png",
        caption=f"../report/{caption}.rst",
        category="Question 6",
        labels={"figure": label},
    )


def backbone_summary(wildcards):
    """The pretraining summary (its CIFAR-100 accuracy) and curves when this workflow trains the backbone."""
    if BACKBONE_SOURCE != "pretrain":
        return {}
    return {
        "backbone": rules.pretrain_backbone.output.summary,
        "backbone_curves": rules.plot_pretraining.output[0],
    }


def project_path(path):
    """`path` relative to the working directory when inside it, else absolute: a moved project plans nothing new."""
    relative = os.path.relpath(path)
    return os.path.abspath(path) if relative.split(os.sep)[0] == os.pardir else relative


def theory_settings(question):
    """What the config sets of a theory question: Q5's data file (`theory.q5.data`), nothing of the others."""
    return config["theory"].get(question, {})


def theory_inputs(question):
    """A theory rule's inputs: the files its settings name when set (Q5's `data`)."""
    spec, settings = QUESTIONS[question], theory_settings(question)
    return {key: preflight.present(settings[key]) for key in spec.files if settings[key]}


def theory_outputs(question):
    """results/theory/<question>/numbers.json and one PNG per figure, each in Snakemake's report."""
    folder = f"results/theory/{question}"
    figures = {
        name: report(
            f"{folder}/{name}.png",
            caption=f"../report/theory_{question}_{name}.rst",
            category="Questions 1-5",
            subcategory=f"Question {question[1:]}",
            labels={"question": question[1:], "figure": FIGURE_LABELS[name]},
        )
        for name in QUESTIONS[question].figures
    }
    return {"numbers": f"{folder}/numbers.json", **figures}


def trial_paths(variant, rung, suffix):
    return [
        f"{TUNING_DIR}/{variant}/rung{rung}/trial{k}{suffix}" for k in range(TUNING[variant]["rungs"][rung]["trials"])
    ]


def trial_inputs(wildcards):
    """What its variant trains on and, after the first rung, the previous rung's records."""
    if wildcards.variant not in TUNING:
        raise ValueError(f"variant {wildcards.variant} is not tuned (config key tuning.variants)")
    rung = int(wildcards.rung)
    inputs = {"backbone": BACKBONE, "train": variant_input("train")(wildcards), **variant_split(wildcards)}
    if rung:
        inputs["previous"] = trial_paths(wildcards.variant, rung - 1, ".json")
    return inputs


def all_trials(wildcards):
    rungs = TUNING[wildcards.variant]["rungs"]
    return [path for rung in range(len(rungs)) for path in trial_paths(wildcards.variant, rung, ".json")]


def twin_choice(wildcards):
    """A tuned twin trains with its variant's choice (an input: a changed choice retrains it)."""
    if wildcards.variant not in TWINS:
        return {}
    return {"choice": f"{TUNING_DIR}/{TWINS[wildcards.variant]}/choice.json"}
