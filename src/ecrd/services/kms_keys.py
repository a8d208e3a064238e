"""KMS keys and aliases as values, the rules on their names, tags and listings, and ``KeyRing``: what every part
of the key service shares — one account and region's keys in the metadata store, found by any reference.

Keys and aliases are regional, as in KMS: a ring serves one registry (an account in a region), whose key ids and
alias names it resolves. A key ARN or alias ARN names its account: it resolves to that account's key when the key
is in the ring's region, so another account's key can be used where its key policy lets the caller (KMS's
cross-account use); an ARN of another region is not found here. Operations KMS documents as not cross-account
(managing a key, its aliases, tags, policy and rotations) take only the ring's own keys.

Keys behave as AWS KMS keys do ("Key states of AWS KMS keys", the KMS API reference): Enabled, Disabled or
PendingDeletion. Key material is 32 random bytes (a signing key's, its ECDSA private key), stored only sealed by
the master key (``SecretBox``); a key has versions of it — the original (0) and one per rotation — and keeps them
all as long as it lives.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy import Connection

from ecrd.domain.pages import Paging
from ecrd.domain.registries import RegistryId
from ecrd.errors import (
    KmsInvalidAliasName,
    KmsInvalidArn,
    KmsInvalidCiphertext,
    KmsInvalidMarker,
    KmsInvalidState,
    KmsNotFound,
    KmsTagError,
    KmsUnsupportedOperation,
    ValidationError,
)
from ecrd.metadata import kms as q
from ecrd.metadata.kms import AliasRow, KeyRow
from ecrd.metadata.store import MetadataStore
from ecrd.policy.document import PolicyDocument
from ecrd.policy.evaluation import AuthorizationRequest, Principal
from ecrd.services.access import Caller, request_context
from ecrd.services.authorization import IdentityPolicies, PolicyCache
from ecrd.services.kms_policies import MANAGED_ECR_KEY, MANAGED_KEYS, ManagedKey
from ecrd.services.secrets import SecretBox

KeyState = Literal["Enabled", "Disabled", "PendingDeletion"]
KeyManager = Literal["CUSTOMER", "AWS"]

ENABLED: Final = "Enabled"
DISABLED: Final = "Disabled"
PENDING_DELETION: Final = q.PENDING_DELETION
SYMMETRIC_DEFAULT: Final = "SYMMETRIC_DEFAULT"
ENCRYPT_DECRYPT: Final = "ENCRYPT_DECRYPT"
# The one asymmetric key type: ECDSA on NIST P-256 for signing (ECR's managed signing signs with such keys).
ECC_NIST_P256: Final = "ECC_NIST_P256"
SIGN_VERIFY: Final = "SIGN_VERIFY"
ECDSA_SHA_256: Final = "ECDSA_SHA_256"

ECR_MANAGED_ALIAS: Final = MANAGED_ECR_KEY.alias
RESERVED_ALIAS_PREFIX: Final = "alias/aws/"

# KMS quotas and API limits (KMS API reference; "Quotas" in the KMS developer guide).
MAX_TAGS: Final = 50
MIN_PENDING_WINDOW_DAYS: Final = 7
MAX_PENDING_WINDOW_DAYS: Final = 30
KEY_MATERIAL_BYTES: Final = 32
SECONDS_PER_DAY: Final = 86400
# AWS managed keys rotate every year ("Rotate AWS KMS keys", KMS developer guide).
MANAGED_KEY_ROTATION_DAYS: Final = 365

# The KMS model's AliasName pattern.
_ALIAS_NAME: Final = re.compile(r"[a-zA-Z0-9:/_-]+")
_KEY_ID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_KMS_ARN: Final = re.compile(r"arn:aws:kms:(?P<region>[^:]*):(?P<account>[^:]*):(?P<kind>key|alias)/(?P<name>.+)")


# -- values ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A KMS key as the API describes it (never its material)."""

    key_id: str
    arn: str
    registry: RegistryId  # the account and region the key lives in
    state: KeyState
    description: str
    creation_date: float
    deletion_date: float | None
    key_manager: KeyManager
    policy: str
    key_usage: str = ENCRYPT_DECRYPT
    key_spec: str = SYMMETRIC_DEFAULT
    pending_window_days: int | None = None
    # Automatic rotation: its period while it is on (None: off) and when it is next due.
    rotation_period_days: int | None = None
    next_rotation_at: float | None = None
    # The version of the material encryption uses now: 0 until the first rotation.
    material_version: int = 0

    @property
    def enabled(self) -> bool:
        return self.state == ENABLED

    @property
    def account_id(self) -> str:
        return self.registry.account_id


