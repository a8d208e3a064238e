"""Security properties an attacker would probe: registry tokens (forged, truncated, expired, revoked, foreign),
SigV4 (replay outside the window, wrong scope or service, keys of deleted users), blob isolation between
repositories, privilege escalation through IAM, secrets kept out of logs and error bodies, and constant-time
comparison of every secret.

Not repeated here (see tests/integration/test_access_control.py and test_ecr_api.py): deactivated and deleted
keys revoking their tokens, GET of a blob another repository holds, a wrong secret or region for SigV4, base64
re-spellings of a password.
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import inspect
import json
import logging
import sqlite3
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from starlette.testclient import TestClient

from ecrd.app import Registry
from ecrd.aws import sigv4
from ecrd.services.iam.authentication import Authenticator
from ecrd.services.secrets import SecretBox
from ecrd.services.tokens import TOKEN_LIFETIME_SECONDS, RegistryTokens
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.integration.test_ecr_api import client_for, error_code
from tests.support.clock import FakeClock
from tests.support.fuzzing import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, Key, sign
from tests.support.live_server import live_server
from tests.support.oci import OCI_MANIFEST, config_blob, image_manifest, random_blob

pytestmark = pytest.mark.fuzz

ACCOUNT = "000000000000"
ROOT = Key(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
POWER_USER = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser"
READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921"


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def endpoint(registry: Registry) -> Iterator[str]:
    with live_server(registry) as url:
        yield url


@pytest.fixture
def clock(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The registry's token and identity services on a clock the test controls."""
    # Starts at the real time, so that requests signed by clients (SigV4) still verify.
    fake = FakeClock.at_wall_time()
    monkeypatch.setattr(registry.tokens, "clock", fake)
    for service in (registry.identity.authentication, registry.identity.sessions):
        monkeypatch.setattr(service, "clock", fake)
    return fake


def basic(password: str, user: str = "AWS") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def password_of(registry: Registry, access_key_id: str = ROOT_ACCESS_KEY_ID) -> str:
    caller = registry.identity.authentication.current_caller(access_key_id)
    assert caller is not None
    return registry.tokens.issue(caller).password


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def new_user(registry: Registry, name: str, *policies: str) -> Key:
    registry.identity.users.create_user(name)
    for arn in policies:
        registry.identity.permissions.attach_user_policy(name, arn)
    created = registry.identity.users.create_access_key(name)
    return Key(created.access_key_id, created.secret_access_key)


def trust(*principals: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "sts:AssumeRole"}],
        }
    )


# -- registry tokens ----------------------------------------------------------------------------------------


def test_token_signed_by_another_registry_is_refused(registry: Registry, anonymous_client: TestClient) -> None:
    caller = registry.identity.authentication.current_caller(ROOT_ACCESS_KEY_ID)
    assert caller is not None
    stranger = RegistryTokens(SecretBox(b"\x01" * 32), registry.identity, account_id=ACCOUNT, region="us-east-1")
    assert_unauthorized(anonymous_client.get("/v2/", headers=basic(stranger.issue(caller).password)))


def test_token_with_rewritten_claims_keeps_no_signature(registry: Registry, anonymous_client: TestClient) -> None:
    alice = new_user(registry, "alice", READ_ONLY)
    password = password_of(registry, alice.access_key_id)
    encoded_payload, _, mac = password.partition(".")
    claims = json.loads(base64.urlsafe_b64decode(encoded_payload + "=" * (-len(encoded_payload) % 4)))
    assert anonymous_client.get("/v2/", headers=basic(password)).status_code == 200
    for change in ({"k": ROOT_ACCESS_KEY_ID}, {"exp": claims["exp"] + 10**6}, {"a": "111111111111"}, {"v": 2}):
        forged = base64.urlsafe_b64encode(json.dumps({**claims, **change}, separators=(",", ":")).encode())
        rewritten = forged.rstrip(b"=").decode() + "." + mac
        assert_unauthorized(anonymous_client.get("/v2/", headers=basic(rewritten)))


def test_every_truncation_of_a_token_is_refused(registry: Registry, anonymous_client: TestClient) -> None:
    password = password_of(registry)
    cuts = {password[:n] for n in range(len(password))} | {password[n:] for n in range(1, len(password))}
    for cut in sorted(cuts):
        assert_unauthorized(anonymous_client.get("/v2/", headers=basic(cut)))


