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
#: Every module but the command line's, by dotted name (``stages.clean``).
LIBRARY = sorted(
    ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
    for p in PACKAGE.rglob("*.py")
    if p.stem not in ("__init__", "__main__", "cli")
)
#: Each stage, and the modules that make it up.
STAGES = {
    "split": {"stages.split"},
    "clean": {"stages.clean"},
    "learn": {"stages.learn"},
    "dedup": {"dedup", "minhash", "shingles"},
}
#: What any stage may build on.
FOUNDATION = {"record", "io", "options", "stats", "errors"}
#: Compiled helpers, private to the modules that import them.
NATIVE = {"shingles": {"_fast"}, "minhash": {"_fast"}, "dedup": {"_fast"}, "io": {"_fast"}}


def test_the_library_never_imports_click_or_rich() -> None:
    assert {"pipeline", "io", "stages.split", "stages.clean", "dedup", "shingles"} <= set(LIBRARY)
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
