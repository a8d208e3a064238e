"""The key service on SQLite and PostgreSQL: key states with an injected clock, ciphertexts, aliases, tags,
the AWS managed ECR key, and key policies decided together with IAM policies."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ecrd.errors import (
    AccessDenied,
    KmsAlreadyExists,
    KmsDisabled,
    KmsIncorrectKey,
    KmsInvalidAliasName,
    KmsInvalidCiphertext,
    KmsInvalidMarker,
    KmsInvalidState,
    KmsLimitExceeded,
    KmsMalformedPolicyDocument,
    KmsNotFound,
    KmsTagError,
    KmsUnsupportedOperation,
    ValidationError,
)
from ecrd.metadata.kms_tables import kms_aliases, kms_key_tags, kms_keys
from ecrd.metadata.store import MetadataStore
from ecrd.services.access import Caller
from ecrd.services.kms import KeyService
from ecrd.services.kms_ciphertext import decode_ciphertext
from ecrd.services.kms_keys import ECR_MANAGED_ALIAS
from ecrd.services.kms_policies import default_key_policy, managed_ecr_key_policy
from ecrd.services.secrets import SecretBox
from tests.support.clock import FakeClock
from tests.support.key_services import Deployment, allow, deployment, grant, policy

START = 1_700_000_000.0
DAY = 86400.0
CONTEXT = {"aws:ecr:arn": "arn:aws:ecr:us-east-1:000000000000:repository/app"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def site(backend: str, tmp_path: Path, clock: FakeClock) -> Iterator[Deployment]:
    with deployment(backend, tmp_path, clock) as built:
        yield built


def key_service(site: Deployment, clock: FakeClock, store: MetadataStore | None = None) -> KeyService:
    """The key service of the default account and region (``clock``: the deployment's)."""
    assert site.clock is clock
    return site.key_service(store=store)


@pytest.fixture
def kms(site: Deployment, clock: FakeClock) -> KeyService:
    return key_service(site, clock)


@pytest.fixture
def root(site: Deployment) -> Caller:
    return site.root()


def user(site: Deployment, name: str, *policies: str) -> Caller:
    """An IAM user of the default account with the given inline policies."""
    return site.user(name, *policies)


# -- keys ---------------------------------------------------------------------------------------------------


def test_create_key_makes_an_enabled_customer_key_with_the_default_policy(kms: KeyService, root: Caller) -> None:
    key = kms.create_key(root.arn, description="for app", tags=[("team", "blue")])
    assert key.arn == f"arn:aws:kms:us-east-1:000000000000:key/{key.key_id}"
    assert (key.state, key.enabled, key.key_manager) == ("Enabled", True, "CUSTOMER")
    assert (key.description, key.creation_date, key.deletion_date) == ("for app", START, None)
    assert (key.key_usage, key.key_spec) == ("ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT")
    assert key.policy == default_key_policy("000000000000")
    assert kms.list_resource_tags(key.key_id).items == (("team", "blue"),)


def test_key_material_is_stored_only_sealed_by_the_master_key(kms: KeyService, site: Deployment, root: Caller) -> None:
    key = kms.create_key(root.arn)
    blob = kms.encrypt(key.key_id, b"secret", CONTEXT)
    with site.store.read() as conn:
        sealed = conn.execute(select(kms_keys.c.material).where(kms_keys.c.id == key.key_id)).scalar_one()
    material = base64.b64decode(
        SecretBox.from_data_dir(site.data_dir).open(sealed, context=f"kms-key-material:{key.key_id}")
    )
    assert len(material) == 32
    assert base64.b64encode(material).decode() not in sealed
    assert decode_ciphertext(blob, material, CONTEXT) == b"secret"
    with pytest.raises(ValueError):
        SecretBox(bytes(32)).open(sealed, context=f"kms-key-material:{key.key_id}")


def test_create_key_accepts_only_symmetric_encryption_keys_and_valid_policies(kms: KeyService, root: Caller) -> None:
    with pytest.raises(KmsUnsupportedOperation):
        kms.create_key(root.arn, key_spec="RSA_2048")
    with pytest.raises(KmsUnsupportedOperation):
        kms.create_key(root.arn, key_usage="SIGN_VERIFY")
    with pytest.raises(KmsMalformedPolicyDocument, match="missing Principal"):
        kms.create_key(root.arn, policy=json.dumps({"Statement": [allow()]}))
    big = policy(*[grant(root.arn, f"kms:Encrypt{i:05d}") for i in range(400)])
    with pytest.raises(KmsLimitExceeded):
        kms.create_key(root.arn, policy=big)
    with pytest.raises(KmsTagError, match="aws: are reserved"):
        kms.create_key(root.arn, tags={"aws:cloudformation:stack": "x"})


def test_a_key_is_named_by_id_arn_alias_or_alias_arn(kms: KeyService, root: Caller) -> None:
    key = kms.create_key(root.arn)
    kms.create_alias("alias/app", key.key_id)
    for reference in (key.key_id, key.arn, "alias/app", kms.alias_arn("alias/app")):
        assert kms.resolve_key(reference).key_id == key.key_id


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (
            "0b5c3f3e-8a7d-4c1e-9f2a-1d2e3f4a5b6c",
            "Key 'arn:aws:kms:us-east-1:000000000000:key/0b5c3f3e-8a7d-4c1e-9f2a-1d2e3f4a5b6c' does not exist",
        ),
        (
            "arn:aws:kms:us-east-1:111122223333:key/0b5c3f3e-8a7d-4c1e-9f2a-1d2e3f4a5b6c",
            "Key 'arn:aws:kms:us-east-1:111122223333:key/0b5c3f3e-8a7d-4c1e-9f2a-1d2e3f4a5b6c' does not exist",
        ),
        ("alias/missing", "Alias arn:aws:kms:us-east-1:000000000000:alias/missing is not found."),
        (
            "arn:aws:kms:us-east-1:000000000000:alias/missing",
            "Alias arn:aws:kms:us-east-1:000000000000:alias/missing is not found.",
        ),
        ("arn:aws:kms:eu-west-1:000000000000:key/0b5c3f3e-8a7d-4c1e-9f2a-1d2e3f4a5b6c", "Invalid arn eu-west-1"),
        ("not-a-key", "Invalid keyId 'not-a-key'"),
    ],
)
def test_unknown_keys_and_aliases_are_not_found_in_kms_words(kms: KeyService, reference: str, message: str) -> None:
    with pytest.raises(KmsNotFound) as missing:
        kms.resolve_key(reference)
    assert missing.value.message == message


