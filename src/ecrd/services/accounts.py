"""The accounts one deployment serves: the default account (entered by the server at start) and the accounts an
operator makes (``ecrd account create``), each with its root's access key and, if given, its IAM account alias
(which ``ecrd.services.iam.aliases`` keeps afterwards, as IAM's CreateAccountAlias does).

An account is a 12-digit id, as AWS's are.
"""

from __future__ import annotations

import builtins
import re
import secrets
import time
from collections.abc import Callable
from typing import Final

from sqlalchemy.exc import IntegrityError

from ecrd.errors import EntityAlreadyExists, NoSuchEntity
from ecrd.metadata import accounts as q
from ecrd.metadata import iam as iam_q
from ecrd.metadata.accounts import Account
from ecrd.metadata.store import MetadataStore
from ecrd.services.iam.aliases import alias_taken, check_alias
from ecrd.services.iam.constraints import invalid
from ecrd.services.iam.identifiers import new_access_key_id, new_secret
from ecrd.services.secrets import SecretBox

__all__ = ["ACCOUNT_ID", "Account", "AccountService", "NewAccount"]

ACCOUNT_ID: Final = re.compile(r"[0-9]{12}")
# How often a random id may collide before giving up: with 10^12 ids, once is already unlikely.
_RANDOM_ID_TRIES: Final = 16

NewAccount = tuple[Account, str, str]
"""A made account, its root's access key id and secret access key (shown once)."""


def check_account_id(account_id: str) -> None:
    if ACCOUNT_ID.fullmatch(account_id) is None:
        raise invalid(account_id, "accountId", "Member must satisfy regular expression pattern: [0-9]{12}")


class AccountService:
    def __init__(
        self, store: MetadataStore, *, secret_box: SecretBox | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        """``secret_box`` seals the root keys ``create`` makes; without one the service reads and enters
        accounts only (``ecrd account list`` needs no master key)."""
        self.store = store
        self.secret_box = secret_box
        self.clock = clock

    def ensure(self, account_id: str) -> None:
        """Enter the account unless it is there: the server does for its default account at every start."""
        check_account_id(account_id)
        with self.store.write() as conn:
            q.insert_account_if_missing(conn, account_id, created_at=self.clock())

    def create(self, account_id: str | None = None, alias: str | None = None) -> NewAccount:
        """A new account (a random unused id when none is given) with its root's first access key."""
        if account_id is not None:
            check_account_id(account_id)
        if alias is not None:
            check_alias(alias)
        if account_id is not None:
            made = self._create(account_id, alias)
            if made is None:
                raise EntityAlreadyExists(f"The account {account_id} already exists.")
            return made
        for _ in range(_RANDOM_ID_TRIES):
            made = self._create(_random_account_id(), alias)
            if made is not None:
                return made
        raise EntityAlreadyExists("Could not find an unused account id: give one with --account-id.")

    def _create(self, account_id: str, alias: str | None) -> NewAccount | None:
        """Make the account ``account_id``; None when that id is taken."""
        if self.secret_box is None:
            raise ValueError("making an account needs the master key (secret_box) to seal its root's key")
        account = Account(account_id, alias, self.clock())
        key_id, secret = new_access_key_id("AKIA"), new_secret()
        try:
            with self.store.write() as conn:
                if q.get_account(conn, account_id) is not None:
                    return None
                if alias is not None and q.account_with_alias(conn, alias) is not None:
                    raise alias_taken(alias)
                q.insert_account(conn, account)
                iam_q.insert_access_key(
                    conn,
                    access_key_id=key_id,
                    account_id=account_id,
                    principal="root",
                    sealed_secret=self.secret_box.seal(secret, context=key_id),
                    created_at=account.created_at,
                )
        except IntegrityError:
            # A concurrent create took the id or the alias between the check and the insert: say which.
            with self.store.read() as conn:
                if alias is not None and q.account_with_alias(conn, alias) is not None:
                    raise alias_taken(alias) from None
            return None
        return account, key_id, secret

    # ``builtins.list``: in the class body, ``list`` is this method.
    def list(self) -> builtins.list[Account]:
        with self.store.read() as conn:
            return q.list_accounts(conn)

    def get(self, account_id: str) -> Account:
        with self.store.read() as conn:
            found = q.get_account(conn, account_id)
        if found is None:
            raise NoSuchEntity(f"The account {account_id} cannot be found.")
        return found

    def exists(self, account_id: str) -> bool:
        with self.store.read() as conn:
            return q.get_account(conn, account_id) is not None


def _random_account_id() -> str:
    # AWS account ids do not start with a zero in practice; neither do ours, so none reads as the default one.
    return str(secrets.randbelow(9 * 10**11) + 10**11)
