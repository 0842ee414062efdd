"""The shape of the house: the foundation is pure types, stages build on it alone, dedup
is layered, executors know no stage, the sharded run sits between the plan and the
driver, the library never imports click or rich, and only the command line imports the
command line."""

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


#: Every module but the command line's, by dotted name (``stages.clean``).
LIBRARY = sorted(
    name for name in map(module_name, PACKAGE.rglob("*.py")) if name not in ("", "__main__", "cli")
)


def under(package: str) -> set[str]:
    """A package and its modules."""
    return {name for name in LIBRARY if name.split(".")[0] == package}


#: Pure types that everything may build on: no I/O, no package module but each other.
FOUNDATION = {"record", "errors", "options", "stats"}
#: The per-record stages (``stages/``, a module or a package each) and their modules:
#: each builds on the foundation alone (a package's modules on each other too).
STAGE_MODULES = under("stages") - {"stages"}
STAGES = {".".join(name.split(".")[:2]) for name in STAGE_MODULES}
#: Reading and writing bytes: inputs, the JSONL codec, sinks, the spill store.
IO = under("io")
#: What dedup may see of the index: the reader and writer protocols, not a backend.
STORAGE = {"storage"}
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
#: Compiled helpers, private to the modules that import them.
NATIVE = {"_fast"}
#: Standard modules that do I/O or run processes, which the foundation never imports.
IO_MODULES = {"io", "sqlite3", "subprocess", "tempfile", "shutil", "socket", "multiprocessing"}


def package_imports(module: str) -> set[str]:
    """The corpus_clean modules a module imports (relative or absolute), dotted from
    the package (``dedup.shingles``); a name imported from a package counts as its
    module when it is one (``from . import _fast``)."""
    path = PACKAGE.joinpath(*module.split("."))
    is_package = path.is_dir()
    tree = ast.parse((path / "__init__.py" if is_package else path.with_suffix(".py")).read_text())
    here = module.split(".") if is_package else module.split(".")[:-1]
    modules = set(LIBRARY) | NATIVE
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


def test_the_library_never_imports_click_or_rich() -> None:
    assert {"pipeline", "driver", "stages.clean", "dedup.minhash", "storage.sqlite"} <= set(LIBRARY)
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


def test_import_scanner_sees_imports() -> None:
    assert {"stages.clean", "dedup", "stages.split", "io.spill"} <= package_imports("pipeline")
    assert "_fast" in package_imports("io.spill")
    assert "dedup.shingles" in package_imports("dedup.minhash")


@pytest.mark.parametrize("module", sorted(STAGE_MODULES))
def test_a_stage_imports_only_the_foundation(module: str) -> None:
    stage = ".".join(module.split(".")[:2])
    imported = {
        name
        for name in package_imports(module)
        if name != stage and not name.startswith(stage + ".")
    }
    assert not imported & STAGE_MODULES, f"{module} imports another stage"
    # And the compiled helpers, as dedup's parts do (learning folds every line in C).
    allowed = FOUNDATION | NATIVE
    assert imported <= allowed, f"{module} imports {imported - allowed}"


def test_a_stage_made_of_modules_is_seen_as_one() -> None:
    # The check above would pass vacuously if the scanner missed a package's own imports.
    assert "stages.learn" in STAGES
    assert {"stages.learn.arrays", "stages.learn.evidence"} <= package_imports("stages.learn.merge")


def test_the_shape_of_a_stage_names_no_stage() -> None:
    assert STAGES and package_imports("stages") <= FOUNDATION


def test_dedup_parts_are_layered() -> None:
    assert set(DEDUP_LAYERS) | {"dedup"} == under("dedup")
    for n, module in enumerate(DEDUP_LAYERS):
        below = set(DEDUP_LAYERS[:n]) | FOUNDATION | IO | STORAGE | NATIVE
        assert package_imports(module) <= below, module
    assert not package_imports("dedup") & (
        STAGE_MODULES | {"pipeline", "driver"} | under("executors")
    )


@pytest.mark.parametrize("module", sorted(under("storage")))
def test_the_index_knows_no_pipeline_nor_dedup_steps(module: str) -> None:
    # It stores shingle sets (``dedup.shingles``' types), and knows nothing else of dedup.
    beyond = {"pipeline", "driver"} | under("executors") | under("dedup") - {"dedup.shingles"}
    assert not package_imports(module) & beyond, module


@pytest.mark.parametrize("module", sorted(under("executors")))
def test_executors_know_no_stage_and_no_pipeline(module: str) -> None:
    assert package_imports(module) <= FOUNDATION | {"executors", "signals", "heap"}, module


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


def test_the_driver_builds_on_the_plan_never_the_other_way_round() -> None:
    assert "driver" not in package_imports("pipeline")
    assert {"pipeline", "executors.local"} <= package_imports("driver")


def test_the_sharded_run_sits_between_the_plan_and_the_driver() -> None:
    # shards.py is orchestration, as the driver is: the driver runs a plan either way
    # (run_plan, or shards.Engine for --engine processes and ray), and both build on the
    # plan. The sharded run takes the stages through the plan's worker and fit hook, and
    # of learning only the types of what it makes and keeps.
    imported = package_imports("shards")
    assert "shards" in package_imports("driver") and "driver" not in imported
    assert "shards" not in package_imports("pipeline")
    allowed = {"pipeline", "formats", "stages.learn"} | FOUNDATION | IO | under("executors")
    allowed |= under("dedup") | under("storage")
    assert imported <= allowed, imported - allowed
    assert imported & STAGES == {"stages.learn"}
    assert "pipeline" in imported


@pytest.mark.parametrize("module", LIBRARY)
def test_only_the_command_line_imports_the_command_line(module: str) -> None:
    assert "cli" not in package_imports(module), module
