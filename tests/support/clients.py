"""The real registry clients as tests drive them: CLI runs with deadlines, skopeo, raw HTTP, the AWS CLI, boto3
and oras.

Every call here is bounded in time, and a failure says what ran, how it ended and what it printed, so a
red e2e test reads without a rerun.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from tests.support.images import Image, sha256_digest

TOOL_TIMEOUT = 300.0
"""Default seconds for one CLI run; callers pass less where they know better."""

HTTP_TIMEOUT = (5.0, 120.0)
"""(connect, read) seconds for every raw HTTP request a test sends to a registry."""

OUTPUT_TAIL = 4000
"""Characters of a failed command's stdout and stderr quoted in its error."""

TEST_REGION = "us-east-1"
TEST_ACCESS_KEY_ID = "AKIAECRDTESTROOT0001"
TEST_SECRET_ACCESS_KEY = "ecrd/e2e/TestRootSecretKey/000000000000000"
TEST_ACCOUNT_ID = "000000000000"
"""The account ecrd answers as by default (``--account-id``)."""

AWS_CLI_TIMEOUT = 60.0
"""Seconds one ``aws`` run may take: one API call, plus the CLI's own start-up (about a second)."""


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


@dataclass(frozen=True)
class AwsCredentials:
    """An AWS access key (with its session token, for temporary credentials), as the SDKs and the CLI take it."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"AwsCredentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"

    @classmethod
    def from_access_key(cls, access_key: Mapping[str, Any]) -> AwsCredentials:
        """From IAM's ``AccessKey`` or STS's ``Credentials`` structure (CLI or boto3 output)."""
        return cls(access_key["AccessKeyId"], access_key["SecretAccessKey"], access_key.get("SessionToken"))


ROOT_CREDENTIALS = AwsCredentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
"""The account root's key, which the e2e registry is started with."""


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


def aws_client(
    service: str,
    endpoint_url: str,
    credentials: AwsCredentials = ROOT_CREDENTIALS,
    *,
    region: str = TEST_REGION,
    botocore_session: Any = None,
) -> Any:
    """A boto3 client of ``service`` (ecr, iam, sts, kms) on ecrd's AWS door, signed with ``credentials`` for
    ``region``: the one way tests make AWS clients.

    Bounded in time and without retries, so a failure shows at once and as it was.
    """
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        region_name=region,
        botocore_session=botocore_session,
    ).client(
        service,
        endpoint_url=endpoint_url,
        config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 1, "mode": "standard"}),
    )


def ecr_with_ecrd_operations(endpoint_url: str, model_dir: Path, credentials: AwsCredentials = ROOT_CREDENTIALS) -> Any:
    """A boto3 ECR client that also knows ecrd's own operations (PutImagePullPolicy …): given the model
    ``ecrd aws-model ecr`` prints, in ``model_dir``, as ``aws configure add-model`` would install it."""
    import botocore.session

    from ecrd.aws.models import model_data

    data = model_data("ecr")
    path = model_dir / "ecr" / data["metadata"]["apiVersion"] / "service-2.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    session = botocore.session.Session()
    session.get_component("data_loader").search_paths.insert(0, str(model_dir))
    return aws_client("ecr", endpoint_url, credentials, botocore_session=session)


def ecr_client(endpoint_url: str) -> Any:
    """A boto3 ECR client for ecrd's AWS door, signed with the fixed root test credentials."""
    return aws_client("ecr", endpoint_url)


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


def upload_layer_through_api(ecr: Any, repository: str, data: bytes) -> str:
    """Upload one blob with the ECR layer API (InitiateLayerUpload, UploadLayerPart in the part size it
    names, CompleteLayerUpload) and return its digest."""
    digest = sha256_digest(data)
    started = ecr.initiate_layer_upload(repositoryName=repository)
    upload_id, part_size = started["uploadId"], started["partSize"]
    for first in range(0, len(data), part_size):
        part = data[first : first + part_size]
        ecr.upload_layer_part(
            repositoryName=repository,
            uploadId=upload_id,
            partFirstByte=first,
            partLastByte=first + len(part) - 1,
            layerPartBlob=part,
        )
    completed = ecr.complete_layer_upload(repositoryName=repository, uploadId=upload_id, layerDigests=[digest])
    assert completed["layerDigest"] == digest, completed
    return digest


