"""The real registry clients as tests drive them: CLI runs with deadlines, skopeo, raw HTTP, boto3 ECR and oras.

Every call here is bounded in time, and a failure says what ran, how it ended and what it printed, so a
red e2e test reads without a rerun.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

TOOL_TIMEOUT = 300.0
"""Default seconds for one CLI run; callers pass less where they know better."""

HTTP_TIMEOUT = (5.0, 120.0)
"""(connect, read) seconds for every raw HTTP request a test sends to a registry."""

OUTPUT_TAIL = 4000
"""Characters of a failed command's stdout and stderr quoted in its error."""

TEST_REGION = "us-east-1"
TEST_ACCESS_KEY_ID = "AKIAECRDTESTROOT0001"
TEST_SECRET_ACCESS_KEY = "ecrd/e2e/TestRootSecretKey/000000000000000"


class ToolFailed(AssertionError):
    """A client command exited non-zero or overran its deadline."""


@dataclass(frozen=True)
class Credentials:
    """Registry credentials as ``docker login`` takes them (for ECR: ``AWS`` and an authorization token)."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password='***')"

    @property
    def colon_joined(self) -> str:
        """``user:password``, the form of skopeo's ``--creds``."""
        return f"{self.username}:{self.password}"


def _tail(text: str) -> str:
    return text if len(text) <= OUTPUT_TAIL else "…" + text[-OUTPUT_TAIL:]


