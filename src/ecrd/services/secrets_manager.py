"""The secrets service: Secrets Manager's secrets of one account and region — their versions and staging labels,
values sealed with KMS keys (``secret_sealing``), tags, resource policies, scheduled deletion, and the
authorization of every call by the one policy engine (the caller's identity policies with the secret's policy).

Other services read a secret for the registry itself through ``current_value`` (pull-through cache rules keep
their upstream credentials in secrets); that read answers to no caller's policies, and only of the registry's own
secrets.

Secrets are regional. A service answers for one registry (an account in a region): names resolve there and
listings show its secrets only. A full ARN of another account's secret in the same region resolves to that
secret, and every call on it is decided across accounts, as Secrets Manager decides them: the secret's resource
policy and the caller's IAM policies must both allow it, and reading or writing a value also needs the secret's
KMS key to let the caller — a customer managed key whose key policy allows the caller's account, never the other
account's AWS managed key (``secret_sealing``).
"""

from __future__ import annotations

import math
import secrets as random_source
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection

from ecrd.domain import secrets as rules
from ecrd.domain.pages import Page, Paging
from ecrd.domain.registries import RegistryId
from ecrd.domain.secrets import CURRENT, SecretFacts, SecretFilter, SecretValue
from ecrd.errors import (
    AccessDenied,
    InvalidParameter,
    LimitExceeded,
    MalformedPolicyDocument,
    SecretExists,
    SecretInvalidNextToken,
    SecretInvalidRequest,
    SecretMalformedPolicyDocument,
    SecretNotFound,
    SecretPublicPolicy,
)
from ecrd.metadata import secrets as q
from ecrd.metadata.secrets import SecretRow, SortColumn, VersionRow
from ecrd.metadata.store import MetadataStore
from ecrd.policy.document import PolicyDocument, parse_policy, replace_principal
from ecrd.policy.evaluation import AuthorizationRequest, Principal, evaluate
from ecrd.services.access import Caller, request_context, request_tag_context
from ecrd.services.authorization import IdentityPolicies, PolicyCache
from ecrd.services.kms import KeyService
from ecrd.services.secret_sealing import SealedValue, SecretSealer

SECONDS_PER_DAY: Final = 86400
NOT_FOUND: Final = "Secrets Manager can't find the specified secret."
# ListSecrets: MaxResults 1–100 in the model; Secrets Manager's default page is 100.
LIST_SECRETS: Final = Paging(
    100, 100, invalid_token=lambda: SecretInvalidNextToken("The NextToken value is invalid."), invalid_size=None
)
LIST_VERSIONS: Final = Paging(
    100, 100, invalid_token=lambda: SecretInvalidNextToken("The NextToken value is invalid."), invalid_size=None
)
SORT_COLUMNS: Final[dict[str, SortColumn]] = {
    "created-date": "created_at",
    "last-accessed-date": "last_accessed_at",
    "last-changed-date": "last_changed_at",
    "name": "name",
}
# Rows a filtered listing reads at a time while it fills a page.
_SCAN_BATCH: Final = 200


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """A secret as DescribeSecret and ListSecrets show it (never its values)."""

    row: SecretRow
    stages: Mapping[str, str]  # label -> version id
    tags: tuple[tuple[str, str], ...]

    @property
    def arn(self) -> str:
        return self.row.arn

    @property
    def name(self) -> str:
        return self.row.name


@dataclass(frozen=True, slots=True)
class SecretSettings:
    """What CreateSecret and UpdateSecret set besides values and tags (None: not given)."""

    description: str | None = None
    kms_key_id: str | None = None
    secret_type: str | None = None


@dataclass(frozen=True, slots=True)
class VersionWritten:
    """What a write of a value answers: the version (new, or the one an idempotent retry made) and its labels."""

    secret: SecretRow
    version_id: str
    stages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VersionRead:
    secret: SecretRow
    version: VersionRow
    stages: tuple[str, ...]
    value: SecretValue


@dataclass(frozen=True, slots=True)
class VersionListing:
    version: VersionRow
    stages: tuple[str, ...]


