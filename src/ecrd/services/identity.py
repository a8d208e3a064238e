"""Who is calling: the authenticator seam each door asks before anything else."""

from __future__ import annotations

from typing import Protocol

from ecrd.services.access import Caller


class RegistryAuthenticator(Protocol):
    def authenticate(self, authorization: str | None, *, source_ip: str, secure: bool) -> Caller:
        """The caller a data-plane request's Authorization header proves; raise AuthenticationError if none."""
        ...


class AccountRootAuthenticator:
    """Treats every request as the account root: only for registries that turned authentication off."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id

    def authenticate(self, authorization: str | None, *, source_ip: str, secure: bool) -> Caller:
        return Caller(
            arn=f"arn:aws:iam::{self.account_id}:root",
            account_id=self.account_id,
            user_id=self.account_id,
            is_root=True,
            source_ip=source_ip,
            secure_transport=secure,
        )