def test_token_expires_after_twelve_hours_with_ecr_s_denial(
    registry: Registry, anonymous_client: TestClient, clock: FakeClock
) -> None:
    password = password_of(registry)
    clock.advance(TOKEN_LIFETIME_SECONDS - 1)
    assert anonymous_client.get("/v2/", headers=basic(password)).status_code == 200
    clock.advance(1)
    expired = anonymous_client.get("/v2/", headers=basic(password))
    assert expired.status_code == 403
    assert expired.json()["errors"][0] == {
        "code": "DENIED",
        "message": "Your authorization token has expired. Reauthenticate and try again.",
    }


def test_token_of_a_role_session_ends_with_the_session(
    registry: Registry, anonymous_client: TestClient, clock: FakeClock
) -> None:
    alice = new_user(registry, "alice")
    registry.identity.roles.create_role("reader", trust(f"arn:aws:iam::{ACCOUNT}:user/alice"))
    registry.identity.permissions.attach_role_policy("reader", READ_ONLY)
    caller = registry.identity.authentication.current_caller(alice.access_key_id)
    assert caller is not None
    session = registry.identity.sessions.assume_role(caller, f"arn:aws:iam::{ACCOUNT}:role/reader", "ci", 900)
    password = password_of(registry, session.credentials.access_key_id)
    assert anonymous_client.get("/v2/", headers=basic(password)).status_code == 200
    clock.advance(901)
    assert anonymous_client.get("/v2/", headers=basic(password)).status_code in (401, 403)


def test_token_of_a_role_session_dies_with_the_role(registry: Registry, anonymous_client: TestClient) -> None:
    alice = new_user(registry, "alice")
    registry.identity.roles.create_role("reader", trust(f"arn:aws:iam::{ACCOUNT}:user/alice"))
    caller = registry.identity.authentication.current_caller(alice.access_key_id)
    assert caller is not None
    session = registry.identity.sessions.assume_role(caller, f"arn:aws:iam::{ACCOUNT}:role/reader", "ci")
    password = password_of(registry, session.credentials.access_key_id)
    assert anonymous_client.get("/v2/", headers=basic(password)).status_code == 200
    registry.identity.roles.delete_role("reader")
    registry.identity.roles.create_role("reader", trust(f"arn:aws:iam::{ACCOUNT}:user/alice"))  # same name, new role
    assert_unauthorized(anonymous_client.get("/v2/", headers=basic(password)))


def test_token_of_a_deleted_user_stays_refused_when_the_name_returns(
    registry: Registry, anonymous_client: TestClient
) -> None:
    alice = new_user(registry, "alice", READ_ONLY)
    password = password_of(registry, alice.access_key_id)
    registry.identity.users.delete_access_key("alice", alice.access_key_id)
    registry.identity.permissions.detach_user_policy("alice", READ_ONLY)
    registry.identity.users.delete_user("alice")
    new_user(registry, "alice", READ_ONLY)
    assert_unauthorized(anonymous_client.get("/v2/", headers=basic(password)))


def test_token_for_another_region_is_refused(registry: Registry, anonymous_client: TestClient) -> None:
    # Same master key, so the MAC verifies: only the region claim can refuse it. ECR's tokens are tied to their
    # region and open any registry of it (another account's registry issued this one: the holder is still the
    # key's own caller, whose policies decide).
    box = SecretBox.load(data_dir=registry.settings.data_dir)
    caller = registry.identity.authentication.current_caller(ROOT_ACCESS_KEY_ID)
    assert caller is not None
    for account in (ACCOUNT, "111111111111"):
        same_region = RegistryTokens(box, registry.identity.authentication, account_id=account, region="us-east-1")
        assert anonymous_client.get("/v2/", headers=basic(same_region.issue(caller).password)).status_code == 200
    foreign = RegistryTokens(box, registry.identity.authentication, account_id=ACCOUNT, region="eu-west-1")
    assert_unauthorized(anonymous_client.get("/v2/", headers=basic(foreign.issue(caller).password)))


