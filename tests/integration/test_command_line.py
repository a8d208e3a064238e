"""The `ecrd` command line as an operator meets it: real processes, real pipes, a real data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from importlib.metadata import version
from pathlib import Path

import pytest

from ecrd.app import build_registry
from ecrd.cli.main import main
from ecrd.config import Settings
from ecrd.domain.records import AuditEvent
from ecrd.domain.registries import RegistryId
from ecrd.services.audit import AuditTrail
from tests.support.clients import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, ecr_client
from tests.support.databases import database_url
from tests.support.registry_process import EcrdProcess

COMMAND_TIMEOUT = 120.0
MASTER_KEY = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="
ADMIN_COMMANDS: list[list[str]] = [
    ["audit"],
    ["fsck"],
    ["vulndb", "status"],
    ["vulndb", "import", "advisories.jsonl"],
    ["sbom", "--repository-name", "app", "--image", "v1"],
    ["status"],
]
SERVER_ONLY_FLAGS = (
    "--port",
    "--host",
    "--workers",
    "--tls-cert",
    "--tls-key",
    "--public-url",
    "--create-on-push",
    "--log-level",
    "--root-access-key-id",
)


def ecrd(*args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m ecrd ARGS`` in ``cwd``, with no ``ECRD_*`` variable of the calling shell leaking in."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ECRD_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ecrd", *args],
        cwd=cwd,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A registry's data directory on the embedded default, as a first `ecrd serve` leaves it."""
    settings = Settings(data_dir=tmp_path / "registry")
    build_registry(settings).close()
    yield settings.data_dir


def record_events(
    data_dir: Path, times: Sequence[float], registries: Sequence[RegistryId | None] | None = None
) -> None:
    settings = Settings(data_dir=data_dir)
    registry = build_registry(settings)
    try:
        trail = AuditTrail(registry.store)
        for n, moment in enumerate(times):
            trail.record(
                AuditEvent(
                    time=moment,
                    request_id=f"req-{n:06d}",
                    principal="arn:aws:iam::000000000000:root",
                    action="ecr:PutImage",
                    repository=f"team/app-{n}",
                    outcome="allowed",
                    status=200,
                    error_code=None,
                    source_ip="127.0.0.1",
                    registry=registries[n] if registries else None,
                )
            )
    finally:
        registry.close()


# -- misspelt settings stop the server before it does anything ------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [("ECRD_MASTERKEY", "ECRD_MASTER_KEY"), ("ECRD_DATABSE_URL", "ECRD_DATABASE_URL")],
)
def test_serve_with_a_misspelt_variable_stops_naming_it_and_the_setting_meant(
    tmp_path: Path, variable: str, suggestion: str
) -> None:
    # when the server is started with a typo in a variable's name
    result = ecrd("serve", "--port", "1", "--data-dir", "data", cwd=tmp_path, env={variable: MASTER_KEY})

    # then it stops at once, like a usage error, naming the variable and the setting meant
    assert result.returncode == 2, result
    assert result.stderr == (f"ecrd: unknown setting {variable} in the environment; did you mean {suggestion}?\n")
    assert MASTER_KEY not in result.stderr + result.stdout
    # and nothing was created: no fresh registry with a freshly generated master key
    assert not (tmp_path / "data").exists()


def test_serve_with_a_misspelt_toml_key_stops_naming_the_file(tmp_path: Path) -> None:
    config = tmp_path / "ecrd.toml"
    config.write_text('[ecrd]\ndatabse_url = "postgresql://db.internal/ecrd"\n')

    result = ecrd("serve", "--config", str(config), "--data-dir", "data", cwd=tmp_path)

    assert result.returncode == 2, result
    assert result.stderr == f"ecrd: unknown setting 'databse_url' in {config}; did you mean 'database_url'?\n"
    assert not (tmp_path / "data").exists()


# -- admin commands never make a registry ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_admin_command_run_elsewhere_refuses_a_missing_data_directory(tmp_path: Path, command: list[str]) -> None:
    # given a directory with no registry in it
    (tmp_path / "advisories.jsonl").write_text("")

    # when an admin command runs there on the defaults
    result = ecrd(*command, cwd=tmp_path)

    # then it refuses, saying where it looked, and creates nothing
    assert result.returncode == 2, result
    looked = tmp_path / "ecrd-data"
    assert result.stderr.startswith(f"ecrd: no registry at {looked}: the data directory does not exist")
    assert "--data-dir" in result.stderr
    assert "Traceback" not in result.stderr
    assert not looked.exists()