@dataclass(frozen=True, slots=True)
class KeyReference:
    """What a ``KeyId`` names: a key by id or an alias by name, in the registry its ARN names (a bare id or
    alias name: the ring's own)."""

    kind: Literal["key", "alias"]
    name: str  # the key id, or the alias name (alias/…)
    registry: RegistryId


def key_arn_in(registry: RegistryId, key_id: str) -> str:
    return f"arn:aws:kms:{registry.region}:{registry.account_id}:key/{key_id}"


def alias_arn_in(registry: RegistryId, name: str) -> str:
    return f"arn:aws:kms:{registry.region}:{registry.account_id}:{name}"


def _not_found(reference: KeyReference) -> KmsNotFound:
    """KMS's words for a key or alias that does not exist where the reference points."""
    if reference.kind == "alias":
        return KmsNotFound(f"Alias {alias_arn_in(reference.registry, reference.name)} is not found.")
    return KmsNotFound(f"Key '{key_arn_in(reference.registry, reference.name)}' does not exist")


@dataclass(frozen=True, slots=True)
class AliasRecord:
    name: str
    arn: str
    target_key_id: str
    creation_date: float
    last_updated_date: float


# -- validation ------------------------------------------------------------------------------------------


def invalid(value: object, field: str, constraint: str) -> ValidationError:
    """KMS's wording of a model constraint its input broke."""
    shown = "null" if value is None else str(value)[:256]
    return ValidationError(
        f"1 validation error detected: Value '{shown}' at '{field}' failed to satisfy constraint: {constraint}"
    )


