"""docker-credential-ecrd against a live registry: the credential helper protocol, and its token cache."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ecrd.app import Registry
from ecrd.cli.credential_cache import TokenCache
from ecrd.cli.credential_helper import CREDENTIALS_NOT_FOUND, main
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.integration.test_ecr_api import client_for

HOST = "127.0.0.1:5000"


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str) -> Path:
    """The root's key in the environment, no AWS files, the registry's endpoint; returns the cache directory."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ROOT_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ROOT_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", endpoint)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "ecrd" / "docker-credential-ecrd"


def helper(*args: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(args), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def test_get_answers_a_registry_password_that_opens_the_registry(aws_environment: Path, endpoint: str) -> None:
    # when docker asks for the registry host's credentials
    status, out, err = helper("get", stdin=HOST + "\n")

    # then it gets AWS and a password the /v2/ door accepts
    assert status == 0, out + err
    answer = json.loads(out)
    assert answer["ServerURL"] == HOST
    assert answer["Username"] == "AWS"
    assert requests.get(f"{endpoint}/v2/", auth=("AWS", answer["Secret"]), timeout=10).status_code == 200
    # and the secret is on stdout only
    assert answer["Secret"] not in err


def test_a_token_is_cached_privately_and_reused_without_asking_the_registry(
    aws_environment: Path, registry: Registry, endpoint: str
) -> None:
    # given a first answer
    first = json.loads(helper("get", stdin=HOST)[1])

    # then the token lies in one file only its owner can read, in a directory only its owner can enter
    files = list(aws_environment.glob("*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(aws_environment.stat().st_mode) == 0o700
    assert ROOT_ACCESS_KEY_ID not in files[0].name

    # when docker asks again, naming the host as a URL this time (the first call is counted once its request has
    # ended on the server, which may be just after the helper read the answer)
    requests_before = _settled_token_requests(registry, at_least=1)
    second = json.loads(helper("get", stdin=f"https://{HOST}/v1/")[1])

    # then the cached password answers, without a call to GetAuthorizationToken
    assert second["Secret"] == first["Secret"]
    assert _token_requests(registry) == requests_before
    # and list names the host docker asked for
    assert json.loads(helper("list")[1]) == {HOST: "AWS"}


def _settled_token_requests(registry: Registry, *, at_least: float, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while (count := _token_requests(registry)) < at_least:
        assert time.monotonic() < deadline, f"GetAuthorizationToken counted {count} times, expected {at_least}"
        time.sleep(0.01)
    return count


def _token_requests(registry: Registry) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = registry.metrics.exposition().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ecrd_http_request_duration_seconds_count"
        and sample.labels["operation"] == "ecr:GetAuthorizationToken"
    )


def test_each_access_key_has_its_own_cached_token(
    aws_environment: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a token cached for the root, and a user's key in the environment instead
    helper("get", stdin=HOST)
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="builder")
    key = iam.create_access_key(UserName="builder")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])

    # when docker asks again
    status, out, _ = helper("get", stdin=HOST)

    # then the user's key is asked for a token of its own (refused: the user may not GetAuthorizationToken)
    assert (status, out.strip()) == (1, CREDENTIALS_NOT_FOUND)
    assert len(list(aws_environment.glob("*.json"))) == 1


def test_without_aws_credentials_docker_is_told_not_found(
    aws_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given no AWS credentials anywhere
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    # when docker asks
    status, out, err = helper("get", stdin=HOST)

    # then the answer is docker's "not found", and the reason goes to stderr
    assert (status, out) == (1, CREDENTIALS_NOT_FOUND + "\n")
    assert "no AWS credentials" in err


def test_store_and_erase_do_nothing_and_other_actions_are_refused(aws_environment: Path) -> None:
    login = json.dumps({"ServerURL": HOST, "Username": "AWS", "Secret": "typed-by-hand"})
    assert helper("store", stdin=login) == (0, "", "")
    assert helper("erase", stdin=HOST) == (0, "", "")
    assert not aws_environment.exists()
    assert helper("list") == (0, "{}\n", "")
    status, out, _ = helper("get", stdin="\n")
    assert (status, out) == (1, "no credentials server URL\n")
    status, out, _ = helper("remove")
    assert status == 1 and out.startswith("Usage:")


def test_the_helper_runs_as_a_program_with_the_protocol_exit_codes(tmp_path: Path) -> None:
    # given an environment with no AWS credentials
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONPATH": ":".join(sys.path),
    }
    program = [sys.executable, "-m", "ecrd.cli.credential_helper"]

    # when docker runs it
    got = subprocess.run([*program, "get"], input=HOST, capture_output=True, text=True, env=env, timeout=60)
    stored = subprocess.run([*program, "store"], input="{}", capture_output=True, text=True, env=env, timeout=60)

    # then "get" says not found on stdout with status 1, and "store" succeeds silently
    assert (got.returncode, got.stdout) == (1, CREDENTIALS_NOT_FOUND + "\n")
    assert (stored.returncode, stored.stdout) == (0, "")


def test_a_token_near_its_expiry_is_not_reused(tmp_path: Path) -> None:
    from ecrd.cli.credential_cache import REFRESH_MARGIN_SECONDS, CachedToken

    now = [1_000_000.0]
    cache = TokenCache(tmp_path, clock=lambda: now[0])
    key = TokenCache.key("http://127.0.0.1:5000", "us-east-1", "AKIAEXAMPLE")
    cache.put(key, CachedToken(HOST, "QVdTOnNlY3JldA==", now[0] + 3600))
    assert cache.get(key) is not None
    now[0] += 3600 - REFRESH_MARGIN_SECONDS
    assert cache.get(key) is None
    assert [token.server_url for token in cache.valid()] == [HOST]
    now[0] += REFRESH_MARGIN_SECONDS
    assert list(cache.valid()) == []
