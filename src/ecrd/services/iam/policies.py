"""Managed policies and their versions: the account's customer managed policies (stored) beside the AWS managed
ECR policies (ecrd.policy.managed), created, read, listed, versioned and deleted as IAM does, and who holds one."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from sqlalchemy import Connection

from ecrd.domain.pages import Page, list_key
from ecrd.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidParameter,
    LimitExceeded,
    NoSuchEntity,
    UnmodifiableEntity,
)
from ecrd.metadata import iam as q
from ecrd.metadata.iam import GroupRecord, PolicyRecord, PolicyVersionRecord, RoleRecord, UserRecord
from ecrd.metadata.store import MetadataStore
from ecrd.policy.managed import MANAGED_POLICIES, ManagedPolicy, managed_policy
from ecrd.services.iam.constraints import NAME, PATH, POLICY_PATH, check_description, check_text, invalid
from ecrd.services.iam.documents import identity_document
from ecrd.services.iam.entities import creating, refuse_taken_or_over_quota
from ecrd.services.iam.identifiers import BASE32, unique_id
from ecrd.services.iam.limits import (
    MANAGED_POLICY_SIZE,
    MARKERS,
    MAX_CUSTOMER_POLICIES,
    MAX_POLICY_VERSIONS,
    policy_size,
)
from ecrd.services.iam.tags import check_tags

__all__ = [
    "POLICY_ARN",
    "PolicyEntities",
    "PolicyRecord",
    "PolicyService",
    "PolicyVersionRecord",
    "aws_record",
    "resolve_policy",
]

_Listed = TypeVar("_Listed", UserRecord, RoleRecord, GroupRecord)

POLICY_ARN: Final = re.compile(r"arn:aws:iam::(?P<account>[0-9]{12}|aws):policy(?P<path>/(?:.*/)?)(?P<name>[^/]+)")


@dataclass(frozen=True, slots=True)
class PolicyEntities:
    users: tuple[UserRecord, ...]
    roles: tuple[RoleRecord, ...]
    groups: tuple[GroupRecord, ...] = ()


def _aws_policy_id(arn: str) -> str:
    # AWS managed policies have ids of their own that no source we keep lists; derive a stable one of the same
    # form from the ARN, so every process and every restart shows the same id.
    digest = hashlib.sha256(arn.encode()).digest()
    return "ANPA" + "".join(BASE32[byte % 32] for byte in digest[:17])


def aws_record(policy: ManagedPolicy, attachment_count: int) -> PolicyRecord:
    created = policy.version_create_date.timestamp()
    return PolicyRecord(
        id=_aws_policy_id(policy.arn),
        name=policy.name,
        path=policy.path,
        description=policy.description,
        created_at=created,
        updated_at=created,
        default_version_id=policy.version_id,
        attachment_count=attachment_count,
        tags=(),
        aws_managed=True,
    )


def resolve_policy(conn: Connection, account_id: str, arn: str, *, for_update: bool = False) -> PolicyRecord | None:
    """The managed policy an ARN names, as the account ``account_id`` sees it (an AWS managed policy with the
    account's attachments, or one of the account's own), or None; an ARN that is not a policy ARN is invalid
    input."""
    match = POLICY_ARN.fullmatch(arn)
    if match is None:
        raise InvalidParameter(f"ARN {arn} is not valid.")
    if match["account"] == "aws":
        aws = managed_policy(arn)
        if aws is None:
            return None
        return aws_record(aws, q.aws_policy_attachment_counts(conn, account_id=account_id).get(arn, 0))
    if match["account"] != account_id:
        # Customer managed policies are attachable only in their own account, as in IAM.
        return None
    policy = q.get_policy(conn, match["name"], account_id=account_id, for_update=for_update)
    if policy is None or policy.path != match["path"] or policy.name != match["name"]:
        return None
    return policy


def _listing_key(policy: PolicyRecord) -> tuple[str, int]:
    # A customer policy may share an AWS managed policy's name, and both must appear exactly once across pages:
    # the AWS one (0) sorts first.
    return policy.name.lower(), 0 if policy.aws_managed else 1


def _listing_position(marker: str | None) -> list[Any] | None:
    position = MARKERS.decode(marker)
    if position is None:
        return None
    if isinstance(position, list) and len(position) == 2 and isinstance(position[0], str) and position[1] in (0, 1):
        return position
    raise MARKERS.invalid_token()


class PolicyService:
    def __init__(self, store: MetadataStore, *, account_id: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.account_id = account_id
        self.clock = clock

    def _policy(self, conn: Connection, arn: str, *, for_update: bool = False) -> PolicyRecord:
        policy = resolve_policy(conn, self.account_id, arn, for_update=for_update)
        if policy is None:
            raise NoSuchEntity(f"Policy {arn} was not found.")
        return policy

    def _customer_policy(self, conn: Connection, arn: str) -> PolicyRecord:
        """A customer managed policy, locked for change; AWS managed policies are not the account's to change."""
        policy = self._policy(conn, arn, for_update=True)
        if policy.aws_managed:
            raise UnmodifiableEntity(f"Policy {arn} is an AWS managed policy and cannot be modified.")
        return policy

    @staticmethod
    def _managed_document(text: str) -> None:
        identity_document(text)
        if policy_size(text) > MANAGED_POLICY_SIZE:
            raise LimitExceeded(f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}")

    def create_policy(
        self,
        name: str,
        document: str,
        *,
        path: str = "/",
        description: str = "",
        tags: Sequence[tuple[str, str]] = (),
    ) -> PolicyRecord:
        check_text(name, "policyName", NAME, 1, 128)
        check_text(path, "path", POLICY_PATH, 1, 512)
        check_description(description)
        checked_tags = check_tags(tags)
        self._managed_document(document)
        now = self.clock()
        policy = PolicyRecord(
            id=unique_id("ANPA"),
            name=name,
            path=path,
            description=description,
            created_at=now,
            updated_at=now,
            default_version_id="v1",
            attachment_count=0,
            tags=checked_tags,
        )
        exists = EntityAlreadyExists(f"A policy called {name} already exists. Duplicate names are not allowed.")
        with creating(self.store, exists) as conn:
            taken = q.get_policy(conn, name, account_id=self.account_id)
            refuse_taken_or_over_quota(
                conn,
                exists,
                taken,
                q.count_policies,
                "PoliciesPerAccount",
                MAX_CUSTOMER_POLICIES,
                account_id=self.account_id,
            )
            q.insert_policy(conn, policy, document, account_id=self.account_id)
        return policy

    def get_policy(self, arn: str) -> PolicyRecord:
        with self.store.read() as conn:
            return self._policy(conn, arn)

    def list_policies(
        self,
        *,
        scope: Literal["All", "AWS", "Local"] = "All",
        only_attached: bool = False,
        path_prefix: str = "/",
        marker: str | None = None,
        max_items: int | None = None,
    ) -> Page[PolicyRecord]:
        """Customer managed (Local) and the AWS managed ECR policies (AWS), by name; ``All`` is both."""
        if scope not in ("All", "AWS", "Local"):
            raise invalid(scope, "scope", "Member must satisfy enum value set: [All, AWS, Local]")
        check_text(path_prefix, "pathPrefix", POLICY_PATH, 1, 512)
        size = MARKERS.size(max_items)
        position = _listing_position(marker)
        candidates: list[PolicyRecord] = []
        with self.store.read() as conn:
            if scope in ("All", "Local"):
                # From the marker's name on, inclusive: a customer policy may follow an AWS one of that name.
                candidates += q.list_policies(
                    conn,
                    account_id=self.account_id,
                    path_prefix=path_prefix,
                    only_attached=only_attached,
                    from_key=None if position is None else position[0],
                    limit=size + 2,
                )
            if scope in ("All", "AWS"):
                counts = q.aws_policy_attachment_counts(conn, account_id=self.account_id)
                for aws in MANAGED_POLICIES.values():
                    record = aws_record(aws, counts.get(aws.arn, 0))
                    if record.path.startswith(path_prefix) and (record.attachment_count or not only_attached):
                        candidates.append(record)
        ordered = sorted(
            (p for p in candidates if position is None or list_key(_listing_key(p)) > position), key=_listing_key
        )
        return MARKERS.page_of_rows(ordered[: size + 1], size, _listing_key)

    def delete_policy(self, arn: str) -> None:
        with self.store.write() as conn:
            policy = self._customer_policy(conn, arn)
            if policy.attachment_count:
                raise DeleteConflict("Cannot delete a policy attached to entities.")
            if len(q.list_policy_versions(conn, policy.id)) > 1:
                raise DeleteConflict(
                    "This policy has more than one version. Before you delete a policy, you must delete the "
                    "policy's versions. The default version is deleted with the policy."
                )
            q.delete_policy(conn, policy.id)

    def get_policy_version(self, arn: str, version_id: str) -> PolicyVersionRecord:
        with self.store.read() as conn:
            versions = self._versions(conn, arn)
        found = next((v for v in versions if v.version_id == version_id), None)
        if found is None:
            raise NoSuchEntity(f"Policy {arn} version {version_id} does not exist or is not attachable.")
        return found

    def list_policy_versions(
        self, arn: str, *, marker: str | None = None, max_items: int | None = None
    ) -> Page[PolicyVersionRecord]:
        with self.store.read() as conn:
            versions = self._versions(conn, arn)
        # Newest first, as IAM lists them; at most five, so a page is cut in memory at a position in that order.
        page = MARKERS.page_of(list(enumerate(versions)), lambda pair: pair[0], marker, max_items)
        return Page(tuple(version for _, version in page.items), page.token)

    def _versions(self, conn: Connection, arn: str) -> list[PolicyVersionRecord]:
        policy = self._policy(conn, arn)
        if policy.aws_managed:
            aws = MANAGED_POLICIES[arn]
            return [PolicyVersionRecord(aws.version_id, aws.document_text, True, policy.created_at)]
        return q.list_policy_versions(conn, policy.id)

    def create_policy_version(self, arn: str, document: str, *, set_as_default: bool = False) -> PolicyVersionRecord:
        self._managed_document(document)
        now = self.clock()
        with self.store.write() as conn:
            policy = self._customer_policy(conn, arn)
            if len(q.list_policy_versions(conn, policy.id)) >= MAX_POLICY_VERSIONS:
                raise LimitExceeded(
                    f"A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before you create a new "
                    "version, you must delete an existing version."
                )
            version_id = q.add_policy_version(conn, policy.id, document, created_at=now, make_default=set_as_default)
        return PolicyVersionRecord(version_id, document, set_as_default, now)

    def delete_policy_version(self, arn: str, version_id: str) -> None:
        with self.store.write() as conn:
            policy = self._customer_policy(conn, arn)
            version = q.get_policy_version(conn, policy.id, version_id)
            if version is None:
                raise NoSuchEntity(f"Policy {arn} version {version_id} does not exist or is not attachable.")
            if version.is_default:
                raise DeleteConflict("Cannot delete the default version of a policy.")
            q.delete_policy_version(conn, policy.id, version_id)

    def set_default_policy_version(self, arn: str, version_id: str) -> None:
        with self.store.write() as conn:
            policy = self._customer_policy(conn, arn)
            if q.get_policy_version(conn, policy.id, version_id) is None:
                raise NoSuchEntity(f"Policy {arn} version {version_id} does not exist or is not attachable.")
            q.set_default_policy_version(conn, policy.id, version_id, at=self.clock())

    def list_entities_for_policy(
        self, arn: str, *, entity_filter: str | None = None, path_prefix: str = "/"
    ) -> PolicyEntities:
        check_text(path_prefix, "pathPrefix", PATH, 1, 512)
        with self.store.read() as conn:
            policy = self._policy(conn, arn)
            ref = arn if policy.aws_managed else policy.id
            users, roles, groups = q.entities_for_policy(conn, ref, account_id=self.account_id)

        def shown(kind: str, entities: Sequence[_Listed]) -> tuple[_Listed, ...]:
            if entity_filter not in (None, kind):
                return ()
            return tuple(entity for entity in entities if entity.path.startswith(path_prefix))

        return PolicyEntities(users=shown("User", users), roles=shown("Role", roles), groups=shown("Group", groups))