def check_alias_name(name: str) -> None:
    """CreateAlias, UpdateAlias and DeleteAlias take alias names: ``alias/…``, outside the reserved ``alias/aws/``."""
    if not 1 <= len(name) <= 256:
        raise invalid(name, "aliasName", "Member must have length between 1 and 256")
    if _ALIAS_NAME.fullmatch(name) is None:
        raise invalid(name, "aliasName", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$")
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
        raise invalid(
            days, "pendingWindowInDays", f"Member must have value greater than or equal to {MIN_PENDING_WINDOW_DAYS}"
        )
    if days > MAX_PENDING_WINDOW_DAYS:
        raise invalid(
            days, "pendingWindowInDays", f"Member must have value less than or equal to {MAX_PENDING_WINDOW_DAYS}"
        )


def check_tags(tags: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    pairs = list(tags.items()) if isinstance(tags, Mapping) else list(tags)
    checked: dict[str, str] = {}
    for index, (key, value) in enumerate(pairs, start=1):
        if not 1 <= len(key) <= 128:
            raise invalid(key, f"tags.{index}.member.tagKey", "Member must have length between 1 and 128")
        if len(value) > 256:
            raise invalid(value, f"tags.{index}.member.tagValue", "Member must have length less than or equal to 256")
        if key.lower().startswith("aws:"):
            raise KmsTagError("Tags beginning with aws: are reserved")
        if key in checked:
            raise KmsTagError(f"Duplicate tag key {key}")
        checked[key] = value
    return checked


# -- listings --------------------------------------------------------------------------------------------


def _invalid_limit(limit: int) -> ValidationError:
    if limit < 1:
        return invalid(limit, "limit", "Member must have value greater than or equal to 1")
    return invalid(limit, "limit", "Member must have value less than or equal to 1000")


@dataclass(frozen=True, slots=True)
class KmsListing:
    """One KMS listing's paging: the model takes Limit 1–1000 everywhere, and KMS documents a smaller page for
    some listings (ListKeys 1000, default 100; ListAliases 100, default 50; ListResourceTags 50, default 50).
    A Limit above the documented page is read as that page, as KMS does."""

    paging: Paging
    page_size: int

    def size(self, limit: int | None) -> int:
        return min(self.paging.size(limit), self.page_size)

    def position(self, marker: str | None) -> str | None:
        """The name or id a marker continues after: every KMS listing is ordered by one text column."""
        after = self.paging.decode(marker)
        if after is not None and not isinstance(after, str):
            raise self.paging.invalid_token()
        return after


def kms_listing(default_size: int, page_size: int) -> KmsListing:
    return KmsListing(
        Paging(
            default_size, 1000, invalid_token=lambda: KmsInvalidMarker("Invalid marker"), invalid_size=_invalid_limit
        ),
        page_size,
    )


LIST_KEYS: Final = kms_listing(100, 1000)
LIST_ALIASES: Final = kms_listing(50, 100)
LIST_TAGS: Final = kms_listing(50, 50)


# -- the shared core -------------------------------------------------------------------------------------


class KeyRing:
    """The keys of one account and region: their names, their rows found by any reference, their sealed
    material, and the request a call on them is authorized as. Each part of the key service builds on it."""

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
        self.registry = RegistryId(account_id, region)
        self.secret_box = secret_box
        self.clock = clock
        # Without an identity service no IAM policy allows anything: only key policies naming the caller do.
        self.identity = identity
        self._policies = PolicyCache()

    # -- names --------------------------------------------------------------------------------------------

    def key_arn(self, key_id: str) -> str:
        return key_arn_in(self.registry, key_id)

    def alias_arn(self, name: str) -> str:
        return alias_arn_in(self.registry, name)

    def managed_key_named(self, reference: str) -> ManagedKey | None:
        """The AWS managed key whose alias ``reference`` is (by name or ARN), if it is one."""
        for managed in MANAGED_KEYS:
            if reference in (managed.alias, self.alias_arn(managed.alias)):
                return managed
        return None

    def reference_arn(self, reference: str) -> str:
        """The ARN a key id, key ARN, alias name or alias ARN stands for: the alias's for an alias."""
        found = self._reference(reference)
        if found.kind == "alias":
            return alias_arn_in(found.registry, found.name)
        return key_arn_in(found.registry, found.name)

    def _reference(self, reference: str) -> KeyReference:
        """The key or alias a key id, key ARN, alias name or alias ARN names, and the registry it is in: an ARN's
        own account (this region only: keys are regional), else the ring's."""
        if reference.startswith("alias/"):
            return KeyReference("alias", reference, self.registry)
        registry = self.registry
        if reference.startswith("arn:"):
            match = _KMS_ARN.fullmatch(reference)
            if match is None:
                raise KmsInvalidArn(f"Invalid arn {reference[:300]}")
            if match["region"] != self.region:
                raise KmsNotFound(f"Invalid arn {match['region']}")
            registry = RegistryId(match["account"], match["region"])
            if match["kind"] == "alias":
                return KeyReference("alias", f"alias/{match['name']}", registry)
            reference = match["name"]
        if _KEY_ID.fullmatch(reference) is None:
            raise KmsNotFound(f"Invalid keyId '{reference[:300]}'")
        return KeyReference("key", reference, registry)

    # -- records ------------------------------------------------------------------------------------------

    def _record(self, row: KeyRow) -> KeyRecord:
        state: KeyState = ENABLED if row.state == ENABLED else DISABLED if row.state == DISABLED else PENDING_DELETION
        manager: KeyManager = "AWS" if row.key_manager == "AWS" else "CUSTOMER"
        return KeyRecord(
            key_id=row.id,
            arn=key_arn_in(row.registry, row.id),
            registry=row.registry,
            state=state,
            description=row.description,
            creation_date=row.created_at,
            deletion_date=row.deletion_date,
            key_manager=manager,
            policy=row.policy,
            key_usage=row.key_usage,
            key_spec=row.key_spec,
            pending_window_days=row.pending_window_days,
            rotation_period_days=row.rotation_period_days,
            next_rotation_at=row.next_rotation_at,
            material_version=row.material_version,
        )

    def _alias_record(self, row: AliasRow) -> AliasRecord:
        return AliasRecord(row.name, self.alias_arn(row.name), row.key_id, row.created_at, row.updated_at)

    def _find(
        self, conn: Connection, reference: str, now: float, *, for_update: bool = False, own: bool = False
    ) -> KeyRow:
        """The key ``reference`` names; with ``own``, only a key of the ring's own registry (the operations KMS
        documents as not cross-account: another account's key is not found for them)."""
        found = self._reference(reference)
        if own and found.registry != self.registry:
            raise _not_found(found)
        key = KeyReference("key", found.name, found.registry)
        if found.kind == "alias":
            alias = q.get_alias(conn, found.registry, found.name, now=now)
            if alias is None:
                raise _not_found(found)
            key = KeyReference("key", alias.key_id, found.registry)
        row = q.get_key(conn, key.registry, key.name, now=now, for_update=for_update)
        if row is None:
            raise _not_found(key)
        return row

    def resolve_key(self, key: str, *, own: bool = False) -> KeyRecord:
        """The key a key id, key ARN, alias name or alias ARN names (in any state but deleted); with ``own``, only
        a key of the ring's own account."""
        with self.store.read() as conn:
            return self._record(self._find(conn, key, self.clock(), own=own))

    def _key_by_id(self, conn: Connection, key_id: str, now: float) -> KeyRow:
        """The key of ``key_id`` in the ring's region, of any account: a ciphertext names its key by id alone."""
        row = q.get_key_in_region(conn, self.region, key_id, now=now)
        if row is None:
            raise _not_found(KeyReference("key", key_id, self.registry))
        return row

    @staticmethod
    def _material_context(key_id: str, version: int) -> str:
        # The original keeps the context it was always sealed under; a rotated version binds its number too, so
        # no sealed material can stand in for another version's.
        return f"kms-key-material:{key_id}" if version == 0 else f"kms-key-material:{key_id}:{version}"

    def _seal(self, key_id: str, material: bytes, version: int = 0) -> str:
        return self.secret_box.seal(
            base64.b64encode(material).decode(), context=self._material_context(key_id, version)
        )

    def _material(self, conn: Connection, row: KeyRow, version: int) -> bytes:
        """The key's material of ``version``; InvalidCiphertext for a version the key never had (a blob naming
        one was not made by this key)."""
        sealed = row.material if version == 0 else q.get_material(conn, row.id, version)
        if sealed is None:
            raise KmsInvalidCiphertext("")
        return base64.b64decode(self.secret_box.open(sealed, context=self._material_context(row.id, version)))

    def _transition(self, key: str, change: Callable[[KeyRecord, float], dict[str, object]]) -> KeyRecord:
        """Apply a state change to a customer managed key under its row lock; the key as it is afterwards."""
        now = self.clock()
        with self.store.write() as conn:
            current = self._record(self._find(conn, key, now, for_update=True, own=True))
            self._customer_managed(current)
            values = change(current, now)
            if values:
                q.update_key(conn, current.key_id, **values)
            return self._record(self._find(conn, current.key_id, now))

    @staticmethod
    def _customer_managed(row: KeyRecord) -> None:
        """AWS managed keys belong to the service that uses them: nobody changes their state, policy or tags."""
        if row.key_manager == "AWS":
            raise KmsUnsupportedOperation(f"{row.arn} is an AWS managed key and cannot be changed.")

    @staticmethod
    def _not_pending_deletion(key: KeyRecord) -> None:
        if key.state == PENDING_DELETION:
            raise KmsInvalidState(f"{key.arn} is pending deletion.")

    # -- the request a call is authorized as ---------------------------------------------------------------

    def _identity_policies(self, caller: Caller) -> list[PolicyDocument]:
        if caller.is_root or self.identity is None:
            return []
        return self.identity.identity_policies(caller)

    def _request(
        self,
        caller: Caller,
        action: str,
        resource: str,
        extra: Mapping[str, object],
        *,
        resource_account: str | None = None,
    ) -> AuthorizationRequest:
        """The request ``caller`` makes on ``resource``, owned by ``resource_account`` (a key's own account; the
        ring's for what belongs to no key): a caller of another account is then decided across accounts."""
        context = request_context(caller, self.clock(), extra)
        principal = Principal(arn=caller.arn, account_id=caller.account_id, aliases=caller.aliases)
        owner = resource_account if resource_account is not None else self.account_id
        return AuthorizationRequest(principal, action, resource, owner, context)
