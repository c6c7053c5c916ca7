"""The package's .py files a job runs, found from their imports (no torch here: the rules call it).

A rule lists the modules its script calls, e.g. `package_sources("training")`; this adds
every module of the package they import, directly or not (relative or absolute imports,
also those inside functions), and the `__init__.py` of every package on the way. The
rules declare these files as inputs, so editing one reruns exactly the rules that run it.
`cmpt726.jobs` (logging glue of every script) is not followed unless named.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = "cmpt726"


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
            raise ValueError(f"package_sources: no module {name} under {root}")
    while todo:
        name = todo.pop()
        path = _module_file(root, name)
        if path is None or name in seen:  # a name imported from a module, not a module itself
            continue
        seen[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # importing a.b.c runs a and a.b
        todo += _imports(path, name)
    return sorted({str(p) for p in seen.values()})
