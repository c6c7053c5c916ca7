"""The package's .py files a job runs, found from their imports (no torch here: the rules call it).

A rule names the modules its script calls, e.g. `code_digest(root, "finetune")`; this finds
every module of the package they import, directly or not (relative or absolute imports,
also those inside functions), and the `__init__.py` of every package on the way, and digests
their syntax trees: the rule's `code` param, so that a change of meaning reruns exactly the
rules that run it and a comment or docstring edit reruns nothing.
`cmpt726.jobs` (logging glue of every script) is not followed unless named.
"""

from __future__ import annotations

import ast
import hashlib
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
            raise ValueError(f"code_digest: no module {name} under {root}")
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


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    """The tree without docstrings (the first string statement of a module, class or function body)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def code_digest(workflow_dir, *modules: str) -> str:
    """A digest of what running `modules` executes, by meaning: the syntax trees of every package file
    they import (comments, docstrings and layout left out), keyed by their paths inside the package.

    A rule passes it as a param, so a comment or docstring edit plans nothing, a real change reruns
    exactly the rules that run the changed code, and a moved or cloned project plans nothing new.
    """
    root = Path(workflow_dir)
    digest = hashlib.sha256()
    for path in module_sources(root, *modules):
        relative = Path(path).relative_to(root).as_posix()
        tree = _strip_docstrings(ast.parse(Path(path).read_text(encoding="utf-8"), filename=relative))
        digest.update(f"{relative}\0{ast.dump(tree, annotate_fields=False)}\0".encode())
    return digest.hexdigest()[:16]


def package_digest(*modules: str) -> str:
    """`code_digest` of `modules` of this package itself, for a direct Python caller of a trainer that
    passes no digest (the workflow passes its rule's `code` param, the same number)."""
    return code_digest(Path(__file__).resolve().parents[1], *modules)
