"""A server worker at rest holds what every request needs, not what only some background work or start-up needs.

The serve command migrates the database before any worker starts, so a worker never loads the migration tool;
the scanner's libraries are loaded by the first scan, and the object store's client only with ``s3://``
storage. Each of these is megabytes of resident memory in every worker process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# What a worker does before its first request (``ecrd.cli.supervise.worker_app``), after the serve command
# migrated the database: the modules it then holds, printed as JSON.
WORKER_PROBE = """
import json, sys
import ecrd.cli.supervise
from ecrd.config import Settings
from ecrd.app import create_app
create_app(Settings.load(flags={"data_dir": sys.argv[1]}, environ={}))
print(json.dumps(sorted(sys.modules)))
"""
MIGRATE = """
import sys
from ecrd.config import Settings
from ecrd.metadata.store import MetadataStore
store = MetadataStore(Settings.load(flags={"data_dir": sys.argv[1]}, environ={}).resolved_database_url)
store.migrate()
store.dispose()
"""
# Loaded only by what needs them: migrations (alembic, and mako and pygments under it), image scans
# (the scanner and its version, severity and package-URL libraries), S3 storage, the first scrape of the
# metrics (summing the workers' files), the first request to the web console (its pages and Jinja2), and never
# in a server: docker's credential helper.
NOT_AT_REST = (
    "alembic",
    "mako",
    "pygments",
    "ecrd.metadata.migrations.runner",
    "ecrd.scanner.scan",
    "ecrd.scanner.versions",
    "univers",
    "cvss",
    "packageurl",
    "zstandard",
    "ecrd.storage.s3",
    "ecrd.storage.s3_client",
    "boto3",
    "prometheus_client.multiprocess",
    "prometheus_client.parser",
    "jinja2",
    "ecrd.console.web",
    "ecrd.console.pages",
    "ecrd.cli.credential_helper",
    "ecrd.cli.credential_cache",
)


def _run(code: str, data_dir: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", code, str(data_dir)], capture_output=True, text=True, check=True, timeout=120
    ).stdout


def test_a_worker_at_rest_loads_neither_migrations_nor_the_scanner_nor_the_s3_client(tmp_path: Path) -> None:
    # given a data directory the serve command has migrated
    data_dir = tmp_path / "data"
    _run(MIGRATE, data_dir)

    # when a fresh worker builds the application
    loaded = json.loads(_run(WORKER_PROBE, data_dir).splitlines()[-1])

    # then it holds none of the modules only migrations, scans and S3 storage need
    held = [name for name in loaded if name.split(".")[0] in NOT_AT_REST or name in NOT_AT_REST]
    assert held == []
