"""The process that lives as long as the server (granian's supervisor) loads the settings, not the registry."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_supervisor_imports_neither_the_services_nor_the_database_layer() -> None:
    probe = "import json, sys; import ecrd.cli.supervise; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60).stdout
    )
    heavy = [
        name
        for name in loaded
        if name.startswith(("ecrd.services", "ecrd.metadata", "ecrd.app", "sqlalchemy", "cryptography"))
    ]
    assert heavy == []