def _day(at: float) -> float:
    """Secrets Manager keeps access dates to the day."""
    return math.floor(at / SECONDS_PER_DAY) * SECONDS_PER_DAY


def _check_tags(tags: Sequence[tuple[str, str]]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for key, value in tags:
        if key.lower().startswith("aws:"):
            raise InvalidParameter("Invalid tag key: tag keys beginning with aws: are reserved for AWS use.")
        checked[key] = value
    return checked


class SecretsManagerService:
    def __init__(
        self,
        store: MetadataStore,
        kms: KeyService,
        *,
        account_id: str,
        region: str,
        identity: IdentityPolicies | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.account_id = account_id
        self.region = region
        self.registry = RegistryId(account_id, region)
        self.clock = clock
        # Without an identity service no IAM policy allows anything: only secret policies naming the caller do.
        self.identity = identity
        self.sealer = SecretSealer(kms)
        self._policies = PolicyCache()

    # -- finding and authorizing ----------------------------------------------------------------------------

    def _find(self, conn: Connection, secret_id: str, now: float, *, for_update: bool = False) -> SecretRow | None:
        reference = rules.secret_reference(secret_id, self.region, self.account_id)
        if reference is None:
            return None
        if reference.arn is not None:
            # A full ARN of another account finds that account's secret; of this one, the registry's.
            within = None if reference.other_account else self.registry
            found = q.find_secret(conn, within, arn=reference.arn, now=now, for_update=for_update)
            if found is not None or reference.name is None:
                return found
        # A name, or a partial ARN (without the random suffix) that names the secret of that name.
        return q.find_secret(conn, self.registry, name=reference.name, now=now, for_update=for_update)

    def _resource_arn(self, secret_id: str) -> str:
        """The ARN a call on a secret that does not exist is authorized on: the one given, else the name's ARN
        without its random suffix (so a caller without permission learns nothing of what exists)."""
        if secret_id.startswith("arn:"):
            return secret_id
        return f"arn:aws:secretsmanager:{self.region}:{self.account_id}:secret:{secret_id}"

    def _identity_policies(self, caller: Caller) -> list[PolicyDocument]:
        if caller.is_root or self.identity is None:
            return []
        return self.identity.identity_policies(caller)

    def _authorize(
        self,
        caller: Caller,
        action: str,
        resource: str,
        *,
        secret: SecretRow | None = None,
        tags: Sequence[tuple[str, str]] = (),
        context: Mapping[str, object] | None = None,
    ) -> None:
        extra: dict[str, object] = {
            **{f"secretsmanager:ResourceTag/{k}": v for k, v in tags},
            **{f"aws:ResourceTag/{k}": v for k, v in tags},
            **(context or {}),
        }
        if secret is not None:
            extra["secretsmanager:SecretId"] = secret.arn
            extra["secretsmanager:Name"] = secret.name
        request = AuthorizationRequest(
            Principal(arn=caller.arn, account_id=caller.account_id, aliases=caller.aliases),
            action,
            resource,
            self._owner(resource, secret),
            request_context(caller, self.clock(), extra),
        )
        policy = self._policies.parse(secret.policy) if secret is not None and secret.policy else None
        decision = evaluate(request, self._identity_policies(caller), policy, is_account_root=caller.is_root)
        if not decision.allowed:
            raise AccessDenied(decision.denial_message(request))

    def _owner(self, resource: str, secret: SecretRow | None) -> str:
        """The account a call is made on: the secret's, else the one its ARN names, else the registry's (a caller
        of another account is then decided across accounts)."""
        if secret is not None:
            return secret.account_id
        if resource.startswith("arn:") and resource.count(":") >= 5:
            return rules.secret_account(resource)
        return self.account_id

    def authorize_account(self, caller: Caller, action: str, context: Mapping[str, object] | None = None) -> None:
        """Actions on no one secret (ListSecrets, GetRandomPassword): resource "*"."""
        self._authorize(caller, action, "*", context=context)

    def authorize(
        self, caller: Caller, action: str, secret_id: str, context: Mapping[str, object] | None = None
    ) -> SecretRecord:
        """The secret ``secret_id`` names when ``caller`` may perform ``action`` on it; AccessDenied before
        ResourceNotFound, so a caller without permission cannot learn which secrets exist."""
        with self.store.read() as conn:
            row = self._find(conn, secret_id, self.clock())
            record = self._record(conn, row) if row is not None else None
        if record is None:
            self._authorize(caller, action, self._resource_arn(secret_id), context=context)
            raise SecretNotFound(NOT_FOUND)
        self._authorize(caller, action, record.arn, secret=record.row, tags=record.tags, context=context)
        return record

    def _record(self, conn: Connection, row: SecretRow) -> SecretRecord:
        return SecretRecord(row, q.stages_of(conn, [row.id])[row.id], tuple(q.tags_of(conn, [row.id])[row.id]))

    # -- creating -------------------------------------------------------------------------------------------

    def new_arn(self, name: str) -> str:
        rules.check_secret_name(name)
        suffix = "".join(random_source.choice(rules.SUFFIX_ALPHABET) for _ in range(rules.SUFFIX_LENGTH))
        return rules.secret_arn(self.region, self.account_id, name, suffix)

    def authorize_create(
        self, caller: Caller, arn: str, *, tags: Sequence[tuple[str, str]], context: Mapping[str, object]
    ) -> None:
        tag_context = request_tag_context(tags)
        self._authorize(caller, "secretsmanager:CreateSecret", arn, context={**context, **tag_context})
        if tags:
            # Secrets Manager: tagging a secret as it is created needs secretsmanager:TagResource as well.
            self._authorize(caller, "secretsmanager:TagResource", arn, context=tag_context)

    def create_secret(
        self,
        caller: Caller,
        arn: str,
        name: str,
        *,
        value: SecretValue | None,
        token: str | None,
        settings: SecretSettings,
        tags: Sequence[tuple[str, str]],
    ) -> VersionWritten | SecretRow:
        """A new secret (already authorized: ``authorize_create``) with its first version, AWSCURRENT, when it
        has a value. A retry with the same token and value answers what the first call made."""
        now = self.clock()
        checked_tags = _check_tags(tags)
        if len(checked_tags) > rules.MAX_TAGS:
            raise LimitExceeded(f"A secret can have at most {rules.MAX_TAGS} tags.")
        with self.store.read() as conn:
            existing = q.find_secret(conn, self.registry, name=name, now=now)
        if existing is not None:
            return self._create_again(caller, existing, value, token)
        key_reference = self.sealer.key_reference(settings.kms_key_id)
        version_id = token or str(uuid.uuid4())
        sealed = self.sealer.seal(caller, key_reference, arn, version_id, value) if value is not None else None
        row = SecretRow(
            id=str(uuid.uuid4()),
            account_id=self.account_id,
            region=self.region,
            name=name,
            arn=arn,
            description=settings.description,
            kms_key_id=key_reference,
            secret_type=settings.secret_type,
            policy=None,
            created_at=now,
            last_changed_at=now,
            last_accessed_at=None,
            deleted_at=None,
            deletion_date=None,
        )
        with self.store.write() as conn:
            q.lock_secrets(conn)
            q.delete_deleted_secrets(conn, now, named=(self.registry, name))  # a name past its deletion date is free
            if q.find_secret(conn, self.registry, name=name, now=now) is not None:
                raise SecretExists(f"The operation failed because the secret {name} already exists.")
            q.insert_secret(conn, row)
            q.put_tags(conn, row.id, checked_tags)
            if sealed is None or value is None:
                return row
            q.insert_version(conn, _version_row(row.id, version_id, now, value, sealed))
            q.set_stages(conn, row.id, {CURRENT: version_id})
        return VersionWritten(row, version_id, (CURRENT,))

    def _create_again(
        self, caller: Caller, existing: SecretRow, value: SecretValue | None, token: str | None
    ) -> VersionWritten:
        if existing.deleted_at is not None:
            raise SecretInvalidRequest(
                "You can't create this secret because a secret with this name is already scheduled for deletion."
            )
        # ClientRequestToken: "If a version with this value already exists and the version of the SecretString
        # and SecretBinary values are the same as those in the request, then the request is ignored."
        if token is not None and value is not None:
            with self.store.read() as conn:
                version = q.get_version(conn, existing.id, token)
                stages = q.stages_of(conn, [existing.id])[existing.id]
            if version is not None and self.sealer.open(caller, existing.arn, version).same_as(value):
                return VersionWritten(existing, token, tuple(rules.labels_by_version(stages).get(token, [])))
        raise SecretExists(f"The operation failed because the secret {existing.name} already exists.")

    # -- values ---------------------------------------------------------------------------------------------

    def put_secret_value(
        self,
        caller: Caller,
        secret: SecretRecord,
        value: SecretValue,
        *,
        token: str | None,
        stages: Sequence[str] | None = None,
    ) -> VersionWritten:
        """A new version of ``secret`` (already authorized), labelled ``stages`` (default AWSCURRENT)."""
        rules.refuse_if_deleted(secret.row.deleted_at)
        labels = rules.check_stages(list(stages) if stages is not None else [CURRENT])
        version_id = token or str(uuid.uuid4())
        with self.store.read() as conn:
            existing = q.get_version(conn, secret.row.id, version_id)
        if existing is not None:
            return self._put_again(caller, secret, existing, value)
        sealed = self.sealer.seal(caller, secret.row.kms_key_id, secret.arn, version_id, value)
        now = self.clock()
        with self.store.write() as conn:
            row = q.find_secret(conn, None, arn=secret.arn, now=now, for_update=True)
            if row is None:
                raise SecretNotFound(NOT_FOUND)
            rules.refuse_if_deleted(row.deleted_at)
            if q.get_version(conn, row.id, version_id) is not None:
                raise SecretExists("A version with this ClientRequestToken already exists.")
            q.insert_version(conn, _version_row(row.id, version_id, now, value, sealed))
            current = q.stages_of(conn, [row.id])[row.id]
            moves = rules.stage_new_version(current, version_id, labels)
            q.set_stages(conn, row.id, moves)
            self._drop_outdated(conn, row.id, {**current, **moves})
            q.update_secret(conn, row.id, last_changed_at=now)
        return VersionWritten(row, version_id, tuple(labels))

    def _put_again(
        self, caller: Caller, secret: SecretRecord, existing: VersionRow, value: SecretValue
    ) -> VersionWritten:
        if not self.sealer.open(caller, secret.arn, existing).same_as(value):
            # "You can't modify an existing version, you can only create new versions."
            raise SecretExists(
                "You can't modify an existing version, you can only create a new version. Use a new "
                "ClientRequestToken for a new value."
            )
        labels = rules.labels_by_version(secret.stages).get(existing.version_id, [])
        return VersionWritten(secret.row, existing.version_id, tuple(labels))

    @staticmethod
    def _drop_outdated(conn: Connection, secret_id: str, stages: Mapping[str, str | None]) -> None:
        labelled = {stage: version for stage, version in stages.items() if version is not None}
        versions = [version.version_id for version in q.list_versions(conn, secret_id)]
        q.delete_versions(conn, secret_id, rules.outdated_versions(versions, labelled))

    def get_secret_value(
        self, caller: Caller | None, secret: SecretRecord, *, version_id: str | None, stage: str | None
    ) -> VersionRead:
        """The value of the version ``version_id`` and/or ``stage`` names (default AWSCURRENT)."""
        rules.refuse_if_deleted(secret.row.deleted_at)
        wanted_stage = stage if stage is not None or version_id is not None else CURRENT
        chosen = version_id if version_id is not None else secret.stages.get(wanted_stage or "")
        if wanted_stage is not None and secret.stages.get(wanted_stage) != chosen:
            chosen = None
        with self.store.read() as conn:
            version = q.get_version(conn, secret.row.id, chosen) if chosen is not None else None
        if version is None:
            raise SecretNotFound(_no_value(version_id, wanted_stage))
        value = self.sealer.open(caller, secret.arn, version)
        today = _day(self.clock())
        if secret.row.last_accessed_at != today:
            with self.store.write(flush=False) as conn:
                q.update_secret(conn, secret.row.id, last_accessed_at=today)
                q.touch_version(conn, secret.row.id, version.version_id, today)
        labels = rules.labels_by_version(secret.stages).get(version.version_id, [])
        return VersionRead(secret.row, version, tuple(labels), value)

    def current_value(self, secret_arn: str) -> SecretValue:
        """The AWSCURRENT value of the secret ``secret_arn``, read by the registry for itself (no caller's
        policies apply); ResourceNotFound, InvalidRequest (scheduled for deletion) or DecryptionFailure (its
        key is unusable) as GetSecretValue would answer."""
        with self.store.read() as conn:
            row = q.find_secret(conn, self.registry, arn=secret_arn, now=self.clock())
            if row is None:
                raise SecretNotFound(NOT_FOUND)
            record = self._record(conn, row)
        return self.get_secret_value(None, record, version_id=None, stage=None).value

    def update_secret(
        self,
        caller: Caller,
        secret: SecretRecord,
        *,
        value: SecretValue | None,
        token: str | None,
        settings: SecretSettings,
    ) -> VersionWritten | None:
        """Change the description, key or type, and with a value make a new AWSCURRENT version (under the new
        key when the key changes). A new key reseals the labelled versions, all or none, in the transaction that
        records it (see ``_resealed``)."""
        rules.refuse_if_deleted(secret.row.deleted_at)
        changes: dict[str, object] = {}
        if settings.description is not None:
            changes["description"] = settings.description
        if settings.secret_type is not None:
            changes["secret_type"] = settings.secret_type
        resealed: list[tuple[str, SealedValue]] = []
        if settings.kms_key_id is not None:
            key_reference = self.sealer.key_reference(settings.kms_key_id)
            changes["kms_key_id"] = key_reference
            if key_reference != secret.row.kms_key_id:
                resealed = self._resealed(caller, secret, key_reference)
        if changes:
            with self.store.write() as conn:
                row = q.find_secret(conn, None, arn=secret.arn, now=self.clock(), for_update=True)
                if row is None:
                    raise SecretNotFound(NOT_FOUND)
                rules.refuse_if_deleted(row.deleted_at)
                q.update_secret(conn, row.id, last_changed_at=self.clock(), **changes)
                for version_id, sealed in resealed:
                    q.reseal_version(conn, row.id, version_id, sealed.key_arn, sealed.wrapped_key, sealed.sealed_value)
        if value is None:
            return None
        if "kms_key_id" in changes:
            secret = self.describe_secret(secret.arn)
        return self.put_secret_value(caller, secret, value, token=token)

    def _resealed(
        self, caller: Caller, secret: SecretRecord, key_reference: str | None
    ) -> list[tuple[str, SealedValue]]:
        """The versions labelled AWSCURRENT, AWSPREVIOUS or AWSPENDING sealed again under the new key. Secrets
        Manager does so when the caller may decrypt them and use the new key; otherwise every version keeps the
        key that sealed it, and only later versions use the new one."""
        labelled = {secret.stages.get(stage) for stage in (CURRENT, rules.PREVIOUS, rules.PENDING)} - {None}
        with self.store.read() as conn:
            versions = [version for version in q.list_versions(conn, secret.row.id) if version.version_id in labelled]
        try:
            return [
                (
                    version.version_id,
                    self.sealer.seal(
                        caller,
                        key_reference,
                        secret.arn,
                        version.version_id,
                        self.sealer.open(caller, secret.arn, version),
                    ),
                )
                for version in versions
            ]
        except AccessDenied:
            return []

    def update_secret_version_stage(
        self, secret: SecretRecord, stage: str, *, remove_from: str | None, move_to: str | None
    ) -> None:
        rules.refuse_if_deleted(secret.row.deleted_at)
        with self.store.write() as conn:
            row = q.find_secret(conn, None, arn=secret.arn, now=self.clock(), for_update=True)
            if row is None:
                raise SecretNotFound(NOT_FOUND)
            current = q.stages_of(conn, [row.id])[row.id]
            versions = [version.version_id for version in q.list_versions(conn, row.id)]
            moves = rules.move_stage(current, stage, remove_from=remove_from, move_to=move_to, versions=versions)
            after = {**current, **moves}
            labels_on = rules.labels_by_version({k: v for k, v in after.items() if v is not None})
            if move_to is not None and len(labels_on.get(move_to, [])) > rules.MAX_STAGES_PER_VERSION:
                raise LimitExceeded(f"A version can have at most {rules.MAX_STAGES_PER_VERSION} staging labels.")
            q.set_stages(conn, row.id, moves)
            q.update_secret(conn, row.id, last_changed_at=self.clock())

    def list_secret_version_ids(
        self, secret: SecretRecord, *, include_deprecated: bool, limit: int | None, token: str | None
    ) -> Page[VersionListing]:
        """The versions of a secret, newest first; those without a label only with ``include_deprecated``."""
        with self.store.read() as conn:
            versions = q.list_versions(conn, secret.row.id)
        labels = rules.labels_by_version(secret.stages)
        listed = [
            VersionListing(version, tuple(labels.get(version.version_id, [])))
            for version in reversed(versions)
            if include_deprecated or version.version_id in labels
        ]
        return LIST_VERSIONS.page_of(
            listed, lambda listing: [-listing.version.created_at, listing.version.version_id], token, limit
        )

    # -- describing and listing -----------------------------------------------------------------------------

    def describe_secret(self, secret_arn: str) -> SecretRecord:
        with self.store.read() as conn:
            row = q.find_secret(conn, None, arn=secret_arn, now=self.clock())
            if row is None:
                raise SecretNotFound(NOT_FOUND)
            return self._record(conn, row)

    def list_secrets(
        self,
        *,
        filters: Sequence[SecretFilter],
        include_deleted: bool,
        sort_by: str | None,
        descending: bool,
        limit: int | None,
        token: str | None,
    ) -> Page[SecretRecord]:
        """A keyset page of secrets in (sort column, id) order that pass the filters. Filters are applied to
        rows read in that order, a batch at a time, until the page is full or the secrets run out."""
        size = LIST_SECRETS.size(limit)
        column = SORT_COLUMNS[sort_by or "created-date"]
        position = _position(LIST_SECRETS.decode(token))
        found: list[SecretRecord] = []
        now = self.clock()
        with self.store.read() as conn:
            # Bounded by the secrets there are: every batch moves the position past the rows it read.
            while len(found) <= size:
                rows = q.list_secrets(
                    conn,
                    self.registry,
                    now=now,
                    include_deleted=include_deleted,
                    order=column,
                    descending=descending,
                    after=position,
                    limit=_SCAN_BATCH,
                )
                stages, tags = q.stages_of(conn, (r.id for r in rows)), q.tags_of(conn, (r.id for r in rows))
                for row in rows:
                    position = (_sort_value(row, column), row.id)
                    record = SecretRecord(row, stages[row.id], tuple(tags[row.id]))
                    facts = SecretFacts(row.name, row.description or "", record.tags)
                    if rules.filters_match(filters, facts):
                        found.append(record)
                        if len(found) > size:
                            break
                if len(rows) < _SCAN_BATCH:
                    break
        return LIST_SECRETS.page_of_rows(found, size, lambda record: [_sort_value(record.row, column), record.row.id])

    # -- tags, policies, deletion ---------------------------------------------------------------------------

    def tag_resource(self, secret: SecretRecord, tags: Sequence[tuple[str, str]]) -> None:
        checked = _check_tags(tags)
        with self.store.write() as conn:
            row = self._locked(conn, secret)
            rules.refuse_if_deleted(row.deleted_at)
            if len(set(dict(q.tags_of(conn, [row.id])[row.id])) | set(checked)) > rules.MAX_TAGS:
                raise LimitExceeded(f"A secret can have at most {rules.MAX_TAGS} tags.")
            q.put_tags(conn, row.id, checked)

    def untag_resource(self, secret: SecretRecord, keys: Sequence[str]) -> None:
        with self.store.write() as conn:
            row = self._locked(conn, secret)
            rules.refuse_if_deleted(row.deleted_at)
            q.delete_tags(conn, row.id, keys)

    def put_resource_policy(self, secret: SecretRecord, policy: str, *, block_public: bool) -> None:
        try:
            document = parse_policy(policy, kind="resource")
        except MalformedPolicyDocument as exc:
            raise SecretMalformedPolicyDocument(exc.message) from None
        if block_public and _grants_everyone(document):
            raise SecretPublicPolicy("This resource policy contains a statement that grants public access.")
        with self.store.write() as conn:
            row = self._locked(conn, secret)
            q.update_secret(conn, row.id, policy=policy)

    def forget_principal(self, arn: str, unique_id: str) -> None:
        """A deleted user or role: secret policies name it by its unique id from now on, as IAM shows them, so
        a new principal of the same name is granted nothing (the same rewrite as repository policies). Every
        registry's secret policies, not only this one's: another account's policy may name the principal too."""
        with self.store.write() as conn:
            for secret_id, text in q.policies_naming(conn, arn):
                q.update_secret(conn, secret_id, policy=replace_principal(text, arn, unique_id))

    def delete_resource_policy(self, secret: SecretRecord) -> None:
        with self.store.write() as conn:
            q.update_secret(conn, self._locked(conn, secret).id, policy=None)

    def delete_secret(self, secret: SecretRecord, *, window: int | None, force: bool | None) -> float:
        """Schedule the secret's deletion in 7–30 days (30 by default), or delete it now when forced; the
        deletion date. Until then it can be restored and its values cannot be read."""
        days = rules.recovery_days(window, force)
        now = self.clock()
        with self.store.write() as conn:
            row = self._locked(conn, secret)
            if days == 0:
                q.delete_secret(conn, row.id)
                return now
            rules.refuse_if_deleted(row.deleted_at)
            deletion_date = now + days * SECONDS_PER_DAY
            q.update_secret(conn, row.id, deleted_at=now, deletion_date=deletion_date)
            return deletion_date

    def restore_secret(self, secret: SecretRecord) -> None:
        with self.store.write() as conn:
            q.update_secret(conn, self._locked(conn, secret).id, deleted_at=None, deletion_date=None)

    def purge_deleted_secrets(self) -> int:
        """Remove the secrets (versions, tags) whose deletion date has passed, in every registry — the server runs
        this sweep on one instance for all of them; how many there were."""
        with self.store.write() as conn:
            return q.delete_deleted_secrets(conn, self.clock())

    def _locked(self, conn: Connection, secret: SecretRecord) -> SecretRow:
        row = q.find_secret(conn, None, arn=secret.arn, now=self.clock(), for_update=True)
        if row is None:
            raise SecretNotFound(NOT_FOUND)
        return row


def _version_row(secret_id: str, version_id: str, now: float, value: SecretValue, sealed: SealedValue) -> VersionRow:
    return VersionRow(
        secret_id=secret_id,
        version_id=version_id,
        created_at=now,
        kind=value.kind,
        key_arn=sealed.key_arn,
        wrapped_key=sealed.wrapped_key,
        sealed_value=sealed.sealed_value,
        last_accessed_at=None,
    )


def _no_value(version_id: str | None, stage: str | None) -> str:
    if version_id is not None and stage is not None:
        return (
            f"Secrets Manager can't find the specified secret value for VersionId: {version_id} and "
            f"staging label: {stage}"
        )
    if version_id is not None:
        return f"Secrets Manager can't find the specified secret value for VersionId: {version_id}"
    return f"Secrets Manager can't find the specified secret value for staging label: {stage}"


def _sort_value(row: SecretRow, column: SortColumn) -> Any:
    value = getattr(row, column)
    return 0.0 if value is None else value


def _position(decoded: Any) -> tuple[Any, str] | None:
    if decoded is None:
        return None
    if (
        isinstance(decoded, list)
        and len(decoded) == 2
        and isinstance(decoded[1], str)
        and isinstance(decoded[0], str | int | float)
    ):
        return decoded[0], decoded[1]
    raise LIST_SECRETS.invalid_token()


def _grants_everyone(document: PolicyDocument) -> bool:
    """BlockPublicPolicy: an Allow statement naming every principal, with no condition to narrow it."""
    for statement in document.statements:
        principals = statement.principals
        if statement.effect != "Allow" or statement.conditions or principals is None:
            continue
        if principals.everyone or "*" in principals.aws:
            return True
    return False
