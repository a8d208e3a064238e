"""The dependency direction of docs/architecture.md, checked by import-linter on every module of the package.

The contracts are in pyproject.toml ([tool.importlinter]). These tests run them, check that every top-level module
of ``ecrd`` has its place in the layers (a new package cannot slip past unchecked), and check the check: a copy of
the package with one forbidden import added must fail it.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "ecrd"
MODULES = sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return list(config["contracts"])


def _lint_imports(src: Path, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(src)}
    program = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run(
        [sys.executable, "-c", program, "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=cache_dir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_code_keeps_every_import_contract(tmp_path: Path) -> None:
    result = _lint_imports(SRC.parent, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_top_level_module_has_its_place_in_the_layers() -> None:
    layers = next(contract for contract in _contracts() if contract["id"] == "layers")
    placed = {
        name.strip().removeprefix("ecrd.")
        for layer in layers["layers"]  # type: ignore[union-attr]
        for name in str(layer).split("|")
    }
    present = {
        p.stem if p.is_file() else p.name
        for p in SRC.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    assert present - placed == set(), f"modules of ecrd missing from [tool.importlinter] layers: {present - placed}"


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("oci/door.py", "ecrd.metadata.store"),  # a door reaching a store
        ("aws/door.py", "ecrd.oci.protocol"),  # one door importing the other
        ("services/registry.py", "starlette.responses"),  # a service knowing HTTP
        ("services/uploads.py", "ecrd.storage.filesystem"),  # a service picking a concrete driver
        ("domain/names.py", "ecrd.services.registry"),  # the domain importing upwards
        ("policy/evaluation.py", "sqlalchemy"),  # the pure policy engine doing I/O
        ("scanner/scan.py", "ecrd.metadata.store"),  # the pure scanner reaching a store
        ("metadata/store.py", "ecrd.services.jobs"),  # a store importing a service
        ("config.py", "ecrd.app"),  # settings importing the composition root
    ],
)
def test_a_forbidden_import_breaks_the_contracts(tmp_path: Path, module: str, forbidden: str) -> None:
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy / "ecrd", ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "ecrd" / module
    target.write_text(target.read_text() + f"\nimport {forbidden}  # added by the test\n")
    result = _lint_imports(copy, tmp_path)
    assert result.returncode != 0, f"import-linter accepted {module} importing {forbidden}"
    package = ".".join(forbidden.split(".")[:2]) if forbidden.startswith("ecrd.") else forbidden.split(".")[0]
    assert f"import {package}" in result.stdout, result.stdout


def test_only_config_reads_the_environment() -> None:
    for path in MODULES:
        text = path.read_text()
        if path.name == "config.py" or path.parts[-2] == "cli":
            continue
        assert "os.environ" not in text and "getenv" not in text, f"{path.relative_to(SRC)} reads the environment"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_module_states_what_it_owns(path: Path) -> None:
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(SRC)} has no module docstring"
