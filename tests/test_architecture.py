"""The shape of the house: the library never imports click or rich, and no stage
imports another stage."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import corpus_clean

PACKAGE = Path(corpus_clean.__file__).parent
LIBRARY = sorted(
    p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__", "cli")
) + sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
#: Each stage, and the modules that make it up.
STAGES = {
    "split": {"split"},
    "clean": {"clean"},
    "learn": {"learn"},
    "dedup": {"dedup", "minhash", "shingles"},
}
#: What any stage may build on.
FOUNDATION = {"record", "io", "options", "stats", "errors"}
#: Compiled helpers, private to the modules that import them.
NATIVE = {"shingles": {"_fast"}, "minhash": {"_fast"}, "dedup": {"_fast"}, "io": {"_fast"}}


def test_the_library_never_imports_click_or_rich() -> None:
    assert {"pipeline", "io", "split", "clean", "dedup", "minhash", "shingles"} <= set(LIBRARY)
    code = (
        "import importlib, json, sys\n"
        f"for name in {LIBRARY!r}:\n"
        "    importlib.import_module('corpus_clean.' + name)\n"
        "ui = sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'rich'))\n"
        "print(json.dumps(ui))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []


def test_the_cli_does_import_them() -> None:
    # The check above would pass vacuously if sys.modules did not show such imports.
    code = "import sys, corpus_clean.cli; print('click' in sys.modules and 'rich' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "True"


def package_imports(module: str) -> set[str]:
    """The corpus_clean modules a module (or a package: all its files) imports, relative
    or absolute; a package's imports of its own modules are left out."""
    if (PACKAGE / module).is_dir():
        files, top = sorted((PACKAGE / module).glob("*.py")), 2
    else:
        files, top = [PACKAGE / f"{module}.py"], 1
    found: set[str] = set()
    for file in files:
        found |= _imports(ast.parse(file.read_text("utf-8")), top)
    return found


def _imports(tree: ast.Module, top: int) -> set[str]:
    """What ``tree`` imports of corpus_clean; ``top`` is the level of a relative import
    from the package's top (1 in a module of it, 2 in a module of a subpackage)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == top and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == top:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("corpus_clean."):
                found.add(node.module.split(".")[1])
            elif node.module == "corpus_clean":
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.split(".")[1]
                for alias in node.names
                if alias.name.startswith("corpus_clean.")
            )
    return found


def test_import_scanner_sees_imports() -> None:
    assert {"clean", "dedup", "split", "io"} <= package_imports("pipeline")


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_no_stage_imports_another_stage(stage: str) -> None:
    others = set().union(*(modules for name, modules in STAGES.items() if name != stage))
    for module in STAGES[stage]:
        imported = package_imports(module)
        assert not imported & others, f"{module} imports {imported & others}"
        allowed = FOUNDATION | STAGES[stage] | NATIVE.get(module, set())
        assert imported <= allowed, f"{module} imports {imported}"


def test_dedup_parts_are_layered() -> None:
    # shingles <- minhash <- dedup, never the other way round.
    assert package_imports("shingles") <= FOUNDATION | NATIVE["shingles"]
    assert package_imports("minhash") <= FOUNDATION | {"shingles"} | NATIVE["minhash"]


def test_foundation_imports_no_stage_and_record_imports_nothing() -> None:
    stages = set().union(*STAGES.values())
    for module in FOUNDATION:
        assert not package_imports(module) & (stages | {"pipeline", "cli"}), module
    assert package_imports("record") == set()
