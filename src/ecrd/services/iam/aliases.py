"""The account alias (CreateAccountAlias, ListAccountAliases, DeleteAccountAlias): a friendly name for the account,
kept on the account's row of ``accounts``. An account has at most one (IAM's AccountAliasesPerAccount quota), and
an alias names one account in the whole deployment, as in the whole of AWS."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Final

from sqlalchemy.exc import IntegrityError

from ecrd.domain.pages import Page
from ecrd.errors import EntityAlreadyExists, NoSuchEntity
from ecrd.metadata import accounts as q
from ecrd.metadata.store import MetadataStore
from ecrd.services.iam.constraints import invalid
from ecrd.services.iam.limits import MARKERS

# IAM's accountAliasType: 3 to 63 lower-case letters, digits and single hyphens, neither first nor last. The
# door's model check skips this pattern (RE2 has no lookahead): it is checked here.
ACCOUNT_ALIAS: Final = re.compile(r"[a-z0-9]([a-z0-9]|-(?!-)){1,61}[a-z0-9]")
_ALIAS_PATTERN_TEXT: Final = r"^[a-z0-9]([a-z0-9]|-(?!-)){1,61}[a-z0-9]$"


def check_alias(alias: str) -> None:
    """IAM's constraints on an account alias, in IAM's words."""
    if len(alias) < 3:
        raise invalid(alias, "accountAlias", "Member must have length greater than or equal to 3")
    if len(alias) > 63:
        raise invalid(alias, "accountAlias", "Member must have length less than or equal to 63")
    if ACCOUNT_ALIAS.fullmatch(alias) is None:
        raise invalid(alias, "accountAlias", f"Member must satisfy regular expression pattern: {_ALIAS_PATTERN_TEXT}")


def alias_taken(alias: str) -> EntityAlreadyExists:
    return EntityAlreadyExists(f"The account alias {alias} already exists.")


class AccountAliasService:
    """The alias of one account."""

    def __init__(self, store: MetadataStore, *, account_id: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.account_id = account_id
        self.clock = clock

    def create_account_alias(self, alias: str) -> None:
        """Give the account this alias, in place of the one it had (an account has at most one)."""
        check_alias(alias)
        try:
            with self.store.write() as conn:
                holder = q.account_with_alias(conn, alias)
                if holder is not None and holder.account_id != self.account_id:
                    raise alias_taken(alias)
                q.insert_account_if_missing(conn, self.account_id, created_at=self.clock())
                q.set_alias(conn, self.account_id, alias)
        except IntegrityError:
            # Another account took it between the check and the write.
            raise alias_taken(alias) from None

    def list_account_aliases(self, *, marker: str | None = None, max_items: int | None = None) -> Page[str]:
        with self.store.read() as conn:
            account = q.get_account(conn, self.account_id)
        aliases = [account.alias] if account is not None and account.alias is not None else []
        return MARKERS.page_of(aliases, lambda alias: alias, marker, max_items)

    def delete_account_alias(self, alias: str) -> None:
        check_alias(alias)
        with self.store.write() as conn:
            account = q.get_account(conn, self.account_id)
            if account is None or account.alias != alias:
                raise NoSuchEntity(f"The account alias {alias} cannot be found.")
            q.set_alias(conn, self.account_id, None)