@pytest.mark.postgres
def test_an_admin_command_on_postgresql_still_needs_the_data_directory(tmp_path: Path) -> None:
    # the data directory holds the master key and the blobs even when the metadata lives in PostgreSQL
    with database_url("postgresql", tmp_path) as url:
        result = ecrd("fsck", "--database-url", url, "--data-dir", "elsewhere", cwd=tmp_path)

    assert result.returncode == 2, result
    assert f"ecrd: no registry at {tmp_path / 'elsewhere'}: the data directory does not exist" in result.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_an_admin_command_refuses_a_data_directory_without_its_database(tmp_path: Path) -> None:
    # given a directory that exists but never held a registry (the database would be created empty)
    (tmp_path / "not-a-registry").mkdir()

    result = ecrd("vulndb", "status", "--data-dir", "not-a-registry", cwd=tmp_path)

    assert result.returncode == 2, result
    assert f"ecrd: no registry at {tmp_path / 'not-a-registry'}: " in result.stderr
    assert "metadata.db does not exist" in result.stderr
    assert list((tmp_path / "not-a-registry").iterdir()) == []


def test_an_admin_command_reads_an_existing_registry(data_dir: Path) -> None:
    result = ecrd("vulndb", "status", "--data-dir", str(data_dir), cwd=data_dir.parent)

    assert result.returncode == 0, result
    assert "advisories" in result.stdout


# -- pipes, times, help and version ---------------------------------------------------------------------------


