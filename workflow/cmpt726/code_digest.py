"""The `code` param of every rule: a digest, by syntax tree, of the package code the rule's job runs (no torch).

The expensive stages declare their modules in `STAGES`; every other rule takes `package_digest`. Comments,
docstrings and layout never count, and paths only inside the package (docs/architecture.md).
"""

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE = "cmpt726"
ROOT = Path(__file__).resolve().parents[1]  # the folder that holds the package
# Glue that no stage's result depends on: never part of a stage.
GLUE = ("code_digest", "snakemake_job")

_TRAINER = ("finetune", "stacked", "loop", "models", "runtime", "augment", "device", "files")
# stage → (its entry module, the modules it runs). Names are relative to the package.
STAGES = {
    "data": ("data", ("data", "cifar", "files")),
    "cifar100": ("cifar100", ("cifar100", "cifar", "data", "files")),
    "backbone": ("backbone", ("backbone", "models", "files")),
    "features": ("features", ("features", "models", "runtime", "device", "files")),
    "train": ("finetune", _TRAINER),
    "trial": ("tuning.trials", _TRAINER + ("tuning", "tuning.trials", "tuning.choice")),
    "choice": ("tuning.choice", ("tuning", "tuning.choice", "files")),
    "pretrain": ("pretrain", ("pretrain", "loop", "models", "runtime", "augment", "device", "files")),
    "evaluate": ("evaluation", ("evaluation", "models", "runtime", "device", "files")),
}


def _module_file(root: Path, dotted: str) -> Path | None:
    """cmpt726.a.b → root/cmpt726/a/b.py or root/cmpt726/a/b/__init__.py (None if neither exists)."""
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=None)
def _imports(path: Path, dotted: str) -> tuple[str, ...]:
    """Dotted names of the package modules that `path` (module `dotted`) imports."""
    is_package = path.name == "__init__.py"
    here = dotted.split(".") if is_package else dotted.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append(module)
            # `from . import q6` and `from pkg import mod` import submodules by name.
            found += [f"{module}.{alias.name}" for alias in node.names if alias.name != "*"]
    return tuple(name for name in found if name == PACKAGE or name.startswith(PACKAGE + "."))


def module_sources(workflow_dir, *modules: str) -> list[str]:
    """Sorted paths of the .py files that running `modules` (names relative to cmpt726) executes."""
    root = Path(workflow_dir)
    seen: dict[str, Path] = {}
    todo = [f"{PACKAGE}.{m}" for m in modules]
    for name in todo:
        if _module_file(root, name) is None:
            raise ValueError(f"code_digest: no module {name} under {root}")
    while todo:
        name = todo.pop()
        path = _module_file(root, name)
        # None: a name imported from a module, not a module itself
        if path is None or name in seen or name.removeprefix(PACKAGE + ".") in GLUE:
            continue
        seen[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # importing a.b.c runs a and a.b
        todo += _imports(path, name)
    return sorted({str(p) for p in seen.values()})


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    """The tree without docstrings (the first string statement of a module, class or function body)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@lru_cache(maxsize=None)
def _tree(path: Path, stamp: tuple) -> str:
    """A file's syntax tree without docstrings, as text; parsed once per version (`stamp`) of the file."""
    return ast.dump(_strip_docstrings(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))),
                    annotate_fields=False)


def _digest(root: Path, paths) -> str:
    digest = hashlib.sha256()
    for path in sorted(map(Path, paths)):
        info = path.stat()
        tree = _tree(path, (info.st_size, info.st_mtime_ns))
        digest.update(f"{path.relative_to(root).as_posix()}\0{tree}\0".encode())
    return digest.hexdigest()[:16]


def stage_files(stage: str, root=ROOT) -> list[Path]:
    """The package files of a stage's declared modules, with the package's own `__init__.py`."""
    root = Path(root)
    names = [PACKAGE] + [f"{PACKAGE}.{m}" for m in STAGES[stage][1]]
    files = [_module_file(root, name) for name in names]
    missing = [name for name, path in zip(names, files) if path is None]
    if missing:
        raise ValueError(f"code_digest: stage {stage} names modules that do not exist: {missing}")
    return files


def stage_digest(stage: str, root=ROOT) -> str:
    """The digest of what an expensive stage runs (`STAGES`)."""
    return _digest(Path(root), stage_files(stage, root))


def package_digest(root=ROOT) -> str:
    """The digest of the whole package: the `code` of the cheap rules."""
    root = Path(root)
    return _digest(root, (root / PACKAGE).rglob("*.py"))