def put_image_through_api(ecr: Any, repository: str, image: Image, tag: str) -> dict[str, Any]:
    """Push ``image`` the way an SDK-based tool would: every layer and the config through the layer API,
    then ``PutImage`` of its manifest under ``tag``; return PutImage's ``image``."""
    for blob in [image.config, *(layer.blob for layer in image.layers)]:
        upload_layer_through_api(ecr, repository, blob)
    put: dict[str, Any] = ecr.put_image(
        repositoryName=repository,
        imageManifest=image.manifest.decode(),
        imageManifestMediaType=json.loads(image.manifest)["mediaType"],
        imageTag=tag,
    )["image"]
    return put


def aws_cli_binary() -> str | None:
    """The ``aws`` of this interpreter's environment (awscli is a test dependency), else the first on PATH."""
    beside = Path(sys.executable).with_name("aws")
    return str(beside) if beside.is_file() else shutil.which("aws")


_AWS_ERROR = re.compile(
    r"An error occurred \((?P<code>[^)]+)\) when calling the (?P<operation>\w+) operation"
    r"(?: \(reached max retries: \d+\))?: (?P<message>.*)"
)


@dataclass(frozen=True)
class AwsCliError:
    """What the AWS CLI printed for a failed call: ``An error occurred (CODE) when calling the OP operation: MSG``."""

    code: str
    operation: str
    message: str