def run_tool(
    argv: Sequence[str],
    *,
    timeout: float = TOOL_TIMEOUT,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    check: bool = True,
    redact: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion with a deadline; raise ``ToolFailed`` (quoting its output) on failure.

    ``redact`` lists strings (passwords) never to be shown in an error message.
    """
    shown = " ".join(argv)
    for secret in redact:
        shown = shown.replace(secret, "***")
    try:
        completed = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolFailed(
            f"`{shown}` did not finish within {timeout:.0f} s\n"
            f"stdout:\n{_tail(_text(exc.stdout))}\nstderr:\n{_tail(_text(exc.stderr))}"
        ) from None
    if check and completed.returncode != 0:
        raise ToolFailed(
            f"`{shown}` exited with status {completed.returncode}\n"
            f"stdout:\n{_tail(completed.stdout)}\nstderr:\n{_tail(completed.stderr)}"
        )
    return completed


def _text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output


class Skopeo:
    """skopeo with a private policy and auth file, talking plain HTTP to the registry under test."""

    def __init__(self, workdir: Path, credentials: Credentials | None, *, binary: str = "skopeo") -> None:
        self.binary = binary
        self.credentials = credentials
        workdir.mkdir(parents=True, exist_ok=True)
        self.policy_path = workdir / "policy.json"
        self.policy_path.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        self.auth_path = workdir / "auth.json"
        self.auth_path.write_text("{}")
        # skopeo would otherwise read the user's container and docker credentials.
        self.env = {**os.environ, "REGISTRY_AUTH_FILE": str(self.auth_path)}

    def run(self, *args: str, timeout: float = TOOL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        argv = [self.binary, "--policy", str(self.policy_path), *args]
        secrets = [self.credentials.password] if self.credentials else []
        return run_tool(argv, timeout=timeout, env=self.env, redact=secrets)

    def _remote_flags(self, side: str) -> list[str]:
        """``--src-…``/``--dest-…`` (``side``) or plain (``side == ""``) TLS and credential flags."""
        prefix = f"--{side}-" if side else "--"
        flags = [f"{prefix}tls-verify=false"]
        if self.credentials is not None:
            flags.append(f"{prefix}creds={self.credentials.colon_joined}")
        return flags

    def copy(
        self, source: str, destination: str, *extra: str, all_images: bool = False, timeout: float = TOOL_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """``skopeo copy``; ``all_images`` copies every instance of an index (``--all``)."""
        args = ["copy", "--retry-times=0"]
        if all_images:
            args.append("--all")
        if source.startswith("docker://"):
            args += self._remote_flags("src")
        if destination.startswith("docker://"):
            args += self._remote_flags("dest")
        return self.run(*args, *extra, source, destination, timeout=timeout)

    def inspect(self, reference: str, *, raw: bool = False, timeout: float = 60.0) -> dict[str, Any]:
        """``skopeo inspect`` of ``docker://…`` as parsed JSON (``raw``: the manifest itself)."""
        args = ["inspect", *self._remote_flags("")]
        if raw:
            args.append("--raw")
        result: dict[str, Any] = json.loads(self.run(*args, reference, timeout=timeout).stdout)
        return result

    def list_tags(self, repository_reference: str, *, timeout: float = 60.0) -> list[str]:
        """``skopeo list-tags docker://HOST/REPO`` → the tags."""
        out = self.run("list-tags", *self._remote_flags(""), repository_reference, timeout=timeout).stdout
        tags: list[str] = json.loads(out)["Tags"]
        return tags

    def delete(self, reference: str, *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return self.run("delete", *self._remote_flags(""), reference, timeout=timeout)


class _DeadlineAdapter(HTTPAdapter):
    """Gives every request without its own timeout ``HTTP_TIMEOUT``: requests' default is to wait forever."""

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        timeout = HTTP_TIMEOUT if timeout is None else timeout
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)


def bound_in_time(session: requests.Session) -> requests.Session:
    """Make every request of ``session`` (also those a library sends for us) time out."""
    for scheme in ("http://", "https://"):
        session.mount(scheme, _DeadlineAdapter())
    return session


@contextmanager
def registry_session(credentials: Credentials | None) -> Iterator[requests.Session]:
    """A ``requests.Session`` for raw HTTP to the registry: Basic auth when the target needs credentials,
    and ``HTTP_TIMEOUT`` on any request that does not set its own."""
    session = bound_in_time(requests.Session())
    if credentials is not None:
        session.auth = (credentials.username, credentials.password)
    try:
        yield session
    finally:
        session.close()


class OciHttp:
    """Raw OCI distribution API calls with ``requests``, for what the CLIs hide: uploads chunk by chunk,
    HEAD checks, referrers. Each method sends exactly one request (with a timeout) and returns the response
    unchecked, except where its name promises more."""

    def __init__(self, session: requests.Session, base_url: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")

    def absolute(self, location: str) -> str:
        """A ``Location`` header as an absolute URL (the spec allows relative ones)."""
        return urljoin(self.base_url + "/", location)

    def start_upload(self, name: str) -> requests.Response:
        return self.session.post(f"{self.base_url}/v2/{name}/blobs/uploads/", timeout=HTTP_TIMEOUT)

    def patch_chunk(self, location: str, chunk: bytes, offset: int) -> requests.Response:
        """PATCH ``chunk`` as bytes ``offset``… of the upload (``Content-Range: <start>-<end>``, inclusive)."""
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
        }
        return self.session.patch(self.absolute(location), data=chunk, headers=headers, timeout=HTTP_TIMEOUT)

    def upload_status(self, location: str) -> requests.Response:
        return self.session.get(self.absolute(location), timeout=HTTP_TIMEOUT)

    def finish_upload(self, location: str, digest: str, body: bytes = b"") -> requests.Response:
        headers = {"Content-Type": "application/octet-stream"}
        return self.session.put(
            self.absolute(location), params={"digest": digest}, data=body, headers=headers, timeout=HTTP_TIMEOUT
        )

    def push_blob(self, name: str, data: bytes, digest: str) -> None:
        """POST then PUT with the whole body; asserts the registry stored it."""
        started = self.start_upload(name)
        assert started.status_code == 202, describe_response(started)
        finished = self.finish_upload(started.headers["Location"], digest, data)
        assert finished.status_code == 201, describe_response(finished)

    def head_blob(self, name: str, digest: str) -> requests.Response:
        return self.session.head(f"{self.base_url}/v2/{name}/blobs/{digest}", timeout=HTTP_TIMEOUT)

    def get_blob(self, name: str, digest: str, *, stream: bool = False) -> requests.Response:
        return self.session.get(f"{self.base_url}/v2/{name}/blobs/{digest}", stream=stream, timeout=HTTP_TIMEOUT)

    def get_manifest(self, name: str, reference: str, *accept: str) -> requests.Response:
        headers = {"Accept": ", ".join(accept)} if accept else {}
        return self.session.get(
            f"{self.base_url}/v2/{name}/manifests/{reference}", headers=headers, timeout=HTTP_TIMEOUT
        )

    def put_manifest(self, name: str, reference: str, body: bytes, media_type: str) -> requests.Response:
        return self.session.put(
            f"{self.base_url}/v2/{name}/manifests/{reference}",
            data=body,
            headers={"Content-Type": media_type},
            timeout=HTTP_TIMEOUT,
        )

    def referrers(self, name: str, digest: str, *, artifact_type: str | None = None) -> requests.Response:
        params = {"artifactType": artifact_type} if artifact_type is not None else None
        return self.session.get(f"{self.base_url}/v2/{name}/referrers/{digest}", params=params, timeout=HTTP_TIMEOUT)

    def send_truncated_patch(self, location: str, chunk: bytes, offset: int, *, sent: int) -> None:
        """Start a PATCH of ``chunk`` at ``offset`` but drop the connection after ``sent`` body bytes.

        A raw socket, because an HTTP client will not stop mid-body: this is the network failing under a
        client, as the server sees it — a declared Content-Length that never arrives.
        """
        url = urlsplit(self.absolute(location))
        target = url.path + (f"?{url.query}" if url.query else "")
        lines = [
            f"PATCH {target} HTTP/1.1",
            f"Host: {url.netloc}",
            "Content-Type: application/octet-stream",
            f"Content-Length: {len(chunk)}",
            f"Content-Range: {offset}-{offset + len(chunk) - 1}",
        ]
        auth = self.session.auth
        if isinstance(auth, tuple):
            username, password = auth
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            lines.append(f"Authorization: Basic {token}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        assert url.hostname is not None and url.port is not None, f"cannot connect to {location}"
        # A server that refuses the request early may close first; what it kept is asked for next.
        with (
            socket.create_connection((url.hostname, url.port), timeout=HTTP_TIMEOUT[0]) as sock,
            contextlib.suppress(ConnectionError),
        ):
            sock.sendall(head + chunk[:sent])


def describe_response(response: requests.Response) -> str:
    """One failed exchange, for an assertion message: request line, status, headers, start of the body."""
    request = response.request
    body = response.text[:2000]
    return (
        f"{request.method} {request.url} -> {response.status_code} {response.reason}\n"
        f"headers: {dict(response.headers)}\nbody: {body}"
    )


def parse_range(header: str | None) -> int:
    """The number of bytes a ``Range: 0-<last>`` upload-progress header says the registry holds."""
    assert header is not None, "the registry sent no Range header"
    start, separator, last = header.removeprefix("bytes=").partition("-")
    assert separator and start == "0", f"unexpected Range header {header!r}"
    return int(last) + 1


def ecr_client(endpoint_url: str) -> Any:
    """A boto3 ECR client for ecrd's AWS door, signed with the fixed root test credentials."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=TEST_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
        region_name=TEST_REGION,
    ).client(
        "ecr",
        endpoint_url=endpoint_url,
        config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 1, "mode": "standard"}),
    )


def ecr_registry_credentials(ecr: Any) -> Credentials:
    """``docker login`` credentials from ``GetAuthorizationToken``: the token is base64 of ``AWS:<password>``."""
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    username, separator, password = base64.b64decode(token).decode().partition(":")
    assert separator, "GetAuthorizationToken returned a token that is not base64('user:password')"
    return Credentials(username, password)


def oras_registry(host: str, credentials: Credentials | None) -> Any:
    """An ``oras.provider.Registry`` on plain HTTP, with Basic auth when the target needs credentials.

    oras' default ``token`` backend answers a 401 only with a bearer-token dance; ecrd, like ECR, challenges
    for Basic auth, which the ``basic`` backend answers. Credentials are set on the client rather than
    through ``Registry.login``, which would write them into a docker config file.
    """
    import oras.provider

    if credentials is None:
        registry = oras.provider.Registry(hostname=host, insecure=True)
    else:
        registry = oras.provider.Registry(hostname=host, insecure=True, auth_backend="basic")
        registry.auth.set_basic_auth(credentials.username, credentials.password)
    # oras sends its requests without a timeout (and its auth backend shares this session).
    bound_in_time(registry.session)
    return registry
