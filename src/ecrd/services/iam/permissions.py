"""What gives a user, role or group its permissions: inline policies embedded in it and managed policies
attached to it (a group's apply to its members), put, read, listed and removed as IAM does (names, sizes and
quotas included)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ecrd.domain.pages import Page
from ecrd.errors import LimitExceeded, NoSuchEntity
from ecrd.metadata import iam as q
from ecrd.metadata.iam import InlinePolicyRecord, Owner
from ecrd.metadata.store import MetadataStore
from ecrd.services.iam.constraints import NAME, POLICY_PATH, check_text
from ecrd.services.iam.documents import identity_document
from ecrd.services.iam.entities import owner_named
from ecrd.services.iam.limits import (
    GROUP_INLINE_POLICY_SIZE,
    MARKERS,
    MAX_ATTACHED_POLICIES,
    ROLE_INLINE_POLICY_SIZE,
    USER_INLINE_POLICY_SIZE,
    policy_size,
)
from ecrd.services.iam.policies import POLICY_ARN, resolve_policy

__all__ = ["AttachedPolicy", "Owner", "PermissionService"]


# IAM's quotas by kind of owner: all its inline policies' size together, and its quota's name for attachments.
_INLINE_SIZE: Final[dict[Owner, int]] = {
    "user": USER_INLINE_POLICY_SIZE,
    "role": ROLE_INLINE_POLICY_SIZE,
    "group": GROUP_INLINE_POLICY_SIZE,
}
_ATTACHMENT_QUOTA: Final[dict[Owner, str]] = {
    "user": "PoliciesPerUser",
    "role": "PoliciesPerRole",
    "group": "PoliciesPerGroup",
}


@dataclass(frozen=True, slots=True)
class AttachedPolicy:
    name: str
    arn: str


class PermissionService:
    def __init__(self, store: MetadataStore, *, account_id: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.account_id = account_id
        self.clock = clock

    # Each IAM operation (PutUserPolicy, PutRolePolicy, …) has its entry point here, named after it; the work
    # is done once, for a user or a role alike.

    # -- inline policies ----------------------------------------------------------------------------------

    def put_user_policy(self, user_name: str, policy_name: str, document: str) -> None:
        self.put_inline_policy("user", user_name, policy_name, document)

    def get_user_policy(self, user_name: str, policy_name: str) -> InlinePolicyRecord:
        return self.get_inline_policy("user", user_name, policy_name)

    def list_user_policies(
        self, user_name: str, *, marker: str | None = None, max_items: int | None = None
    ) -> Page[str]:
        return self.list_inline_policies("user", user_name, marker=marker, max_items=max_items)

    def delete_user_policy(self, user_name: str, policy_name: str) -> None:
        self.delete_inline_policy("user", user_name, policy_name)

    def put_role_policy(self, role_name: str, policy_name: str, document: str) -> None:
        self.put_inline_policy("role", role_name, policy_name, document)

    def get_role_policy(self, role_name: str, policy_name: str) -> InlinePolicyRecord:
        return self.get_inline_policy("role", role_name, policy_name)

    def list_role_policies(
        self, role_name: str, *, marker: str | None = None, max_items: int | None = None
    ) -> Page[str]:
        return self.list_inline_policies("role", role_name, marker=marker, max_items=max_items)

    def delete_role_policy(self, role_name: str, policy_name: str) -> None:
        self.delete_inline_policy("role", role_name, policy_name)

    def put_inline_policy(self, owner: Owner, owner_name: str, policy_name: str, document: str) -> None:
        check_text(policy_name, "policyName", NAME, 1, 128)
        identity_document(document)
        limit = _INLINE_SIZE[owner]
        with self.store.write() as conn:
            owner_id, name = owner_named(conn, owner, owner_name, account_id=self.account_id, for_update=True)
            others = [p for p in q.list_inline_policies(conn, owner, owner_id) if p.name.lower() != policy_name.lower()]
            if sum(policy_size(p.document) for p in others) + policy_size(document) > limit:
                raise LimitExceeded(f"Maximum policy size of {limit} bytes exceeded for {owner} {name}")
            q.put_inline_policy(conn, owner, owner_id, policy_name, document)

    def get_inline_policy(self, owner: Owner, owner_name: str, policy_name: str) -> InlinePolicyRecord:
        with self.store.read() as conn:
            owner_id, _ = owner_named(conn, owner, owner_name, account_id=self.account_id)
            found = q.get_inline_policy(conn, owner, owner_id, policy_name)
        if found is None:
            raise NoSuchEntity(f"The {owner} policy with name {policy_name} cannot be found.")
        return found

    def list_inline_policies(
        self, owner: Owner, owner_name: str, *, marker: str | None = None, max_items: int | None = None
    ) -> Page[str]:
        with self.store.read() as conn:
            owner_id, _ = owner_named(conn, owner, owner_name, account_id=self.account_id)
            # An owner's inline policies fit in its size quota (at most 10 KiB of text): cut a page in memory.
            names = [p.name for p in q.list_inline_policies(conn, owner, owner_id)]
        return MARKERS.page_of(names, str.lower, marker, max_items)

    def delete_inline_policy(self, owner: Owner, owner_name: str, policy_name: str) -> None:
        with self.store.write() as conn:
            owner_id, _ = owner_named(conn, owner, owner_name, account_id=self.account_id, for_update=True)
            if not q.delete_inline_policy(conn, owner, owner_id, policy_name):
                raise NoSuchEntity(f"The {owner} policy with name {policy_name} cannot be found.")

    # -- attached managed policies ------------------------------------------------------------------------

    def attach_user_policy(self, user_name: str, policy_arn: str) -> None:
        self.attach_policy("user", user_name, policy_arn)

    def detach_user_policy(self, user_name: str, policy_arn: str) -> None:
        self.detach_policy("user", user_name, policy_arn)

    def list_attached_user_policies(
        self, user_name: str, *, path_prefix: str = "/", marker: str | None = None, max_items: int | None = None
    ) -> Page[AttachedPolicy]:
        return self.list_attached_policies(
            "user", user_name, path_prefix=path_prefix, marker=marker, max_items=max_items
        )

    def attach_role_policy(self, role_name: str, policy_arn: str) -> None:
        self.attach_policy("role", role_name, policy_arn)

    def detach_role_policy(self, role_name: str, policy_arn: str) -> None:
        self.detach_policy("role", role_name, policy_arn)

    def list_attached_role_policies(
        self, role_name: str, *, path_prefix: str = "/", marker: str | None = None, max_items: int | None = None
    ) -> Page[AttachedPolicy]:
        return self.list_attached_policies(
            "role", role_name, path_prefix=path_prefix, marker=marker, max_items=max_items
        )

    def attach_policy(self, owner: Owner, owner_name: str, policy_arn: str) -> None:
        with self.store.write() as conn:
            owner_id, _ = owner_named(conn, owner, owner_name, account_id=self.account_id, for_update=True)
            # Locking a customer policy's row keeps a concurrent DeletePolicy from passing its attachment check.
            policy = resolve_policy(conn, self.account_id, policy_arn, for_update=True)
            if policy is None:
                raise NoSuchEntity(f"Policy {policy_arn} does not exist or is not attachable.")
            ref = policy_arn if policy.aws_managed else policy.id
            if ref in {a.policy_ref for a in q.list_attachments(conn, owner, owner_id)}:
                return  # IAM: attaching an attached policy succeeds and changes nothing
            if q.count_attachments(conn, owner, owner_id) >= MAX_ATTACHED_POLICIES:
                raise LimitExceeded(f"Cannot exceed quota for {_ATTACHMENT_QUOTA[owner]}: {MAX_ATTACHED_POLICIES}")
            q.attach_policy(
                conn,
                owner,
                owner_id,
                policy_ref=ref,
                policy_id=None if policy.aws_managed else policy.id,
                at=self.clock(),
            )

    def detach_policy(self, owner: Owner, owner_name: str, policy_arn: str) -> None:
        with self.store.write() as conn:
            owner_id, _ = owner_named(conn, owner, owner_name, account_id=self.account_id, for_update=True)
            policy = resolve_policy(conn, self.account_id, policy_arn)
            ref = None if policy is None else policy_arn if policy.aws_managed else policy.id
            if ref is None or not q.detach_policy(conn, owner, owner_id, ref):
                raise NoSuchEntity(f"Policy {policy_arn} was not found.")

    def list_attached_policies(
        self,
        owner: Owner,
        owner_name: str,
        *,
        path_prefix: str = "/",
        marker: str | None = None,
        max_items: int | None = None,
    ) -> Page[AttachedPolicy]:
        check_text(path_prefix, "pathPrefix", POLICY_PATH, 1, 512)
        with self.store.read() as conn:
            owner_id, _ = owner_named(conn, owner, owner_name, account_id=self.account_id)
            attachments = q.list_attachments(conn, owner, owner_id)
        attached: list[AttachedPolicy] = []
        for attachment in attachments:
            if attachment.policy_id is None:
                match = POLICY_ARN.fullmatch(attachment.policy_ref)
                path, name = (match["path"], match["name"]) if match else ("/", attachment.policy_ref)
                arn = attachment.policy_ref
            else:
                path, name = attachment.path or "/", attachment.name or ""
                arn = f"arn:aws:iam::{self.account_id}:policy{path}{name}"
            if path.startswith(path_prefix):
                attached.append(AttachedPolicy(name, arn))
        # At most ten (MAX_ATTACHED_POLICIES): a page is cut in memory, by name (then ARN, as names may repeat).
        attached.sort(key=_attached_key)
        return MARKERS.page_of(attached, _attached_key, marker, max_items)


def _attached_key(policy: AttachedPolicy) -> tuple[str, str]:
    return policy.name.lower(), policy.arn
