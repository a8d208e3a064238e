"""The life of a KMS key: creation (with fresh material and a key policy), the AWS managed key for ECR, listing,
enabling and disabling, scheduled deletion and its cancellation, the purge of deleted keys, and key policies.

A key scheduled for deletion waits 7 to 30 days, during which it cannot be used and its deletion can be
cancelled (the key comes back Disabled); once the date passes the key is gone for every caller, and
``purge_deleted_keys`` destroys its sealed material.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Final

from sqlalchemy import Connection

from ecrd.domain.pages import Page
from ecrd.errors import (
    KmsInvalidState,
    KmsLimitExceeded,
    KmsMalformedPolicyDocument,
    KmsUnsupportedOperation,
)
from ecrd.metadata import kms as q
from ecrd.metadata.kms import KeyRow
from ecrd.policy.document import PolicyDocument, replace_principal
from ecrd.services.access import Caller
from ecrd.services.kms_keys import (
    DISABLED,
    ECC_NIST_P256,
    ENABLED,
    ENCRYPT_DECRYPT,
    KEY_MATERIAL_BYTES,
    LIST_KEYS,
    MANAGED_KEY_ROTATION_DAYS,
    MAX_TAGS,
    PENDING_DELETION,
    SECONDS_PER_DAY,
    SIGN_VERIFY,
    SYMMETRIC_DEFAULT,
    KeyManager,
    KeyRecord,
    KeyRing,
    check_pending_window,
    check_tags,
    invalid,
)
from ecrd.services.kms_policies import (
    MANAGED_ECR_KEY,
    ManagedKey,
    check_key_policy,
    default_key_policy,
    key_access_decision,
    managed_key_policy,
)

MAX_DESCRIPTION: Final = 8192
DEFAULT_PENDING_WINDOW_DAYS: Final = 30


# The key types ecrd's key service makes: (KeySpec, KeyUsage).
KEY_TYPES: Final = frozenset({(SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT), (ECC_NIST_P256, SIGN_VERIFY)})


def _check_key_type(key_usage: str, key_spec: str) -> None:
    if (key_spec, key_usage) not in KEY_TYPES:
        raise KmsUnsupportedOperation(
            f"ecrd's key service makes symmetric encryption keys (KeySpec {SYMMETRIC_DEFAULT}, KeyUsage "
            f"{ENCRYPT_DECRYPT}) and signing keys (KeySpec {ECC_NIST_P256}, KeyUsage {SIGN_VERIFY}), not KeySpec "
            f"{key_spec} with KeyUsage {key_usage}."
        )


def _new_material(key_spec: str) -> bytes:
    """Fresh key material: 32 random bytes, or an ECDSA private key (PKCS #8 DER) for a signing key."""
    if key_spec == ECC_NIST_P256:
        from cryptography.hazmat.primitives import serialization  # asymmetric: only for signing keys
        from cryptography.hazmat.primitives.asymmetric import ec

        return ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    return os.urandom(KEY_MATERIAL_BYTES)


class KeyLifecycle(KeyRing):
    """Keys made, listed, changed in state and policy, and destroyed."""

    def _new_row(
        self, caller_arn: str, *, description: str, key_usage: str, key_spec: str, policy: str, key_manager: KeyManager
    ) -> KeyRow:
        key_id = str(uuid.uuid4())
        now = self.clock()
        # AWS rotates the material of its managed keys every year, from their creation, and nobody can stop it.
        rotation_days = MANAGED_KEY_ROTATION_DAYS if key_manager == "AWS" else None
        return KeyRow(
            id=key_id,
            registry=self.registry,
            description=description,
            key_usage=key_usage,
            key_spec=key_spec,
            key_manager=key_manager,
            state=ENABLED,
            policy=policy,
            material=self._seal(key_id, _new_material(key_spec)),
            created_at=now,
            created_by=caller_arn,
            deletion_date=None,
            pending_window_days=None,
            rotation_period_days=rotation_days,
            next_rotation_at=None if rotation_days is None else now + rotation_days * SECONDS_PER_DAY,
        )

    def check_key_policy(self, policy: str) -> PolicyDocument:
        return check_key_policy(policy)

    def create_key(
        self,
        caller_arn: str,
        *,
        description: str = "",
        key_usage: str = ENCRYPT_DECRYPT,
        key_spec: str = SYMMETRIC_DEFAULT,
        policy: str | None = None,
        tags: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        managed_by_aws: bool = False,
    ) -> KeyRecord:
        """A new Enabled key with fresh material; without ``policy``, KMS's default key policy."""
        _check_key_type(key_usage, key_spec)
        if len(description) > MAX_DESCRIPTION:
            raise invalid(
                description, "description", f"Member must have length less than or equal to {MAX_DESCRIPTION}"
            )
        checked_tags = check_tags(tags)
        if len(checked_tags) > MAX_TAGS:
            raise KmsLimitExceeded(f"A key can have at most {MAX_TAGS} tags.")
        if policy is not None:
            check_key_policy(policy)
        row = self._new_row(
            caller_arn,
            description=description,
            key_usage=key_usage,
            key_spec=key_spec,
            policy=policy if policy is not None else default_key_policy(self.account_id),
            key_manager="AWS" if managed_by_aws else "CUSTOMER",
        )
        with self.store.write() as conn:
            q.insert_key(conn, row)
            q.put_tags(conn, row.id, checked_tags)
        return self._record(row)

    def managed_ecr_key(self, caller_arn: str) -> KeyRecord:
        return self.managed_key(MANAGED_ECR_KEY, caller_arn)

    def managed_key(self, managed: ManagedKey, caller_arn: str) -> KeyRecord:
        """The AWS managed key of a service (``alias/aws/ecr``, ``alias/aws/secretsmanager``), created on first
        use — once, however many processes ask."""
        now = self.clock()
        with self.store.read() as conn:
            existing = self._managed_key_row(conn, managed, now)
        if existing is not None:
            return self._record(existing)
        with self.store.write() as conn:
            q.lock_keys(conn)
            existing = self._managed_key_row(conn, managed, now)
            if existing is not None:
                return self._record(existing)
            q.delete_stale_alias(conn, self.registry, managed.alias, now=now)
            row = self._new_row(
                caller_arn,
                description=managed.description,
                key_usage=ENCRYPT_DECRYPT,
                key_spec=SYMMETRIC_DEFAULT,
                policy=managed_key_policy(managed, self.account_id, self.region),
                key_manager="AWS",
            )
            q.insert_key(conn, row)
            q.insert_alias(conn, self.registry, managed.alias, row.id, at=now)
        return self._record(row)

    def _managed_key_row(self, conn: Connection, managed: ManagedKey, now: float) -> KeyRow | None:
        """The registry's AWS managed key of ``managed``'s service, if it has been made (each account has its
        own in each region)."""
        alias = q.get_alias(conn, self.registry, managed.alias, now=now)
        return q.get_key(conn, self.registry, alias.key_id, now=now) if alias is not None else None

    def describe_key(self, key: str) -> KeyRecord:
        return self.resolve_key(key)

    def list_keys(self, *, limit: int | None = None, marker: str | None = None) -> Page[KeyRecord]:
        """The registry's keys by id, a keyset page at a time (the marker holds the last id a page returned)."""
        size, after = LIST_KEYS.size(limit), LIST_KEYS.position(marker)
        with self.store.read() as conn:
            rows = q.list_keys(conn, self.registry, now=self.clock(), after=after, limit=size + 1)
        return LIST_KEYS.paging.page_of_rows([self._record(row) for row in rows], size, lambda key: key.key_id)

    def enable_key(self, key: str) -> KeyRecord:
        def change(current: KeyRecord, _now: float) -> dict[str, object]:
            self._not_pending_deletion(current)
            return {"state": ENABLED}

        return self._transition(key, change)

    def disable_key(self, key: str) -> KeyRecord:
        def change(current: KeyRecord, _now: float) -> dict[str, object]:
            self._not_pending_deletion(current)
            return {"state": DISABLED}

        return self._transition(key, change)

    def schedule_key_deletion(self, key: str, pending_window_days: int | None = None) -> KeyRecord:
        """PendingDeletion for 7–30 days (30 by default); the key is deleted when the date passes."""
        days = DEFAULT_PENDING_WINDOW_DAYS if pending_window_days is None else pending_window_days
        check_pending_window(days)

        def change(current: KeyRecord, now: float) -> dict[str, object]:
            self._not_pending_deletion(current)
            return {
                "state": PENDING_DELETION,
                "deletion_date": now + days * SECONDS_PER_DAY,
                "pending_window_days": days,
            }

        return self._transition(key, change)

    def cancel_key_deletion(self, key: str) -> KeyRecord:
        """Back from PendingDeletion — to Disabled, as KMS does, whatever the state before."""

        def change(current: KeyRecord, _now: float) -> dict[str, object]:
            if current.state != PENDING_DELETION:
                raise KmsInvalidState(f"{current.arn} is not pending deletion.")
            return {"state": DISABLED, "deletion_date": None, "pending_window_days": None}

        return self._transition(key, change)

    def purge_deleted_keys(self) -> int:
        """Destroy the keys (material, aliases, tags) whose deletion date has passed, in every registry — the
        server runs this sweep on one instance for all of them; how many there were."""
        with self.store.write() as conn:
            return len(q.delete_deleted_keys(conn, self.clock()))

    # -- key policies -------------------------------------------------------------------------------------

    def get_key_policy(self, key: str) -> str:
        return self.resolve_key(key, own=True).policy

    def put_key_policy(self, key: str, policy: str) -> None:
        check_key_policy(policy)
        self._transition(key, lambda _current, _now: {"policy": policy})

    def forget_principal(self, arn: str, unique_id: str) -> None:
        """A deleted user or role: key policies name it by its unique id from now on, as IAM shows them, so a
        new principal of the same name is granted nothing (the rewrite of repository policies). Every
        registry's keys, not only this one's: another account's key policy may name the principal too."""
        with self.store.write() as conn:
            for key_id, text in q.policies_naming(conn, arn):
                q.update_key(conn, key_id, policy=replace_principal(text, arn, unique_id))

    def check_policy_lockout(self, caller: Caller, policy: str, key_arn: str | None = None) -> None:
        """KMS's policy lockout safety check: the caller must still be allowed kms:PutKeyPolicy under ``policy``
        (on the key ``key_arn``, or on a key about to be created)."""
        document = check_key_policy(policy)
        resource = key_arn if key_arn is not None else self.key_arn(str(uuid.uuid4()))
        owner = self._reference(resource).registry.account_id
        request = self._request(
            caller, "kms:PutKeyPolicy", resource, {"kms:CallerAccount": caller.account_id}, resource_account=owner
        )
        decision = key_access_decision(
            request, self._identity_policies(caller), document, is_account_root=caller.is_root
        )
        if not decision.allowed:
            raise KmsMalformedPolicyDocument(
                "The new key policy will not allow you to update the key policy in the future."
            )