def test_list_keys_pages_with_markers(kms: KeyService, root: Caller) -> None:
    made = sorted(kms.create_key(root.arn).key_id for _ in range(5))
    first = kms.list_keys(limit=2)
    assert first.truncated and [k.key_id for k in first.items] == made[:2]
    second = kms.list_keys(limit=2, marker=first.token)
    third = kms.list_keys(limit=2, marker=second.token)
    assert [k.key_id for k in second.items + third.items] == made[2:]
    assert not third.truncated and third.token is None
    with pytest.raises(KmsInvalidMarker):
        kms.list_keys(marker="%%%")


# -- encryption ---------------------------------------------------------------------------------------------


def test_encrypt_and_decrypt_round_trip_under_the_same_context(kms: KeyService, root: Caller) -> None:
    key = kms.create_key(root.arn)
    kms.create_alias("alias/app", key.key_id)
    blob = kms.encrypt("alias/app", b"secret", CONTEXT)
    assert kms.decrypt(blob, CONTEXT) == (key.arn, b"secret")
    assert kms.decrypt(blob, CONTEXT, key_id="alias/app") == (key.arn, b"secret")
    assert kms.ciphertext_key(blob).key_id == key.key_id
    with pytest.raises(KmsInvalidCiphertext):
        kms.decrypt(blob, {**CONTEXT, "aws:ecr:arn": "arn:aws:ecr:us-east-1:000000000000:repository/other"})
    with pytest.raises(KmsInvalidCiphertext):
        kms.decrypt(blob)
    tampered = bytearray(blob)
    tampered[-3] ^= 0x80
    with pytest.raises(KmsInvalidCiphertext):
        kms.decrypt(bytes(tampered), CONTEXT)
    with pytest.raises(KmsInvalidCiphertext):
        kms.decrypt(b"garbage", CONTEXT)


