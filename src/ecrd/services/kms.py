"""The key service: ecrd's built-in KMS — symmetric keys, aliases, tags, key policies, and envelope encryption.

Keys behave as AWS KMS keys do ("Key states of AWS KMS keys", the KMS API reference): Enabled, Disabled or
PendingDeletion; a key scheduled for deletion waits 7 to 30 days, during which it cannot be used and its
deletion can be cancelled (the key comes back Disabled); once the date passes the key is gone for every caller,
and ``purge_deleted_keys`` destroys its sealed material. Key material is 32 random bytes, stored only sealed by
the master key (``SecretBox``).

Ciphertext blobs are self-describing (see ``encode_ciphertext``): they name the key that made them and bind the
encryption context, so ``decrypt`` needs nothing but the blob and the same context.

Authorization follows KMS's rule that the key policy is the root of trust: a key policy statement that names the
caller allows by itself; IAM policies count only when the key policy allows the account (its root principal),
as the default key policy does ("Enable IAM User Permissions"); an explicit Deny anywhere wins.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ecrd.errors import (
    AccessDenied,
    KmsAlreadyExists,
    KmsDisabled,
    KmsIncorrectKey,
    KmsInvalidAliasName,
    KmsInvalidArn,
    KmsInvalidCiphertext,
    KmsInvalidMarker,
    KmsInvalidState,
    KmsLimitExceeded,
    KmsMalformedPolicyDocument,
    KmsNotFound,
    KmsTagError,
    KmsUnsupportedOperation,
    MalformedPolicyDocument,
    ValidationError,
)
from ecrd.metadata import kms as q
from ecrd.metadata.kms import AliasRow, KeyRow
from ecrd.metadata.store import MetadataStore
from ecrd.policy.document import PolicyDocument, parse_policy
from ecrd.policy.evaluation import AuthorizationRequest, Decision, Principal, evaluate
from ecrd.services.access import Caller, request_context
from ecrd.services.authorization import IdentityPolicies, PolicyCache
from ecrd.services.secrets import SecretBox

__all__ = [
    "ECR_MANAGED_ALIAS",
    "AliasRecord",
    "KeyRecord",
    "KeyService",
    "Page",
    "check_alias_name",
    "check_alias_target",
    "check_pending_window",
    "ciphertext_key_id",
    "decode_ciphertext",
    "default_key_policy",
    "encode_ciphertext",
    "encryption_context_keys",
    "key_access_decision",
    "managed_ecr_key_policy",
]

T = TypeVar("T")
KeyState = Literal["Enabled", "Disabled", "PendingDeletion"]
KeyManager = Literal["CUSTOMER", "AWS"]

ENABLED: Final = "Enabled"
DISABLED: Final = "Disabled"
PENDING_DELETION: Final = q.PENDING_DELETION
SYMMETRIC_DEFAULT: Final = "SYMMETRIC_DEFAULT"
ENCRYPT_DECRYPT: Final = "ENCRYPT_DECRYPT"

ECR_MANAGED_ALIAS: Final = "alias/aws/ecr"
RESERVED_ALIAS_PREFIX: Final = "alias/aws/"

# KMS quotas and API limits (KMS API reference; "Quotas" in the KMS developer guide).
KEY_MATERIAL_BYTES: Final = 32
MAX_PLAINTEXT_BYTES: Final = 4096  # Encrypt
MAX_DATA_KEY_BYTES: Final = 1024  # GenerateDataKey NumberOfBytes
MAX_DESCRIPTION: Final = 8192
MAX_KEY_POLICY_BYTES: Final = 32768  # "Key policy document size: 32 KB"
MAX_TAGS: Final = 50
DEFAULT_PENDING_WINDOW_DAYS: Final = 30
MIN_PENDING_WINDOW_DAYS: Final = 7
MAX_PENDING_WINDOW_DAYS: Final = 30
SECONDS_PER_DAY: Final = 86400
# ListKeys: 1–1000, default 100; ListAliases: 1–100, default 50; ListResourceTags: 1–50, default 50.
LIST_KEYS_LIMITS: Final = (100, 1000)
LIST_ALIASES_LIMITS: Final = (50, 100)
LIST_TAGS_LIMITS: Final = (50, 50)

# The KMS model's AliasName pattern.
_ALIAS_NAME: Final = re.compile(r"[a-zA-Z0-9:/_-]+")
_KEY_ID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_KMS_ARN: Final = re.compile(r"arn:aws:kms:(?P<region>[^:]*):(?P<account>[^:]*):(?P<kind>key|alias)/(?P<name>.+)")

# What is left of the key-policy question once the identity side is settled: see key_access_decision.
_ALLOW_EVERYTHING: Final = parse_policy(
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}', kind="identity"
)
_KEY_POLICY_ONLY: Final = "key-policy"
_NO_KEY_POLICY_ALLOW: Final = Decision(False, "no_resource_allow")


# -- values ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A KMS key as the API describes it (never its material)."""

    key_id: str
    arn: str
    state: KeyState
    description: str
    creation_date: float
    deletion_date: float | None
    key_manager: KeyManager
    policy: str
    key_usage: str = ENCRYPT_DECRYPT
    key_spec: str = SYMMETRIC_DEFAULT
    pending_window_days: int | None = None

    @property
    def enabled(self) -> bool:
        return self.state == ENABLED