def test_audit_piped_into_head_ends_quietly(data_dir: Path) -> None:
    # given more audit events than a pipe holds
    record_events(data_dir, [time.time() - n for n in range(3000)])

    # when `ecrd audit --limit 3000 | head -n 1` runs
    audit = subprocess.Popen(
        [sys.executable, "-m", "ecrd", "audit", "--limit", "3000", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert audit.stdout is not None
    head = subprocess.run(
        ["head", "-n", "1"], stdin=audit.stdout, capture_output=True, timeout=COMMAND_TIMEOUT, check=True
    )
    audit.stdout.close()
    _, stderr = audit.communicate(timeout=COMMAND_TIMEOUT)

    # then head shows the newest event and ecrd ends as a coreutils tool does on SIGPIPE, without a traceback
    assert b"team/app-0 " in head.stdout
    assert stderr == b""
    assert audit.returncode == 141


@pytest.mark.parametrize("command", [["vulndb", "status"], ["fsck"], ["audit"], ["status"]], ids=" ".join)
def test_every_command_writing_to_a_closed_pipe_ends_quietly(data_dir: Path, command: list[str]) -> None:
    record_events(data_dir, [time.time()])

    result = run_into_closed_pipe([*command, "--data-dir", str(data_dir)])

    # Nothing but the progress lines a long command writes to stderr when it is no terminal: no traceback.
    progress = f"ecrd {command[0]}: ".encode()
    assert [line for line in result.stderr.splitlines() if not line.startswith(progress)] == []
    assert result.returncode == 141


@pytest.mark.parametrize("command", [["audit", "--help"], ["--version"]], ids=" ".join)
def test_help_and_version_into_a_closed_pipe_end_quietly_as_argparse_does(command: list[str]) -> None:
    result = run_into_closed_pipe(command)

    assert result.stderr == b""
    assert result.returncode == 0


def run_into_closed_pipe(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    """``python -m ecrd ARGS`` writing to a pipe whose reader is gone before the first byte is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "ecrd", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    finally:
        os.close(write_end)


def test_audit_since_an_unreadable_time_names_the_formats_it_accepts(data_dir: Path) -> None:
    result = ecrd("audit", "--since", "yesterday", "--data-dir", str(data_dir), cwd=data_dir.parent)

    assert result.returncode == 2
    assert (
        "argument --since: 'yesterday' is not a time: use an ISO 8601 time (e.g. 2026-11-28T10:00:00Z), "
        "epoch seconds, or an age such as 30m, 24h or 7d" in result.stderr
    )
    assert "_time" not in result.stderr


def test_audit_of_one_account_shows_its_trail_only(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given events in the default account's registry and in another's
    other = RegistryId("222222222222", "eu-west-1")
    record_events(data_dir, [time.time() - 60, time.time()], registries=[None, other])

    # when the trail of the other account is asked for
    assert main(["audit", "--account", "222222222222", "--json", "--data-dir", str(data_dir)]) == 0

    # then only its event is shown, with the registry it happened in
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["requestId"], line["registryId"], line["region"]) for line in lines] == [
        ("req-000001", "222222222222", "eu-west-1")
    ]
    with pytest.raises(SystemExit) as refused:
        main(["audit", "--account", "nobody", "--data-dir", str(data_dir)])
    assert refused.value.code == 2 and "'nobody' is not an account id" in capsys.readouterr().err


def test_audit_since_an_age_shows_only_newer_events(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given one event two days old and one an hour old
    now = time.time()
    record_events(data_dir, [now - 2 * 86400, now - 3600])

    # when the trail is asked for the last day
    assert main(["audit", "--since", "24h", "--json", "--data-dir", str(data_dir)]) == 0

    # then only the newer event is shown
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["requestId"] for line in lines] == ["req-000001"]


@pytest.mark.parametrize(
    "command", [["audit"], ["fsck"], ["vulndb", "status"], ["vulndb", "import"], ["sbom"]], ids=" ".join
)
def test_admin_help_lists_only_the_settings_the_command_uses(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])

    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert "--data-dir" in shown and "--database-url" in shown and "--config" in shown
    for flag in SERVER_ONLY_FLAGS:
        assert flag not in shown, f"{' '.join(command)} --help lists {flag}"


def test_serve_help_still_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    shown = capsys.readouterr().out
    for flag in (*SERVER_ONLY_FLAGS, "--data-dir", "--master-key-file"):
        assert flag in shown


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    result = ecrd("--version", cwd=tmp_path)

    assert result.returncode == 0, result
    assert result.stdout == f"ecrd {version('ecrd')}\n"


# -- the registry's name agrees with the README's docker login ------------------------------------------------


class DefaultEcrd(EcrdProcess):
    """``ecrd serve`` with nothing but a port and a data directory: the host and public URL left at defaults."""

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "ecrd", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]


def test_repository_uris_of_a_default_server_name_localhost(tmp_path: Path) -> None:
    # given `ecrd serve` on its defaults, which the README logs in to as localhost:PORT
    server = DefaultEcrd(
        tmp_path,
        env={"ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY},
    )
    with server:
        ecr = ecr_client(server.url)

        # when a repository is created
        created = ecr.create_repository(repositoryName="my-repository")["repository"]

        # then its URI, which `docker tag $(… repositoryUri)` uses, names the host docker logged in to
        assert created["repositoryUri"] == f"localhost:{server.port}/my-repository"
        token = ecr.get_authorization_token()["authorizationData"][0]
        assert token["proxyEndpoint"] == f"http://localhost:{server.port}"


# -- replication peers ----------------------------------------------------------------------------------------


def test_replication_peers_are_added_listed_and_removed_with_the_secret_never_on_the_command_line(
    data_dir: Path,
) -> None:
    where = ("--data-dir", str(data_dir))
    peer = ("--destination-registry-id", "111122223333", "--destination-region", "eu-west-1")
    key = ("--access-key-id", "AKIAPEER", "--secret-access-key-stdin")
    # a secret is refused as a flag: there is none
    flagged = ecrd(
        "replication-peer",
        "add",
        *peer,
        "--url",
        "https://edge.example",
        "--access-key-id",
        "AKIAPEER",
        "--secret-access-key",
        "s3cret",
        *where,
        cwd=data_dir.parent,
    )
    assert flagged.returncode == 2
    # read from standard input
    added = ecrd(
        "replication-peer",
        "add",
        *peer,
        "--url",
        "https://edge.example:5000/",
        *key,
        *where,
        cwd=data_dir.parent,
        stdin="s3cret-peer-key\n",
    )
    assert added.returncode == 0, added
    listed = ecrd("replication-peer", "list", *where, cwd=data_dir.parent)
    assert listed.stdout.splitlines() == ["111122223333\teu-west-1\thttps://edge.example:5000\tAKIAPEER"]
    assert "s3cret-peer-key" not in listed.stdout + added.stdout + added.stderr
    # without a secret, and with a URL that has a path, nothing is added
    for url, stdin in (("https://edge.example", ""), ("https://edge.example/v2", "s3cret")):
        refused = ecrd("replication-peer", "add", *peer, "--url", url, *key, *where, cwd=data_dir.parent, stdin=stdin)
        assert refused.returncode == 2, refused
    # removed, then removing again names what is missing
    assert ecrd("replication-peer", "remove", *peer, *where, cwd=data_dir.parent).returncode == 0
    again = ecrd("replication-peer", "remove", *peer, *where, cwd=data_dir.parent)
    assert again.returncode == 1 and "no replication peer serves 111122223333 in eu-west-1" in again.stderr
    assert ecrd("replication-peer", "list", *where, cwd=data_dir.parent).stdout == ""