def test_generate_data_key_returns_a_fresh_key_and_its_blob(kms: KeyService, root: Caller) -> None:
    key = kms.create_key(root.arn)
    plaintext, blob = kms.generate_data_key(key.arn, context=CONTEXT)
    assert len(plaintext) == 32
    assert kms.decrypt(blob, CONTEXT) == (key.arn, plaintext)
    short, _ = kms.generate_data_key(key.arn, number_of_bytes=16)
    assert len(short) == 16 and short != plaintext[:16]
    for wrong in (0, 1025):
        with pytest.raises(ValidationError, match="numberOfBytes"):
            kms.generate_data_key(key.arn, number_of_bytes=wrong)
    with pytest.raises(ValidationError, match="plaintext"):
        kms.encrypt(key.arn, b"x" * 4097)


def test_decrypt_with_the_id_of_another_key_is_an_incorrect_key(kms: KeyService, root: Caller) -> None:
    key, other = kms.create_key(root.arn), kms.create_key(root.arn)
    blob = kms.encrypt(key.key_id, b"secret")
    with pytest.raises(KmsIncorrectKey, match="does not identify a CMK"):
        kms.decrypt(blob, key_id=other.key_id)


def test_a_disabled_key_neither_encrypts_nor_decrypts_until_enabled(kms: KeyService, root: Caller) -> None:
    key = kms.create_key(root.arn)
    blob = kms.encrypt(key.key_id, b"secret")
    assert kms.disable_key(key.key_id).state == "Disabled"
    assert not kms.describe_key(key.key_id).enabled
    with pytest.raises(KmsDisabled) as disabled:
        kms.encrypt(key.key_id, b"secret")
    assert disabled.value.message == f"{key.arn} is disabled."
    with pytest.raises(KmsDisabled):
        kms.decrypt(blob)
    with pytest.raises(KmsDisabled):
        kms.generate_data_key(key.key_id)
    assert kms.enable_key(key.key_id).state == "Enabled"
    assert kms.decrypt(blob)[1] == b"secret"


# -- deletion -----------------------------------------------------------------------------------------------


def test_a_key_scheduled_for_deletion_waits_its_window_then_is_gone(
    kms: KeyService, site: Deployment, root: Caller, clock: FakeClock
) -> None:
    key = kms.create_key(root.arn, tags={"team": "blue"})
    kms.create_alias("alias/doomed", key.key_id)
    blob = kms.encrypt(key.key_id, b"secret")
    scheduled = kms.schedule_key_deletion(key.key_id)
    assert (scheduled.state, scheduled.pending_window_days) == ("PendingDeletion", 30)
    assert scheduled.deletion_date == START + 30 * DAY
    pending = f"{key.arn} is pending deletion."
    for attempt in (
        lambda: kms.encrypt(key.key_id, b"x"),
        lambda: kms.decrypt(blob),
        lambda: kms.enable_key(key.key_id),
        lambda: kms.disable_key(key.key_id),
        lambda: kms.schedule_key_deletion(key.key_id, 7),
        lambda: kms.tag_resource(key.key_id, {"k": "v"}),
        lambda: kms.create_alias("alias/late", key.key_id),
    ):
        with pytest.raises(KmsInvalidState) as invalid:
            attempt()
        assert invalid.value.message == pending

    clock.advance(30 * DAY - 1)
    assert kms.describe_key("alias/doomed").state == "PendingDeletion"
    assert kms.purge_deleted_keys() == 0

    clock.advance(1)
    # Gone for every caller at once, whether or not the purge has run yet.
    with pytest.raises(KmsNotFound, match="does not exist"):
        kms.describe_key(key.key_id)
    with pytest.raises(KmsNotFound, match="is not found"):
        kms.describe_key("alias/doomed")
    with pytest.raises(KmsNotFound, match="does not exist"):
        kms.decrypt(blob)
    with pytest.raises(KmsNotFound):
        kms.cancel_key_deletion(key.key_id)
    assert key.key_id not in [k.key_id for k in kms.list_keys().items]
    assert kms.list_aliases().items == ()

    assert kms.purge_deleted_keys() == 1
    with site.store.read() as conn:
        for table, column in (
            (kms_keys, kms_keys.c.id),
            (kms_aliases, kms_aliases.c.key_id),
            (kms_key_tags, kms_key_tags.c.key_id),
        ):
            assert conn.execute(select(table).where(column == key.key_id)).first() is None
    assert kms.purge_deleted_keys() == 0
    # The alias name is free again.
    kms.create_alias("alias/doomed", kms.create_key(root.arn).key_id)


