"""The rotation of KMS key material on SQLite and PostgreSQL, on a fake clock: automatic and on-demand rotations
make new material that encryption uses from then on, every older version keeps decrypting what it made (blobs
of the original ciphertext format too), each due date is rotated once however many registries share the
database, and keys that cannot rotate are refused as KMS refuses them."""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from ecrd.errors import KmsDisabled, KmsInvalidState, KmsLimitExceeded, KmsUnsupportedOperation
from ecrd.metadata.kms_tables import kms_keys
from ecrd.metadata.store import MetadataStore
from ecrd.services.access import Caller
from ecrd.services.kms import KeyService
from ecrd.services.kms_ciphertext import ciphertext_header
from ecrd.services.kms_rotation import MAX_ON_DEMAND_ROTATIONS
from ecrd.services.secrets import SecretBox
from tests.support.clock import START, FakeClock
from tests.support.key_services import Deployment, deployment

DAY = 86400.0
CONTEXT = {"aws:ecr:arn": "arn:aws:ecr:us-east-1:000000000000:repository/app"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def site(backend: str, tmp_path: Path, clock: FakeClock) -> Iterator[Deployment]:
    with deployment(backend, tmp_path, clock) as built:
        yield built


@pytest.fixture
def kms(site: Deployment) -> KeyService:
    return site.key_service()


@pytest.fixture
def root(site: Deployment) -> Caller:
    return site.root()


def _format_1_blob(site: Deployment, key_id: str, plaintext: bytes, context: dict[str, str]) -> bytes:
    """A blob as encryption made it before keys rotated: format 1 (no material version) under the original
    material, with the 17-byte header and the canonical context as associated data."""
    sealed = site.store.fetch(select(kms_keys.c.material).where(kms_keys.c.id == key_id))[0][0]
    box = SecretBox.from_data_dir(site.data_dir)
    material = base64.b64decode(box.open(sealed, context=f"kms-key-material:{key_id}"))
    header = bytes([1]) + uuid.UUID(key_id).bytes
    nonce = os.urandom(12)
    associated = header + json.dumps(context, sort_keys=True, separators=(",", ":")).encode()
    return header + nonce + AESGCM(material).encrypt(nonce, plaintext, associated)


def test_on_demand_rotation_moves_encryption_to_new_material_and_both_blobs_decrypt(
    kms: KeyService, root: Caller
) -> None:
    # given a key and a blob encrypted before rotation
    key = kms.create_key(root.arn)
    before = kms.encrypt(key.key_id, b"before", CONTEXT)
    assert ciphertext_header(before).material_version == 0

    # when the key rotates on demand and encrypts again
    rotated = kms.rotate_key_on_demand(key.key_id)
    after = kms.encrypt(key.key_id, b"after", CONTEXT)

    # then the new blob names the new material, and both decrypt
    assert rotated.material_version == 1
    assert ciphertext_header(after).material_version == 1
    assert kms.decrypt(before, CONTEXT)[1] == b"before"
    assert kms.decrypt(after, CONTEXT)[1] == b"after"
    _plaintext, data_key_blob = kms.generate_data_key(key.key_id, context=CONTEXT)
    assert ciphertext_header(data_key_blob).material_version == 1
    # and the automatic schedule (off) is untouched
    assert kms.get_key_rotation_status(key.key_id).rotation_period_days is None


def test_automatic_rotation_happens_once_its_date_passes_and_keeps_the_schedule(
    kms: KeyService, root: Caller, clock: FakeClock
) -> None:
    # given a key rotating every 90 days and a blob made with its original material
    key = kms.create_key(root.arn)
    kms.enable_key_rotation(key.key_id, 90)
    before = kms.encrypt(key.key_id, b"before", CONTEXT)

    # when the housekeeping runs before the date, then nothing rotates
    clock.advance(89 * DAY)
    assert kms.rotate_due_keys() == 0
    assert ciphertext_header(kms.encrypt(key.key_id, b"x", CONTEXT)).material_version == 0

    # when it runs after the date, then the key has new material and its next date is one period later
    clock.advance(2 * DAY)
    assert kms.rotate_due_keys() == 1
    assert kms.rotate_due_keys() == 0
    status = kms.get_key_rotation_status(key.key_id)
    assert (status.material_version, status.next_rotation_at) == (1, START + 180 * DAY)
    after = kms.encrypt(key.key_id, b"after", CONTEXT)
    assert ciphertext_header(after).material_version == 1
    assert kms.decrypt(before, CONTEXT)[1] == b"before"
    assert kms.decrypt(after, CONTEXT)[1] == b"after"
    (rotation,) = kms.list_key_rotations(key.key_id).items
    assert (rotation.version, rotation.rotation_type, rotation.rotation_date) == (1, "AUTOMATIC", START + 91 * DAY)
    assert rotation.current


def test_a_format_1_blob_still_decrypts_after_rotations(kms: KeyService, root: Caller, site: Deployment) -> None:
    # given a blob in the layout encryption wrote before rotation existed
    key = kms.create_key(root.arn)
    old = _format_1_blob(site, key.key_id, b"wrapped data key", CONTEXT)
    assert kms.decrypt(old, CONTEXT)[1] == b"wrapped data key"

    # when the key rotates twice, then the blob still decrypts with the original material
    kms.rotate_key_on_demand(key.key_id)
    kms.rotate_key_on_demand(key.key_id)
    assert kms.decrypt(old, CONTEXT) == (key.arn, b"wrapped data key")


def test_a_key_missed_for_several_periods_rotates_once_and_keeps_its_schedule(
    kms: KeyService, root: Caller, clock: FakeClock
) -> None:
    key = kms.create_key(root.arn)
    kms.enable_key_rotation(key.key_id, 90)
    kms.disable_key(key.key_id)
    clock.advance(200 * DAY)
    # a disabled key does not rotate …
    assert kms.rotate_due_keys() == 0
    # … and rotates at the first run after it is enabled again, once, its next date on its schedule
    kms.enable_key(key.key_id)
    assert kms.rotate_due_keys() == 1
    assert kms.rotate_due_keys() == 0
    assert kms.get_key_rotation_status(key.key_id).next_rotation_at == START + 270 * DAY


def test_two_processes_on_one_database_rotate_a_due_key_once(
    site: Deployment, clock: FakeClock, kms: KeyService, root: Caller
) -> None:
    # given a key due for rotation and two processes sharing the database
    key = kms.create_key(root.arn)
    kms.enable_key_rotation(key.key_id, 90)
    clock.advance(91 * DAY)
    other = site.key_service(store=MetadataStore(site.database_url))
    try:
        services = [kms, other]
        barrier = threading.Barrier(len(services))
        rotated: list[int] = []
        errors: list[BaseException] = []

        def rotate(service: KeyService) -> None:
            barrier.wait()
            try:
                rotated.append(service.rotate_due_keys())
            except BaseException as exc:  # reported below
                errors.append(exc)

        # when both run their housekeeping at once
        threads = [threading.Thread(target=rotate, args=(service,)) for service in services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # then one rotation was made, and each process encrypts with it
        assert errors == []
        assert sorted(rotated) == [0, 1]
        assert [r.version for r in kms.list_key_rotations(key.key_id).items] == [1]
        for service in services:
            blob = service.encrypt(key.key_id, b"p", CONTEXT)
            assert ciphertext_header(blob).material_version == 1
            assert services[0].decrypt(blob, CONTEXT)[1] == b"p"
    finally:
        other.store.dispose()


def test_keys_that_cannot_rotate_are_refused_as_kms_refuses_them(kms: KeyService, root: Caller) -> None:
    disabled = kms.create_key(root.arn)
    kms.disable_key(disabled.key_id)
    with pytest.raises(KmsDisabled):
        kms.rotate_key_on_demand(disabled.key_id)
    doomed = kms.create_key(root.arn)
    kms.schedule_key_deletion(doomed.key_id, 7)
    with pytest.raises(KmsInvalidState):
        kms.rotate_key_on_demand(doomed.key_id)
    with pytest.raises(KmsInvalidState):
        kms.list_key_rotations(doomed.key_id)
    managed = kms.managed_ecr_key(root.arn)
    with pytest.raises(KmsUnsupportedOperation):
        kms.rotate_key_on_demand(managed.key_id)


def test_on_demand_rotations_are_limited_to_25_per_key(kms: KeyService, root: Caller) -> None:
    key = kms.create_key(root.arn)
    for _ in range(MAX_ON_DEMAND_ROTATIONS):
        kms.rotate_key_on_demand(key.key_id)
    with pytest.raises(KmsLimitExceeded):
        kms.rotate_key_on_demand(key.key_id)
    # automatic rotations do not count against the limit, and listings page through every rotation
    versions: list[int] = []
    marker: str | None = None
    while True:
        page = kms.list_key_rotations(key.key_id, include_original=True, limit=10, marker=marker)
        versions += [rotation.version for rotation in page.items]
        if page.token is None:
            break
        marker = page.token
    assert versions == list(range(MAX_ON_DEMAND_ROTATIONS + 1))


def test_aws_managed_keys_rotate_every_year(kms: KeyService, root: Caller, clock: FakeClock) -> None:
    # given the AWS managed key for ECR, which rotates yearly from its creation
    managed = kms.managed_ecr_key(root.arn)
    status = kms.get_key_rotation_status(managed.key_id)
    assert (status.rotation_period_days, status.next_rotation_at) == (365, START + 365 * DAY)
    blob = kms.encrypt(managed.key_id, b"data key", CONTEXT)

    # when a year passes, then it has rotated, and what it encrypted before still decrypts
    clock.advance(365 * DAY)
    assert kms.rotate_due_keys() == 1
    assert kms.get_key_rotation_status(managed.key_id).next_rotation_at == START + 730 * DAY
    assert ciphertext_header(kms.encrypt(managed.key_id, b"x", CONTEXT)).material_version == 1
    assert kms.decrypt(blob, CONTEXT)[1] == b"data key"
