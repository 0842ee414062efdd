"""The shape of the house: the library never imports click or rich; the foundation is
pure types; stages build on the foundation alone and never on each other; executors know
no stage; only the command line imports the command line."""

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


#: Every module but the command line's, by dotted name (``stages.clean``); a package by
#: its own name (``dedup``).
LIBRARY = sorted(
    name for name in map(module_name, PACKAGE.rglob("*.py")) if name not in ("", "__main__", "cli")
)
#: Pure types that everything may build on: no I/O, no package module but each other.
FOUNDATION = {"record", "errors", "options", "stats"}
#: The per-record stages (``stages/``): each builds on the foundation alone.
STAGES = {"stages.split", "stages.clean", "stages.learn"}
#: The near-duplicate finder (``dedup/``): its steps, bottom up, each building on those
#: before it only; the package itself composes them.
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
DEDUP = {"dedup", *DEDUP_LAYERS}
#: What dedup may see of the index: the reader and writer protocols, not a backend.
STORAGE = {"storage"}
#: Compiled helpers, private to the modules that import them.
NATIVE = {
    "dedup.shingles": {"_fast"},
    "dedup.minhash": {"_fast"},
    "dedup.verify": {"_fast"},
    "io": {"_fast"},
}
#: Standard modules that do I/O or run processes, which the foundation never imports.
IO_MODULES = {"io", "sqlite3", "subprocess", "tempfile", "shutil", "socket", "multiprocessing"}


def test_the_library_never_imports_click_or_rich() -> None:
    assert {"pipeline", "io", "stages.split", "dedup", "dedup.shingles", "storage"} <= set(LIBRARY)
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
    """The corpus_clean modules a module imports (relative or absolute): top-level modules
    by name, those of a subpackage as ``package.module`` (see ``_named``)."""
    path = PACKAGE.joinpath(*module.split("."))
    source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(source.read_text("utf-8"))
    here = module.split(".") if path.is_dir() else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level >= 1:
                base = ".".join([*here[: len(here) - node.level + 1], node.module or ""])
            elif node.module and node.module.split(".")[0] == "corpus_clean":
                base = node.module.partition(".")[2]
            else:
                continue
            base = base.strip(".")
            if not base or (PACKAGE / base.replace(".", "/")).is_dir():
                # from a package: the names may be its modules
                found.update(_named(f"{base}.{alias.name}".strip(".")) for alias in node.names)
            else:
                found.add(_named(base))
        elif isinstance(node, ast.Import):
            found.update(
                _named(alias.name.partition(".")[2])
                for alias in node.names
                if alias.name.startswith("corpus_clean.")
            )
    return found


def _named(name: str) -> str:
    """A module by the name the tests use: ``io``, ``stages.clean``; a name imported from
    a package that is no module of it stands for the package."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        path = PACKAGE.joinpath(*parts[:n])
        if path.with_suffix(".py").is_file() or path.is_dir():
            return ".".join(parts[:n])
    return parts[0]


def test_import_scanner_sees_imports() -> None:
    assert {"stages.clean", "dedup", "stages.split", "io"} <= package_imports("pipeline")


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_imports_only_the_foundation(stage: str) -> None:
    imported = package_imports(stage)
    assert not imported & (STAGES - {stage}), f"{stage} imports another stage"
    assert imported <= FOUNDATION, f"{stage} imports {imported - FOUNDATION}"


def test_every_module_of_the_stages_package_is_a_stage() -> None:
    found = {f"stages.{p.stem}" for p in (PACKAGE / "stages").glob("*.py")} - {"stages.__init__"}
    assert found == STAGES
    assert package_imports("stages") <= FOUNDATION  # the shape of a stage: no stage in it


def test_dedup_parts_are_layered() -> None:
    assert {name for name in LIBRARY if name.split(".")[0] == "dedup"} == DEDUP
    for n, module in enumerate(DEDUP_LAYERS):
        below = set(DEDUP_LAYERS[:n]) | FOUNDATION | STORAGE | NATIVE.get(module, set())
        if module == "dedup.store":
            below |= {"io"}  # the shingle sets wait in io's spill files
        assert package_imports(module) <= below, module
    # The package composes the steps, and knows no stage, pipeline or executor.
    assert package_imports("dedup") <= DEDUP | FOUNDATION | STORAGE | {"io"}


@pytest.mark.parametrize("module", sorted(m for m in LIBRARY if m.split(".")[0] == "storage"))
def test_the_index_knows_no_pipeline_nor_dedup_steps(module: str) -> None:
    # It stores shingle sets (``dedup.shingles``' types), and knows nothing else of dedup.
    beyond = {"pipeline", "driver", "executors"} | DEDUP - {"dedup.shingles"}
    assert not package_imports(module) & beyond, module


@pytest.mark.parametrize("module", ["executors", "executors.local", "executors.ray"])
def test_executors_know_no_stage_and_no_pipeline(module: str) -> None:
    assert package_imports(module) <= FOUNDATION | {"executors", "signals"}, module


def test_foundation_is_pure_types() -> None:
    for module in FOUNDATION:
        assert package_imports(module) <= FOUNDATION, module
        tree = ast.parse((PACKAGE / f"{module}.py").read_text("utf-8"))
        standard = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
        }
        assert not standard & IO_MODULES, f"{module} imports {standard & IO_MODULES}"
    assert package_imports("record") == set()


@pytest.mark.parametrize("module", LIBRARY)
def test_only_the_command_line_imports_the_command_line(module: str) -> None:
    assert "cli" not in package_imports(module), module
