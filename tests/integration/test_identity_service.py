"""The identity service (IAM and STS) on SQLite and PostgreSQL, and its operations through boto3."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select

from ecrd.app import Registry
from ecrd.aws import iam as iam_operations
from ecrd.aws import sts as sts_operations
from ecrd.aws.context import AwsContext
from ecrd.aws.models import service_model
from ecrd.config import Settings
from ecrd.errors import (
    AccessDenied,
    DeleteConflict,
    EntityAlreadyExists,
    ExpiredToken,
    InvalidClientToken,
    InvalidParameter,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    TooManyTags,
    UnmodifiableEntity,
    ValidationError,
)
from ecrd.metadata.iam_tables import iam_access_keys
from ecrd.metadata.store import MetadataStore
from ecrd.policy.evaluation import AuthorizationRequest, Principal, evaluate
from ecrd.policy.managed import FULL_ACCESS, POWER_USER, READ_ONLY
from ecrd.services.access import Caller, CallerKind
from ecrd.services.iam import IdentityServices, identity_services
from ecrd.services.iam.authentication import Authenticator
from ecrd.services.secrets import SecretBox
from tests.integration.test_ecr_api import client_for
from tests.support.clock import FakeClock

ACCOUNT = "123456789012"
START = 1_700_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def store(settings: Settings) -> Iterator[MetadataStore]:
    metadata_store = MetadataStore(settings.resolved_database_url)
    metadata_store.migrate()
    yield metadata_store
    metadata_store.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(os.urandom(32))


@pytest.fixture
def identity(store: MetadataStore, box: SecretBox, clock: FakeClock) -> IdentityServices:
    return identity_services(store, account_id=ACCOUNT, secret_box=box, clock=clock)


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str] = "ecr:*", resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(action: str | list[str], resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def trust(principal: Any, *, effect: str = "Allow", condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {"Effect": effect, "Principal": principal, "Action": "sts:AssumeRole"}
    if condition is not None:
        statement["Condition"] = condition
    return policy(statement)


def user_arn(name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{ACCOUNT}:user{path}{name}"


def role_arn(name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{ACCOUNT}:role{path}{name}"


def policy_arn(name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{ACCOUNT}:policy{path}{name}"


def user_caller(identity: IdentityServices, name: str) -> Caller:
    """A user with a fresh key, authenticated."""
    key = identity.users.create_access_key(name)
    caller, _ = identity.authentication.authenticate_access_key(key.access_key_id, None)
    return caller


def allowed(identity: IdentityServices, caller: Caller, action: str, resource: str = "*") -> bool:
    request = AuthorizationRequest(Principal(caller.arn, caller.account_id, caller.aliases), action, resource, ACCOUNT)
    return evaluate(request, identity.documents.identity_policies(caller), None, is_account_root=caller.is_root).allowed


# -- users ------------------------------------------------------------------------------------------------


def test_create_user_returns_the_user_with_its_id_arn_and_tags(identity: IdentityServices) -> None:
    user = identity.users.create_user("alice", path="/team/", tags=[("env", "dev")])
    assert user.name == "alice"
    assert user.path == "/team/"
    assert user.id.startswith("AIDA") and len(user.id) == 21
    assert user.arn(ACCOUNT) == user_arn("alice", "/team/")
    assert user.created_at == START
    assert identity.users.get_user("alice") == user
    assert identity.principals.user_arn("alice") == user_arn("alice", "/team/")
    assert identity.principals.user_arn("nobody") == user_arn("nobody")


def test_user_names_are_unique_without_regard_to_case(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    with pytest.raises(EntityAlreadyExists, match=r"^User with name ALICE already exists\.$"):
        identity.users.create_user("ALICE")
    assert identity.users.get_user("Alice").name == "alice"


@pytest.mark.parametrize(
    ("name", "path", "fragment"),
    [
        ("", "/", "'userName' failed to satisfy constraint: Member must have length greater than or equal to 1"),
        ("a" * 65, "/", "Member must have length less than or equal to 64"),
        ("bad name", "/", r"Member must satisfy regular expression pattern: [\w+=,.@-]+"),
        ("ok", "team", "at 'path' failed to satisfy constraint"),
        ("ok", "/team", "at 'path' failed to satisfy constraint"),
    ],
)
def test_create_user_validates_name_and_path(identity: IdentityServices, name: str, path: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as exc:
        identity.users.create_user(name, path=path)
    assert exc.value.message.startswith("1 validation error detected: Value ")
    assert fragment in exc.value.message


def test_unknown_user_answers_no_such_entity_in_iam_words(identity: IdentityServices) -> None:
    with pytest.raises(NoSuchEntity, match=r"^The user with name alice cannot be found\.$"):
        identity.users.get_user("alice")
    with pytest.raises(NoSuchEntity):
        identity.users.delete_user("alice")


def test_list_users_pages_by_name_and_filters_by_path(identity: IdentityServices) -> None:
    for name in ("carol", "Bob", "alice", "dave"):
        identity.users.create_user(name, path="/ops/" if name == "dave" else "/")
    first = identity.users.list_users(max_items=2)
    assert [u.name for u in first.items] == ["alice", "Bob"]
    assert first.truncated
    second = identity.users.list_users(max_items=2, marker=first.token)
    assert [u.name for u in second.items] == ["carol", "dave"]
    assert not second.truncated and second.token is None
    assert [u.name for u in identity.users.list_users(path_prefix="/ops/").items] == ["dave"]
    with pytest.raises(ValidationError):
        identity.users.list_users(max_items=0)


def test_update_user_renames_and_moves_and_keeps_keys(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    identity.users.create_user("bob")
    key = identity.users.create_access_key("alice")
    identity.users.update_user("alice", new_name="alicia", new_path="/x/")
    caller, _ = identity.authentication.authenticate_access_key(key.access_key_id, None)
    assert caller.arn == user_arn("alicia", "/x/")
    assert caller.username == "alicia"
    with pytest.raises(EntityAlreadyExists, match="User with name BOB already exists"):
        identity.users.update_user("alicia", new_name="BOB")
    identity.users.update_user("alicia", new_name="Alicia")  # a change of case only is not a clash
    assert identity.users.get_user("alicia").name == "Alicia"


def test_delete_user_refuses_while_it_has_keys_or_policies(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    key = identity.users.create_access_key("alice")
    identity.permissions.put_user_policy("alice", "inline", policy(allow()))
    identity.permissions.attach_user_policy("alice", READ_ONLY.arn)
    with pytest.raises(DeleteConflict, match=r"^Cannot delete entity, must delete access keys first\.$"):
        identity.users.delete_user("alice")
    identity.users.delete_access_key("alice", key.access_key_id)
    with pytest.raises(DeleteConflict, match=r"^Cannot delete entity, must delete policies first\.$"):
        identity.users.delete_user("alice")
    identity.permissions.delete_user_policy("alice", "inline")
    with pytest.raises(DeleteConflict, match=r"^Cannot delete entity, must detach all policies first\.$"):
        identity.users.delete_user("alice")
    identity.permissions.detach_user_policy("alice", READ_ONLY.arn)
    identity.users.delete_user("alice")
    with pytest.raises(NoSuchEntity):
        identity.users.get_user("alice")


def test_user_tags_are_merged_case_insensitively_and_removed(identity: IdentityServices) -> None:
    identity.users.create_user("alice", tags=[("Team", "blue")])
    identity.users.tag_user("alice", [("team", "red"), ("env", "dev")])
    assert identity.users.list_user_tags("alice") == (("team", "red"), ("env", "dev"))
    identity.users.untag_user("alice", ["ENV", "missing"])
    assert identity.users.list_user_tags("alice") == (("team", "red"),)
    with pytest.raises(InvalidParameter, match="Duplicate tag keys found"):
        identity.users.tag_user("alice", [("a", "1"), ("A", "2")])
    with pytest.raises(TooManyTags):
        identity.users.tag_user("alice", [(f"k{i}", "v") for i in range(50)])
    with pytest.raises(ValidationError):
        identity.users.tag_user("alice", [("bad!key", "v")])


# -- access keys ------------------------------------------------------------------------------------------


def test_access_key_authenticates_as_its_user_with_its_secret(identity: IdentityServices) -> None:
    user = identity.users.create_user("alice", path="/dev/")
    key = identity.users.create_access_key("alice")
    assert key.access_key_id.startswith("AKIA") and len(key.access_key_id) == 20
    assert len(key.secret_access_key) == 40
    assert (key.user_name, key.status) == ("alice", "Active")
    caller, secret = identity.authentication.authenticate_access_key(key.access_key_id, None)
    assert secret == key.secret_access_key
    assert caller == Caller(
        arn=user_arn("alice", "/dev/"),
        account_id=ACCOUNT,
        kind=CallerKind.USER,
        user_id=user.id,
        username="alice",
        access_key_id=key.access_key_id,
    )
    assert identity.authentication.current_caller(key.access_key_id) == caller


def test_a_user_has_at_most_two_access_keys(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    identity.users.create_access_key("alice")
    identity.users.create_access_key("alice")
    with pytest.raises(LimitExceeded, match=r"^Cannot exceed quota for AccessKeysPerUser: 2$"):
        identity.users.create_access_key("alice")


def test_inactive_key_stops_authenticating_until_activated_again(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    key = identity.users.create_access_key("alice")
    identity.users.update_access_key("alice", key.access_key_id, "Inactive")
    assert [k.status for k in identity.users.list_access_keys("alice").items] == ["Inactive"]
    with pytest.raises(InvalidClientToken, match=r"^The security token included in the request is invalid\.$"):
        identity.authentication.authenticate_access_key(key.access_key_id, None)
    assert identity.authentication.current_caller(key.access_key_id) is None
    identity.users.update_access_key("alice", key.access_key_id, "Active")
    assert identity.authentication.current_caller(key.access_key_id) is not None
    with pytest.raises(ValidationError):
        identity.users.update_access_key("alice", key.access_key_id, "Expired")


def test_deleted_key_stops_authenticating(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    key = identity.users.create_access_key("alice")
    identity.users.delete_access_key("alice", key.access_key_id)
    with pytest.raises(InvalidClientToken):
        identity.authentication.authenticate_access_key(key.access_key_id, None)
    assert identity.authentication.current_caller(key.access_key_id) is None
    assert identity.users.list_access_keys("alice").items == ()


def test_unknown_key_or_a_session_token_with_a_long_term_key_is_invalid(identity: IdentityServices) -> None:
    with pytest.raises(InvalidClientToken):
        identity.authentication.authenticate_access_key("AKIAUNKNOWNUNKNOWN00", None)
    identity.users.create_user("alice")
    key = identity.users.create_access_key("alice")
    with pytest.raises(InvalidClientToken):
        identity.authentication.authenticate_access_key(key.access_key_id, "a-session-token")


def test_keys_of_another_user_cannot_be_changed_through_this_one(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    identity.users.create_user("bob")
    key = identity.users.create_access_key("alice")
    message = rf"^The Access Key with id {key.access_key_id} cannot be found\.$"
    with pytest.raises(NoSuchEntity, match=message):
        identity.users.update_access_key("bob", key.access_key_id, "Inactive")
    with pytest.raises(NoSuchEntity, match=message):
        identity.users.delete_access_key("bob", key.access_key_id)
    with pytest.raises(NoSuchEntity):
        identity.users.delete_access_key(None, key.access_key_id)  # nor as a key of the root
    assert identity.authentication.current_caller(key.access_key_id) is not None


def test_list_access_keys_pages(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    created = sorted([identity.users.create_access_key("alice").access_key_id for _ in range(2)])
    first = identity.users.list_access_keys("alice", max_items=1)
    second = identity.users.list_access_keys("alice", marker=first.token)
    assert [k.access_key_id for k in first.items + second.items] == created
    assert second.token is None


def test_secrets_are_stored_sealed_and_session_tokens_hashed(
    identity: IdentityServices, store: MetadataStore, box: SecretBox
) -> None:
    identity.users.create_user("alice")
    key = identity.users.create_access_key("alice")
    identity.roles.create_role("r", trust({"AWS": user_arn("alice")}))
    alice, _ = identity.authentication.authenticate_access_key(key.access_key_id, None)
    session = identity.sessions.assume_role(alice, role_arn("r"), "sess").credentials
    with store.read() as conn:
        rows = {row.access_key_id: row for row in conn.execute(select(iam_access_keys))}
    stored = rows[key.access_key_id]
    assert key.secret_access_key not in stored.secret
    assert box.open(stored.secret, context=key.access_key_id) == key.secret_access_key
    assert stored.session_token_hash is None
    temporary = rows[session.access_key_id]
    assert session.secret_access_key not in temporary.secret
    assert temporary.session_token_hash == hashlib.sha256(session.session_token.encode()).hexdigest()
    # The sealed secret is bound to its key id: copied to another row it does not open.
    with pytest.raises(ValueError):
        box.open(stored.secret, context=session.access_key_id)


# -- root bootstrap ---------------------------------------------------------------------------------------


def test_bootstrap_root_stores_the_configured_key_once(identity: IdentityServices) -> None:
    assert identity.authentication.bootstrap_root("AKIAROOTCONFIGURED01", "configured-secret") is None
    assert identity.authentication.bootstrap_root("AKIAROOTCONFIGURED01", "configured-secret") is None
    caller, secret = identity.authentication.authenticate_access_key("AKIAROOTCONFIGURED01", None)
    assert secret == "configured-secret"
    assert caller == Caller(
        arn=f"arn:aws:iam::{ACCOUNT}:root",
        account_id=ACCOUNT,
        kind=CallerKind.ROOT,
        user_id=ACCOUNT,
        access_key_id="AKIAROOTCONFIGURED01",
    )
    assert [k.access_key_id for k in identity.users.list_access_keys(None).items] == ["AKIAROOTCONFIGURED01"]
    # A changed secret in the configuration replaces the stored one.
    identity.authentication.bootstrap_root("AKIAROOTCONFIGURED01", "rotated-secret")
    assert identity.authentication.authenticate_access_key("AKIAROOTCONFIGURED01", None)[1] == "rotated-secret"
    # With a configured key, no other is generated.
    assert identity.authentication.bootstrap_root(None, None) is None


def test_bootstrap_root_generates_a_key_only_when_the_root_has_none(identity: IdentityServices) -> None:
    generated = identity.authentication.bootstrap_root(None, None)
    assert generated is not None
    key_id, secret = generated
    assert key_id.startswith("AKIA") and len(key_id) == 20
    assert all(ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for ch in key_id[4:])
    assert len(secret) == 40
    caller, stored = identity.authentication.authenticate_access_key(key_id, None)
    assert caller.is_root and stored == secret
    assert identity.authentication.bootstrap_root(None, None) is None
    assert len(identity.users.list_access_keys(None).items) == 1


def test_bootstrap_root_refuses_a_configured_key_of_a_user(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    key = identity.users.create_access_key("alice")
    with pytest.raises(ValueError, match="not a key of the account root"):
        identity.authentication.bootstrap_root(key.access_key_id, "whatever-secret")
    with pytest.raises(ValueError):
        identity.authentication.bootstrap_root("AKIAROOTCONFIGURED01", None)


@pytest.mark.parametrize("configured", [False, True])
def test_concurrent_bootstraps_store_exactly_one_root_key(
    settings: Settings, store: MetadataStore, box: SecretBox, configured: bool
) -> None:
    workers = 6
    services = [
        Authenticator(MetadataStore(settings.resolved_database_url), account_id=ACCOUNT, secret_box=box)
        for _ in range(workers)
    ]
    barrier = threading.Barrier(workers)
    results: list[tuple[str, str] | None] = []
    errors: list[BaseException] = []

    def start(service: Authenticator) -> None:
        barrier.wait()
        try:
            if configured:
                results.append(service.bootstrap_root("AKIAROOTCONFIGURED01", "configured-secret"))
            else:
                results.append(service.bootstrap_root(None, None))
        except BaseException as exc:  # reported below, with the thread's result
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(service,)) for service in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for service in services:
        service.store.dispose()
    assert errors == []
    generated = [result for result in results if result is not None]
    assert len(generated) == (0 if configured else 1)
    keys = identity_services(store, account_id=ACCOUNT, secret_box=box).users.list_access_keys(None).items
    assert len(keys) == 1


def test_root_may_have_long_term_keys_made_and_listed(identity: IdentityServices) -> None:
    identity.authentication.bootstrap_root("AKIAROOTCONFIGURED01", "configured-secret")
    created = identity.users.create_access_key(None)
    assert created.user_name is None
    assert {k.access_key_id for k in identity.users.list_access_keys(None).items} == {
        "AKIAROOTCONFIGURED01",
        created.access_key_id,
    }
    with pytest.raises(LimitExceeded):
        identity.users.create_access_key(None)
    identity.users.update_access_key(None, created.access_key_id, "Inactive")
    with pytest.raises(InvalidClientToken):
        identity.authentication.authenticate_access_key(created.access_key_id, None)
    assert identity.principals.root_created_at() == START


# -- inline policies --------------------------------------------------------------------------------------


def test_inline_user_policies_are_put_read_listed_and_deleted(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    document = policy(allow("ecr:BatchGetImage"))
    identity.permissions.put_user_policy("alice", "pull", document)
    identity.permissions.put_user_policy("alice", "Push", policy(allow("ecr:PutImage")))
    got = identity.permissions.get_user_policy("ALICE", "pull")
    assert (got.name, got.document) == ("pull", document)
    names = identity.permissions.list_user_policies("alice", max_items=1)
    assert names.items == ("pull",)
    assert identity.permissions.list_user_policies("alice", marker=names.token).items == ("Push",)
    identity.permissions.put_user_policy("alice", "PULL", policy(allow("ecr:ListImages")))  # same name, another case
    assert identity.permissions.list_user_policies("alice").items == ("PULL", "Push")
    identity.permissions.delete_user_policy("alice", "pull")
    with pytest.raises(NoSuchEntity, match=r"^The user policy with name pull cannot be found\.$"):
        identity.permissions.get_user_policy("alice", "pull")
    with pytest.raises(NoSuchEntity, match=r"^The user policy with name pull cannot be found\.$"):
        identity.permissions.delete_user_policy("alice", "pull")


@pytest.mark.parametrize(
    "document",
    [
        "",
        "not json",
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*"}]}),
        trust({"AWS": "*"}),  # a Principal has no place in an identity policy
    ],
)
def test_malformed_identity_policies_are_refused(identity: IdentityServices, document: str) -> None:
    identity.users.create_user("alice")
    with pytest.raises(MalformedPolicyDocument):
        identity.permissions.put_user_policy("alice", "p", document)
    with pytest.raises(MalformedPolicyDocument):
        identity.policies.create_policy("p", document)


def test_inline_policies_of_a_user_share_a_size_quota_without_white_space(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    actions = [f"ecr:Action{i:04d}" for i in range(90)]  # about 1,500 characters
    identity.permissions.put_user_policy("alice", "one", json.dumps(json.loads(policy(allow(actions))), indent=8))
    with pytest.raises(LimitExceeded, match=r"^Maximum policy size of 2048 bytes exceeded for user alice$"):
        identity.permissions.put_user_policy("alice", "two", policy(allow(actions[:40])))
    # Replacing counts only the new text.
    identity.permissions.put_user_policy("alice", "one", policy(allow(actions[:40])))


def test_inline_role_policies_are_put_read_listed_and_deleted(identity: IdentityServices) -> None:
    identity.roles.create_role("r", trust({"Service": "ec2.amazonaws.com"}))
    identity.permissions.put_role_policy("r", "p", policy(allow()))
    assert identity.permissions.get_role_policy("r", "p").document == policy(allow())
    assert identity.permissions.list_role_policies("r").items == ("p",)
    identity.permissions.delete_role_policy("r", "p")
    with pytest.raises(NoSuchEntity, match=r"^The role policy with name p cannot be found\.$"):
        identity.permissions.get_role_policy("r", "p")
    with pytest.raises(NoSuchEntity, match=r"^The role with name nope cannot be found\.$"):
        identity.permissions.put_role_policy("nope", "p", policy(allow()))


# -- managed policies -------------------------------------------------------------------------------------


def test_create_and_get_a_customer_managed_policy(identity: IdentityServices, clock: FakeClock) -> None:
    created = identity.policies.create_policy(
        "Pull", policy(allow("ecr:BatchGetImage")), path="/ci/", description="pulls", tags=[("a", "b")]
    )
    assert created.id.startswith("ANPA")
    assert created.arn(ACCOUNT) == policy_arn("Pull", "/ci/")
    assert (created.default_version_id, created.attachment_count, created.aws_managed) == ("v1", 0, False)
    assert identity.policies.get_policy(policy_arn("Pull", "/ci/")) == created
    with pytest.raises(NoSuchEntity, match=rf"^Policy {policy_arn('Pull')} was not found\.$"):
        identity.policies.get_policy(policy_arn("Pull"))  # the path is part of the ARN
    with pytest.raises(EntityAlreadyExists, match=r"^A policy called pull already exists\. Duplicate names"):
        identity.policies.create_policy("pull", policy(allow()))
    with pytest.raises(InvalidParameter, match=r"^ARN nonsense is not valid\.$"):
        identity.policies.get_policy("nonsense")
    with pytest.raises(ValidationError):
        identity.policies.create_policy("p", policy(allow()), path="/bad path/")


def test_aws_managed_ecr_policies_are_known_and_unmodifiable(identity: IdentityServices) -> None:
    got = identity.policies.get_policy(READ_ONLY.arn)
    assert got.aws_managed and got.arn(ACCOUNT) == READ_ONLY.arn
    assert got.id == identity.policies.get_policy(READ_ONLY.arn).id  # a stable id
    version = identity.policies.get_policy_version(READ_ONLY.arn, READ_ONLY.version_id)
    assert version.document == READ_ONLY.document_text and version.is_default
    with pytest.raises(NoSuchEntity, match="does not exist or is not attachable"):
        identity.policies.get_policy_version(READ_ONLY.arn, "v1")
    with pytest.raises(UnmodifiableEntity):
        identity.policies.delete_policy(READ_ONLY.arn)
    with pytest.raises(UnmodifiableEntity):
        identity.policies.create_policy_version(READ_ONLY.arn, policy(allow()))
    with pytest.raises(NoSuchEntity):
        identity.policies.get_policy("arn:aws:iam::aws:policy/AdministratorAccess")


def test_list_policies_by_scope_with_aws_managed_ones_among_local(identity: IdentityServices) -> None:
    identity.policies.create_policy("Zeta", policy(allow()))
    identity.policies.create_policy("Alpha", policy(allow()), path="/team/")
    identity.policies.create_policy("AmazonEC2ContainerRegistryReadOnly", policy(allow()))  # a name AWS uses too
    local = identity.policies.list_policies(scope="Local")
    assert [p.name for p in local.items] == ["Alpha", "AmazonEC2ContainerRegistryReadOnly", "Zeta"]
    aws = identity.policies.list_policies(scope="AWS")
    assert {p.arn(ACCOUNT) for p in aws.items} == {
        READ_ONLY.arn,
        POWER_USER.arn,
        FULL_ACCESS.arn,
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
    }
    everything = identity.policies.list_policies()
    assert len(everything.items) == 7
    paged: list[str] = []
    marker = None
    while True:
        page = identity.policies.list_policies(max_items=2, marker=marker)
        paged += [p.arn(ACCOUNT) for p in page.items]
        if not page.truncated:
            break
        marker = page.token
    assert paged == [p.arn(ACCOUNT) for p in everything.items]
    assert len(set(paged)) == 7
    assert [p.name for p in identity.policies.list_policies(path_prefix="/team/").items] == ["Alpha"]
    with pytest.raises(ValidationError):
        identity.policies.list_policies(scope="Mine")  # type: ignore[arg-type]


def test_list_policies_only_attached_counts_attachments(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    identity.roles.create_role("r", trust({"Service": "ec2.amazonaws.com"}))
    identity.policies.create_policy("Mine", policy(allow()))
    identity.permissions.attach_user_policy("alice", policy_arn("Mine"))
    identity.permissions.attach_role_policy("r", policy_arn("Mine"))
    identity.permissions.attach_user_policy("alice", READ_ONLY.arn)
    attached = {p.name: p.attachment_count for p in identity.policies.list_policies(only_attached=True).items}
    assert attached == {"Mine": 2, READ_ONLY.name: 1}
    assert identity.policies.get_policy(policy_arn("Mine")).attachment_count == 2
    entities = identity.policies.list_entities_for_policy(policy_arn("Mine"))
    assert [u.name for u in entities.users] == ["alice"] and [r.name for r in entities.roles] == ["r"]
    assert identity.policies.list_entities_for_policy(READ_ONLY.arn, entity_filter="Role").users == ()


def test_delete_policy_refuses_while_attached_or_versioned(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    identity.policies.create_policy("Mine", policy(allow()))
    identity.permissions.attach_user_policy("alice", policy_arn("Mine"))
    with pytest.raises(DeleteConflict, match=r"^Cannot delete a policy attached to entities\.$"):
        identity.policies.delete_policy(policy_arn("Mine"))
    identity.permissions.detach_user_policy("alice", policy_arn("Mine"))
    identity.policies.create_policy_version(policy_arn("Mine"), policy(allow("ecr:ListImages")))
    with pytest.raises(DeleteConflict, match="more than one version"):
        identity.policies.delete_policy(policy_arn("Mine"))
    identity.policies.delete_policy_version(policy_arn("Mine"), "v2")
    identity.policies.delete_policy(policy_arn("Mine"))
    with pytest.raises(NoSuchEntity):
        identity.policies.get_policy(policy_arn("Mine"))


def test_policy_versions_are_numbered_limited_and_one_is_default(identity: IdentityServices, clock: FakeClock) -> None:
    arn = policy_arn("Mine")
    identity.policies.create_policy("Mine", policy(allow("ecr:V1")))
    for number in range(2, 6):
        clock.advance(1)
        version = identity.policies.create_policy_version(
            arn, policy(allow(f"ecr:V{number}")), set_as_default=number == 3
        )
        assert version.version_id == f"v{number}"
    with pytest.raises(LimitExceeded, match="A managed policy can have up to 5 versions"):
        identity.policies.create_policy_version(arn, policy(allow()))
    versions = identity.policies.list_policy_versions(arn).items
    assert [v.version_id for v in versions] == ["v5", "v4", "v3", "v2", "v1"]
    assert [v.version_id for v in versions if v.is_default] == ["v3"]
    assert identity.policies.get_policy(arn).default_version_id == "v3"
    with pytest.raises(DeleteConflict, match=r"^Cannot delete the default version of a policy\.$"):
        identity.policies.delete_policy_version(arn, "v3")
    identity.policies.delete_policy_version(arn, "v5")
    # IAM never reuses a version number.
    assert identity.policies.create_policy_version(arn, policy(allow())).version_id == "v6"
    identity.policies.set_default_policy_version(arn, "v6")
    assert identity.policies.get_policy_version(arn, "v6").is_default
    with pytest.raises(NoSuchEntity, match=rf"^Policy {arn} version v5 does not exist or is not attachable\.$"):
        identity.policies.set_default_policy_version(arn, "v5")
    first = identity.policies.list_policy_versions(arn, max_items=2)
    rest = identity.policies.list_policy_versions(arn, marker=first.token)
    assert [v.version_id for v in first.items + rest.items] == ["v6", "v4", "v3", "v2", "v1"]


def test_managed_policy_size_is_limited(identity: IdentityServices) -> None:
    actions = [f"ecr:SomeLongActionName{i:04d}" for i in range(250)]
    with pytest.raises(LimitExceeded, match=r"^Cannot exceed quota for PolicySize: 6144$"):
        identity.policies.create_policy("Big", policy(allow(actions)))


# -- attachments and identity policies --------------------------------------------------------------------


def test_attached_and_inline_policies_make_the_identity_policies(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    alice = user_caller(identity, "alice")
    assert identity.documents.identity_policies(alice) == []
    assert not allowed(identity, alice, "ecr:BatchGetImage")
    identity.permissions.attach_user_policy("alice", READ_ONLY.arn)
    assert identity.documents.identity_policies(alice) == [READ_ONLY.document]
    assert allowed(identity, alice, "ecr:BatchGetImage")
    assert not allowed(identity, alice, "ecr:PutImage")
    identity.policies.create_policy("Push", policy(allow("ecr:PutImage")))
    identity.permissions.attach_user_policy("alice", policy_arn("Push"))
    identity.permissions.put_user_policy("alice", "no-delete", policy(deny("ecr:DeleteRepository")))
    assert len(identity.documents.identity_policies(alice)) == 3
    assert allowed(identity, alice, "ecr:PutImage")
    identity.permissions.detach_user_policy("alice", READ_ONLY.arn)
    assert not allowed(identity, alice, "ecr:BatchGetImage")
    assert allowed(identity, alice, "ecr:PutImage")


def test_identity_policies_follow_the_default_version(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    alice = user_caller(identity, "alice")
    identity.policies.create_policy("P", policy(allow("ecr:ListImages")))
    identity.permissions.attach_user_policy("alice", policy_arn("P"))
    identity.policies.create_policy_version(policy_arn("P"), policy(allow("ecr:PutImage")))
    assert allowed(identity, alice, "ecr:ListImages") and not allowed(identity, alice, "ecr:PutImage")
    identity.policies.set_default_policy_version(policy_arn("P"), "v2")
    assert allowed(identity, alice, "ecr:PutImage") and not allowed(identity, alice, "ecr:ListImages")


def test_identity_policies_are_parsed_once_per_text(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    identity.users.create_user("bob")
    document = policy(allow("ecr:ListImages"))
    identity.permissions.put_user_policy("alice", "p", document)
    identity.permissions.put_user_policy("bob", "p", document)
    first = identity.documents.identity_policies(user_caller(identity, "alice"))
    again = identity.documents.identity_policies(user_caller(identity, "alice"))
    other = identity.documents.identity_policies(user_caller(identity, "bob"))
    assert first[0] is again[0] is other[0]


def test_the_parsed_policy_cache_is_bounded(store: MetadataStore, box: SecretBox) -> None:
    identity = identity_services(store, account_id=ACCOUNT, secret_box=box, policy_cache_size=2)
    identity.users.create_user("alice")
    alice = user_caller(identity, "alice")
    for number in range(5):
        identity.permissions.put_user_policy("alice", "p", policy(allow(f"ecr:A{number}")))
        assert allowed(identity, alice, f"ecr:A{number}")
    assert len(identity.documents.parsed) == 2


def test_attach_checks_the_policy_and_the_quota_and_repeats_quietly(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    with pytest.raises(NoSuchEntity, match=rf"^Policy {policy_arn('Nope')} does not exist or is not attachable\.$"):
        identity.permissions.attach_user_policy("alice", policy_arn("Nope"))
    with pytest.raises(NoSuchEntity, match="does not exist or is not attachable"):
        identity.permissions.attach_user_policy("alice", "arn:aws:iam::aws:policy/AdministratorAccess")
    with pytest.raises(NoSuchEntity, match=r"^The user with name bob cannot be found\.$"):
        identity.permissions.attach_user_policy("bob", READ_ONLY.arn)
    identity.permissions.attach_user_policy("alice", READ_ONLY.arn)
    identity.permissions.attach_user_policy("alice", READ_ONLY.arn)
    assert [p.arn for p in identity.permissions.list_attached_user_policies("alice").items] == [READ_ONLY.arn]
    for number in range(9):
        identity.policies.create_policy(f"P{number}", policy(allow()))
        identity.permissions.attach_user_policy("alice", policy_arn(f"P{number}"))
    identity.policies.create_policy("Eleventh", policy(allow()))
    with pytest.raises(LimitExceeded, match=r"^Cannot exceed quota for PoliciesPerUser: 10$"):
        identity.permissions.attach_user_policy("alice", policy_arn("Eleventh"))
    with pytest.raises(NoSuchEntity, match=rf"^Policy {policy_arn('Eleventh')} was not found\.$"):
        identity.permissions.detach_user_policy("alice", policy_arn("Eleventh"))


def test_list_attached_policies_by_name_with_path_filter_and_paging(identity: IdentityServices) -> None:
    identity.roles.create_role("r", trust({"Service": "ec2.amazonaws.com"}))
    identity.policies.create_policy("Team", policy(allow()), path="/team/")
    identity.permissions.attach_role_policy("r", policy_arn("Team", "/team/"))
    identity.permissions.attach_role_policy("r", POWER_USER.arn)
    page = identity.permissions.list_attached_role_policies("r", max_items=1)
    rest = identity.permissions.list_attached_role_policies("r", marker=page.token)
    assert [(p.name, p.arn) for p in page.items + rest.items] == [
        (POWER_USER.name, POWER_USER.arn),
        ("Team", policy_arn("Team", "/team/")),
    ]
    team = identity.permissions.list_attached_role_policies("r", path_prefix="/team/")
    assert [p.name for p in team.items] == ["Team"]
    identity.permissions.detach_role_policy("r", POWER_USER.arn)
    with pytest.raises(NoSuchEntity):
        identity.permissions.detach_role_policy("r", POWER_USER.arn)


# -- roles ------------------------------------------------------------------------------------------------


def test_create_get_list_update_and_delete_a_role(identity: IdentityServices) -> None:
    document = trust({"Service": "ec2.amazonaws.com"})
    role = identity.roles.create_role("Builder", document, path="/ci/", description="builds", tags=[("k", "v")])
    assert role.id.startswith("AROA")
    assert role.arn(ACCOUNT) == role_arn("Builder", "/ci/")
    assert (role.max_session_duration, role.assume_role_policy) == (3600, document)
    assert identity.roles.get_role("builder") == role
    assert identity.principals.role_arn("builder") == role_arn("Builder", "/ci/")
    with pytest.raises(EntityAlreadyExists, match=r"^Role with name BUILDER already exists\.$"):
        identity.roles.create_role("BUILDER", document)
    identity.roles.create_role("Another", document)
    assert [r.name for r in identity.roles.list_roles().items] == ["Another", "Builder"]
    assert [r.name for r in identity.roles.list_roles(path_prefix="/ci/").items] == ["Builder"]
    identity.roles.update_role("Builder", description="new", max_session_duration=7200)
    identity.roles.update_assume_role_policy("Builder", trust({"Service": "ecs-tasks.amazonaws.com"}))
    updated = identity.roles.get_role("Builder")
    assert (updated.description, updated.max_session_duration) == ("new", 7200)
    assert "ecs-tasks" in updated.assume_role_policy
    identity.roles.tag_role("Builder", [("k", "w"), ("x", "y")])
    identity.roles.untag_role("Builder", ["x"])
    assert identity.roles.list_role_tags("Builder") == (("k", "w"),)
    identity.roles.delete_role("Builder")
    with pytest.raises(NoSuchEntity, match=r"^The role with name Builder cannot be found\.$"):
        identity.roles.get_role("Builder")


@pytest.mark.parametrize(
    ("document", "error", "fragment"),
    [
        (
            policy({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Resource": "*"}),
            MalformedPolicyDocument,
            "Has prohibited field Resource",
        ),
        (
            policy({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "ecr:*"}),
            MalformedPolicyDocument,
            "AssumeRole policy may only specify STS AssumeRole actions.",
        ),
        (policy({"Effect": "Allow", "Action": "sts:AssumeRole"}), MalformedPolicyDocument, "Principal"),
        (
            trust({"AWS": user_arn("ghost")}),
            MalformedPolicyDocument,
            f'Invalid principal in policy: "AWS":"{user_arn("ghost")}"',
        ),
        ("{", MalformedPolicyDocument, "JSON"),
        (
            trust({"AWS": [f"arn:aws:iam::{ACCOUNT}:user/u{i:04d}-with-a-long-name" for i in range(60)]}),
            LimitExceeded,
            "Cannot exceed quota for ACLSizePerRole: 2048",
        ),
    ],
)
def test_trust_policies_are_validated_as_iam_does(
    identity: IdentityServices, document: str, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=None) as exc:
        identity.roles.create_role("r", document)
    assert fragment in str(exc.value)


def test_trust_policies_may_name_existing_principals_and_other_accounts(identity: IdentityServices) -> None:
    identity.users.create_user("alice", path="/dev/")
    identity.roles.create_role("first", trust({"Service": "ec2.amazonaws.com"}))
    principals = [user_arn("alice", "/dev/"), role_arn("first"), "arn:aws:iam::999999999999:user/x", ACCOUNT]
    identity.roles.create_role("r", trust({"AWS": principals}))
    with pytest.raises(MalformedPolicyDocument, match="Invalid principal"):
        identity.roles.update_assume_role_policy("r", trust({"AWS": user_arn("alice")}))  # wrong path


def test_max_session_duration_is_between_one_and_twelve_hours(identity: IdentityServices) -> None:
    with pytest.raises(ValidationError, match="Member must have value greater than or equal to 3600"):
        identity.roles.create_role("r", trust({"Service": "ec2.amazonaws.com"}), max_session_duration=900)
    identity.roles.create_role("r", trust({"Service": "ec2.amazonaws.com"}), max_session_duration=43200)
    with pytest.raises(ValidationError, match="less than or equal to 43200"):
        identity.roles.update_role("r", max_session_duration=43201)


def test_delete_role_refuses_while_it_has_policies(identity: IdentityServices) -> None:
    identity.roles.create_role("r", trust({"Service": "ec2.amazonaws.com"}))
    identity.permissions.attach_role_policy("r", READ_ONLY.arn)
    identity.permissions.put_role_policy("r", "p", policy(allow()))
    with pytest.raises(DeleteConflict, match=r"^Cannot delete entity, must detach all policies first\.$"):
        identity.roles.delete_role("r")
    identity.permissions.detach_role_policy("r", READ_ONLY.arn)
    with pytest.raises(DeleteConflict, match=r"^Cannot delete entity, must delete policies first\.$"):
        identity.roles.delete_role("r")
    identity.permissions.delete_role_policy("r", "p")
    identity.roles.delete_role("r")


# -- STS: AssumeRole --------------------------------------------------------------------------------------


def test_a_user_named_by_the_trust_policy_assumes_the_role_without_identity_policies(
    identity: IdentityServices, clock: FakeClock
) -> None:
    identity.users.create_user("alice")
    role = identity.roles.create_role("deployer", trust({"AWS": user_arn("alice")}), path="/ci/")
    identity.permissions.attach_role_policy("deployer", POWER_USER.arn)
    alice = user_caller(identity, "alice")
    assumed = identity.sessions.assume_role(alice, role_arn("deployer", "/ci/"), "build-42")
    credentials = assumed.credentials
    assert credentials.access_key_id.startswith("ASIA") and len(credentials.access_key_id) == 20
    assert credentials.expires_at == START + 3600
    assert assumed.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/build-42"
    assert assumed.assumed_role_id == f"{role.id}:build-42"
    session, secret = identity.authentication.authenticate_access_key(
        credentials.access_key_id, credentials.session_token
    )
    assert secret == credentials.secret_access_key
    assert session == Caller(
        arn=assumed.arn,
        account_id=ACCOUNT,
        kind=CallerKind.ASSUMED_ROLE,
        user_id=f"{role.id}:build-42",
        access_key_id=credentials.access_key_id,
        aliases=(role_arn("deployer", "/ci/"),),
        expires_at=START + 3600,
    )
    assert identity.documents.identity_policies(session) == [POWER_USER.document]
    assert allowed(identity, session, "ecr:PutImage")
    identity_view = identity.sessions.get_caller_identity(session)
    assert (identity_view.user_id, identity_view.account, identity_view.arn) == (session.user_id, ACCOUNT, assumed.arn)


def test_a_trust_policy_naming_the_account_also_needs_an_identity_allow(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    identity.roles.create_role("r", trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))
    alice = user_caller(identity, "alice")
    with pytest.raises(AccessDenied) as exc:
        identity.sessions.assume_role(alice, role_arn("r"), "sess")
    assert exc.value.message == (
        f"User: {user_arn('alice')} is not authorized to perform: sts:AssumeRole on resource: {role_arn('r')} "
        "because no identity-based policy allows the sts:AssumeRole action"
    )
    identity.permissions.put_user_policy("alice", "assume", policy(allow("sts:AssumeRole", role_arn("r"))))
    assert identity.sessions.assume_role(alice, role_arn("r"), "sess").arn.endswith(":assumed-role/r/sess")


def test_an_identity_allow_does_not_open_a_role_whose_trust_policy_is_silent(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    identity.users.create_user("bob")
    identity.roles.create_role("r", trust({"AWS": user_arn("bob")}))
    identity.permissions.put_user_policy("alice", "assume", policy(allow("sts:AssumeRole")))
    alice = user_caller(identity, "alice")
    with pytest.raises(
        AccessDenied,
        match=rf"^User: {user_arn('alice')} is not authorized to perform: "
        rf"sts:AssumeRole on resource: {role_arn('r')}$",
    ):
        identity.sessions.assume_role(alice, role_arn("r"), "sess")


def test_an_explicit_deny_stops_assume_role(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    identity.roles.create_role("r", trust({"AWS": user_arn("alice")}))
    identity.permissions.put_user_policy("alice", "no", policy(deny("sts:AssumeRole")))
    with pytest.raises(AccessDenied, match="with an explicit deny in an identity-based policy"):
        identity.sessions.assume_role(user_caller(identity, "alice"), role_arn("r"), "sess")
    identity.users.create_user("bob")
    identity.roles.create_role(
        "r2",
        policy(
            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": {"AWS": user_arn("bob")}, "Action": "sts:AssumeRole"},
        ),
    )
    identity.permissions.put_user_policy("bob", "yes", policy(allow("sts:AssumeRole")))
    with pytest.raises(AccessDenied, match="with an explicit deny in a resource-based policy"):
        identity.sessions.assume_role(user_caller(identity, "bob"), role_arn("r2"), "sess")


def test_assume_role_refuses_the_root_and_unknown_roles(identity: IdentityServices) -> None:
    identity.authentication.bootstrap_root("AKIAROOTCONFIGURED01", "configured-secret")
    root, _ = identity.authentication.authenticate_access_key("AKIAROOTCONFIGURED01", None)
    identity.roles.create_role("r", trust({"AWS": ACCOUNT}))
    with pytest.raises(AccessDenied, match=r"^Roles may not be assumed by root accounts\.$"):
        identity.sessions.assume_role(root, role_arn("r"), "sess")
    identity.users.create_user("alice")
    alice = user_caller(identity, "alice")
    for arn in (role_arn("missing"), role_arn("r", "/other/"), "arn:aws:iam::999999999999:role/r", "garbage"):
        with pytest.raises(AccessDenied, match=f"sts:AssumeRole on resource: {arn}$"):
            identity.sessions.assume_role(alice, arn, "sess")


def test_trust_conditions_see_the_external_id(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    condition = {"StringEquals": {"sts:ExternalId": "shared-secret"}}
    identity.roles.create_role("r", trust({"AWS": user_arn("alice")}, condition=condition))
    alice = user_caller(identity, "alice")
    with pytest.raises(AccessDenied):
        identity.sessions.assume_role(alice, role_arn("r"), "sess")
    with pytest.raises(AccessDenied):
        identity.sessions.assume_role(alice, role_arn("r"), "sess", external_id="wrong")
    identity.sessions.assume_role(alice, role_arn("r"), "sess", external_id="shared-secret")


def test_session_duration_is_checked_against_the_role_and_role_chaining(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    identity.roles.create_role("r", trust({"AWS": user_arn("alice")}), max_session_duration=7200)
    identity.roles.create_role("next", trust({"AWS": role_arn("r")}))
    alice = user_caller(identity, "alice")
    assert identity.sessions.assume_role(alice, role_arn("r"), "sess", 7200).credentials.expires_at == START + 7200
    with pytest.raises(ValidationError, match="exceeds the MaxSessionDuration set for this role"):
        identity.sessions.assume_role(alice, role_arn("r"), "sess", 7201)
    with pytest.raises(ValidationError, match="greater than or equal to 900"):
        identity.sessions.assume_role(alice, role_arn("r"), "sess", 899)
    with pytest.raises(ValidationError, match="roleSessionName"):
        identity.sessions.assume_role(alice, role_arn("r"), "x")
    credentials = identity.sessions.assume_role(alice, role_arn("r"), "sess").credentials
    session, _ = identity.authentication.authenticate_access_key(credentials.access_key_id, credentials.session_token)
    with pytest.raises(ValidationError, match="1 hour session limit for roles assumed by role chaining"):
        identity.sessions.assume_role(session, role_arn("next"), "chained", 3601)
    chained = identity.sessions.assume_role(session, role_arn("next"), "chained")
    assert chained.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/next/chained"


def test_temporary_credentials_need_their_session_token_and_expire(
    identity: IdentityServices, clock: FakeClock
) -> None:
    identity.users.create_user("alice")
    identity.roles.create_role("r", trust({"AWS": user_arn("alice")}))
    credentials = identity.sessions.assume_role(user_caller(identity, "alice"), role_arn("r"), "sess", 900).credentials
    with pytest.raises(InvalidClientToken):
        identity.authentication.authenticate_access_key(credentials.access_key_id, None)
    with pytest.raises(InvalidClientToken):
        identity.authentication.authenticate_access_key(credentials.access_key_id, credentials.session_token + "x")
    clock.advance(899)
    assert identity.authentication.current_caller(credentials.access_key_id) is not None
    identity.authentication.authenticate_access_key(credentials.access_key_id, credentials.session_token)
    clock.advance(1)
    with pytest.raises(ExpiredToken, match=r"^The security token included in the request is expired$"):
        identity.authentication.authenticate_access_key(credentials.access_key_id, credentials.session_token)
    assert identity.authentication.current_caller(credentials.access_key_id) is None


def test_expired_sessions_are_cleared_when_new_ones_start(
    identity: IdentityServices, clock: FakeClock, store: MetadataStore
) -> None:
    identity.users.create_user("alice")
    identity.roles.create_role("r", trust({"AWS": user_arn("alice")}))
    alice = user_caller(identity, "alice")
    old = identity.sessions.assume_role(alice, role_arn("r"), "old", 900).credentials
    clock.advance(900)
    identity.sessions.assume_role(alice, role_arn("r"), "new", 900)
    with store.read() as conn:
        ids = set(conn.execute(select(iam_access_keys.c.access_key_id)).scalars())
    assert old.access_key_id not in ids
    with pytest.raises(InvalidClientToken):
        identity.authentication.authenticate_access_key(old.access_key_id, old.session_token)


def test_deleting_the_role_ends_its_sessions(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    identity.roles.create_role("r", trust({"AWS": user_arn("alice")}))
    credentials = identity.sessions.assume_role(user_caller(identity, "alice"), role_arn("r"), "sess").credentials
    identity.roles.delete_role("r")
    assert identity.authentication.current_caller(credentials.access_key_id) is None
    with pytest.raises(InvalidClientToken):
        identity.authentication.authenticate_access_key(credentials.access_key_id, credentials.session_token)


# -- STS: GetSessionToken and GetCallerIdentity -----------------------------------------------------------


def test_session_tokens_carry_the_users_own_permissions(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    identity.permissions.attach_user_policy("alice", READ_ONLY.arn)
    alice = user_caller(identity, "alice")
    credentials = identity.sessions.get_session_token(alice)
    assert credentials.expires_at == START + 43200
    session, _ = identity.authentication.authenticate_access_key(credentials.access_key_id, credentials.session_token)
    assert (session.arn, session.user_id, session.username) == (alice.arn, alice.user_id, "alice")
    assert session.expires_at == START + 43200
    assert identity.documents.identity_policies(session) == [READ_ONLY.document]
    with pytest.raises(AccessDenied, match="Cannot call GetSessionToken with session credentials"):
        identity.sessions.get_session_token(session)
    with pytest.raises(ValidationError):
        identity.sessions.get_session_token(alice, 129601)
    # Deleting the user (after its long-term key) ends its sessions.
    identity.users.delete_access_key("alice", alice.access_key_id)
    identity.permissions.detach_user_policy("alice", READ_ONLY.arn)
    identity.users.delete_user("alice")
    assert identity.authentication.current_caller(credentials.access_key_id) is None


def test_root_session_tokens_last_at_most_an_hour(identity: IdentityServices) -> None:
    identity.authentication.bootstrap_root("AKIAROOTCONFIGURED01", "configured-secret")
    root, _ = identity.authentication.authenticate_access_key("AKIAROOTCONFIGURED01", None)
    credentials = identity.sessions.get_session_token(root, 7200)
    assert credentials.expires_at == START + 3600
    session, _ = identity.authentication.authenticate_access_key(credentials.access_key_id, credentials.session_token)
    assert session.is_root and session.arn == f"arn:aws:iam::{ACCOUNT}:root"
    assert identity.documents.identity_policies(session) == []
    assert identity.sessions.get_caller_identity(root).user_id == ACCOUNT


# -- the IAM and STS operations through boto3 -------------------------------------------------------------


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def test_iam_users_keys_and_policies_through_boto3(endpoint: str, registry: Registry) -> None:
    iam = client_for(endpoint, "iam")
    account = registry.settings.account_id
    created = iam.create_user(UserName="alice", Path="/dev/", Tags=[{"Key": "team", "Value": "blue"}])["User"]
    assert created["Arn"] == f"arn:aws:iam::{account}:user/dev/alice"
    assert created["Tags"] == [{"Key": "team", "Value": "blue"}]
    assert iam.get_user(UserName="alice")["User"]["UserId"] == created["UserId"]
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["alice"]
    assert iam.get_user()["User"]["Arn"] == f"arn:aws:iam::{account}:root"

    key = iam.create_access_key(UserName="alice")["AccessKey"]
    listed = iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"], k["UserName"]) for k in listed] == [(key["AccessKeyId"], "Active", "alice")]

    alice_sts = client_for(endpoint, "sts", key["AccessKeyId"], key["SecretAccessKey"])
    assert alice_sts.get_caller_identity()["Arn"] == created["Arn"]
    alice_ecr = client_for(endpoint, "ecr", key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(ClientError) as denied:
        alice_ecr.describe_repositories()
    assert error_of(denied)[0] == "AccessDeniedException"
    alice_iam = client_for(endpoint, "iam", key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(ClientError) as iam_denied:
        alice_iam.list_users()
    code, status, message = error_of(iam_denied)
    assert (code, status) == ("AccessDenied", 403)
    assert message.startswith(f"User: {created['Arn']} is not authorized to perform: iam:ListUsers")

    iam.attach_user_policy(UserName="alice", PolicyArn=READ_ONLY.arn)
    assert alice_ecr.describe_repositories()["repositories"] == []
    attached = iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"]
    assert attached == [{"PolicyName": READ_ONLY.name, "PolicyArn": READ_ONLY.arn}]
    managed = iam.get_policy(PolicyArn=READ_ONLY.arn)["Policy"]
    assert (managed["AttachmentCount"], managed["DefaultVersionId"]) == (1, READ_ONLY.version_id)
    version = iam.get_policy_version(PolicyArn=READ_ONLY.arn, VersionId=READ_ONLY.version_id)["PolicyVersion"]
    assert version["Document"] == json.loads(READ_ONLY.document_text)  # botocore decodes IAM's URL-encoding

    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["iam:ListUsers", "iam:ListAccessKeys"], "Resource": "*"}],
    }
    iam.put_user_policy(UserName="alice", PolicyName="list-users", PolicyDocument=json.dumps(document))
    assert iam.get_user_policy(UserName="alice", PolicyName="list-users")["PolicyDocument"] == document
    assert iam.list_user_policies(UserName="alice")["PolicyNames"] == ["list-users"]
    assert [u["UserName"] for u in alice_iam.list_users()["Users"]] == ["alice"]
    # Without UserName, key operations are about the caller.
    assert [k["AccessKeyId"] for k in alice_iam.list_access_keys()["AccessKeyMetadata"]] == [key["AccessKeyId"]]

    custom = iam.create_policy(PolicyName="Push", PolicyDocument=json.dumps(document), Description="d")["Policy"]
    assert custom["Arn"] == f"arn:aws:iam::{account}:policy/Push"
    names = {p["PolicyName"] for p in iam.list_policies(Scope="All")["Policies"]}
    assert {"Push", READ_ONLY.name, POWER_USER.name} <= names
    iam.create_policy_version(PolicyArn=custom["Arn"], PolicyDocument=json.dumps(document), SetAsDefault=True)
    assert [v["VersionId"] for v in iam.list_policy_versions(PolicyArn=custom["Arn"])["Versions"]] == ["v2", "v1"]

    with pytest.raises(ClientError) as conflict:
        iam.delete_user(UserName="alice")
    assert error_of(conflict)[:2] == ("DeleteConflict", 409)
    iam.delete_access_key(UserName="alice", AccessKeyId=key["AccessKeyId"])
    iam.delete_user_policy(UserName="alice", PolicyName="list-users")
    iam.detach_user_policy(UserName="alice", PolicyArn=READ_ONLY.arn)
    iam.delete_user(UserName="alice")
    with pytest.raises(ClientError) as missing:
        iam.get_user(UserName="alice")
    assert error_of(missing) == ("NoSuchEntity", 404, "The user with name alice cannot be found.")
    with pytest.raises(ClientError) as gone:
        alice_sts.get_caller_identity()
    assert error_of(gone)[0] == "InvalidClientTokenId"


def test_iam_errors_through_boto3(endpoint: str) -> None:
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="alice")
    with pytest.raises(ClientError) as exists:
        iam.create_user(UserName="Alice")
    assert error_of(exists) == ("EntityAlreadyExists", 409, "User with name Alice already exists.")
    with pytest.raises(ClientError) as malformed:
        iam.put_user_policy(UserName="alice", PolicyName="p", PolicyDocument="{")
    assert error_of(malformed)[:2] == ("MalformedPolicyDocument", 400)
    with pytest.raises(ClientError) as invalid:
        iam.create_user(UserName="bad name")
    assert error_of(invalid)[:2] == ("ValidationError", 400)
    with pytest.raises(ClientError) as boundary:
        iam.create_user(UserName="bob", PermissionsBoundary=READ_ONLY.arn)
    assert error_of(boundary)[0] == "InvalidInput"
    iam.create_access_key(UserName="alice")
    iam.create_access_key(UserName="alice")
    with pytest.raises(ClientError) as quota:
        iam.create_access_key(UserName="alice")
    assert error_of(quota) == ("LimitExceeded", 409, "Cannot exceed quota for AccessKeysPerUser: 2")


def test_roles_and_sts_through_boto3(endpoint: str, registry: Registry) -> None:
    iam = client_for(endpoint, "iam")
    account = registry.settings.account_id
    alice_arn = iam.create_user(UserName="alice")["User"]["Arn"]
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    trust_document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": alice_arn}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(
        RoleName="pusher",
        AssumeRolePolicyDocument=json.dumps(trust_document),
        MaxSessionDuration=7200,
        Description="pushes",
    )["Role"]
    assert role["Arn"] == f"arn:aws:iam::{account}:role/pusher"
    assert role["AssumeRolePolicyDocument"] == trust_document
    got = iam.get_role(RoleName="pusher")["Role"]
    assert (got["MaxSessionDuration"], got["Description"]) == (7200, "pushes")
    assert [r["RoleName"] for r in iam.list_roles()["Roles"]] == ["pusher"]
    iam.attach_role_policy(RoleName="pusher", PolicyArn=POWER_USER.arn)

    alice_sts = client_for(endpoint, "sts", key["AccessKeyId"], key["SecretAccessKey"])
    assumed = alice_sts.assume_role(RoleArn=role["Arn"], RoleSessionName="ci", DurationSeconds=900)
    assert assumed["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{account}:assumed-role/pusher/ci"
    assert assumed["AssumedRoleUser"]["AssumedRoleId"] == f"{role['RoleId']}:ci"
    credentials = assumed["Credentials"]
    session_sts = client_for(
        endpoint, "sts", credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )
    assert session_sts.get_caller_identity()["Arn"] == assumed["AssumedRoleUser"]["Arn"]
    session_ecr = client_for(
        endpoint, "ecr", credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )
    assert session_ecr.describe_repositories()["repositories"] == []
    with pytest.raises(ClientError) as wrong_token:
        client_for(
            endpoint, "sts", credentials["AccessKeyId"], credentials["SecretAccessKey"], "not-the-token"
        ).get_caller_identity()
    assert error_of(wrong_token)[0] == "InvalidClientTokenId"

    session_token = alice_sts.get_session_token(DurationSeconds=900)["Credentials"]
    user_session = client_for(
        endpoint, "sts", session_token["AccessKeyId"], session_token["SecretAccessKey"], session_token["SessionToken"]
    )
    assert user_session.get_caller_identity()["Arn"] == alice_arn

    with pytest.raises(ClientError) as root_denied:
        client_for(endpoint, "sts").assume_role(RoleArn=role["Arn"], RoleSessionName="root")
    assert error_of(root_denied)[:2] == ("AccessDenied", 403)
    with pytest.raises(ClientError) as unsupported:
        alice_sts.assume_role(RoleArn=role["Arn"], RoleSessionName="ci", Policy=json.dumps(trust_document))
    assert error_of(unsupported)[0] == "ValidationError"


# -- every operation against its botocore output shape ----------------------------------------------------


class RecordingContext:
    """What an operation sees of AwsContext, recording what it authorizes."""

    def __init__(self, identity: IdentityServices, caller: Caller) -> None:
        self.identity = identity
        self.caller = caller
        self.account_id = ACCOUNT
        self.region = "us-east-1"
        self.authorized: list[tuple[str, str]] = []

    def authorize(self, action: str, resource: str, context: dict[str, object] | None = None) -> None:
        self.authorized.append((action, resource))


def check_shape(shape: Any, value: Any, path: str) -> None:
    """``value`` holds only members of ``shape``, with values of the member's kind."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), path
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{path}: not in {shape.name}: {unknown}"
        for name, member in value.items():
            check_shape(shape.members[name], member, f"{path}.{name}")
    elif kind == "list":
        assert isinstance(value, list), path
        for index, item in enumerate(value):
            check_shape(shape.member, item, f"{path}[{index}]")
    elif kind == "timestamp":
        assert isinstance(value, dt.datetime) and value.tzinfo is not None, path
    elif kind == "boolean":
        assert isinstance(value, bool), path
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), path
    else:
        assert isinstance(value, str), path


