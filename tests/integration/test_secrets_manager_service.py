"""The secrets service on SQLite and PostgreSQL with an injected clock: versions and staging labels, idempotent
writes, values stored only encrypted under KMS keys, scheduled deletion, and the read other services make."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ecrd.domain.secrets import MARKED_FOR_DELETION, SecretFilter, SecretValue
from ecrd.errors import (
    AccessDenied,
    SecretDecryptionFailure,
    SecretEncryptionFailure,
    SecretExists,
    SecretInvalidRequest,
    SecretNotFound,
)
from ecrd.metadata.secrets_tables import secret_tags, secret_versions, secrets
from ecrd.services.access import Caller
from ecrd.services.kms import KeyService
from ecrd.services.secrets_manager import SecretRecord, SecretSettings, SecretsManagerService, VersionWritten
from tests.integration.test_kms_service import key_service, user
from tests.support.clock import START, FakeClock
from tests.support.key_services import Deployment, allow, deployment, policy

DAY = 86400.0
TOKEN_A, TOKEN_B, TOKEN_C = "a" * 32, "b" * 32, "c" * 32


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def site(backend: str, tmp_path: Path, clock: FakeClock) -> Iterator[Deployment]:
    with deployment(backend, tmp_path, clock) as built:
        yield built


@pytest.fixture
def kms(site: Deployment, clock: FakeClock) -> KeyService:
    return key_service(site, clock)


@pytest.fixture
def service(site: Deployment, kms: KeyService) -> SecretsManagerService:
    return site.secrets_service(kms=kms)


@pytest.fixture
def root(site: Deployment) -> Caller:
    return site.root()


def create(
    service: SecretsManagerService,
    caller: Caller,
    name: str,
    value: SecretValue | None = None,
    *,
    token: str | None = None,
    kms_key_id: str | None = None,
) -> VersionWritten:
    created = service.create_secret(
        caller,
        service.new_arn(name),
        name,
        value=value,
        token=token,
        settings=SecretSettings(kms_key_id=kms_key_id),
        tags=[("team", "blue")],
    )
    assert isinstance(created, VersionWritten)
    return created


def record(service: SecretsManagerService, caller: Caller, name: str) -> SecretRecord:
    return service.authorize(caller, "secretsmanager:DescribeSecret", name)


def test_each_new_value_becomes_current_and_the_last_one_previous(service: SecretsManagerService, root: Caller) -> None:
    first = create(service, root, "app/db", SecretValue(string="one"), token=TOKEN_A)
    assert (first.version_id, first.stages) == (TOKEN_A, ("AWSCURRENT",))
    service.put_secret_value(root, record(service, root, "app/db"), SecretValue(string="two"), token=TOKEN_B)
    service.put_secret_value(root, record(service, root, "app/db"), SecretValue(binary=b"\x00three"), token=TOKEN_C)

    current = record(service, root, "app/db")
    assert dict(current.stages) == {"AWSCURRENT": TOKEN_C, "AWSPREVIOUS": TOKEN_B}
    read = service.get_secret_value(root, current, version_id=None, stage=None)
    assert (read.value, read.stages) == (SecretValue(binary=b"\x00three"), ("AWSCURRENT",))
    assert service.get_secret_value(root, current, version_id=None, stage="AWSPREVIOUS").value.string == "two"
    # The first version has no label left, but is still there by its id.
    assert service.get_secret_value(root, current, version_id=TOKEN_A, stage=None).value.string == "one"
    with pytest.raises(SecretNotFound, match=r"for VersionId: .* and staging label: AWSCURRENT"):
        service.get_secret_value(root, current, version_id=TOKEN_A, stage="AWSCURRENT")
    with pytest.raises(SecretNotFound, match="for staging label: AWSPENDING"):
        service.get_secret_value(root, current, version_id=None, stage="AWSPENDING")


def test_a_retried_write_with_the_same_token_is_ignored_and_a_different_value_refused(
    service: SecretsManagerService, root: Caller
) -> None:
    first = create(service, root, "app/db", SecretValue(string="one"), token=TOKEN_A)
    again = create(service, root, "app/db", SecretValue(string="one"), token=TOKEN_A)
    assert (again.secret.arn, again.version_id) == (first.secret.arn, TOKEN_A)
    with pytest.raises(SecretExists, match="already exists"):
        create(service, root, "app/db", SecretValue(string="other"), token=TOKEN_A)

    secret = record(service, root, "app/db")
    put = service.put_secret_value(root, secret, SecretValue(string="two"), token=TOKEN_B)
    retried = service.put_secret_value(root, record(service, root, "app/db"), SecretValue(string="two"), token=TOKEN_B)
    assert retried.version_id == put.version_id
    with pytest.raises(SecretExists, match="can't modify an existing version"):
        service.put_secret_value(root, record(service, root, "app/db"), SecretValue(string="changed"), token=TOKEN_B)
    assert dict(record(service, root, "app/db").stages) == {"AWSCURRENT": TOKEN_B, "AWSPREVIOUS": TOKEN_A}


def test_values_are_stored_only_encrypted_under_the_aws_managed_key(
    service: SecretsManagerService, kms: KeyService, site: Deployment, root: Caller
) -> None:
    create(service, root, "app/db", SecretValue(string="plain-text-password"), token=TOKEN_A)
    managed = kms.resolve_key("alias/aws/secretsmanager")
    assert managed.key_manager == "AWS"
    with site.store.read() as conn:
        [stored] = conn.execute(select(secret_versions)).all()
    assert stored.key_arn == managed.arn
    assert b"plain-text-password" not in stored.sealed_value + stored.wrapped_key
    # A row moved to another version cannot be opened: the value is bound to its secret and version.
    secret = record(service, root, "app/db")
    with site.store.write() as conn:
        conn.execute(secret_versions.update().values(version_id=TOKEN_B))
    with pytest.raises(SecretDecryptionFailure):
        service.get_secret_value(root, record(service, root, "app/db"), version_id=TOKEN_B, stage=None)
    assert secret.row.kms_key_id is None


def test_a_customer_key_needs_kms_permissions_of_the_caller_and_must_be_usable(
    service: SecretsManagerService, kms: KeyService, site: Deployment, root: Caller
) -> None:
    key = kms.create_key(root.arn)
    both = policy(allow("secretsmanager:*"), allow("kms:GenerateDataKey"), allow("kms:Decrypt"))
    alice = user(site, "alice", both)
    bob = user(site, "bob", policy(allow("secretsmanager:*")))

    created = create(service, alice, "app/db", SecretValue(string="v"), kms_key_id=key.key_id)
    assert created.secret.kms_key_id == key.arn
    assert service.get_secret_value(alice, record(service, alice, "app/db"), version_id=None, stage=None).value
    with pytest.raises(AccessDenied, match="Access to KMS is not allowed"):
        create(service, bob, "app/other", SecretValue(string="v"), kms_key_id=key.key_id)
    with pytest.raises(AccessDenied, match="Access to KMS is not allowed"):
        service.get_secret_value(bob, record(service, bob, "app/db"), version_id=None, stage=None)
    # The AWS managed key serves every principal of the account through Secrets Manager.
    create(service, bob, "app/managed", SecretValue(string="v"))
    assert service.get_secret_value(bob, record(service, bob, "app/managed"), version_id=None, stage=None).value

    kms.disable_key(key.key_id)
    with pytest.raises(SecretDecryptionFailure, match="DisabledException"):
        service.get_secret_value(alice, record(service, alice, "app/db"), version_id=None, stage=None)
    with pytest.raises(SecretEncryptionFailure, match="DisabledException"):
        service.put_secret_value(alice, record(service, alice, "app/db"), SecretValue(string="w"), token=None)
    with pytest.raises(SecretEncryptionFailure, match="NotFoundException"):
        create(service, root, "app/nokey", SecretValue(string="v"), kms_key_id="alias/absent")


def test_a_secret_scheduled_for_deletion_refuses_its_values_until_restored_then_goes(
    service: SecretsManagerService, site: Deployment, root: Caller, clock: FakeClock
) -> None:
    create(service, root, "app/db", SecretValue(string="v"))
    deletion_date = service.delete_secret(record(service, root, "app/db"), window=7, force=None)
    assert deletion_date == START + 7 * DAY
    secret = record(service, root, "app/db")
    assert (secret.row.deleted_at, secret.row.deletion_date) == (START, START + 7 * DAY)
    for attempt in (
        lambda: service.get_secret_value(root, secret, version_id=None, stage=None),
        lambda: service.put_secret_value(root, secret, SecretValue(string="w"), token=None),
        lambda: service.delete_secret(secret, window=None, force=None),
        lambda: create(service, root, "app/db", SecretValue(string="v")),
    ):
        with pytest.raises(SecretInvalidRequest):
            attempt()
    with pytest.raises(SecretInvalidRequest) as refused:
        service.current_value(secret.arn)
    assert refused.value.message == MARKED_FOR_DELETION

    service.restore_secret(secret)
    assert service.current_value(secret.arn) == SecretValue(string="v")
    service.delete_secret(record(service, root, "app/db"), window=None, force=None)

    clock.advance(30 * DAY - 1)
    assert record(service, root, "app/db").row.deleted_at == START
    assert service.purge_deleted_secrets() == 0
    clock.advance(1)
    # Gone for every caller at once, whether or not the purge has run yet; the name is free again.
    with pytest.raises(SecretNotFound):
        record(service, root, "app/db")
    assert (
        service.list_secrets(
            filters=[], include_deleted=True, sort_by=None, descending=False, limit=None, token=None
        ).items
        == ()
    )
    assert service.purge_deleted_secrets() == 1
    with site.store.read() as conn:
        for table in (secrets, secret_versions, secret_tags):
            assert conn.execute(select(table)).first() is None
    create(service, root, "app/db", SecretValue(string="new"))


def test_a_forced_deletion_is_immediate_and_frees_the_name(service: SecretsManagerService, root: Caller) -> None:
    create(service, root, "app/db", SecretValue(string="v"))
    assert service.delete_secret(record(service, root, "app/db"), window=None, force=True) == START
    with pytest.raises(SecretNotFound):
        record(service, root, "app/db")
    create(service, root, "app/db", SecretValue(string="v"))


def test_other_services_read_the_current_value_by_arn_without_a_caller(
    service: SecretsManagerService, root: Caller
) -> None:
    created = create(service, root, "ecr-pullthroughcache/hub", SecretValue(string='{"username":"u"}'))
    assert service.current_value(created.secret.arn) == SecretValue(string='{"username":"u"}')
    # another secret's ARN: the same name with another random suffix (its last character changed, whatever it was)
    other = created.secret.arn[:-1] + ("y" if created.secret.arn.endswith("x") else "x")
    with pytest.raises(SecretNotFound):
        service.current_value(other)


def test_listings_page_through_filtered_secrets_in_order(
    service: SecretsManagerService, root: Caller, clock: FakeClock
) -> None:
    for index in range(7):
        create(service, root, f"{'prod' if index % 2 else 'dev'}/s{index}", SecretValue(string="v"))
        clock.advance(1)
    seen: list[str] = []
    token = None
    for _ in range(10):
        page = service.list_secrets(
            filters=[], include_deleted=False, sort_by=None, descending=False, limit=2, token=token
        )
        seen.extend(item.name for item in page.items)
        token = page.token
        if token is None:
            break
    assert seen == [f"{'prod' if i % 2 else 'dev'}/s{i}" for i in range(7)]

    prod = service.list_secrets(
        filters=[SecretFilter("name", ("prod/",))],
        include_deleted=False,
        sort_by="name",
        descending=True,
        limit=2,
        token=None,
    )
    assert [item.name for item in prod.items] == ["prod/s5", "prod/s3"]
    rest = service.list_secrets(
        filters=[SecretFilter("name", ("prod/",))],
        include_deleted=False,
        sort_by="name",
        descending=True,
        limit=2,
        token=prod.token,
    )
    assert ([item.name for item in rest.items], rest.token) == (["prod/s1"], None)


def test_a_principal_deleted_and_made_again_inherits_nothing_from_a_secret_policy(
    service: SecretsManagerService, site: Deployment, root: Caller
) -> None:
    # Given a secret whose policy grants alice, who has no identity policy of her own
    create(service, root, "app/db", SecretValue(string="v"))
    arn = "arn:aws:iam::000000000000:user/alice"
    alice_id = "AIDAALICE000000000001"
    grant = {"Effect": "Allow", "Principal": {"AWS": arn}, "Action": "secretsmanager:GetSecretValue"}
    service.put_resource_policy(record(service, root, "app/db"), policy(grant), block_public=False)

    # When alice is deleted (IAM tells the service) and a new alice is made
    service.forget_principal(arn, alice_id)
    new_alice = site.user("alice")

    # Then the policy names the old alice by her unique id, as IAM shows it, and grants the new one nothing
    stored = record(service, root, "app/db").row.policy or ""
    assert alice_id in stored and arn not in stored
    with pytest.raises(AccessDenied):
        service.authorize(new_alice, "secretsmanager:GetSecretValue", "app/db")


def test_a_new_key_reseals_the_labelled_versions_when_the_caller_may_use_it(
    service: SecretsManagerService, kms: KeyService, site: Deployment, root: Caller
) -> None:
    # Given a secret under one key with an unlabelled, a previous and a current version
    old, new = kms.create_key(root.arn), kms.create_key(root.arn)
    create(service, root, "app/db", SecretValue(string="one"), token=TOKEN_A, kms_key_id=old.key_id)
    for token, text in ((TOKEN_B, "two"), (TOKEN_C, "three")):
        service.put_secret_value(root, record(service, root, "app/db"), SecretValue(string=text), token=token)

    # When the secret moves to another key
    service.update_secret(
        root, record(service, root, "app/db"), value=None, token=None, settings=SecretSettings(kms_key_id=new.arn)
    )

    # Then AWSCURRENT and AWSPREVIOUS are sealed under the new key, and read without the old one
    with site.store.read() as conn:
        keys = dict(conn.execute(select(secret_versions.c.version_id, secret_versions.c.key_arn)).all())
    assert keys == {TOKEN_A: old.arn, TOKEN_B: new.arn, TOKEN_C: new.arn}
    kms.disable_key(old.key_id)
    secret = record(service, root, "app/db")
    assert service.get_secret_value(root, secret, version_id=None, stage=None).value.string == "three"
    assert service.get_secret_value(root, secret, version_id=None, stage="AWSPREVIOUS").value.string == "two"
    with pytest.raises(SecretDecryptionFailure):
        service.get_secret_value(root, secret, version_id=TOKEN_A, stage=None)


def test_without_permission_on_the_new_key_the_versions_keep_their_key(
    service: SecretsManagerService, kms: KeyService, site: Deployment, root: Caller
) -> None:
    old = kms.create_key(root.arn)
    bob = "arn:aws:iam::000000000000:user/bob"
    bob_only = policy({"Effect": "Allow", "Principal": {"AWS": bob}, "Action": "kms:*", "Resource": "*"})
    new = kms.create_key(root.arn, policy=bob_only)
    carol = user(site, "carol", policy(allow("secretsmanager:*"), allow("kms:*")))
    create(service, carol, "app/db", SecretValue(string="one"), kms_key_id=old.key_id)

    service.update_secret(
        carol, record(service, carol, "app/db"), value=None, token=None, settings=SecretSettings(kms_key_id=new.arn)
    )

    with site.store.read() as conn:
        assert {row.key_arn for row in conn.execute(select(secret_versions))} == {old.arn}
    assert record(service, carol, "app/db").row.kms_key_id == new.arn
