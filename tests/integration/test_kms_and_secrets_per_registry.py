"""KMS keys and Secrets Manager secrets of several registries (two accounts, and two regions of one account) on
one metadata store, on SQLite and PostgreSQL: each registry's ids, aliases, names and listings are its own; a key
or secret of another account in the same region is reached by its ARN and decided across accounts (the key or
resource policy and the caller's own IAM policies); another region's ARN names nothing; the periodic sweeps,
run on one instance, cover every registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ecrd.domain.registries import RegistryId
from ecrd.domain.secrets import SecretValue
from ecrd.errors import AccessDenied, KmsNotFound, SecretNotFound
from ecrd.services.access import Caller
from ecrd.services.kms import KeyService
from ecrd.services.kms_policies import default_key_policy, managed_ecr_key_policy
from ecrd.services.secrets_manager import SecretRecord, SecretSettings, SecretsManagerService, VersionWritten
from tests.support.clock import START, FakeClock
from tests.support.key_services import (
    ACCOUNT,
    HOME,
    OTHER_ACCOUNT,
    OTHER_REGION,
    REGION,
    Deployment,
    allow,
    deployment,
    grant,
    policy,
)

DAY = 86400.0
OTHER = RegistryId(OTHER_ACCOUNT, REGION)  # another account, same region
ABROAD = RegistryId(ACCOUNT, OTHER_REGION)  # the same account, another region
REGISTRIES = (HOME, OTHER, ABROAD)
HOME_ROOT = f"arn:aws:iam::{ACCOUNT}:root"
OTHER_ROOT = f"arn:aws:iam::{OTHER_ACCOUNT}:root"
USE = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def site(backend: str, tmp_path: Path, clock: FakeClock) -> Iterator[Deployment]:
    with deployment(backend, tmp_path, clock) as built:
        yield built


@pytest.fixture
def kms(site: Deployment) -> dict[RegistryId, KeyService]:
    return {registry: site.key_service(registry) for registry in REGISTRIES}


@pytest.fixture
def secrets(site: Deployment, kms: dict[RegistryId, KeyService]) -> dict[RegistryId, SecretsManagerService]:
    return {registry: site.secrets_service(registry, kms[registry]) for registry in REGISTRIES}


def shared_key(kms: KeyService, *, to_account: bool = True) -> str:
    """A key of the home account whose policy also lets the other account use it (``to_account``); its ARN."""
    statements = [grant(HOME_ROOT)] + ([grant(OTHER_ROOT, USE)] if to_account else [])
    return kms.create_key(HOME_ROOT, policy=policy(*statements)).arn


# -- KMS: isolation ----------------------------------------------------------------------------------------


def test_each_registry_has_its_own_keys_aliases_and_listings(kms: dict[RegistryId, KeyService]) -> None:
    made = {}
    for registry, service in kms.items():
        root = f"arn:aws:iam::{registry.account_id}:root"
        key = service.create_key(root, description=str(registry))
        service.create_alias("alias/app", key.key_id)  # one alias name in every registry
        made[registry] = key
        assert key.arn == f"arn:aws:kms:{registry.region}:{registry.account_id}:key/{key.key_id}"
        assert key.account_id == registry.account_id
        assert key.policy == default_key_policy(registry.account_id)

    for registry, service in kms.items():
        assert [key.key_id for key in service.list_keys().items] == [made[registry].key_id]
        [alias] = service.list_aliases().items
        assert (alias.target_key_id, alias.arn) == (
            made[registry].key_id,
            f"arn:aws:kms:{registry.region}:{registry.account_id}:alias/app",
        )
        assert service.resolve_key("alias/app").key_id == made[registry].key_id
        for other, key in made.items():
            if other != registry:
                # A bare key id names a key of the registry's own account and region only.
                with pytest.raises(KmsNotFound, match=f"Key '{service.key_arn(key.key_id)}' does not exist"):
                    service.resolve_key(key.key_id)


def test_another_regions_key_or_alias_arn_is_not_found(kms: dict[RegistryId, KeyService]) -> None:
    abroad = kms[ABROAD].create_key(HOME_ROOT)
    kms[ABROAD].create_alias("alias/abroad", abroad.key_id)
    home = kms[HOME]
    for reference in (abroad.arn, kms[ABROAD].alias_arn("alias/abroad")):
        with pytest.raises(KmsNotFound, match=f"Invalid arn {OTHER_REGION}"):
            home.resolve_key(reference)
    with pytest.raises(KmsNotFound, match=f"Invalid arn {OTHER_REGION}"):
        home.create_alias("alias/there", abroad.arn)
    # Nor does a ciphertext of another region's key decrypt here.
    blob = kms[ABROAD].encrypt(abroad.key_id, b"x")
    with pytest.raises(KmsNotFound):
        home.decrypt(blob)


def test_an_arn_of_a_key_or_alias_that_does_not_exist_is_not_found_in_kms_words(
    kms: dict[RegistryId, KeyService],
) -> None:
    missing = "0b5c3f3e-8a7d-4c1e-9f2a-1d2e3f4a5b6c"
    key_arn = f"arn:aws:kms:{REGION}:{OTHER_ACCOUNT}:key/{missing}"
    alias_arn = f"arn:aws:kms:{REGION}:{OTHER_ACCOUNT}:alias/absent"
    with pytest.raises(KmsNotFound, match=f"Key '{key_arn}' does not exist"):
        kms[HOME].resolve_key(key_arn)
    with pytest.raises(KmsNotFound, match=f"Alias {alias_arn} is not found."):
        kms[HOME].resolve_key(alias_arn)


def test_the_aws_managed_keys_are_per_account_and_region(kms: dict[RegistryId, KeyService]) -> None:
    managed = {registry: service.managed_ecr_key(HOME_ROOT) for registry, service in kms.items()}
    assert len({key.key_id for key in managed.values()}) == len(REGISTRIES)
    for registry, key in managed.items():
        assert key.policy == managed_ecr_key_policy(registry.account_id, registry.region)
        assert kms[registry].resolve_key("alias/aws/ecr").key_id == key.key_id
        assert kms[registry].managed_ecr_key(HOME_ROOT).key_id == key.key_id  # made once


# -- KMS: cross-account use --------------------------------------------------------------------------------


def test_a_key_policy_allowing_another_account_lets_its_principals_use_the_key_their_iam_allows(
    site: Deployment, kms: dict[RegistryId, KeyService]
) -> None:
    key_arn = shared_key(kms[HOME])
    kms[HOME].create_alias("alias/shared", key_arn)
    bob = site.user("bob", policy(allow(USE, key_arn)), account_id=OTHER_ACCOUNT)
    nobody = site.user("nobody", account_id=OTHER_ACCOUNT)
    # The other account's own service reaches the key by its ARN, or by its alias ARN.
    there = kms[OTHER]
    for reference in (key_arn, kms[HOME].alias_arn("alias/shared")):
        described = there.authorize(bob, "kms:DescribeKey", reference)
        assert (described.arn, described.account_id) == (key_arn, ACCOUNT)
    there.authorize(bob, "kms:Encrypt", key_arn)
    blob = there.encrypt(key_arn, b"shared", {"purpose": "test"})
    # A ciphertext names its key by id: the other account decrypts it, and so does the key's own.
    assert there.ciphertext_key(blob).arn == key_arn
    there.authorize(bob, "kms:Decrypt", there.ciphertext_key(blob).arn)
    assert there.decrypt(blob, {"purpose": "test"}) == (key_arn, b"shared")
    assert kms[HOME].decrypt(blob, {"purpose": "test"}) == (key_arn, b"shared")

    # Without an IAM policy of their own, the key policy's grant to their account is not enough.
    with pytest.raises(AccessDenied, match="no identity-based policy allows"):
        there.authorize(nobody, "kms:Encrypt", key_arn)
    # Nor does the grant cover what it does not name.
    admin = site.user("admin", policy(allow()), account_id=OTHER_ACCOUNT)
    with pytest.raises(AccessDenied):
        there.authorize(admin, "kms:ScheduleKeyDeletion", key_arn)
    # The home account's service decides the same way.
    kms[HOME].authorize(bob, "kms:Encrypt", key_arn)
    with pytest.raises(AccessDenied):
        kms[HOME].authorize(nobody, "kms:Encrypt", key_arn)


def test_a_key_policy_without_the_other_account_denies_it_even_its_root(
    site: Deployment, kms: dict[RegistryId, KeyService]
) -> None:
    private = kms[HOME].create_key(HOME_ROOT).arn  # the default key policy: its own account only
    bob = site.user("bob", policy(allow()), account_id=OTHER_ACCOUNT)
    for caller in (bob, site.root(OTHER_ACCOUNT)):
        with pytest.raises(AccessDenied, match="no resource-based policy allows"):
            kms[OTHER].authorize(caller, "kms:Encrypt", private)
    # The key's own account still decides by its IAM policies, as before.
    kms[HOME].authorize(site.user("alice", policy(allow("kms:Encrypt"))), "kms:Encrypt", private)


def test_the_aws_managed_key_serves_only_its_own_account(site: Deployment, kms: dict[RegistryId, KeyService]) -> None:
    managed = kms[HOME].managed_ecr_key(HOME_ROOT)
    bob = site.user("bob", policy(allow()), account_id=OTHER_ACCOUNT)
    with pytest.raises(AccessDenied):
        kms[OTHER].authorize(bob, "kms:Decrypt", managed.arn, via_service="ecr")
    alice = site.user("alice", policy(allow()))
    kms[HOME].authorize(alice, "kms:Decrypt", managed.arn, via_service="ecr")


def test_keys_aliases_and_tags_are_managed_only_in_the_keys_own_account(kms: dict[RegistryId, KeyService]) -> None:
    key = kms[HOME].create_key(HOME_ROOT, policy=policy(grant(HOME_ROOT), grant(OTHER_ROOT)))
    there = kms[OTHER]
    not_found = f"Key '{key.arn}' does not exist"
    for manage in (
        lambda: there.disable_key(key.arn),
        lambda: there.schedule_key_deletion(key.arn),
        lambda: there.put_key_policy(key.arn, policy(grant(OTHER_ROOT))),
        lambda: there.get_key_policy(key.arn),
        lambda: there.tag_resource(key.arn, {"team": "blue"}),
        lambda: there.list_resource_tags(key.arn),
        lambda: there.enable_key_rotation(key.arn),
        lambda: there.rotate_key_on_demand(key.arn),
        lambda: there.list_key_rotations(key.arn),
        lambda: there.create_alias("alias/theirs", key.arn),  # an alias and its key share account and region
        lambda: there.list_aliases(key=key.arn),
    ):
        with pytest.raises(KmsNotFound, match=not_found):
            manage()
    assert kms[HOME].describe_key(key.key_id).state == "Enabled"
    # What works across accounts in KMS does here too: describing the key and reading its rotation status.
    assert there.describe_key(key.arn).key_id == key.key_id
    assert there.get_key_rotation_status(key.arn).rotation_period_days is None


# -- KMS: the sweeps cover every registry ------------------------------------------------------------------


def test_one_purge_destroys_the_deleted_keys_of_every_registry(
    kms: dict[RegistryId, KeyService], clock: FakeClock
) -> None:
    doomed = {registry: service.create_key(HOME_ROOT) for registry, service in kms.items()}
    for registry, key in doomed.items():
        kms[registry].schedule_key_deletion(key.key_id, 7)
    clock.advance(8 * DAY)
    assert kms[ABROAD].purge_deleted_keys() == len(REGISTRIES)
    assert kms[HOME].purge_deleted_keys() == 0
    for registry, key in doomed.items():
        with pytest.raises(KmsNotFound):
            kms[registry].resolve_key(key.arn)


def test_one_rotation_sweep_rotates_the_due_keys_of_every_registry(
    kms: dict[RegistryId, KeyService], clock: FakeClock
) -> None:
    rotating = {registry: service.create_key(HOME_ROOT) for registry, service in kms.items()}
    for registry, key in rotating.items():
        kms[registry].enable_key_rotation(key.key_id, 90)
    clock.advance(91 * DAY)
    assert kms[OTHER].rotate_due_keys() == len(REGISTRIES)
    assert kms[HOME].rotate_due_keys() == 0
    for registry, key in rotating.items():
        rotations = kms[registry].list_key_rotations(key.key_id).items
        assert [(rotation.version, rotation.rotation_type) for rotation in rotations] == [(1, "AUTOMATIC")]
        # Encryption moved to the new material, which decrypts in the key's own registry.
        blob = kms[registry].encrypt(key.key_id, b"after")
        assert kms[registry].decrypt(blob) == (key.arn, b"after")


# -- Secrets Manager ---------------------------------------------------------------------------------------


def create(
    service: SecretsManagerService, caller: Caller, name: str, value: str, *, kms_key_id: str | None = None
) -> VersionWritten:
    created = service.create_secret(
        caller,
        service.new_arn(name),
        name,
        value=SecretValue(string=value),
        token=None,
        settings=SecretSettings(kms_key_id=kms_key_id),
        tags=[],
    )
    assert isinstance(created, VersionWritten)
    return created


def read(service: SecretsManagerService, caller: Caller, secret_id: str) -> str | None:
    record = service.authorize(caller, "secretsmanager:GetSecretValue", secret_id)
    return service.get_secret_value(caller, record, version_id=None, stage=None).value.string


def listed(service: SecretsManagerService) -> list[SecretRecord]:
    page = service.list_secrets(
        filters=[], include_deleted=True, sort_by="name", descending=False, limit=None, token=None
    )
    return list(page.items)


def test_each_registry_has_its_own_secret_names_arns_and_listings(
    site: Deployment, secrets: dict[RegistryId, SecretsManagerService]
) -> None:
    made = {}
    for registry, service in secrets.items():
        root = site.root(registry.account_id)
        made[registry] = create(service, root, "app/db", f"value of {registry}").secret  # one name everywhere
        assert made[registry].arn.startswith(
            f"arn:aws:secretsmanager:{registry.region}:{registry.account_id}:secret:app/db-"
        )
    for registry, service in secrets.items():
        root = site.root(registry.account_id)
        assert read(service, root, "app/db") == f"value of {registry}"
        assert [record.arn for record in listed(service)] == [made[registry].arn]
        partial = f"arn:aws:secretsmanager:{registry.region}:{registry.account_id}:secret:app/db"
        assert service.authorize(root, "secretsmanager:DescribeSecret", partial).arn == made[registry].arn


def test_another_regions_secret_arn_is_not_found(
    site: Deployment, secrets: dict[RegistryId, SecretsManagerService]
) -> None:
    root = site.root()
    abroad = create(secrets[ABROAD], root, "app/abroad", "v").secret
    with pytest.raises(SecretNotFound):
        secrets[HOME].authorize(root, "secretsmanager:DescribeSecret", abroad.arn)
    with pytest.raises(SecretNotFound):
        secrets[HOME].current_value(abroad.arn)


def shared_secret(
    site: Deployment, secrets: dict[RegistryId, SecretsManagerService], kms_key_id: str | None
) -> tuple[SecretRecord, Caller]:
    """A secret of the home account whose resource policy lets bob of the other account read it, and bob, whose
    own IAM policies allow reading it and decrypting with any key."""
    home_root = site.root()
    created = create(secrets[HOME], home_root, "shared/db", "s3cr3t", kms_key_id=kms_key_id)
    bob = site.user(
        "bob",
        policy(allow("secretsmanager:GetSecretValue", created.secret.arn), allow("kms:Decrypt")),
        account_id=OTHER_ACCOUNT,
    )
    grant_bob = {"Effect": "Allow", "Principal": {"AWS": bob.arn}, "Action": "secretsmanager:GetSecretValue"}
    record = secrets[HOME].authorize(home_root, "secretsmanager:PutResourcePolicy", "shared/db")
    secrets[HOME].put_resource_policy(record, policy({**grant_bob, "Resource": "*"}), block_public=False)
    return secrets[HOME].describe_secret(created.secret.arn), bob


def test_another_accounts_secret_is_read_by_its_full_arn_under_a_customer_key_its_policies_allow(
    site: Deployment, kms: dict[RegistryId, KeyService], secrets: dict[RegistryId, SecretsManagerService]
) -> None:
    key_arn = shared_key(kms[HOME])
    secret, bob = shared_secret(site, secrets, key_arn)
    # Through the other account's own service (and the home account's), by the full ARN.
    assert read(secrets[OTHER], bob, secret.arn) == "s3cr3t"
    assert read(secrets[HOME], bob, secret.arn) == "s3cr3t"
    # A name, or a partial ARN, of another account's secret does not reach it.
    with pytest.raises(SecretNotFound):
        read(secrets[OTHER], site.root(OTHER_ACCOUNT), "shared/db")
    partial = secret.arn.rsplit("-", 1)[0]
    with pytest.raises(AccessDenied):  # decided on the partial ARN, across accounts, before any lookup
        read(secrets[OTHER], site.root(OTHER_ACCOUNT), partial)
    # Without the resource policy, bob's IAM policies alone are not enough across accounts.
    record = secrets[HOME].authorize(site.root(), "secretsmanager:DeleteResourcePolicy", secret.arn)
    secrets[HOME].delete_resource_policy(record)
    with pytest.raises(AccessDenied, match="no resource-based policy allows"):
        read(secrets[OTHER], bob, secret.arn)


def test_a_key_policy_without_the_other_account_keeps_the_value_from_it(
    site: Deployment, kms: dict[RegistryId, KeyService], secrets: dict[RegistryId, SecretsManagerService]
) -> None:
    key_arn = shared_key(kms[HOME], to_account=False)
    secret, bob = shared_secret(site, secrets, key_arn)
    with pytest.raises(AccessDenied, match="Access to KMS is not allowed"):
        read(secrets[OTHER], bob, secret.arn)


def test_a_secret_under_the_aws_managed_key_cannot_be_read_or_written_from_another_account(
    site: Deployment, secrets: dict[RegistryId, SecretsManagerService]
) -> None:
    secret, bob = shared_secret(site, secrets, None)
    assert secret.row.kms_key_id is None
    # Secrets Manager: "you can't use the AWS managed key (aws/secretsmanager) for cross-account access".
    for service in (secrets[OTHER], secrets[HOME]):
        with pytest.raises(AccessDenied, match="Access to KMS is not allowed"):
            read(service, bob, secret.arn)
    writer = site.user("writer", policy(allow("secretsmanager:*"), allow("kms:*")), account_id=OTHER_ACCOUNT)
    grant_writer = {"Effect": "Allow", "Principal": {"AWS": writer.arn}, "Action": "secretsmanager:*", "Resource": "*"}
    record = secrets[HOME].authorize(site.root(), "secretsmanager:PutResourcePolicy", secret.arn)
    secrets[HOME].put_resource_policy(record, policy(grant_writer), block_public=False)
    for service in (secrets[OTHER], secrets[HOME]):
        record = service.authorize(writer, "secretsmanager:PutSecretValue", secret.arn)
        with pytest.raises(AccessDenied, match="Access to KMS is not allowed"):
            service.put_secret_value(writer, record, SecretValue(string="theirs"), token=None)
    # The home account itself reads it as before, and no managed key was made for the other account.
    assert read(secrets[HOME], site.root(), secret.arn) == "s3cr3t"
    assert [alias.name for alias in site.key_service(OTHER).list_aliases().items] == []


def test_one_purge_removes_the_deleted_secrets_of_every_registry(
    site: Deployment, secrets: dict[RegistryId, SecretsManagerService], clock: FakeClock
) -> None:
    for registry, service in secrets.items():
        root = site.root(registry.account_id)
        create(service, root, "app/db", "v")
        service.delete_secret(service.authorize(root, "secretsmanager:DeleteSecret", "app/db"), window=7, force=None)
    clock.advance(8 * DAY)
    assert secrets[OTHER].purge_deleted_secrets() == len(REGISTRIES)
    for registry, service in secrets.items():
        assert listed(service) == []
        create(service, site.root(registry.account_id), "app/db", "again")  # the name is free again


def test_a_deleted_principal_is_forgotten_by_every_accounts_secret_policies(
    site: Deployment, secrets: dict[RegistryId, SecretsManagerService]
) -> None:
    bob_arn = f"arn:aws:iam::{OTHER_ACCOUNT}:user/bob"
    statement = {"Effect": "Allow", "Principal": {"AWS": bob_arn}, "Action": "secretsmanager:GetSecretValue"}
    for registry, service in secrets.items():
        root = site.root(registry.account_id)
        create(service, root, "app/db", "v")
        record = service.authorize(root, "secretsmanager:PutResourcePolicy", "app/db")
        service.put_resource_policy(record, policy({**statement, "Resource": "*"}), block_public=False)
    secrets[OTHER].forget_principal(bob_arn, "AIDABOB00000000000001")
    for registry, service in secrets.items():
        root = site.root(registry.account_id)
        stored = service.authorize(root, "secretsmanager:GetResourcePolicy", "app/db").row.policy or ""
        assert "AIDABOB00000000000001" in stored and bob_arn not in stored
