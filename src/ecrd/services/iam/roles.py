"""IAM roles and their trust policies: create, read, list, change, tag, delete.

A trust policy is checked as IAM checks it: a resource policy for STS actions only, without Resource, whose
users and roles of this account exist. Who may then assume the role is decided in ``sessions``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Final

from sqlalchemy import Connection

from ecrd.domain.pages import Page
from ecrd.errors import EntityAlreadyExists, LimitExceeded, MalformedPolicyDocument
from ecrd.metadata import iam as q
from ecrd.metadata.iam import RoleRecord, Tags
from ecrd.metadata.store import MetadataStore
from ecrd.policy.document import PolicyDocument, parse_policy
from ecrd.services.iam.constraints import NAME, PATH, check_description, check_range, check_text
from ecrd.services.iam.entities import (
    PrincipalDeleted,
    creating,
    list_entities,
    named_principal_exists,
    refuse_delete_with_policies,
    refuse_taken_or_over_quota,
    role_named,
)
from ecrd.services.iam.identifiers import unique_id
from ecrd.services.iam.limits import (
    MAX_ROLES,
    ROLE_SESSION_DEFAULT,
    ROLE_SESSION_MAX,
    TRUST_POLICY_SIZE,
    policy_size,
)
from ecrd.services.iam.tags import check_tags, tag_entity, untag_entity

__all__ = ["ROLE_ARN", "RoleRecord", "RoleService"]

ROLE_ARN: Final = re.compile(r"arn:aws:iam::(?P<account>[0-9]{12}):role(?P<path>/(?:.*/)?)(?P<name>[^/]+)")


class RoleService:
    def __init__(
        self,
        store: MetadataStore,
        *,
        account_id: str,
        on_principal_deleted: list[PrincipalDeleted],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.account_id = account_id
        self.on_principal_deleted = on_principal_deleted
        self.clock = clock

    def _trust_policy(self, conn: Connection, text: str) -> PolicyDocument:
        """Validate a role's trust policy as IAM does: a resource policy for sts actions, without Resource,
        whose IAM principals exist (in this account, or in another account this deployment serves)."""
        if policy_size(text) > TRUST_POLICY_SIZE:
            raise LimitExceeded(f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_SIZE}")
        if not text.strip():
            raise MalformedPolicyDocument("Syntax errors in policy.")
        document = parse_policy(text, kind="resource")
        for statement in document.statements:
            if statement.resources is not None or statement.not_resources is not None:
                raise MalformedPolicyDocument("Has prohibited field Resource")
            for action in statement.actions or ():
                if not action.lower().startswith("sts:"):
                    raise MalformedPolicyDocument("AssumeRole policy may only specify STS AssumeRole actions.")
            for entry in statement.principals.aws if statement.principals else ():
                # IAM checks that the users and roles a trust policy names exist ("Invalid principal").
                if not named_principal_exists(conn, entry, account_id=self.account_id):
                    raise MalformedPolicyDocument(f'Invalid principal in policy: "AWS":"{entry}"')
        return document

    def create_role(
        self,
        name: str,
        assume_role_policy: str,
        *,
        path: str = "/",
        description: str = "",
        max_session_duration: int = ROLE_SESSION_DEFAULT,
        tags: Sequence[tuple[str, str]] = (),
    ) -> RoleRecord:
        check_text(name, "roleName", NAME, 1, 64)
        check_text(path, "path", PATH, 1, 512)
        check_description(description)
        check_range(max_session_duration, "maxSessionDuration", ROLE_SESSION_DEFAULT, ROLE_SESSION_MAX)
        role = RoleRecord(
            id=unique_id("AROA"),
            name=name,
            path=path,
            created_at=self.clock(),
            description=description,
            max_session_duration=max_session_duration,
            assume_role_policy=assume_role_policy,
            tags=check_tags(tags),
        )
        exists = EntityAlreadyExists(f"Role with name {name} already exists.")
        with creating(self.store, exists) as conn:
            self._trust_policy(conn, assume_role_policy)
            taken = q.get_role(conn, name, account_id=self.account_id)
            refuse_taken_or_over_quota(
                conn, exists, taken, q.count_roles, "RolesPerAccount", MAX_ROLES, account_id=self.account_id
            )
            q.insert_role(conn, role, account_id=self.account_id)
        return role

    def get_role(self, name: str) -> RoleRecord:
        with self.store.read() as conn:
            return role_named(conn, name, account_id=self.account_id)

    def list_roles(
        self, *, path_prefix: str = "/", marker: str | None = None, max_items: int | None = None
    ) -> Page[RoleRecord]:
        return list_entities(self.store, q.list_roles, path_prefix, marker, max_items, account_id=self.account_id)

    def update_role(
        self, name: str, *, description: str | None = None, max_session_duration: int | None = None
    ) -> None:
        values: dict[str, object] = {}
        if description is not None:
            check_description(description)
            values["description"] = description
        if max_session_duration is not None:
            check_range(max_session_duration, "maxSessionDuration", ROLE_SESSION_DEFAULT, ROLE_SESSION_MAX)
            values["max_session_duration"] = max_session_duration
        with self.store.write() as conn:
            role = role_named(conn, name, account_id=self.account_id, for_update=True)
            q.update_role(conn, role.id, **values)

    def update_assume_role_policy(self, name: str, document: str) -> None:
        with self.store.write() as conn:
            role = role_named(conn, name, account_id=self.account_id, for_update=True)
            self._trust_policy(conn, document)
            q.update_role(conn, role.id, assume_role_policy=document)

    def delete_role(self, name: str) -> None:
        with self.store.write() as conn:
            role = role_named(conn, name, account_id=self.account_id, for_update=True)
            refuse_delete_with_policies(conn, "role", role.id)
            # The role's sessions end with it (foreign key cascade on their credentials).
            q.delete_role(conn, role.id)
        for hook in self.on_principal_deleted:
            hook(role.arn(self.account_id), role.id)

    def tag_role(self, name: str, tags: Sequence[tuple[str, str]]) -> None:
        tag_entity(self.store, "role", name, tags, account_id=self.account_id)

    def untag_role(self, name: str, keys: Sequence[str]) -> None:
        untag_entity(self.store, "role", name, keys, account_id=self.account_id)

    def list_role_tags(self, name: str) -> Tags:
        return self.get_role(name).tags
