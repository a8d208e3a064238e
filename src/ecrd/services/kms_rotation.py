"""The rotation of KMS keys' material, as AWS KMS rotates it ("Rotate AWS KMS keys", KMS developer guide):
automatically every 90 to 2560 days while rotation is on (AWS managed keys every year), and on demand up to 25
times per key. A rotation adds a new version of the material, which encryption uses from then on; every older
version stays with the key and decrypts what it made, so nothing encrypted before a rotation is re-encrypted.

Automatic rotations are made by ``rotate_due_keys``, which every process runs now and then: a conditional
UPDATE moving a key's due date on decides which process rotates it, so each due date makes one new material
however many processes or nodes share the database.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy import Connection

from ecrd.domain.pages import Page
from ecrd.errors import KmsDisabled, KmsLimitExceeded, KmsUnsupportedOperation
from ecrd.metadata import kms as q
from ecrd.metadata.kms import MaterialRow
from ecrd.services.kms_keys import (
    DISABLED,
    KEY_MATERIAL_BYTES,
    SECONDS_PER_DAY,
    SYMMETRIC_DEFAULT,
    KeyRecord,
    KeyRing,
    KmsListing,
    invalid,
    kms_listing,
)

RotationType = Literal["AUTOMATIC", "ON_DEMAND"]
AUTOMATIC: Final = "AUTOMATIC"
ON_DEMAND: Final = "ON_DEMAND"

# EnableKeyRotation's RotationPeriodInDays: 90 to 2560 days, 365 when not given (KMS API reference).
DEFAULT_ROTATION_PERIOD_DAYS: Final = 365
MIN_ROTATION_PERIOD_DAYS: Final = 90
MAX_ROTATION_PERIOD_DAYS: Final = 2560
# RotateKeyOnDemand: "You can perform on-demand key rotation a maximum of 25 times per KMS key."
MAX_ON_DEMAND_ROTATIONS: Final = 25
# ListKeyRotations: Limit 1–1000, 100 when not given.
LIST_ROTATIONS: Final[KmsListing] = kms_listing(100, 1000)


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """One version of a key's material as ListKeyRotations describes it: version 0 is the original, which
    has no rotation date or type."""

    key_id: str
    version: int
    rotation_date: float | None
    rotation_type: RotationType | None
    current: bool


def next_due_date(due: float, period_days: int, now: float) -> float:
    """The first date of the schedule ``due``, ``due`` + period, … after ``now``: a key that was not rotated for
    several periods (disabled, or the registry stopped) rotates once and keeps its schedule."""
    period = period_days * SECONDS_PER_DAY
    return due + (math.floor((now - due) / period) + 1) * period


class KeyRotations(KeyRing):
    """Rotation settings, automatic and on-demand rotations, and their listing."""

    # -- settings -----------------------------------------------------------------------------------------

    def enable_key_rotation(self, key: str, rotation_period_days: int | None = None) -> KeyRecord:
        """Rotate the key's material every ``rotation_period_days`` (365 by default), the first time one period
        from now; enabling it again with another period moves the next rotation to one new period from now."""
        days = DEFAULT_ROTATION_PERIOD_DAYS if rotation_period_days is None else rotation_period_days
        if not MIN_ROTATION_PERIOD_DAYS <= days <= MAX_ROTATION_PERIOD_DAYS:
            raise invalid(
                days,
                "rotationPeriodInDays",
                f"Member must have value between {MIN_ROTATION_PERIOD_DAYS} and {MAX_ROTATION_PERIOD_DAYS}",
            )

        def change(current: KeyRecord, now: float) -> dict[str, object]:
            self._rotatable(current)
            if current.rotation_period_days == days:
                return {}  # already on with this period: the schedule stands
            return {"rotation_period_days": days, "next_rotation_at": now + days * SECONDS_PER_DAY}

        return self._transition(key, change)

    def disable_key_rotation(self, key: str) -> KeyRecord:
        def change(current: KeyRecord, _now: float) -> dict[str, object]:
            self._rotatable(current)
            return {"rotation_period_days": None, "next_rotation_at": None}

        return self._transition(key, change)

    def _rotatable(self, key: KeyRecord) -> None:
        # KMS: EnableKeyRotation, DisableKeyRotation and RotateKeyOnDemand need an Enabled key
        # (KMSInvalidStateException pending deletion, DisabledException when disabled) of symmetric encryption
        # ("Automatic key rotation is supported only on symmetric encryption KMS keys": UnsupportedOperation).
        self._not_pending_deletion(key)
        if key.state == DISABLED:
            raise KmsDisabled(f"{key.arn} is disabled.")
        if key.key_spec != SYMMETRIC_DEFAULT:
            raise KmsUnsupportedOperation(f"{key.arn} key usage is {key.key_usage}: it cannot be rotated.")

    def get_key_rotation_status(self, key: str) -> KeyRecord:
        """The key, whose ``rotation_period_days`` and ``next_rotation_at`` say whether and when it rotates."""
        record = self.resolve_key(key)
        self._not_pending_deletion(record)
        return record

    # -- rotations ----------------------------------------------------------------------------------------

    def rotate_key_on_demand(self, key: str) -> KeyRecord:
        """New material for a customer managed key now, whatever its automatic schedule (which stands); at most
        ``MAX_ON_DEMAND_ROTATIONS`` times per key. The rotation is complete when this returns."""
        now = self.clock()
        with self.store.write() as conn:
            current = self._record(self._find(conn, key, now, for_update=True, own=True))
            self._customer_managed(current)
            self._rotatable(current)
            if q.count_rotations(conn, current.key_id, ON_DEMAND) >= MAX_ON_DEMAND_ROTATIONS:
                raise KmsLimitExceeded(
                    f"{current.arn} has reached the limit of {MAX_ON_DEMAND_ROTATIONS} on-demand rotations."
                )
            self._add_material(conn, current.key_id, current.material_version + 1, ON_DEMAND, now)
            return self._record(self._find(conn, current.key_id, now))

    def rotate_due_keys(self) -> int:
        """Rotate every Enabled key whose automatic rotation is due, in every registry (the server runs this sweep
        on one instance for all of them), moving its next date on by its period; how many this process rotated.
        Safe to run in any number of processes at once: each due date is claimed by one of them
        (``claim_rotation``), in the transaction that stores the new material."""
        now = self.clock()
        with self.store.read() as conn:
            due = q.due_rotations(conn, now)
        rotated = 0
        for key_id, due_at, period_days in due:
            with self.store.write() as conn:
                version = q.claim_rotation(conn, key_id, due_at, next_due_date(due_at, period_days, now))
                if version is not None:
                    self._add_material(conn, key_id, version, AUTOMATIC, now)
                    rotated += 1
        return rotated

    def _add_material(self, conn: Connection, key_id: str, version: int, rotation_type: str, now: float) -> None:
        q.insert_material(
            conn, key_id, version, self._seal(key_id, os.urandom(KEY_MATERIAL_BYTES), version), rotation_type, now
        )

    def list_key_rotations(
        self,
        key: str,
        *,
        include_original: bool = False,
        limit: int | None = None,
        marker: str | None = None,
    ) -> Page[KeyRotation]:
        """The key's rotations, oldest first, a keyset page at a time (the marker holds the last version a page
        returned); with ``include_original`` (ALL_KEY_MATERIAL) the original material first."""
        size = LIST_ROTATIONS.size(limit)
        after = LIST_ROTATIONS.paging.decode(marker)
        if after is not None and (not isinstance(after, int) or isinstance(after, bool)):
            raise LIST_ROTATIONS.paging.invalid_token()
        now = self.clock()
        with self.store.read() as conn:
            row = self._find(conn, key, now, own=True)
            record = self._record(row)
            self._not_pending_deletion(record)
            start = after if after is not None else (-1 if include_original else 0)
            rows = q.list_rotations(conn, row.id, after=max(start, 0), limit=size + 1)
        if start < 0:
            rows.insert(0, MaterialRow(row.id, 0, "", None, row.created_at))
        rotations = [self._rotation(record, material) for material in rows]
        return LIST_ROTATIONS.paging.page_of_rows(rotations, size, lambda rotation: rotation.version)

    @staticmethod
    def _rotation(key: KeyRecord, material: MaterialRow) -> KeyRotation:
        kind: RotationType | None = (
            None if material.rotation_type is None else AUTOMATIC if material.rotation_type == AUTOMATIC else ON_DEMAND
        )
        return KeyRotation(
            key_id=key.key_id,
            version=material.version,
            rotation_date=None if material.version == 0 else material.created_at,
            rotation_type=kind,
            current=material.version == key.material_version,
        )