@dataclass(frozen=True, slots=True)
class AliasRecord:
    name: str
    arn: str
    target_key_id: str
    creation_date: float
    last_updated_date: float


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``marker`` continues it (None on the last page)."""

    items: tuple[T, ...]
    marker: str | None = None

    @property
    def truncated(self) -> bool:
        return self.marker is not None


# -- ciphertext blobs ------------------------------------------------------------------------------------
#
#   offset  size  field
#   0       1     format version (1)
#   1       16    key id (the key's UUID, 16 bytes)
#   17      12    nonce (random)
#   29      n+16  AES-256-GCM ciphertext of the n plaintext bytes, then its 16-byte tag
#
# The AES key is the KMS key's material. The associated data is the 17 header bytes followed by the encryption
# context as canonical JSON (keys sorted, no white space, ASCII escapes; {} when there is none), so the key id
# cannot be swapped and the plaintext comes back only under the same context, in any order of its pairs.

CIPHERTEXT_VERSION: Final = 1
_HEADER_BYTES: Final = 17
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16


def _context_bytes(context: Mapping[str, str] | None) -> bytes:
    return json.dumps(dict(context or {}), sort_keys=True, separators=(",", ":")).encode("ascii")


def encode_ciphertext(key_id: str, material: bytes, plaintext: bytes, context: Mapping[str, str] | None) -> bytes:
    header = bytes([CIPHERTEXT_VERSION]) + uuid.UUID(key_id).bytes
    nonce = os.urandom(_NONCE_BYTES)
    return header + nonce + AESGCM(material).encrypt(nonce, plaintext, header + _context_bytes(context))


def ciphertext_key_id(blob: bytes) -> str:
    """The id of the key that made ``blob``; InvalidCiphertext when it is not a blob of this format."""
    if len(blob) < _HEADER_BYTES + _NONCE_BYTES + _TAG_BYTES or blob[0] != CIPHERTEXT_VERSION:
        raise KmsInvalidCiphertext("")  # KMS says nothing more about a ciphertext it cannot use
    return str(uuid.UUID(bytes=blob[1:_HEADER_BYTES]))


def decode_ciphertext(blob: bytes, material: bytes, context: Mapping[str, str] | None) -> bytes:
    ciphertext_key_id(blob)
    header, nonce = blob[:_HEADER_BYTES], blob[_HEADER_BYTES : _HEADER_BYTES + _NONCE_BYTES]
    try:
        return AESGCM(material).decrypt(nonce, blob[_HEADER_BYTES + _NONCE_BYTES :], header + _context_bytes(context))
    except InvalidTag:
        raise KmsInvalidCiphertext("") from None


# -- key policies ----------------------------------------------------------------------------------------


def _policy_text(document: dict[str, object]) -> str:
    # KMS returns key policies pretty-printed ("Version" : "2012-10-17", two-space indents).
    return json.dumps(document, indent=2, separators=(",", " : "))


def default_key_policy(account_id: str) -> str:
    """The policy KMS gives a key created without one: the account may use IAM policies to allow access."""
    return _policy_text({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }],
    })


def managed_ecr_key_policy(account_id: str, region: str) -> str:
    """The policy of the AWS managed key ``aws/ecr``, as AWS writes the policies of AWS managed keys: every
    principal of the account may use it through ECR; the account may read its metadata directly."""
    return _policy_text({
        "Version": "2012-10-17",
        "Id": "auto-ecr-1",
        "Statement": [
            {
                "Sid": "Allow access through Amazon ECR for all principals in the account that are authorized "
                "to use Amazon ECR",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:CreateGrant",
                    "kms:DescribeKey",
                    "kms:RetireGrant",
                ],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:CallerAccount": account_id,
                        "kms:ViaService": f"ecr.{region}.amazonaws.com",
                    }
                },
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                "Resource": "*",
            },
        ],
    })


def key_access_decision(
    request: AuthorizationRequest,
    identity_policies: Sequence[PolicyDocument],
    key_policy: PolicyDocument,
    *,
    is_account_root: bool = False,
) -> Decision:
    """Decide a request on a KMS key.

    KMS: "Unless the key policy explicitly allows it, you cannot use IAM policies to allow access to a KMS key."
    So on top of IAM's evaluation (an explicit Deny wins; a key policy statement naming the caller allows by
    itself; one naming only the account delegates to IAM policies), the key policy must allow the principal —
    itself or through its account — or nothing does, not even the account root.
    """
    decision = evaluate(request, identity_policies, key_policy, is_account_root=is_account_root)
    if not decision.allowed:
        return decision
    # Asked as if across accounts with an identity side that allows anything, evaluate() answers exactly the
    # remaining question: does the key policy allow this principal, directly or through its account?
    across = AuthorizationRequest(request.principal, request.action, request.resource, _KEY_POLICY_ONLY,
                                  request.context)
    if evaluate(across, [_ALLOW_EVERYTHING], key_policy).allowed:
        return decision
    return _NO_KEY_POLICY_ALLOW


def encryption_context_keys(context: Mapping[str, str]) -> dict[str, object]:
    """The condition keys KMS derives from an encryption context (kms:EncryptionContext:<key>, …Keys)."""
    keys: dict[str, object] = {f"kms:EncryptionContext:{k}": v for k, v in context.items()}
    keys["kms:EncryptionContextKeys"] = list(context)
    return keys


# -- validation ------------------------------------------------------------------------------------------


def _invalid(value: object, field: str, constraint: str) -> ValidationError:
    shown = "null" if value is None else str(value)[:256]
    return ValidationError(
        f"1 validation error detected: Value '{shown}' at '{field}' failed to satisfy constraint: {constraint}"
    )


def check_alias_name(name: str) -> None:
    """CreateAlias, UpdateAlias and DeleteAlias take alias names: ``alias/…``, outside the reserved ``alias/aws/``."""
    if not 1 <= len(name) <= 256:
        raise _invalid(name, "aliasName", "Member must have length between 1 and 256")
    if _ALIAS_NAME.fullmatch(name) is None:
        raise _invalid(name, "aliasName", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$")
    if not name.startswith("alias/") or name == "alias/":
        raise ValidationError(
            'Alias must start with the prefix "alias/". Please see '
            "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
        )
    if name.startswith(RESERVED_ALIAS_PREFIX):
        raise KmsInvalidAliasName(
            f"Alias {name} cannot be used: the prefix {RESERVED_ALIAS_PREFIX} is reserved for AWS managed keys."
        )


def check_alias_target(target: str) -> None:
    """An alias names a key (by id or ARN), never another alias."""
    if target.startswith("alias/") or (target.startswith("arn:") and ":alias/" in target):
        raise ValidationError("Aliases must refer to keys. Not aliases")


def check_pending_window(days: int) -> None:
    if days < MIN_PENDING_WINDOW_DAYS:
        raise _invalid(days, "pendingWindowInDays",
                       f"Member must have value greater than or equal to {MIN_PENDING_WINDOW_DAYS}")
    if days > MAX_PENDING_WINDOW_DAYS:
        raise _invalid(days, "pendingWindowInDays",
                       f"Member must have value less than or equal to {MAX_PENDING_WINDOW_DAYS}")


def _check_key_type(key_usage: str, key_spec: str) -> None:
    if key_usage != ENCRYPT_DECRYPT or key_spec != SYMMETRIC_DEFAULT:
        raise KmsUnsupportedOperation(
            f"ecrd's key service makes symmetric encryption keys only (KeySpec {SYMMETRIC_DEFAULT}, KeyUsage "
            f"{ENCRYPT_DECRYPT}), not KeySpec {key_spec} with KeyUsage {key_usage}."
        )


def _check_tags(tags: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    pairs = list(tags.items()) if isinstance(tags, Mapping) else list(tags)
    checked: dict[str, str] = {}
    for index, (key, value) in enumerate(pairs, start=1):
        if not 1 <= len(key) <= 128:
            raise _invalid(key, f"tags.{index}.member.tagKey", "Member must have length between 1 and 128")
        if len(value) > 256:
            raise _invalid(value, f"tags.{index}.member.tagValue", "Member must have length less than or equal to 256")
        if key.lower().startswith("aws:"):
            raise KmsTagError("Tags beginning with aws: are reserved")
        if key in checked:
            raise KmsTagError(f"Duplicate tag key {key}")
        checked[key] = value
    return checked


def _page_size(limit: int | None, limits: tuple[int, int]) -> int:
    default, maximum = limits
    if limit is None:
        return default
    if limit < 1:
        raise _invalid(limit, "limit", "Member must have value greater than or equal to 1")
    # KMS documents smaller maxima than its model enforces; a larger Limit is read as the maximum.
    return min(limit, maximum)


def _encode_marker(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode()


def _decode_marker(marker: str | None) -> str | None:
    if marker is None:
        return None
    try:
        return base64.b64decode(marker.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError):
        raise KmsInvalidMarker("Invalid marker") from None


def _sql_page(rows: Sequence[T], position: Callable[[T], str], size: int) -> Page[T]:
    """A page from ``size + 1`` rows fetched in order: the extra row only says there is more."""
    chunk = tuple(rows[:size])
    return Page(chunk, _encode_marker(position(chunk[-1])) if len(rows) > size else None)


# -- the service -----------------------------------------------------------------------------------------


class KeyService:
    """KMS keys of one account and region: their life cycle, aliases, tags and policies, encryption with them,
    and the authorization of every call on them."""

    def __init__(
        self,
        store: MetadataStore,
        *,
        account_id: str,
        region: str,
        secret_box: SecretBox,
        clock: Callable[[], float] = time.time,
        identity: IdentityPolicies | None = None,
    ) -> None:
        self.store = store
        self.account_id = account_id
        self.region = region
        self.secret_box = secret_box
        self.clock = clock
        # Without an identity service no IAM policy allows anything: only key policies naming the caller do.
        self.identity = identity
        self._policies = PolicyCache()

    # -- names --------------------------------------------------------------------------------------------

    def key_arn(self, key_id: str) -> str:
        return f"arn:aws:kms:{self.region}:{self.account_id}:key/{key_id}"

    def alias_arn(self, name: str) -> str:
        return f"arn:aws:kms:{self.region}:{self.account_id}:{name}"

    def names_managed_ecr_alias(self, reference: str) -> bool:
        """Whether ``reference`` is the alias of the AWS managed key for ECR (by name or ARN)."""
        return reference in (ECR_MANAGED_ALIAS, self.alias_arn(ECR_MANAGED_ALIAS))

    def _reference(self, reference: str) -> tuple[Literal["key", "alias"], str]:
        """("key", key id) or ("alias", alias name) for a key id, key ARN, alias name or alias ARN."""
        if reference.startswith("alias/"):
            return "alias", reference
        if reference.startswith("arn:"):
            match = _KMS_ARN.fullmatch(reference)
            if match is None:
                raise KmsInvalidArn(f"Invalid arn {reference[:300]}")
            if match["region"] != self.region:
                raise KmsNotFound(f"Invalid arn {match['region']}")
            kind, name = match["kind"], match["name"]
            if match["account"] != self.account_id:
                # Another account's keys are not kept here.
                if kind == "alias":
                    raise KmsNotFound(f"Alias {reference} is not found.")
                raise KmsNotFound(f"Key '{reference}' does not exist")
            if kind == "alias":
                return "alias", f"alias/{name}"
            reference = name
        if _KEY_ID.fullmatch(reference) is None:
            raise KmsNotFound(f"Invalid keyId '{reference[:300]}'")
        return "key", reference

    # -- records ------------------------------------------------------------------------------------------

    def _record(self, row: KeyRow) -> KeyRecord:
        state: KeyState = ENABLED if row.state == ENABLED else DISABLED if row.state == DISABLED else PENDING_DELETION
        manager: KeyManager = "AWS" if row.key_manager == "AWS" else "CUSTOMER"
        return KeyRecord(
            key_id=row.id,
            arn=self.key_arn(row.id),
            state=state,
            description=row.description,
            creation_date=row.created_at,
            deletion_date=row.deletion_date,
            key_manager=manager,
            policy=row.policy,
            key_usage=row.key_usage,
            key_spec=row.key_spec,
            pending_window_days=row.pending_window_days,
        )

    def _alias_record(self, row: AliasRow) -> AliasRecord:
        return AliasRecord(row.name, self.alias_arn(row.name), row.key_id, row.created_at, row.updated_at)

    def _find(self, conn: Connection, reference: str, now: float, *, for_update: bool = False) -> KeyRow:
        kind, value = self._reference(reference)
        key_id = value
        if kind == "alias":
            alias = q.get_alias(conn, value, now=now)
            if alias is None:
                raise KmsNotFound(f"Alias {self.alias_arn(value)} is not found.")
            key_id = alias.key_id
        row = q.get_key(conn, key_id, now=now, for_update=for_update)
        if row is None:
            raise KmsNotFound(f"Key '{self.key_arn(key_id)}' does not exist")
        return row

    def _seal(self, key_id: str, material: bytes) -> str:
        return self.secret_box.seal(base64.b64encode(material).decode(), context=f"kms-key-material:{key_id}")

    def _material(self, row: KeyRow) -> bytes:
        return base64.b64decode(self.secret_box.open(row.material, context=f"kms-key-material:{row.id}"))

    def _new_row(self, caller_arn: str, *, description: str, key_usage: str, key_spec: str, policy: str,
                 key_manager: KeyManager) -> KeyRow:
        key_id = str(uuid.uuid4())
        return KeyRow(
            id=key_id,
            description=description,
            key_usage=key_usage,
            key_spec=key_spec,
            key_manager=key_manager,
            state=ENABLED,
            policy=policy,
            material=self._seal(key_id, os.urandom(KEY_MATERIAL_BYTES)),
            created_at=self.clock(),
            created_by=caller_arn,
            deletion_date=None,
            pending_window_days=None,
        )

    @staticmethod
    def _customer_managed(row: KeyRecord) -> None:
        """AWS managed keys belong to the service that uses them: nobody changes their state, policy or tags."""
        if row.key_manager == "AWS":
            raise KmsUnsupportedOperation(f"{row.arn} is an AWS managed key and cannot be changed.")

    # -- keys ---------------------------------------------------------------------------------------------

    def check_key_policy(self, policy: str) -> PolicyDocument:
        """Validate a key policy: a resource policy (every statement names its principals) of at most 32 KB."""
        if len(policy.encode()) > MAX_KEY_POLICY_BYTES:
            raise KmsLimitExceeded(f"The key policy exceeds the maximum size of {MAX_KEY_POLICY_BYTES} bytes.")
        try:
            return parse_policy(policy, kind="resource")
        except MalformedPolicyDocument as exc:
            raise KmsMalformedPolicyDocument(exc.message) from None

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
            raise _invalid(description, "description", f"Member must have length less than or equal to "
                                                       f"{MAX_DESCRIPTION}")
        checked_tags = _check_tags(tags)
        if len(checked_tags) > MAX_TAGS:
            raise KmsLimitExceeded(f"A key can have at most {MAX_TAGS} tags.")
        if policy is not None:
            self.check_key_policy(policy)
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
        """The AWS managed key ``alias/aws/ecr``, created on first use — once, however many processes ask."""
        now = self.clock()
        with self.store.read() as conn:
            alias = q.get_alias(conn, ECR_MANAGED_ALIAS, now=now)
            existing = q.get_key(conn, alias.key_id, now=now) if alias is not None else None
        if existing is not None:
            return self._record(existing)
        with self.store.write() as conn:
            q.lock_keys(conn)
            alias = q.get_alias(conn, ECR_MANAGED_ALIAS, now=now)
            existing = q.get_key(conn, alias.key_id, now=now) if alias is not None else None
            if existing is not None:
                return self._record(existing)
            q.delete_stale_alias(conn, ECR_MANAGED_ALIAS, now=now)
            row = self._new_row(
                caller_arn,
                description="Default key that protects my ECR data when no other key is defined",
                key_usage=ENCRYPT_DECRYPT,
                key_spec=SYMMETRIC_DEFAULT,
                policy=managed_ecr_key_policy(self.account_id, self.region),
                key_manager="AWS",
            )
            q.insert_key(conn, row)
            q.insert_alias(conn, ECR_MANAGED_ALIAS, row.id, at=now)
        return self._record(row)

    def resolve_key(self, key: str) -> KeyRecord:
        """The key a key id, key ARN, alias name or alias ARN names (in any state but deleted)."""
        with self.store.read() as conn:
            return self._record(self._find(conn, key, self.clock()))

    def describe_key(self, key: str) -> KeyRecord:
        return self.resolve_key(key)

    def list_keys(self, *, limit: int | None = None, marker: str | None = None) -> Page[KeyRecord]:
        size = _page_size(limit, LIST_KEYS_LIMITS)
        with self.store.read() as conn:
            rows = q.list_keys(conn, now=self.clock(), after=_decode_marker(marker), limit=size + 1)
        return _sql_page([self._record(row) for row in rows], lambda key: key.key_id, size)

    def _transition(self, key: str, change: Callable[[KeyRecord, float], dict[str, object]]) -> KeyRecord:
        """Apply a state change to a customer managed key under its row lock; the key as it is afterwards."""
        now = self.clock()
        with self.store.write() as conn:
            current = self._record(self._find(conn, key, now, for_update=True))
            self._customer_managed(current)
            values = change(current, now)
            q.update_key(conn, current.key_id, **values)
            return self._record(self._find(conn, current.key_id, now))

    @staticmethod
    def _not_pending_deletion(key: KeyRecord) -> None:
        if key.state == PENDING_DELETION:
            raise KmsInvalidState(f"{key.arn} is pending deletion.")

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
            return {"state": PENDING_DELETION, "deletion_date": now + days * SECONDS_PER_DAY,
                    "pending_window_days": days}

        return self._transition(key, change)

    def cancel_key_deletion(self, key: str) -> KeyRecord:
        """Back from PendingDeletion — to Disabled, as KMS does, whatever the state before."""
        def change(current: KeyRecord, _now: float) -> dict[str, object]:
            if current.state != PENDING_DELETION:
                raise KmsInvalidState(f"{current.arn} is not pending deletion.")
            return {"state": DISABLED, "deletion_date": None, "pending_window_days": None}

        return self._transition(key, change)

    def purge_deleted_keys(self) -> int:
        """Destroy the keys (material, aliases, tags) whose deletion date has passed; how many there were."""
        with self.store.write() as conn:
            return len(q.delete_deleted_keys(conn, self.clock()))

    # -- key policies -------------------------------------------------------------------------------------

    def get_key_policy(self, key: str) -> str:
        return self.resolve_key(key).policy

    def put_key_policy(self, key: str, policy: str) -> None:
        self.check_key_policy(policy)
        self._transition(key, lambda _current, _now: {"policy": policy})

    def check_policy_lockout(self, caller: Caller, policy: str, key_arn: str | None = None) -> None:
        """KMS's policy lockout safety check: the caller must still be allowed kms:PutKeyPolicy under ``policy``
        (on the key ``key_arn``, or on a key about to be created)."""
        document = self.check_key_policy(policy)
        resource = key_arn if key_arn is not None else self.key_arn(str(uuid.uuid4()))
        request = self._request(caller, "kms:PutKeyPolicy", resource, {"kms:CallerAccount": caller.account_id})
        decision = key_access_decision(request, self._identity_policies(caller), document,
                                       is_account_root=caller.is_root)
        if not decision.allowed:
            raise KmsMalformedPolicyDocument(
                "The new key policy will not allow you to update the key policy in the future."
            )

    # -- tags ---------------------------------------------------------------------------------------------

    def tag_resource(self, key: str, tags: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        """Add tags to the key, replacing the values of tag keys it has (at most 50 tags per key)."""
        added = _check_tags(tags)
        now = self.clock()
        with self.store.write() as conn:
            current = self._record(self._find(conn, key, now, for_update=True))
            self._customer_managed(current)
            self._not_pending_deletion(current)
            if len(q.get_tags(conn, current.key_id).keys() | added.keys()) > MAX_TAGS:
                raise KmsLimitExceeded(f"A key can have at most {MAX_TAGS} tags.")
            q.put_tags(conn, current.key_id, added)

    def untag_resource(self, key: str, tag_keys: Sequence[str]) -> None:
        now = self.clock()
        with self.store.write() as conn:
            current = self._record(self._find(conn, key, now, for_update=True))
            self._customer_managed(current)
            self._not_pending_deletion(current)
            q.delete_tags(conn, current.key_id, list(tag_keys))

    def list_resource_tags(self, key: str, *, limit: int | None = None, marker: str | None = None
                           ) -> Page[tuple[str, str]]:
        size = _page_size(limit, LIST_TAGS_LIMITS)
        with self.store.read() as conn:
            row = self._find(conn, key, self.clock())
            rows = q.list_tags(conn, row.id, after=_decode_marker(marker), limit=size + 1)
        return _sql_page(rows, lambda tag: tag[0], size)

    # -- aliases ------------------------------------------------------------------------------------------

    def create_alias(self, name: str, target: str) -> AliasRecord:
        check_alias_name(name)
        check_alias_target(target)
        exists = KmsAlreadyExists(f"An alias with the name {self.alias_arn(name)} already exists")
        now = self.clock()
        try:
            with self.store.write() as conn:
                key = self._record(self._find(conn, target, now, for_update=True))
                self._customer_managed(key)
                self._not_pending_deletion(key)
                if q.get_alias(conn, name, now=now) is not None:
                    raise exists
                q.delete_stale_alias(conn, name, now=now)
                q.insert_alias(conn, name, key.key_id, at=now)
        except IntegrityError:
            raise exists from None  # created a moment ago by someone else
        return AliasRecord(name, self.alias_arn(name), key.key_id, now, now)

    def get_alias(self, name: str) -> AliasRecord:
        with self.store.read() as conn:
            found = q.get_alias(conn, name, now=self.clock())
        if found is None:
            raise KmsNotFound(f"Alias {self.alias_arn(name)} is not found.")
        return self._alias_record(found)

    def update_alias(self, name: str, target: str) -> AliasRecord:
        """Point an existing alias at another key."""
        check_alias_name(name)
        check_alias_target(target)
        now = self.clock()
        with self.store.write() as conn:
            alias = q.get_alias(conn, name, now=now, for_update=True)
            if alias is None:
                raise KmsNotFound(f"Alias {self.alias_arn(name)} is not found.")
            key = self._record(self._find(conn, target, now, for_update=True))
            self._customer_managed(key)
            self._not_pending_deletion(key)
            q.retarget_alias(conn, name, key.key_id, at=now)
        return AliasRecord(name, self.alias_arn(name), key.key_id, alias.created_at, now)

    def delete_alias(self, name: str) -> None:
        check_alias_name(name)
        with self.store.write() as conn:
            if q.get_alias(conn, name, now=self.clock(), for_update=True) is None:
                raise KmsNotFound(f"Alias {self.alias_arn(name)} is not found.")
            q.delete_alias(conn, name)

    def list_aliases(self, *, key: str | None = None, limit: int | None = None, marker: str | None = None
                     ) -> Page[AliasRecord]:
        """Aliases by name, all of them or those of one key."""
        size = _page_size(limit, LIST_ALIASES_LIMITS)
        now = self.clock()
        with self.store.read() as conn:
            key_id = self._find(conn, key, now).id if key is not None else None
            rows = q.list_aliases(conn, now=now, key_id=key_id, after=_decode_marker(marker), limit=size + 1)
        return _sql_page([self._alias_record(row) for row in rows], lambda alias: alias.name, size)

    # -- cryptography -------------------------------------------------------------------------------------

    def _usable(self, key: KeyRecord) -> None:
        if key.state == DISABLED:
            raise KmsDisabled(f"{key.arn} is disabled.")
        self._not_pending_deletion(key)

    def _usable_key(self, key: str) -> tuple[KeyRecord, bytes]:
        with self.store.read() as conn:
            row = self._find(conn, key, self.clock())
        record = self._record(row)
        self._usable(record)
        return record, self._material(row)

    def encrypt(self, key: str, plaintext: bytes, context: Mapping[str, str] | None = None) -> bytes:
        """A ciphertext blob of ``plaintext`` (1–4096 bytes) under the key, bound to ``context``."""
        if not 1 <= len(plaintext) <= MAX_PLAINTEXT_BYTES:
            raise _invalid("…", "plaintext", f"Member must have length between 1 and {MAX_PLAINTEXT_BYTES}")
        record, material = self._usable_key(key)
        return encode_ciphertext(record.key_id, material, plaintext, context)

    def generate_data_key(
        self, key: str, *, context: Mapping[str, str] | None = None, number_of_bytes: int = 32
    ) -> tuple[bytes, bytes]:
        """(plaintext data key, its ciphertext blob under the key): envelope encryption's first step."""
        if not 1 <= number_of_bytes <= MAX_DATA_KEY_BYTES:
            raise _invalid(number_of_bytes, "numberOfBytes",
                           f"Member must have value between 1 and {MAX_DATA_KEY_BYTES}")
        plaintext = os.urandom(number_of_bytes)
        return plaintext, self.encrypt(key, plaintext, context)

    def ciphertext_key(self, ciphertext_blob: bytes) -> KeyRecord:
        """The key a ciphertext blob names (InvalidCiphertext if it is no blob of ours; NotFound if deleted)."""
        return self.resolve_key(ciphertext_key_id(ciphertext_blob))

    def decrypt(
        self, ciphertext_blob: bytes, context: Mapping[str, str] | None = None, *, key_id: str | None = None
    ) -> tuple[str, bytes]:
        """(key ARN, plaintext) of a blob made by ``encrypt`` or ``generate_data_key`` under the same context.
        ``key_id`` (any key reference), when given, must name the key the blob was made with."""
        blob_key = ciphertext_key_id(ciphertext_blob)
        if key_id is not None and self.resolve_key(key_id).key_id != blob_key:
            raise KmsIncorrectKey("The key ID in the request does not identify a CMK that can perform this "
                                  "operation.")
        record, material = self._usable_key(blob_key)
        return record.arn, decode_ciphertext(ciphertext_blob, material, context)

    # -- authorization ------------------------------------------------------------------------------------

    def _identity_policies(self, caller: Caller) -> list[PolicyDocument]:
        if caller.is_root or self.identity is None:
            return []
        return self.identity.identity_policies(caller)

    def _request(self, caller: Caller, action: str, resource: str, extra: Mapping[str, object]
                 ) -> AuthorizationRequest:
        context = request_context(caller, self.clock(), extra)
        principal = Principal(arn=caller.arn, account_id=caller.account_id, aliases=caller.aliases)
        return AuthorizationRequest(principal, action, resource, self.account_id, context)

    def authorize(
        self,
        caller: Caller,
        action: str,
        key: str,
        *,
        via_service: str | None = None,
        encryption_context: Mapping[str, str] | None = None,
        context: Mapping[str, object] | None = None,
    ) -> KeyRecord:
        """Return the key ``key`` names when ``caller`` may perform ``action`` (``kms:Encrypt``…) on it under
        its key policy and the caller's IAM policies; raise AccessDenied otherwise.

        ``via_service`` ("ecr") says the call comes through that service for the caller (kms:ViaService);
        ``encryption_context`` gives the kms:EncryptionContext condition keys; ``context`` adds any others
        (aws:RequestTag/…, aws:TagKeys, kms:BypassPolicyLockoutSafetyCheck…).
        """
        now = self.clock()
        with self.store.read() as conn:
            row = self._find(conn, key, now)
            tags = q.get_tags(conn, row.id)
        record = self._record(row)
        extra: dict[str, object] = {
            "kms:CallerAccount": caller.account_id,
            "kms:KeyOrigin": "AWS_KMS",
            "kms:KeySpec": record.key_spec,
            "kms:KeyUsage": record.key_usage,
            **{f"aws:ResourceTag/{k}": v for k, v in tags.items()},
        }
        kind, name = self._reference(key)
        if kind == "alias":
            extra["kms:RequestAlias"] = name
        if via_service is not None:
            extra["kms:ViaService"] = f"{via_service}.{self.region}.amazonaws.com"
        if encryption_context is not None:
            extra.update(encryption_context_keys(encryption_context))
        if context:
            extra.update(context)
        request = self._request(caller, action, record.arn, extra)
        decision = key_access_decision(request, self._identity_policies(caller), self._policies.parse(record.policy),
                                       is_account_root=caller.is_root)
        if not decision.allowed:
            raise AccessDenied(decision.denial_message(request))
        return record

    def authorize_account(
        self, caller: Caller, action: str, resource: str = "*", *, context: Mapping[str, object] | None = None
    ) -> None:
        """Authorize an action no key policy governs — CreateKey, ListKeys, ListAliases, and the alias side of
        the alias operations — by the caller's IAM policies alone."""
        extra: dict[str, object] = {"kms:CallerAccount": caller.account_id, **(context or {})}
        request = self._request(caller, action, resource, extra)
        decision = evaluate(request, self._identity_policies(caller), None, is_account_root=caller.is_root)
        if not decision.allowed:
            raise AccessDenied(decision.denial_message(request))