def test_an_alias_name_of_a_deleted_key_is_free_before_the_purge(
    kms: KeyService, root: Caller, clock: FakeClock
) -> None:
    key = kms.create_key(root.arn)
    kms.create_alias("alias/reused", key.key_id)
    kms.schedule_key_deletion(key.key_id, 7)
    clock.advance(7 * DAY)
    fresh = kms.create_key(root.arn)
    kms.create_alias("alias/reused", fresh.key_id)
    assert kms.resolve_key("alias/reused").key_id == fresh.key_id


@pytest.mark.parametrize("days", [6, 31])
def test_the_deletion_window_is_seven_to_thirty_days(kms: KeyService, root: Caller, days: int) -> None:
    key = kms.create_key(root.arn)
    with pytest.raises(ValidationError, match="pendingWindowInDays"):
        kms.schedule_key_deletion(key.key_id, days)
    assert kms.describe_key(key.key_id).state == "Enabled"


def test_cancelling_deletion_brings_the_key_back_disabled(kms: KeyService, root: Caller) -> None:
    key = kms.create_key(root.arn)
    with pytest.raises(KmsInvalidState) as not_pending:
        kms.cancel_key_deletion(key.key_id)
    assert not_pending.value.message == f"{key.arn} is not pending deletion."
    kms.schedule_key_deletion(key.key_id, 7)
    cancelled = kms.cancel_key_deletion(key.key_id)
    assert (cancelled.state, cancelled.deletion_date, cancelled.pending_window_days) == ("Disabled", None, None)
    assert kms.enable_key(key.key_id).state == "Enabled"


# -- aliases ------------------------------------------------------------------------------------------------


def test_aliases_are_created_moved_listed_and_deleted(kms: KeyService, root: Caller, clock: FakeClock) -> None:
    first, second = kms.create_key(root.arn), kms.create_key(root.arn)
    created = kms.create_alias("alias/app", first.arn)
    assert (created.target_key_id, created.arn) == (first.key_id, "arn:aws:kms:us-east-1:000000000000:alias/app")
    kms.create_alias("alias/b-other", second.key_id)
    clock.advance(60)
    moved = kms.update_alias("alias/app", second.key_id)
    assert (moved.creation_date, moved.last_updated_date) == (START, START + 60)
    assert [a.name for a in kms.list_aliases(key=second.key_id).items] == ["alias/app", "alias/b-other"]
    assert kms.list_aliases(key=first.key_id).items == ()
    page = kms.list_aliases(limit=1)
    assert page.truncated and [a.name for a in page.items] == ["alias/app"]
    assert [a.name for a in kms.list_aliases(limit=1, marker=page.token).items] == ["alias/b-other"]
    kms.delete_alias("alias/app")
    with pytest.raises(KmsNotFound) as gone:
        kms.delete_alias("alias/app")
    assert gone.value.message == "Alias arn:aws:kms:us-east-1:000000000000:alias/app is not found."
    with pytest.raises(KmsNotFound):
        kms.update_alias("alias/app", first.key_id)