def test_token_is_accepted_only_as_the_aws_user_and_as_a_query_only_on_blob_downloads(
    registry: Registry, anonymous_client: TestClient
) -> None:
    registry.registry.create_repository("app")
    password = password_of(registry)
    for user in ("aws", "root", "", "AWS "):
        assert_unauthorized(anonymous_client.get("/v2/", headers=basic(password, user)))
    assert_unauthorized(anonymous_client.get("/v2/", headers={"Authorization": f"Bearer {password}"}))
    for path in ("/v2/", "/v2/app/tags/list", "/v2/app/manifests/latest", "/v2/_catalog"):
        assert_unauthorized(anonymous_client.get(path, params={"token": password}))
    assert_unauthorized(anonymous_client.post("/v2/app/blobs/uploads/", params={"token": password}))


def test_download_url_token_opens_only_its_layer(registry: Registry, endpoint: str) -> None:
    ecr = client_for(endpoint, "ecr")
    ecr.create_repository(repositoryName="app")
    blob = random_blob()
    root = requests.Session()
    root.headers.update(basic(password_of(registry)))
    assert root.post(f"{endpoint}/v2/app/blobs/uploads/?digest={blob.digest}", data=blob.data).status_code == 201
    url = ecr.get_download_url_for_layer(repositoryName="app", layerDigest=blob.digest)["downloadUrl"]
    token = url.split("?token=", 1)[1]
    assert requests.get(url.replace("http://127.0.0.1:5000", endpoint), timeout=10).content == blob.data
    pushed = requests.post(f"{endpoint}/v2/app/blobs/uploads/", headers=basic(token), timeout=10)
    assert pushed.status_code in (401, 403), pushed.status_code


# -- SigV4 through a real server ----------------------------------------------------------------------------