class AwsCli:
    """The AWS CLI on ecrd's AWS door, as one principal, reading nothing of the machine's AWS configuration.

    It runs with a private ``HOME``, config and credentials file, no profile, no instance metadata lookups,
    ``AWS_ENDPOINT_URL`` pointing at the registry, and one attempt per call (no retries hiding a failure).
    """

    def __init__(
        self,
        endpoint_url: str,
        credentials: AwsCredentials,
        home: Path,
        *,
        binary: str = "aws",
        region: str = TEST_REGION,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.credentials = credentials
        self.home = home
        self.binary = binary
        self.region = region
        home.mkdir(parents=True, exist_ok=True)
        for name in ("config", "credentials"):
            (home / name).touch()
        self.env = self.environment(os.environ)

    def with_credentials(self, credentials: AwsCredentials) -> AwsCli:
        """The same CLI acting as another principal (same private home: it holds no credentials)."""
        return AwsCli(self.endpoint_url, credentials, self.home, binary=self.binary, region=self.region)

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` without any ``AWS_*`` variable of its own, plus this CLI's settings."""
        env = {key: value for key, value in base.items() if not key.startswith("AWS_")}
        env.update(
            HOME=str(self.home),
            AWS_CONFIG_FILE=str(self.home / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.home / "credentials"),
            AWS_ENDPOINT_URL=self.endpoint_url,
            AWS_DEFAULT_REGION=self.region,
            AWS_ACCESS_KEY_ID=self.credentials.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.credentials.secret_access_key,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_MAX_ATTEMPTS="1",
            AWS_RETRY_MODE="standard",
            AWS_PAGER="",
        )
        if self.credentials.session_token is not None:
            env["AWS_SESSION_TOKEN"] = self.credentials.session_token
        return env

    def argv(self, *args: str) -> list[str]:
        """``aws ARGS`` with connect and read deadlines of its own."""
        return [self.binary, "--cli-connect-timeout", "5", "--cli-read-timeout", "60", *args]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = AWS_CLI_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        secrets = [self.credentials.secret_access_key, *filter(None, [self.credentials.session_token])]
        return run_tool(self.argv(*args), timeout=timeout, env=self.env, check=check, redact=secrets)

    def json(self, *args: str) -> Any:
        """``aws ARGS --output json``, parsed; a command that prints nothing gives None."""
        out = self(*args, "--output", "json").stdout
        return json.loads(out) if out.strip() else None

    def error(self, *args: str) -> AwsCliError:
        """Run a call expected to fail; return the error the CLI printed."""
        result = self(*args, check=False)
        assert result.returncode != 0, f"`aws {' '.join(args)}` succeeded:\n{result.stdout}"
        found = _AWS_ERROR.search(result.stderr)
        assert found, f"`aws {' '.join(args)}` failed without an AWS error:\n{result.stderr}"
        return AwsCliError(found["code"], found["operation"], found["message"].strip())


def policy_json(*statements: Mapping[str, Any]) -> str:
    """An IAM policy document (version 2012-10-17) of ``statements``, as the CLI takes it."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


class IamAccount:
    """Users and roles a test makes through the real AWS CLI (as the account root), removed again afterwards.

    Creation goes through the CLI, as an administrator would type it; ``remove_all`` cleans up with boto3,
    deleting first what IAM requires gone (access keys, inline and attached policies).
    """

    def __init__(self, aws: AwsCli, iam: Any) -> None:
        self.aws = aws
        self.iam = iam
        self.users: list[str] = []
        self.roles: list[str] = []

    def user_arn(self, name: str) -> str:
        return f"arn:aws:iam::{TEST_ACCOUNT_ID}:user/{name}"

    def role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{TEST_ACCOUNT_ID}:role/{name}"

    def create_user(self, name: str, *managed_policy_arns: str) -> AwsCredentials:
        """``create-user``, ``attach-user-policy`` for each policy, ``create-access-key`` → the user's key."""
        self.aws.json("iam", "create-user", "--user-name", name)
        self.users.append(name)
        for arn in managed_policy_arns:
            self.aws("iam", "attach-user-policy", "--user-name", name, "--policy-arn", arn)
        return self.create_access_key(name)

    def create_access_key(self, name: str) -> AwsCredentials:
        created = self.aws.json("iam", "create-access-key", "--user-name", name)
        return AwsCredentials.from_access_key(created["AccessKey"])

    def create_role(self, name: str, trusted_principal_arn: str, *managed_policy_arns: str) -> str:
        """A role whose trust policy lets ``trusted_principal_arn`` assume it, with the policies attached."""
        trust = policy_json(
            {"Effect": "Allow", "Principal": {"AWS": trusted_principal_arn}, "Action": "sts:AssumeRole"}
        )
        role = self.aws.json("iam", "create-role", "--role-name", name, "--assume-role-policy-document", trust)
        arn: str = role["Role"]["Arn"]
        self.roles.append(name)
        for policy_arn in managed_policy_arns:
            self.aws("iam", "attach-role-policy", "--role-name", name, "--policy-arn", policy_arn)
        return arn

    def remove_all(self) -> None:
        for name in reversed(self.roles):
            self._remove_role(name)
        for name in reversed(self.users):
            self._remove_user(name)
        self.roles.clear()
        self.users.clear()

    def _remove_user(self, name: str) -> None:
        iam = self.iam
        try:
            keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
        except iam.exceptions.NoSuchEntityException:
            return
        for key in keys:
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        for policy in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
            iam.detach_user_policy(UserName=name, PolicyArn=policy["PolicyArn"])
        for policy_name in iam.list_user_policies(UserName=name)["PolicyNames"]:
            iam.delete_user_policy(UserName=name, PolicyName=policy_name)
        iam.delete_user(UserName=name)

    def _remove_role(self, name: str) -> None:
        iam = self.iam
        try:
            attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        except iam.exceptions.NoSuchEntityException:
            return
        for policy in attached:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        iam.delete_role(RoleName=name)