def test_alias_pages_are_keyset_pages_that_stay_right_while_aliases_are_added(kms: KeyService, root: Caller) -> None:
    key = kms.create_key(root.arn)
    for name in ("b", "c", "d", "e"):
        kms.create_alias(f"alias/{name}", key.key_id)
    first = kms.list_aliases(limit=2)
    kms.create_alias("alias/a", key.key_id)  # sorts before the marker: an offset would repeat alias/c
    second = kms.list_aliases(limit=2, marker=first.token)
    assert [a.name for a in first.items + second.items] == ["alias/b", "alias/c", "alias/d", "alias/e"]
    assert not second.truncated and second.token is None


def test_a_limit_above_the_documented_page_reads_as_that_page(kms: KeyService, root: Caller) -> None:
    key = kms.create_key(root.arn)
    kms.tag_resource(key.key_id, {f"t{i:02d}": "v" for i in range(50)})
    assert len(kms.list_resource_tags(key.key_id, limit=1000).items) == 50
    with pytest.raises(ValidationError) as zero:
        kms.list_resource_tags(key.key_id, limit=0)
    assert "Member must have value greater than or equal to 1" in zero.value.message
    with pytest.raises(KmsInvalidMarker) as foreign:
        kms.list_aliases(marker=base64.urlsafe_b64encode(b"[1,2]").decode())  # a position no KMS listing has
    assert foreign.value.message == "Invalid marker"


def test_alias_rules(kms: KeyService, root: Caller) -> None:
    key = kms.create_key(root.arn)
    kms.create_alias("alias/app", key.key_id)
    with pytest.raises(KmsAlreadyExists) as exists:
        kms.create_alias("alias/app", key.key_id)
    assert exists.value.message == "An alias with the name arn:aws:kms:us-east-1:000000000000:alias/app already exists"
    with pytest.raises(ValidationError, match='must start with the prefix "alias/"'):
        kms.create_alias("app", key.key_id)
    with pytest.raises(KmsInvalidAliasName):
        kms.create_alias("alias/aws/mine", key.key_id)
    with pytest.raises(ValidationError, match="Aliases must refer to keys"):
        kms.create_alias("alias/second", "alias/app")
    with pytest.raises(KmsNotFound):
        kms.create_alias("alias/second", "0b5c3f3e-8a7d-4c1e-9f2a-1d2e3f4a5b6c")


def test_concurrent_creates_of_one_alias_have_one_winner(
    site: Deployment, kms: KeyService, root: Caller, clock: FakeClock
) -> None:
    key = kms.create_key(root.arn)
    workers = 5
    services = [key_service(site, clock, MetadataStore(site.database_url)) for _ in range(workers)]
    barrier = threading.Barrier(workers)
    outcomes: list[str] = []

    def create(service: KeyService) -> None:
        barrier.wait()
        try:
            service.create_alias("alias/contended", key.key_id)
            outcomes.append("created")
        except KmsAlreadyExists:
            outcomes.append("exists")
        except BaseException as exc:  # reported below
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=create, args=(service,)) for service in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for service in services:
        service.store.dispose()
    assert sorted(outcomes) == ["created"] + ["exists"] * (workers - 1)


# -- tags ---------------------------------------------------------------------------------------------------


def test_tags_are_added_replaced_listed_and_removed(kms: KeyService, root: Caller) -> None:
    key = kms.create_key(root.arn, tags={"b": "1"})
    kms.tag_resource(key.key_id, [("a", "x"), ("b", "2")])
    assert kms.list_resource_tags(key.key_id).items == (("a", "x"), ("b", "2"))
    page = kms.list_resource_tags(key.key_id, limit=1)
    assert page.items == (("a", "x"),)
    assert kms.list_resource_tags(key.key_id, marker=page.token).items == (("b", "2"),)
    kms.untag_resource(key.key_id, ["a", "not-there"])
    assert kms.list_resource_tags(key.key_id).items == (("b", "2"),)
    with pytest.raises(KmsTagError):
        kms.tag_resource(key.key_id, {"AWS:mine": "x"})
    kms.tag_resource(key.key_id, {f"k{i}": "v" for i in range(49)})
    with pytest.raises(KmsLimitExceeded):
        kms.tag_resource(key.key_id, {"one-too-many": "v"})
    kms.tag_resource(key.key_id, {"b": "replaced"})  # replacing does not add