def signed_post(
    endpoint: str,
    key: Key,
    service: str,
    target: str | None,
    body: bytes,
    *,
    at: dt.datetime | None = None,
    region: str = "us-east-1",
    rewrite: Callable[[dict[str, str]], dict[str, str]] | None = None,
) -> requests.Response:
    headers = (
        {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": target} if target else {"Content-Type": FORM_CONTENT_TYPE}
    )
    signed = sign(key, service, body, headers, url=endpoint + "/", at=at, region=region)
    if rewrite is not None:
        signed = rewrite(signed)
    return requests.post(endpoint + "/", data=body, headers=signed, timeout=10)


def describe(endpoint: str, key: Key = ROOT, **kwargs: Any) -> requests.Response:
    """DescribeRepositories, which the read-only managed policy allows."""
    return signed_post(endpoint, key, "ecr", f"{ECR_TARGET}.DescribeRepositories", b"{}", **kwargs)


def test_request_signed_more_than_fifteen_minutes_away_is_refused(endpoint: str) -> None:
    now = dt.datetime.now(dt.UTC)
    assert describe(endpoint, at=now - dt.timedelta(minutes=14)).status_code == 200
    assert describe(endpoint, at=now + dt.timedelta(minutes=14)).status_code == 200
    for shift, words in ((-16, "Signature expired"), (16, "Signature not yet current"), (-60 * 24 * 7, "expired")):
        refused = describe(endpoint, at=now + dt.timedelta(minutes=shift))
        assert refused.status_code in (400, 403), refused.text
        assert refused.json()["__type"] == "InvalidSignatureException"
        assert words in refused.json()["message"]


def test_captured_request_replayed_after_the_window_is_refused(
    endpoint: str, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b"{}"
    headers = sign(
        ROOT,
        "ecr",
        body,
        {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": f"{ECR_TARGET}.DescribeRegistry"},
        url=endpoint + "/",
    )
    assert requests.post(endpoint + "/", data=body, headers=headers, timeout=10).status_code == 200

    # The AWS door's clock, sixteen minutes on: the request was captured and is replayed now.
    later = FakeClock.at_wall_time()
    later.advance(16 * 60)
    monkeypatch.setattr(registry.aws, "clock", later)
    replayed = requests.post(endpoint + "/", data=body, headers=headers, timeout=10)
    assert replayed.json()["__type"] == "InvalidSignatureException", replayed.text


def _replace_scope(part: int, value: str) -> Callable[[dict[str, str]], dict[str, str]]:
    def rewrite(headers: dict[str, str]) -> dict[str, str]:
        authorization = headers["Authorization"]
        credential = authorization.split("Credential=", 1)[1].split(",", 1)[0]
        parts = credential.split("/")
        parts[part] = value
        return {**headers, "Authorization": authorization.replace(credential, "/".join(parts))}

    return rewrite


def test_signature_for_another_scope_or_service_is_refused(endpoint: str) -> None:
    body = b"{}"
    target = f"{ECR_TARGET}.DescribeRegistry"
    for service in ("s3", "ecr-public", "execute-api"):
        refused = signed_post(endpoint, ROOT, service, target, body)
        assert refused.json()["__type"] == "InvalidSignatureException", (service, refused.text)
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y%m%d")
    for part, value in ((1, yesterday), (2, "us-west-2"), (3, "kms"), (4, "aws4_requesx")):
        refused = signed_post(endpoint, ROOT, "ecr", target, body, rewrite=_replace_scope(part, value))
        assert refused.json()["__type"] == "InvalidSignatureException", (part, value, refused.text)
    later = signed_post(
        endpoint,
        ROOT,
        "ecr",
        target,
        body,
        rewrite=lambda h: {
            **h,
            "X-Amz-Date": h["X-Amz-Date"][:-3] + ("00Z" if not h["X-Amz-Date"].endswith("00Z") else "01Z"),
        },
    )
    assert later.json()["__type"] == "InvalidSignatureException", later.text
    # Signed for IAM in a region IAM does not sign in.
    iam_elsewhere = signed_post(endpoint, ROOT, "iam", None, b"Action=ListUsers&Version=2010-05-08", region="eu-west-1")
    assert "<Code>SignatureDoesNotMatch</Code>" in iam_elsewhere.text, iam_elsewhere.text


def test_a_signature_for_one_service_does_not_run_another_s_operations(endpoint: str) -> None:
    kms_for_ecr = signed_post(endpoint, ROOT, "kms", f"{ECR_TARGET}.DeleteRepository", b'{"repositoryName":"app"}')
    assert kms_for_ecr.json()["__type"] == "UnknownOperationException", kms_for_ecr.text
    ecr_for_kms = signed_post(endpoint, ROOT, "ecr", "TrentService.ListKeys", b"{}")
    assert ecr_for_kms.json()["__type"] == "UnknownOperationException", ecr_for_kms.text
    sts_for_iam = signed_post(endpoint, ROOT, "sts", None, b"Action=CreateUser&Version=2010-05-08&UserName=m")
    assert "<Code>InvalidAction</Code>" in sts_for_iam.text, sts_for_iam.text
    iam = client_for(endpoint, "iam")
    with pytest.raises(ClientError):
        iam.get_user(UserName="m")


def test_key_of_a_deleted_user_is_refused_even_for_a_captured_request(registry: Registry, endpoint: str) -> None:
    bob = new_user(registry, "bob", READ_ONLY)
    body = b"{}"
    headers = sign(
        bob,
        "ecr",
        body,
        {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": f"{ECR_TARGET}.DescribeRepositories"},
        url=endpoint + "/",
    )
    assert requests.post(endpoint + "/", data=body, headers=headers, timeout=10).status_code == 200
    registry.identity.users.delete_access_key("bob", bob.access_key_id)
    registry.identity.permissions.detach_user_policy("bob", READ_ONLY)
    registry.identity.users.delete_user("bob")
    replayed = requests.post(endpoint + "/", data=body, headers=headers, timeout=10)
    assert replayed.json()["__type"] == "UnrecognizedClientException", replayed.text
    new_user(registry, "bob", READ_ONLY)  # the name comes back; the old key must not
    assert describe(endpoint, bob).json()["__type"] == "UnrecognizedClientException"


def test_temporary_credentials_need_their_own_session_token(registry: Registry, endpoint: str) -> None:
    alice = new_user(registry, "alice", READ_ONLY)
    registry.identity.roles.create_role("reader", trust(f"arn:aws:iam::{ACCOUNT}:user/alice"))
    registry.identity.permissions.attach_role_policy("reader", READ_ONLY)
    sts = client_for(endpoint, "sts", alice.access_key_id, alice.secret_access_key)
    first, second = (
        sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/reader", RoleSessionName=name)["Credentials"]
        for name in ("one", "two")
    )
    own = Key(first["AccessKeyId"], first["SecretAccessKey"], first["SessionToken"])
    assert describe(endpoint, own).status_code == 200
    for token in (None, second["SessionToken"], first["SessionToken"][:-2], first["SessionToken"] + "x"):
        refused = describe(endpoint, Key(own.access_key_id, own.secret_access_key, token))
        assert refused.status_code in (400, 403), (token, refused.text)
        assert refused.json()["__type"] == "UnrecognizedClientException", refused.text
    with_long_term_key = describe(endpoint, Key(alice.access_key_id, alice.secret_access_key, first["SessionToken"]))
    assert with_long_term_key.json()["__type"] == "UnrecognizedClientException"


# -- blobs are reachable only through repositories that link them -----------------------------------------


def test_blob_of_another_repository_cannot_be_reached_any_way(registry: Registry, endpoint: str) -> None:
    ecr = client_for(endpoint, "ecr")
    for name in ("mine", "secret"):
        ecr.create_repository(repositoryName=name)
    root = requests.Session()
    root.headers.update(basic(password_of(registry)))
    hidden = random_blob(2000)
    assert root.post(f"{endpoint}/v2/secret/blobs/uploads/?digest={hidden.digest}", data=hidden.data).status_code == 201
    alice = new_user(registry, "alice")
    permissions = registry.identity.permissions
    permissions.put_user_policy(
        "alice",
        "mine-only",
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                    {
                        "Effect": "Allow",
                        "Action": "ecr:*",
                        "Resource": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/mine",
                    },
                ],
            }
        ),
    )
    session = requests.Session()
    session.headers.update(basic(password_of(registry, alice.access_key_id)))

    for method, headers in (("HEAD", {}), ("GET", {"Range": "bytes=0-10"}), ("GET", {})):
        response = session.request(method, f"{endpoint}/v2/mine/blobs/{hidden.digest}", headers=headers, timeout=10)
        assert response.status_code == 404, (method, response.status_code)
        assert hidden.data[:10] not in response.content
    assert session.get(f"{endpoint}/v2/secret/blobs/{hidden.digest}", timeout=10).status_code == 403
    mount = session.post(f"{endpoint}/v2/mine/blobs/uploads/?mount={hidden.digest}&from=secret", timeout=10)
    assert mount.status_code == 202, mount.text  # an upload starts instead; the blob is not linked
    assert session.head(f"{endpoint}/v2/mine/blobs/{hidden.digest}", timeout=10).status_code == 404
    config = config_blob()
    pushed_config = session.post(f"{endpoint}/v2/mine/blobs/uploads/?digest={config.digest}", data=config.data)
    assert pushed_config.status_code == 201
    manifest = image_manifest(config, [hidden])
    pushed = session.put(f"{endpoint}/v2/mine/manifests/v1", data=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert pushed.status_code == 400 and pushed.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"

    api = client_for(endpoint, "ecr", alice.access_key_id, alice.secret_access_key)
    checked = api.batch_check_layer_availability(repositoryName="mine", layerDigests=[hidden.digest])
    assert checked["layers"] == [] and checked["failures"][0]["failureCode"] == "MissingLayerDigest"
    with pytest.raises(ClientError) as not_found:
        api.get_download_url_for_layer(repositoryName="mine", layerDigest=hidden.digest)
    assert error_code(not_found) == "LayersNotFoundException"
    with pytest.raises(ClientError) as denied:
        api.get_download_url_for_layer(repositoryName="secret", layerDigest=hidden.digest)
    assert error_code(denied) == "AccessDeniedException"
    url = client_for(endpoint, "ecr").get_download_url_for_layer(repositoryName="secret", layerDigest=hidden.digest)
    moved = url["downloadUrl"].replace("http://127.0.0.1:5000", endpoint).replace("/v2/secret/", "/v2/mine/")
    # The token names its repository and blob: elsewhere it opens nothing.
    assert requests.get(moved, timeout=10).status_code == 401
    assert root.delete(f"{endpoint}/v2/mine/blobs/{hidden.digest}", timeout=10).status_code == 404
    assert root.get(f"{endpoint}/v2/secret/blobs/{hidden.digest}", timeout=10).content == hidden.data


# -- privilege escalation through IAM -------------------------------------------------------------------------


@pytest.fixture
def eve(registry: Registry, endpoint: str) -> Key:
    """A user who may create access keys for herself, and nothing else in IAM."""
    identity = registry.identity
    identity.users.create_user("bob")
    identity.users.create_user("eve")
    identity.permissions.put_user_policy(
        "eve",
        "own-keys",
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "iam:CreateAccessKey",
                        "Resource": f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}",
                    },
                    {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
                ],
            }
        ),
    )
    created = identity.users.create_access_key("eve")
    iam = client_for(endpoint, "iam")
    admin = iam.create_policy(
        PolicyName="admin",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )["Policy"]["Arn"]
    iam.attach_user_policy(
        UserName="eve",
        PolicyArn=iam.create_policy(
            PolicyName="harmless",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "ecr:DescribeRegistry", "Resource": "*"}],
                }
            ),
        )["Policy"]["Arn"],
    )
    iam.create_role(RoleName="admin-role", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:user/bob"))
    iam.attach_role_policy(RoleName="admin-role", PolicyArn=admin)
    return Key(created.access_key_id, created.secret_access_key)


def assert_denied(call: Callable[[], Any]) -> None:
    with pytest.raises(ClientError) as refused:
        call()
    assert error_code(refused) == "AccessDenied", refused.value.response["Error"]


def test_a_user_who_may_only_make_her_own_keys_cannot_escalate(registry: Registry, endpoint: str, eve: Key) -> None:
    iam = client_for(endpoint, "iam", eve.access_key_id, eve.secret_access_key)
    sts = client_for(endpoint, "sts", eve.access_key_id, eve.secret_access_key)
    admin = f"arn:aws:iam::{ACCOUNT}:policy/admin"
    harmless = f"arn:aws:iam::{ACCOUNT}:policy/harmless"
    everything = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    )
    assert_denied(lambda: iam.create_access_key(UserName="bob"))
    assert_denied(lambda: iam.attach_user_policy(UserName="eve", PolicyArn=admin))
    assert_denied(
        lambda: iam.attach_user_policy(UserName="eve", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    )
    assert_denied(lambda: iam.put_user_policy(UserName="eve", PolicyName="mine", PolicyDocument=everything))
    assert_denied(lambda: iam.create_policy_version(PolicyArn=harmless, PolicyDocument=everything, SetAsDefault=True))
    assert_denied(lambda: iam.set_default_policy_version(PolicyArn=harmless, VersionId="v1"))
    assert_denied(
        lambda: iam.update_assume_role_policy(
            RoleName="admin-role", PolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:user/eve")
        )
    )
    assert_denied(lambda: iam.attach_role_policy(RoleName="admin-role", PolicyArn=admin))
    assert_denied(lambda: iam.create_user(UserName="eve2"))
    assert_denied(
        lambda: iam.create_role(RoleName="mine", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:user/eve"))
    )
    assert_denied(lambda: iam.update_user(UserName="eve", NewUserName="bob2"))
    assert_denied(lambda: iam.update_access_key(AccessKeyId=eve.access_key_id, Status="Active", UserName="bob"))
    assert_denied(lambda: sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/admin-role", RoleSessionName="x1"))
    # What she may do, she can: and her new key has her permissions, not more.
    created = iam.create_access_key()["AccessKey"]
    again = client_for(endpoint, "iam", created["AccessKeyId"], created["SecretAccessKey"])
    assert_denied(lambda: again.attach_user_policy(UserName="eve", PolicyArn=admin))
    assert [
        p["PolicyName"]
        for p in client_for(endpoint, "iam").list_attached_user_policies(UserName="eve")["AttachedPolicies"]
    ] == ["harmless"]
    assert client_for(endpoint, "iam").list_user_policies(UserName="eve")["PolicyNames"] == ["own-keys"]


def test_attach_permission_limited_by_policy_arn_attaches_nothing_else(registry: Registry, endpoint: str) -> None:
    dana = new_user(registry, "dana")
    permissions = registry.identity.permissions
    permissions.put_user_policy(
        "dana",
        "attach-read-only",
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "iam:AttachUserPolicy",
                        "Resource": f"arn:aws:iam::{ACCOUNT}:user/dana",
                        "Condition": {"ArnEquals": {"iam:PolicyARN": READ_ONLY}},
                    }
                ],
            }
        ),
    )
    iam = client_for(endpoint, "iam", dana.access_key_id, dana.secret_access_key)
    for arn in (
        POWER_USER,
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryFullAccess",
        READ_ONLY + "x",
        READ_ONLY.upper(),
    ):
        assert_denied(lambda arn=arn: iam.attach_user_policy(UserName="dana", PolicyArn=arn))
    iam.attach_user_policy(UserName="dana", PolicyArn=READ_ONLY)
    assert_denied(lambda: iam.attach_user_policy(UserName="bob", PolicyArn=READ_ONLY))