def test_every_operation_answers_its_output_shape_after_authorizing(identity: IdentityServices) -> None:
    identity.authentication.bootstrap_root("AKIAROOTCONFIGURED01", "configured-secret")
    root, _ = identity.authentication.authenticate_access_key("AKIAROOTCONFIGURED01", None)
    ctx = RecordingContext(identity, root)
    trust_text = trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
    document = policy(allow("sts:AssumeRole"))
    mine = policy_arn("Mine")
    tags = [{"Key": "k", "Value": "v"}]
    calls: list[tuple[str, dict[str, Any]]] = [
        ("CreateUser", {"UserName": "alice", "Tags": tags}),
        ("GetUser", {"UserName": "alice"}),
        ("GetUser", {}),
        ("ListUsers", {"MaxItems": 1}),
        ("UpdateUser", {"UserName": "alice", "NewPath": "/dev/"}),
        ("TagUser", {"UserName": "alice", "Tags": tags}),
        ("ListUserTags", {"UserName": "alice"}),
        ("UntagUser", {"UserName": "alice", "TagKeys": ["k"]}),
        ("CreateAccessKey", {"UserName": "alice"}),
        ("CreateAccessKey", {}),
        ("ListAccessKeys", {"UserName": "alice"}),
        ("ListAccessKeys", {}),
        ("PutUserPolicy", {"UserName": "alice", "PolicyName": "p", "PolicyDocument": document}),
        ("GetUserPolicy", {"UserName": "alice", "PolicyName": "p"}),
        ("ListUserPolicies", {"UserName": "alice"}),
        ("UpdateAccountPasswordPolicy", {"MinimumPasswordLength": 8, "AllowUsersToChangePassword": False}),
        ("GetAccountPasswordPolicy", {}),
        ("CreateLoginProfile", {"UserName": "alice", "Password": "Correct-Horse-7"}),
        ("GetLoginProfile", {"UserName": "alice"}),
        ("UpdateLoginProfile", {"UserName": "alice", "PasswordResetRequired": True}),
        ("CreatePolicy", {"PolicyName": "Mine", "PolicyDocument": document, "Description": "d", "Tags": tags}),
        ("GetPolicy", {"PolicyArn": mine}),
        ("GetPolicy", {"PolicyArn": READ_ONLY.arn}),
        ("ListPolicies", {"Scope": "All", "MaxItems": 3}),
        ("ListPolicies", {"PolicyUsageFilter": "PermissionsBoundary"}),
        ("CreatePolicyVersion", {"PolicyArn": mine, "PolicyDocument": document, "SetAsDefault": True}),
        ("GetPolicyVersion", {"PolicyArn": mine, "VersionId": "v2"}),
        ("ListPolicyVersions", {"PolicyArn": mine}),
        ("SetDefaultPolicyVersion", {"PolicyArn": mine, "VersionId": "v1"}),
        ("DeletePolicyVersion", {"PolicyArn": mine, "VersionId": "v2"}),
        ("AttachUserPolicy", {"UserName": "alice", "PolicyArn": mine}),
        ("ListAttachedUserPolicies", {"UserName": "alice"}),
        ("CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": trust_text, "Description": "d", "Tags": tags}),
        ("GetRole", {"RoleName": "r"}),
        ("ListRoles", {}),
        ("UpdateRole", {"RoleName": "r", "MaxSessionDuration": 7200}),
        ("UpdateAssumeRolePolicy", {"RoleName": "r", "PolicyDocument": trust_text}),
        ("TagRole", {"RoleName": "r", "Tags": tags}),
        ("ListRoleTags", {"RoleName": "r"}),
        ("UntagRole", {"RoleName": "r", "TagKeys": ["k"]}),
        ("PutRolePolicy", {"RoleName": "r", "PolicyName": "p", "PolicyDocument": document}),
        ("GetRolePolicy", {"RoleName": "r", "PolicyName": "p"}),
        ("ListRolePolicies", {"RoleName": "r"}),
        ("AttachRolePolicy", {"RoleName": "r", "PolicyArn": READ_ONLY.arn}),
        ("ListAttachedRolePolicies", {"RoleName": "r"}),
        ("ListInstanceProfilesForRole", {"RoleName": "r"}),
        ("CreateGroup", {"GroupName": "g", "Path": "/t/"}),
        ("ListGroups", {"MaxItems": 1}),
        ("UpdateGroup", {"GroupName": "g", "NewPath": "/u/"}),
        ("AddUserToGroup", {"GroupName": "g", "UserName": "alice"}),
        ("GetGroup", {"GroupName": "g"}),
        ("ListGroupsForUser", {"UserName": "alice"}),
        ("PutGroupPolicy", {"GroupName": "g", "PolicyName": "p", "PolicyDocument": document}),
        ("GetGroupPolicy", {"GroupName": "g", "PolicyName": "p"}),
        ("ListGroupPolicies", {"GroupName": "g"}),
        ("AttachGroupPolicy", {"GroupName": "g", "PolicyArn": mine}),
        ("ListAttachedGroupPolicies", {"GroupName": "g"}),
        ("ListEntitiesForPolicy", {"PolicyArn": mine}),
        ("DetachGroupPolicy", {"GroupName": "g", "PolicyArn": mine}),
        ("DeleteGroupPolicy", {"GroupName": "g", "PolicyName": "p"}),
        ("RemoveUserFromGroup", {"GroupName": "g", "UserName": "alice"}),
        ("DeleteGroup", {"GroupName": "g"}),
        ("DetachRolePolicy", {"RoleName": "r", "PolicyArn": READ_ONLY.arn}),
        ("DeleteRolePolicy", {"RoleName": "r", "PolicyName": "p"}),
        ("DeleteRole", {"RoleName": "r"}),
        ("DetachUserPolicy", {"UserName": "alice", "PolicyArn": mine}),
        ("DeletePolicy", {"PolicyArn": mine}),
        ("DeleteUserPolicy", {"UserName": "alice", "PolicyName": "p"}),
        ("CreateAccountAlias", {"AccountAlias": "example-org"}),
        ("ListAccountAliases", {}),
    ]
    model = service_model("iam")
    for name, params in calls:
        ctx.authorized.clear()
        result = iam_operations.OPERATIONS[name](cast(AwsContext, ctx), params)
        output = model.operation_model(name).output_shape
        if output is None:
            assert result == {}, name
        else:
            check_shape(output, result, name)
            for member in output.required_members:
                assert member in result or (name, member) in {("GetUser", "User")}, f"{name} lacks {member}"
        assert [action for action, _ in ctx.authorized] == [f"iam:{name}"], name
    alice = RecordingContext(identity, user_caller(identity, "alice"))
    changed = {"OldPassword": "Correct-Horse-7", "NewPassword": "Correct-Horse-8"}
    assert iam_operations.OPERATIONS["ChangePassword"](cast(AwsContext, alice), changed) == {}
    assert alice.authorized == [("iam:ChangePassword", user_arn("alice", "/dev/"))]
    for name, params in [
        ("DeleteLoginProfile", {"UserName": "alice"}),
        ("DeleteAccountPasswordPolicy", {}),
        ("DeleteAccountAlias", {"AccountAlias": "example-org"}),
    ]:
        ctx.authorized.clear()
        assert iam_operations.OPERATIONS[name](cast(AwsContext, ctx), params) == {}
        assert [action for action, _ in ctx.authorized] == [f"iam:{name}"], name
    for key in identity.users.list_access_keys("alice").items:
        for name, params in [
            ("UpdateAccessKey", {"UserName": "alice", "AccessKeyId": key.access_key_id, "Status": "Inactive"}),
            ("DeleteAccessKey", {"UserName": "alice", "AccessKeyId": key.access_key_id}),
        ]:
            ctx.authorized.clear()
            assert iam_operations.OPERATIONS[name](cast(AwsContext, ctx), params) == {}
            assert ctx.authorized == [(f"iam:{name}", user_arn("alice", "/dev/"))]
    iam_operations.delete_user(cast(AwsContext, ctx), {"UserName": "alice"})
    exercised = {name for name, _ in calls} | {"UpdateAccessKey", "DeleteAccessKey", "DeleteUser"}
    exercised |= {"ChangePassword", "DeleteLoginProfile", "DeleteAccountPasswordPolicy", "DeleteAccountAlias"}
    assert set(iam_operations.OPERATIONS) == exercised
    assert set(iam_operations.OPERATIONS) <= set(model.operation_names)