# -- the AWS managed key for ECR ----------------------------------------------------------------------------


def test_the_managed_ecr_key_is_created_once_under_concurrency(
    site: Deployment, kms: KeyService, clock: FakeClock, root: Caller
) -> None:
    workers = 6
    services = [key_service(site, clock, MetadataStore(site.database_url)) for _ in range(workers)]
    barrier = threading.Barrier(workers)
    found: list[str] = []
    errors: list[BaseException] = []

    def first_use(service: KeyService) -> None:
        barrier.wait()
        try:
            found.append(service.managed_ecr_key(root.arn).key_id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(service,)) for service in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for service in services:
        service.store.dispose()
    assert errors == []
    assert len(set(found)) == 1 and len(found) == workers
    managed = kms.resolve_key(ECR_MANAGED_ALIAS)
    assert managed.key_id == found[0]
    assert managed.key_manager == "AWS"
    assert managed.policy == managed_ecr_key_policy("000000000000", "us-east-1")
    assert [k.key_id for k in kms.list_keys().items] == [managed.key_id]
    assert kms.managed_ecr_key(root.arn) == managed


def test_the_managed_ecr_key_cannot_be_changed_or_realiased(kms: KeyService, root: Caller) -> None:
    managed = kms.managed_ecr_key(root.arn)
    for change in (
        lambda: kms.disable_key(managed.key_id),
        lambda: kms.schedule_key_deletion(managed.key_id),
        lambda: kms.put_key_policy(managed.key_id, default_key_policy("000000000000")),
        lambda: kms.tag_resource(managed.key_id, {"k": "v"}),
        lambda: kms.create_alias("alias/mine", managed.key_id),
    ):
        with pytest.raises(KmsUnsupportedOperation, match="AWS managed key"):
            change()
    with pytest.raises(KmsInvalidAliasName):
        kms.delete_alias(ECR_MANAGED_ALIAS)
    kms.encrypt(ECR_MANAGED_ALIAS, b"still usable through the service")


# -- authorization ------------------------------------------------------------------------------------------


def test_the_default_key_policy_lets_iam_policies_decide(kms: KeyService, site: Deployment, root: Caller) -> None:
    alice = user(site, "alice", policy(allow("kms:Encrypt")))
    bob = user(site, "bob")
    key = kms.create_key(root.arn)
    assert kms.authorize(alice, "kms:Encrypt", key.key_id) == key
    assert kms.authorize(root, "kms:PutKeyPolicy", key.key_id) == key
    with pytest.raises(AccessDenied) as denied:
        kms.authorize(bob, "kms:Encrypt", key.key_id)
    assert denied.value.message == (
        f"User: {bob.arn} is not authorized to perform: kms:Encrypt on resource: {key.arn} because no "
        "identity-based policy allows the kms:Encrypt action"
    )


def test_an_iam_allow_is_not_enough_when_the_key_policy_leaves_the_account_out(
    kms: KeyService, site: Deployment, root: Caller
) -> None:
    alice = user(site, "alice", policy(allow()))
    bob = user(site, "bob")
    key = kms.create_key(root.arn, policy=policy(grant(bob.arn)))
    assert kms.authorize(bob, "kms:Decrypt", key.arn) == key  # named by the key policy: no IAM policy needed
    for caller in (alice, root):
        with pytest.raises(AccessDenied) as denied:
            kms.authorize(caller, "kms:Decrypt", key.arn)
        assert denied.value.message.endswith("because no resource-based policy allows the kms:Decrypt action")