def test_a_role_session_cannot_climb_to_a_role_that_does_not_trust_it(
    registry: Registry, endpoint: str, eve: Key
) -> None:
    registry.identity.roles.create_role("reader", trust(f"arn:aws:iam::{ACCOUNT}:user/eve"))
    permissions = registry.identity.permissions
    permissions.put_role_policy(
        "reader",
        "assume-anything",
        json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}
        ),
    )
    credentials = client_for(endpoint, "sts", eve.access_key_id, eve.secret_access_key).assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/reader", RoleSessionName="s1"
    )["Credentials"]
    session = (credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"])
    assert_denied(
        lambda: client_for(endpoint, "sts", *session).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/admin-role", RoleSessionName="s2"
        )
    )
    assert_denied(lambda: client_for(endpoint, "iam", *session).create_access_key(UserName="eve"))


def test_get_session_token_credentials_cannot_call_iam(registry: Registry, endpoint: str, eve: Key) -> None:
    credentials = client_for(endpoint, "sts", eve.access_key_id, eve.secret_access_key).get_session_token()[
        "Credentials"
    ]
    session_iam = client_for(
        endpoint, "iam", credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )
    with pytest.raises(ClientError):
        session_iam.create_access_key()
    assert len(registry.identity.users.list_access_keys("eve").items) == 1


