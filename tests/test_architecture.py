"""The package's shape (docs/architecture.md): its layers, its stages' modules, a planning side free of torch."""

import shutil
import sys
from pathlib import Path

import pytest
from conftest import run_python

from cmpt726 import code_digest

ROOT = Path(__file__).resolve().parents[1] / "workflow"
# Lower layers never import higher ones (the longest matching prefix gives a module its layer).
LAYERS = {
    "foundations": ["cmpt726", "files", "device", "code_digest", "text", "config", "models", "runtime", "augment",
                    "stats", "plotting", "cifar"],
    "data and planning": ["data", "cifar100", "tuning", "tuning.plan", "tuning.choice", "specs", "preflight", "loop", "stacked",
                          "backbone", "evaluation", "features"],
    "computation": ["finetune", "pretrain", "theory", "analysis"],
    "results": ["tuning.trials", "tuning.summary", "report", "compare_runs"],
    "entry points": ["snakemake_job", "fake_data", "preflight.measure"],
}
RANK = {name: rank for rank, names in enumerate(LAYERS.values()) for name in names}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "cmpt726").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module → the package modules it imports (at any depth of its code), names without the package prefix."""
    found, graph = modules(), {}
    for name, path in found.items():
        deps = set()
        for dep in code_digest._imports(path, name):
            while dep not in found and "." in dep:  # `from .x import f`: the module x
                dep = dep.rsplit(".", 1)[0]
            if dep in found and dep not in (name, "cmpt726"):
                deps.add(dep.removeprefix("cmpt726."))
        graph[name.removeprefix("cmpt726.") if name != "cmpt726" else name] = deps
    return graph


def layer(module: str) -> int:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in RANK:
            return RANK[".".join(parts[:i])]
    raise AssertionError(f"module {module} has no layer in tests/test_architecture.py (and docs/architecture.md)")


def test_no_import_circle():
    graph = import_graph()

    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for dep in graph.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    assert [name for name in graph if name in reachable(name)] == []


def test_imports_go_down_the_layers_only():
    upward = [f"{name} ({layer(name)}) imports {dep} ({layer(dep)})"
              for name, deps in import_graph().items() for dep in sorted(deps) if layer(dep) > layer(name)]
    assert upward == []


def test_a_circle_and_an_upward_import_would_be_seen(tmp_path, monkeypatch):
    """The checks above on a planted package: finetune importing report, report importing finetune."""
    planted = tmp_path / "cmpt726"
    (planted / "report").mkdir(parents=True)
    (planted / "__init__.py").write_text("")
    (planted / "finetune.py").write_text("from .report import x\n")
    (planted / "report" / "__init__.py").write_text("from ..finetune import y\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    code_digest._imports.cache_clear()
    graph = import_graph()
    assert graph["finetune"] == {"report"} and graph["report"] == {"finetune"}
    with pytest.raises(AssertionError):
        test_no_import_circle()
    with pytest.raises(AssertionError):
        test_imports_go_down_the_layers_only()
    code_digest._imports.cache_clear()


@pytest.mark.parametrize("stage", sorted(code_digest.STAGES))
def test_each_stage_declares_every_module_it_runs(stage):
    entry, _ = code_digest.STAGES[stage]
    runs = {Path(p) for p in code_digest.module_sources(ROOT, entry)}
    declared = set(code_digest.stage_files(stage, ROOT))
    assert sorted(map(str, runs - declared)) == []


def test_a_stage_digest_follows_its_modules_only(tmp_path):
    """A change of meaning in a declared module changes the stage's digest; a comment does not; a module outside
    the stage (the report) changes only the package digest."""
    shutil.copytree(ROOT / "cmpt726", tmp_path / "cmpt726")
    before = {stage: code_digest.stage_digest(stage, tmp_path) for stage in code_digest.STAGES}
    package = code_digest.package_digest(tmp_path)
    loop = tmp_path / "cmpt726" / "loop.py"
    loop.write_text(loop.read_text() + "\n# a comment\n")
    assert {s: code_digest.stage_digest(s, tmp_path) for s in before} == before
    report = tmp_path / "cmpt726" / "report" / "figures.py"
    report.write_text(report.read_text() + "\nX = 1\n")
    assert {s: code_digest.stage_digest(s, tmp_path) for s in before} == before
    assert code_digest.package_digest(tmp_path) != package
    loop.write_text(loop.read_text() + "\nY = 2\n")
    changed = {s for s in before if code_digest.stage_digest(s, tmp_path) != before[s]}
    assert changed == {"train", "trial", "pretrain"}


def test_the_planning_side_imports_without_torch():
    """The Snakefile, the pre-flight and the job glue plan without torch (it would slow every DAG build)."""
    proc = run_python("import sys; sys.modules['torch'] = None\n"
                      "from cmpt726 import specs, preflight, device, code_digest, snakemake_job, config\n"
                      "from cmpt726.tuning import plan, choice\n", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