def test_an_explicit_deny_wins(kms: KeyService, site: Deployment, root: Caller) -> None:
    alice = user(site, "alice", policy(allow()))
    carol = user(site, "carol", policy({"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}))
    key = kms.create_key(
        root.arn, policy=policy(grant(root.arn), grant(carol.arn), grant(alice.arn, "kms:Decrypt", effect="Deny"))
    )
    with pytest.raises(AccessDenied, match="explicit deny in a resource-based policy"):
        kms.authorize(alice, "kms:Decrypt", key.key_id)
    kms.authorize(alice, "kms:Encrypt", key.key_id)
    with pytest.raises(AccessDenied, match="explicit deny in an identity-based policy"):
        kms.authorize(carol, "kms:Decrypt", key.key_id)


def test_key_policy_conditions_see_tags_aliases_and_the_encryption_context(
    kms: KeyService, site: Deployment, root: Caller
) -> None:
    alice = user(site, "alice")
    conditional = {
        **grant(alice.arn, "kms:Decrypt"),
        "Condition": {
            "StringEquals": {
                "aws:ResourceTag/team": "blue",
                "kms:EncryptionContext:aws:ecr:arn": CONTEXT["aws:ecr:arn"],
            },
        },
    }
    key = kms.create_key(root.arn, policy=policy(grant(root.arn), conditional), tags={"team": "blue"})
    kms.authorize(alice, "kms:Decrypt", key.key_id, encryption_context=CONTEXT)
    with pytest.raises(AccessDenied):
        kms.authorize(alice, "kms:Decrypt", key.key_id, encryption_context={})
    kms.tag_resource(key.key_id, {"team": "red"})
    with pytest.raises(AccessDenied):
        kms.authorize(alice, "kms:Decrypt", key.key_id, encryption_context=CONTEXT)


def test_the_managed_ecr_key_is_usable_through_ecr_only(kms: KeyService, site: Deployment, root: Caller) -> None:
    alice = user(site, "alice")
    managed = kms.managed_ecr_key(root.arn)
    kms.authorize(alice, "kms:GenerateDataKey", ECR_MANAGED_ALIAS, via_service="ecr")
    kms.authorize(root, "kms:DescribeKey", managed.arn)
    for caller in (alice, root):
        with pytest.raises(AccessDenied):
            kms.authorize(caller, "kms:Decrypt", managed.arn)
    with pytest.raises(AccessDenied):
        kms.authorize(root, "kms:ScheduleKeyDeletion", managed.arn)


def test_account_level_actions_need_iam_permission(kms: KeyService, site: Deployment, root: Caller) -> None:
    alice = user(site, "alice", policy(allow("kms:ListKeys")))
    kms.authorize_account(alice, "kms:ListKeys")
    kms.authorize_account(root, "kms:CreateKey")
    with pytest.raises(AccessDenied, match="kms:CreateKey"):
        kms.authorize_account(alice, "kms:CreateKey")


def test_a_policy_that_would_lock_the_caller_out_is_refused(kms: KeyService, site: Deployment, root: Caller) -> None:
    alice = user(site, "alice", policy(allow()))
    key = kms.create_key(root.arn)
    kms.check_policy_lockout(alice, default_key_policy("000000000000"), key.arn)
    kms.check_policy_lockout(alice, policy(grant(alice.arn, "kms:PutKeyPolicy")), key.arn)
    lockout = policy(grant(alice.arn, "kms:Encrypt"))
    with pytest.raises(KmsMalformedPolicyDocument, match="will not allow you to update the key policy"):
        kms.check_policy_lockout(alice, lockout, key.arn)
    with pytest.raises(KmsMalformedPolicyDocument, match="will not allow you to update the key policy"):
        kms.check_policy_lockout(root, lockout)
    kms.put_key_policy(key.key_id, lockout)  # the check is the API's; the service stores what it is given
    assert kms.get_key_policy(key.key_id) == lockout