# -- secrets stay out of logs, error bodies and the database -------------------------------------------------

CLIENT_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "requests")


def test_no_secret_reaches_a_log_an_error_body_or_the_database(
    registry: Registry, endpoint: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: dict[str, str] = {"root secret": ROOT_SECRET_ACCESS_KEY}
    master = (registry.settings.data_dir / "keys" / "master.key").read_text().strip()
    secrets["master key"] = master
    bodies: list[str] = []
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="carol")
    iam.attach_user_policy(UserName="carol", PolicyArn=POWER_USER)
    key = iam.create_access_key(UserName="carol")["AccessKey"]
    secrets["user secret"] = key["SecretAccessKey"]
    carol = (key["AccessKeyId"], key["SecretAccessKey"])
    ecr = client_for(endpoint, "ecr", *carol)
    client_for(endpoint, "ecr").create_repository(repositoryName="app")
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    password = base64.b64decode(token).decode().split(":", 1)[1]
    secrets["authorization token"], secrets["registry password"] = token, password

    registry_session = requests.Session()
    registry_session.headers.update(basic(password))
    config, layer = config_blob(), random_blob()
    for blob in (config, layer):
        assert (
            registry_session.post(f"{endpoint}/v2/app/blobs/uploads/?digest={blob.digest}", data=blob.data).status_code
            == 201
        )
    assert (
        registry_session.put(
            f"{endpoint}/v2/app/manifests/v1",
            data=image_manifest(config, [layer]),
            headers={"Content-Type": OCI_MANIFEST},
        ).status_code
        == 201
    )
    assert registry_session.get(f"{endpoint}/v2/app/manifests/v1").status_code == 200

    # Failed logins of every kind, some carrying a real secret in the wrong place.
    failures = [
        requests.get(f"{endpoint}/v2/", headers=basic(password + "x"), timeout=10),
        requests.get(f"{endpoint}/v2/", headers=basic(password[:-6]), timeout=10),
        requests.get(f"{endpoint}/v2/", headers=basic(key["SecretAccessKey"], "carol"), timeout=10),
        requests.get(f"{endpoint}/v2/", headers=basic(password, "admin"), timeout=10),
        requests.get(f"{endpoint}/v2/", headers={"Authorization": f"Bearer {password}"}, timeout=10),
        requests.get(f"{endpoint}/v2/app/tags/list", params={"token": password}, timeout=10),
        requests.post(
            endpoint + "/",
            headers={"Authorization": f"AWS {carol[0]}:{carol[1]}", "X-Amz-Target": f"{ECR_TARGET}.DescribeRegistry"},
            timeout=10,
        ),
        requests.post(
            endpoint + "/",
            headers={"Authorization": f"AWS4-HMAC-SHA256 {carol[1]}", "X-Amz-Date": "20240101T000000Z"},
            data=b"Action=ListUsers",
            timeout=10,
        ),
    ]
    bodies += [response.text for response in failures]
    for wrong in (Key(carol[0], carol[1][::-1]), Key(carol[0], carol[1], "not-a-session-token")):
        bodies.append(describe(endpoint, wrong).text)

    temporary = client_for(endpoint, "sts", *carol).get_session_token()["Credentials"]
    secrets["session secret"], secrets["session token"] = temporary["SecretAccessKey"], temporary["SessionToken"]
    bodies.append(
        describe(
            endpoint, Key(temporary["AccessKeyId"], temporary["SecretAccessKey"], temporary["SessionToken"] + "x")
        ).text
    )
    iam.create_role(RoleName="pusher", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:user/carol"))
    assumed = client_for(endpoint, "sts", *carol).assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pusher", RoleSessionName="ci"
    )["Credentials"]
    secrets["role session secret"], secrets["role session token"] = assumed["SecretAccessKey"], assumed["SessionToken"]
    role_ecr = client_for(endpoint, "ecr", assumed["AccessKeyId"], assumed["SecretAccessKey"], assumed["SessionToken"])
    with pytest.raises(ClientError) as denied:
        role_ecr.create_repository(repositoryName="nope")
    bodies.append(str(denied.value))

    kms = client_for(endpoint, "kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    secrets["data key"] = base64.b64encode(data_key["Plaintext"]).decode()
    with pytest.raises(ClientError) as bad_ciphertext:
        kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"][:-4] + b"xxxx")
    bodies.append(str(bad_ciphertext.value))

    second = iam.create_access_key(UserName="carol")["AccessKey"]
    secrets["deleted key secret"] = second["SecretAccessKey"]
    iam.delete_access_key(UserName="carol", AccessKeyId=second["AccessKeyId"])
    bodies.append(describe(endpoint, Key(second["AccessKeyId"], second["SecretAccessKey"])).text)
    bodies.append(json.dumps(iam.list_access_keys(UserName="carol"), default=str))
    bodies.append(json.dumps(iam.get_user(UserName="carol"), default=str))

    server_lines = [
        "\n".join(filter(None, [record.getMessage(), record.exc_text or "", repr(record.args)]))
        for record in caplog.records
        if not record.name.startswith(CLIENT_LOGGERS)
    ]
    assert server_lines, "the server logged nothing: is the capture working?"
    database = registry.settings.resolved_database_url.removeprefix("sqlite:///")
    stored = _every_stored_text(Path(database))
    for name, secret in secrets.items():
        assert not [line for line in server_lines if secret in line], f"{name} in a server log line"
        assert not [body for body in bodies if secret in body], f"{name} in an error body"
        assert secret not in stored, f"{name} stored in clear in the metadata database"


def _every_stored_text(database: Path) -> str:
    with sqlite3.connect(database) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        cells: list[str] = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for cell in row:
                    if isinstance(cell, bytes):
                        cells.append(cell.decode("latin-1"))
                    elif cell is not None:
                        cells.append(str(cell))
    return "\n".join(cells)


# -- constant-time comparison of secrets --------------------------------------------------------------------

SECRET_CHECKS: list[tuple[Callable[..., Any], set[str]]] = [
    (sigv4.verify_signature, {"expected"}),
    (RegistryTokens._prove, {"expected"}),
    (Authenticator.authenticate_access_key, {"session_token_hash", "token_hash"}),
]


@pytest.mark.parametrize(
    ("function", "secret_names"), SECRET_CHECKS, ids=[function.__qualname__ for function, _ in SECRET_CHECKS]
)
def test_secrets_are_compared_in_constant_time(function: Callable[..., Any], secret_names: set[str]) -> None:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    digests = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "hmac.compare_digest"
    ]
    assert digests, f"{function.__qualname__} does not use hmac.compare_digest"
    compared = {name for call in digests for name in _names(call)}
    assert compared & secret_names, f"compare_digest does not compare {secret_names}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            assert not _names(node) & secret_names, f"{ast.unparse(node)} compares a secret with =="


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }
