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


def module_name(path: Path) -> str:
    """``corpus_clean/dedup/minhash.py`` -> ``dedup.minhash``; a package is its ``__init__``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


LIBRARY = sorted(
    name for name in map(module_name, PACKAGE.rglob("*.py")) if name not in ("", "__main__", "cli")
)
#: Each stage, and the modules that make it up.
STAGES = {
    "split": {"split"},
    "clean": {"clean"},
    "learn": {"learn"},
    "dedup": {name for name in LIBRARY if name.split(".")[0] == "dedup"},
}
#: What any stage may build on.
FOUNDATION = {"record", "io", "options", "stats", "errors"}
#: What a stage may see of the index: the reader and writer protocols, not a backend.
STORAGE = {"storage"}
#: Compiled helpers, private to the modules that import them.
NATIVE = {
    "dedup.shingles": {"_fast"},
    "dedup.minhash": {"_fast"},
    "dedup.verify": {"_fast"},
    "io": {"_fast"},
}


def test_the_library_never_imports_click_or_rich() -> None:
    assert {"pipeline", "io", "split", "clean", "dedup", "dedup.minhash"} <= set(LIBRARY)
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
    """The corpus_clean modules a module imports (relative or absolute), dotted from
    the package (``dedup.shingles``); a name imported from a package counts as its
    module when it is one (``from . import _fast``)."""
    path = PACKAGE.joinpath(*module.split("."))
    is_package = path.is_dir()
    tree = ast.parse((path / "__init__.py" if is_package else path.with_suffix(".py")).read_text())
    here = module.split(".") if is_package else module.split(".")[:-1]
    modules = set(LIBRARY) | {"_fast"}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                source = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.split(".")[0] == "corpus_clean":
                source = node.module.partition(".")[2]
            else:
                continue
            named = {f"{source}.{a.name}".lstrip(".") for a in node.names}
            found |= named & modules or {source}
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.partition(".")[2]
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
        allowed = FOUNDATION | STORAGE | STAGES[stage] | NATIVE.get(module, set())
        assert imported <= allowed, f"{module} imports {imported}"


#: dedup's modules bottom up: each builds on those before it only, and the package
#: (which composes the steps) on all of them.
DEDUP_LAYERS = [
    "dedup.shingles",
    "dedup.minhash",
    "dedup.fingerprint",
    "dedup.store",
    "dedup.candidates",
    "dedup.verify",
    "dedup.decide",
    "dedup.annotate",
]


def test_dedup_parts_are_layered() -> None:
    assert set(DEDUP_LAYERS) | {"dedup"} == STAGES["dedup"]
    for n, module in enumerate(DEDUP_LAYERS):
        below = set(DEDUP_LAYERS[:n]) | FOUNDATION | STORAGE | NATIVE.get(module, set())
        assert package_imports(module) <= below, module


def test_foundation_imports_no_stage_and_record_imports_nothing() -> None:
    stages = set().union(*STAGES.values())
    for module in FOUNDATION:
        assert not package_imports(module) & (stages | {"pipeline", "cli"}), module
    assert package_imports("record") == set()
