"""The dependency direction of docs/architecture.md, checked on the imports of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ecrd"

# layer → layers it must never import
FORBIDDEN: dict[str, set[str]] = {
    "domain": {"metadata", "storage", "services", "oci", "aws", "cli", "app", "policy"},
    "policy": {"metadata", "storage", "services", "oci", "aws", "cli", "app"},
    "metadata": {"services", "oci", "aws", "cli", "app"},
    "storage": {"metadata", "services", "oci", "aws", "cli", "app"},
    "services": {"oci", "aws", "cli", "app"},
    "oci": {"aws", "cli", "app", "metadata", "storage.filesystem"},
    "aws": {"oci", "cli", "app", "metadata", "storage"},
}
THIRD_PARTY_FORBIDDEN = {"services": {"starlette", "botocore", "granian"}, "domain": {"starlette", "sqlalchemy"}}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


MODULES = sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_module_respects_the_dependency_direction(path: Path) -> None:
    layer = path.relative_to(SRC).parts[0].removesuffix(".py")
    for name in _imports(path):
        if name.startswith("ecrd."):
            target = name.split(".", 1)[1]
            for forbidden in FORBIDDEN.get(layer, set()):
                assert not (target == forbidden or target.startswith(forbidden + ".")), (
                    f"{path.relative_to(SRC)} ({layer}) imports {name}"
                )
        for forbidden in THIRD_PARTY_FORBIDDEN.get(layer, set()):
            assert not (name == forbidden or name.startswith(forbidden + ".")), (
                f"{path.relative_to(SRC)} ({layer}) imports {name}"
            )


def test_only_config_reads_the_environment() -> None:
    for path in MODULES:
        text = path.read_text()
        if path.name == "config.py" or path.parts[-2] == "cli":
            continue
        assert "os.environ" not in text and "getenv" not in text, f"{path.relative_to(SRC)} reads the environment"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_module_states_what_it_owns(path: Path) -> None:
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(SRC)} has no module docstring"