def test_sts_operations_answer_their_output_shapes(identity: IdentityServices) -> None:
    identity.users.create_user("alice")
    identity.roles.create_role("r", trust({"AWS": user_arn("alice")}))
    ctx = RecordingContext(identity, user_caller(identity, "alice"))
    model = service_model("sts")
    calls = [
        ("GetCallerIdentity", {}),
        ("AssumeRole", {"RoleArn": role_arn("r"), "RoleSessionName": "sess", "DurationSeconds": 900}),
        ("GetSessionToken", {"DurationSeconds": 900}),
    ]
    for name, params in calls:
        result = sts_operations.OPERATIONS[name](cast(AwsContext, ctx), params)
        check_shape(model.operation_model(name).output_shape, result, name)
    assert ctx.authorized == []  # STS decides inside the identity service, or needs no permission
    assert set(sts_operations.OPERATIONS) == {name for name, _ in calls}
    with pytest.raises(ValidationError, match="Policy"):
        sts_operations.assume_role(
            cast(AwsContext, ctx), {"RoleArn": role_arn("r"), "RoleSessionName": "sess", "Policy": "{}"}
        )
    assumed = sts_operations.assume_role(cast(AwsContext, ctx), {"RoleArn": role_arn("r"), "RoleSessionName": "sess"})
    session, _ = identity.authentication.authenticate_access_key(
        assumed["Credentials"]["AccessKeyId"], assumed["Credentials"]["SessionToken"]
    )
    with pytest.raises(ValidationError, match="Must specify userName when calling with non-User credentials"):
        iam_operations.list_access_keys(cast(AwsContext, RecordingContext(identity, session)), {})
