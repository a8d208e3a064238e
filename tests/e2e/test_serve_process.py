"""How `ecrd serve` runs as a process: its access log, its port, its workers' lifetime, TLS and file modes."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.support.clients import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, ecr_client
from tests.support.oci import random_blob
from tests.support.ports import LOOPBACK, free_port
from tests.support.registry_process import EcrdProcess
from tests.support.tls import make_ca_and_server_cert

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOT_ENV = {"ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY}
START_TIMEOUT = 60.0
"""Seconds a refused start may take to exit (it migrates nothing, but the interpreter imports a lot)."""
GONE_TIMEOUT = 10.0
"""Seconds the processes of a killed server have to disappear."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EcrdProcess]:
    process = EcrdProcess(tmp_path / "ecrd", env=ROOT_ENV)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `ecrd serve` to completion (for starts that must be refused), bounded in time."""
    argv = [sys.executable, "-m", "ecrd", "serve", "--host", LOOPBACK, *args]
    env = {key: value for key, value in os.environ.items() if not key.startswith("ECRD_")}
    # As a context manager the pipes are closed also when the start hangs past its deadline.
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, start_new_session=True
    ) as process:
        try:
            out, err = process.communicate(timeout=START_TIMEOUT)
        finally:
            # A start that was wrongly accepted serves until stopped: end it and anything it forked.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def _wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout:.0f} s")
        time.sleep(0.05)


def _access_lines(process: EcrdProcess) -> list[dict[str, object]]:
    lines = []
    for text in process.log_path.read_text(errors="replace").splitlines():
        if text.startswith("{"):
            line = json.loads(text)
            if "requestId" in line:
                lines.append(line)
    return lines


def _group_members(group: int) -> list[int]:
    """The live processes of process group ``group`` (from /proc: field 5 of /proc/PID/stat is the group)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        # fields[0] is the state (Z: exited, not yet reaped by its parent: it serves nothing).
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_request_is_one_json_access_line_in_the_servers_output(server: EcrdProcess) -> None:
    # given a server started as a user starts it
    ecr = ecr_client(server.url)

    # when a client makes requests through both doors
    ecr.create_repository(repositoryName="logged/app")
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    assert requests.get(f"{server.url}/v2/", timeout=10).status_code == 401
    headers = {"Authorization": f"Basic {token}"}
    assert requests.get(f"{server.url}/v2/logged/app/tags/list", headers=headers, timeout=10).status_code == 200

    # then each one is a JSON line on the server's output, with who did what, and no secret
    def logged() -> bool:
        return len(_access_lines(server)) >= 4

    _wait_for(logged, timeout=10, what="four access lines logged")
    lines = _access_lines(server)
    by_action = {line["action"]: line for line in lines}
    assert by_action["ecr:CreateRepository"]["status"] == 200
    assert by_action["ecr:CreateRepository"]["principal"] == "arn:aws:iam::000000000000:root"
    assert by_action["ecr:ListImages"]["repository"] == "logged/app"
    assert any(line["path"] == "/v2/" and line["status"] == 401 for line in lines)
    assert len({line["requestId"] for line in lines}) == len(lines)
    output = server.log_path.read_text(errors="replace")
    password = base64.b64decode(token).decode().split(":", 1)[1]
    for secret in (TEST_SECRET_ACCESS_KEY, token, password):
        assert secret not in output


def test_a_second_server_on_a_port_in_use_refuses_to_start(server: EcrdProcess, tmp_path: Path) -> None:
    # given a server on a port, with a repository
    ecr_client(server.url).create_repository(repositoryName="first")

    # when a second server with other data is started on the same port
    second = _serve(tmp_path, "--port", str(server.port), "--data-dir", str(tmp_path / "other"))

    # then it exits non-zero naming the address, without a traceback, and the first serves every request
    assert second.returncode != 0, second.stdout + second.stderr
    assert f"{LOOPBACK}:{server.port}" in second.stderr
    assert "in use" in second.stderr
    assert "Traceback" not in second.stdout + second.stderr
    for _ in range(20):
        names = [r["repositoryName"] for r in ecr_client(server.url).describe_repositories()["repositories"]]
        assert names == ["first"]


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_die_with_a_killed_supervisor_and_a_restart_finds_the_port_free(tmp_path: Path, workers: int) -> None:
    # given a server with its workers answering
    process = EcrdProcess(tmp_path / "ecrd", env=ROOT_ENV, extra_args=["--workers", str(workers)])
    process.start()
    group = process.pid
    try:
        assert len(_group_members(group)) == 1 + workers

        # when the supervisor alone is killed, as the OOM killer or a crash would
        os.kill(group, signal.SIGKILL)

        # then no process of it is left and nothing listens on its port within seconds
        _wait_for(lambda: not _group_members(group), timeout=GONE_TIMEOUT, what="every worker gone")
        _wait_for(lambda: _port_is_free(process.port), timeout=GONE_TIMEOUT, what="the port free")

        # and a restart serves on the same port
        process.stop()  # reaps the killed supervisor; nothing is left to signal
        process.start()
        assert requests.get(f"{process.url}/healthz", timeout=10).status_code == 200
    finally:
        process.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def test_a_server_stopped_while_its_workers_start_exits(tmp_path: Path) -> None:
    # given a server whose worker is still building the application
    process = EcrdProcess(tmp_path / "ecrd", env=ROOT_ENV)
    child = process.spawn()
    try:
        child.wait_until(
            lambda: "Spawning worker-1" in process.log_path.read_text(errors="replace"),
            timeout=START_TIMEOUT,
            what="spawning its worker",
        )

        # when it is asked to stop
        os.killpg(child.pid, signal.SIGTERM)

        # then it and its worker exit
        _wait_for(lambda: not _group_members(child.pid), timeout=GONE_TIMEOUT, what="stopped")
    finally:
        child.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)


def test_swapped_tls_certificate_and_key_are_a_clear_start_up_error(tmp_path: Path) -> None:
    # given a certificate and its key, passed the wrong way round
    files = make_ca_and_server_cert(tmp_path / "tls")

    # when the server is started with them
    result = _serve(
        tmp_path,
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "data"),
        "--tls-cert",
        str(files.server_key),
        "--tls-key",
        str(files.server_cert),
    )

    # then it refuses, naming both files, without a traceback
    assert result.returncode != 0
    assert str(files.server_key) in result.stderr
    assert str(files.server_cert) in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_tls_file_that_is_not_pem_is_a_clear_start_up_error(tmp_path: Path) -> None:
    files = make_ca_and_server_cert(tmp_path / "tls")
    garbage = tmp_path / "tls" / "garbage.pem"
    garbage.write_text("not a certificate\n")

    result = _serve(
        tmp_path,
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "data"),
        "--tls-cert",
        str(garbage),
        "--tls-key",
        str(files.server_key),
    )

    assert result.returncode != 0
    assert str(garbage) in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_the_data_directory_and_database_are_private_to_the_servers_user(server: EcrdProcess) -> None:
    # given a server that has stored a blob
    ecr = ecr_client(server.url)
    ecr.create_repository(repositoryName="private")
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    blob = random_blob(4096)
    response = requests.post(
        f"{server.url}/v2/private/blobs/uploads/?digest={blob.digest}",
        data=blob.data,
        headers={"Authorization": f"Basic {token}"},
        timeout=30,
    )
    assert response.status_code == 201

    # then the data directory is its user's alone, and so is every file and folder in it
    assert _mode(server.data_dir) == 0o700
    database = server.data_dir / "metadata.db"
    assert _mode(database) == 0o600
    for name in ("metadata.db-wal", "metadata.db-shm"):
        if (server.data_dir / name).exists():
            assert _mode(server.data_dir / name) == 0o600
    for path in server.data_dir.rglob("*"):
        if path.is_symlink():
            continue
        others = _mode(path) & 0o077
        assert others == 0, f"{path} is {oct(_mode(path))}"


def test_an_existing_data_directory_is_made_private_at_start(tmp_path: Path) -> None:
    # given a data directory and database that an earlier version left readable by everyone
    process = EcrdProcess(tmp_path / "ecrd", env=ROOT_ENV)
    process.start()
    process.stop()
    process.data_dir.chmod(0o755)
    database = process.data_dir / "metadata.db"
    database.chmod(0o644)

    # when the server starts again
    process.start()
    try:
        # then both are private again
        assert _mode(process.data_dir) == 0o700
        assert _mode(database) == 0o600
    finally:
        process.stop()
