"""What ecrd asks of the Python environment: ranges a user's other tools can live beside, a lock CI installs,
and an embedded default that needs no PostgreSQL driver."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK = ROOT / "requirements" / "ci.lock"


def _requirements(group: str | None = None) -> list[Requirement]:
    texts = PROJECT["dependencies"] if group is None else PROJECT["optional-dependencies"][group]
    return [Requirement(text) for text in texts]


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def test_runtime_dependencies_are_ranges_not_pins() -> None:
    for requirement in _requirements():
        operators = {spec.operator for spec in requirement.specifier}
        assert "==" not in operators and ">=" in operators and "<" in operators, str(requirement)


def test_the_postgresql_driver_is_an_extra() -> None:
    assert not any(canonicalize_name(r.name).startswith("psycopg") for r in _requirements())
    assert any(canonicalize_name(r.name) == "psycopg" for r in _requirements("postgresql"))


def test_the_lock_pins_every_declared_dependency_within_its_range() -> None:
    pins = _locked()
    for requirement in _requirements() + _requirements("postgresql") + _requirements("test"):
        name = canonicalize_name(requirement.name)
        if name == "ecrd":
            continue
        assert name in pins, f"{name} is not in requirements/ci.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {requirement}"


def test_the_aws_cli_installs_beside_ecrd() -> None:
    """pip's own consistency check over the environment that holds ecrd, boto3 and the AWS CLI together."""
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _run(program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(program)], capture_output=True, text=True, timeout=120)


def test_the_embedded_default_never_imports_the_postgresql_driver(tmp_path: Path) -> None:
    result = _run(f"""
        import sys
        from ecrd.app import build_registry
        from ecrd.config import Settings
        registry = build_registry(Settings(data_dir=__import__("pathlib").Path({str(tmp_path / "data")!r})))
        registry.close()
        assert not [m for m in sys.modules if m.startswith("psycopg")], "psycopg imported"
    """)
    assert result.returncode == 0, result.stderr


def test_a_postgresql_url_without_the_driver_says_what_to_install() -> None:
    # The driver is hidden from this one interpreter, as on a machine that installed ecrd without the extra.
    result = _run("""
        import sys
        class NoPsycopg:
            def find_spec(self, name, path=None, target=None):
                if name == "psycopg" or name.startswith("psycopg."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None
        sys.meta_path.insert(0, NoPsycopg())
        from ecrd.metadata.store import MetadataStore, MissingDatabaseDriver
        try:
            MetadataStore("postgresql://postgres@127.0.0.1:5432/postgres")
        except MissingDatabaseDriver as exc:
            print(exc)
        else:
            raise SystemExit("no error")
    """)
    assert result.returncode == 0, result.stderr
    assert "pip install 'ecrd[postgresql]'" in result.stdout
