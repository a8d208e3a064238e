"""Long admin commands report progress on stderr only: a live display on a terminal, plain lines otherwise."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from ecrd.config import Settings
from tests.integration.test_command_line import COMMAND_TIMEOUT, ecrd
from tests.integration.test_lifecycle_api import keep_newest, policy
from tests.integration.test_status_command import store_flags, write_advisories
from tests.support.clock import FakeClock
from tests.support.clocked import clocked_registry, root_client
from tests.support.oci import config_blob, image_manifest, push_blob, push_manifest, random_blob

PLAIN_LINE = re.compile(r"ecrd [a-z -]+(\([a-z ]+\))?: [a-z ]+: \d+( of \d+)? (done|so far)")


def push_some(settings: Settings, *, lifecycle_policy: str | None = None) -> None:
    with clocked_registry(settings, FakeClock.at_wall_time()) as registry:
        repository = registry.registry.create_repository("app")
        if lifecycle_policy is not None:
            registry.lifecycle.put_policy(repository, lifecycle_policy)
        with root_client(registry) as client:
            layers = [random_blob(1000), random_blob(2000)]
            config = config_blob({"nonce": os.urandom(8).hex()})
            for blob in [config, *layers]:
                push_blob(client, "app", blob)
            push_manifest(client, "app", "v1", image_manifest(config, layers))


def plain_lines(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    assert lines, "no progress at all"
    for line in lines:
        assert PLAIN_LINE.fullmatch(line), line
    return lines


def run_with_terminal_stderr(args: list[str], cwd: Path) -> tuple[str, str, int]:
    """``python -m ecrd ARGS`` with stderr on a pseudo-terminal and stdout on a pipe: (stdout, terminal, status)."""
    leader, follower = os.openpty()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ECRD_")}
    environment.update(TERM="xterm", COLUMNS="100")
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "ecrd", *args], cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=follower
        ) as process:
            os.close(follower)
            seen = bytearray()
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal's last writer has gone
                    break
                if not chunk:
                    break
                seen += chunk
            assert process.stdout is not None
            stdout = process.stdout.read().decode()
            status = process.wait(timeout=COMMAND_TIMEOUT)
    finally:
        os.close(leader)
    return stdout, seen.decode(errors="replace"), status


def test_gc_without_a_terminal_writes_plain_progress_lines_to_stderr_only(settings: Settings, tmp_path: Path) -> None:
    push_some(settings)
    result = ecrd("gc", "--json", *store_flags(settings), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # stdout is the report, nothing else
    assert set(report) == {"wouldFree", "freed"}
    lines = plain_lines(result.stderr)
    assert "ecrd gc (dry run): blobs: 3 done" in lines
    assert "ecrd gc: blobs: 3 done" in lines
    assert "\x1b" not in result.stderr


def test_gc_on_a_terminal_shows_a_live_display_on_stderr(settings: Settings, tmp_path: Path) -> None:
    push_some(settings)
    stdout, terminal, status = run_with_terminal_stderr(["gc", "--json", *store_flags(settings)], tmp_path)
    assert status == 0, terminal
    assert set(json.loads(stdout)) == {"wouldFree", "freed"}
    assert "blobs" in terminal
    assert "orphan objects" in terminal
    assert "ecrd gc:" not in terminal  # the display, not the plain lines


def test_fsck_without_a_terminal_writes_plain_progress_lines_to_stderr_only(settings: Settings, tmp_path: Path) -> None:
    push_some(settings)
    result = ecrd("fsck", "--verify-digests", "--json", *store_flags(settings), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["checked"]["verified_blobs"] == 3
    lines = plain_lines(result.stderr)
    assert lines[0] == "ecrd fsck: metadata: 1 of 1 done"
    assert "ecrd fsck: verifying blobs: 3 of 3 done" in lines
    assert "ecrd fsck: verifying manifests: 1 of 1 done" in lines


def test_vulndb_import_without_a_terminal_writes_plain_progress_lines_to_stderr_only(
    settings: Settings, tmp_path: Path
) -> None:
    push_some(settings)
    advisories = write_advisories(tmp_path / "advisories.jsonl", 5)
    result = ecrd("vulndb", "import", "--json", str(advisories), *store_flags(settings), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["inserted"] == 5
    assert plain_lines(result.stderr) == ["ecrd vulndb import: records: 5 done"]


def test_vulndb_import_on_a_terminal_shows_a_live_display_on_stderr(settings: Settings, tmp_path: Path) -> None:
    push_some(settings)
    advisories = write_advisories(tmp_path / "advisories.jsonl", 5)
    args = ["vulndb", "import", "--json", str(advisories), *store_flags(settings)]
    stdout, terminal, status = run_with_terminal_stderr(args, tmp_path)
    assert status == 0, terminal
    assert json.loads(stdout)["inserted"] == 5
    assert "records" in terminal
    assert "ecrd vulndb import:" not in terminal


def test_lifecycle_run_without_a_terminal_writes_plain_progress_lines_to_stderr_only(
    settings: Settings, tmp_path: Path
) -> None:
    push_some(settings, lifecycle_policy=policy(keep_newest(1, "v")))
    result = ecrd("lifecycle", "run", *store_flags(settings), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert plain_lines(result.stderr) == ["ecrd lifecycle run: repositories: 1 of 1 done"]
    assert "ecrd lifecycle run" not in result.stdout


def test_migrate_storage_without_a_terminal_writes_plain_progress_lines_to_stderr_only(
    settings: Settings, tmp_path: Path
) -> None:
    push_some(settings)
    target = tmp_path / "new-disk"
    result = ecrd("migrate-storage", "--to", str(target), *store_flags(settings), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "copied 3 objects" in result.stdout
    assert plain_lines(result.stderr) == ["ecrd migrate-storage: objects: 3 done"]
