"""Principals by ARN: the ARN of the root, a user or a role (the resource an IAM action is authorized on), and
whether an ARN that a policy names stands for an existing user or role."""

from __future__ import annotations

import time
from collections.abc import Callable

from ecrd.metadata import iam as q
from ecrd.metadata.store import MetadataStore


class Principals:
    def __init__(self, store: MetadataStore, *, account_id: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.account_id = account_id
        self.clock = clock

    @property
    def root_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:root"

    def root_created_at(self) -> float:
        """When the account root got its first access key: what ecrd knows of the root's creation date."""
        with self.store.read() as conn:
            keys = q.list_access_keys(conn, None)
        return min((key.created_at for key in keys), default=self.clock())

    def user_arn(self, name: str) -> str:
        """The ARN a user has, or would have at the root path: the resource to authorize an action on."""
        with self.store.read() as conn:
            user = q.get_user(conn, name)
        return user.arn(self.account_id) if user else f"arn:aws:iam::{self.account_id}:user/{name}"

    def role_arn(self, name: str) -> str:
        with self.store.read() as conn:
            role = q.get_role(conn, name)
        return role.arn(self.account_id) if role else f"arn:aws:iam::{self.account_id}:role/{name}"

    def principal_exists(self, arn: str) -> bool:
        """Whether an IAM user or role ARN of this account names an existing entity (path included)."""
        prefix = f"arn:aws:iam::{self.account_id}:"
        if not arn.startswith(prefix):
            return True  # other accounts' principals cannot be checked here
        kind, _, rest = arn[len(prefix):].partition("/")
        if kind not in ("user", "role"):
            return True  # the account itself
        name = rest.rsplit("/", 1)[-1]
        with self.store.read() as conn:
            found = q.get_user(conn, name) if kind == "user" else q.get_role(conn, name)
        return found is not None and found.arn(self.account_id) == arn
