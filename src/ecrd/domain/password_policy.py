"""The account password policy of IAM: its settings and the rule a new console password must pass.

IAM's documentation ("Set an account password policy for IAM users") gives the settings and their ranges; with
no custom policy set, IAM's default rules apply: at least 8 characters, of at least three of the four kinds
(upper case, lower case, numbers, symbols), and not the user's name. Pure: no I/O.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Final

# IAM's "non-alphanumeric characters" for RequireSymbols.
SYMBOLS: Final = frozenset("!@#$%^&*()_+-=[]{}|'")
MIN_LENGTH_RANGE: Final = (6, 128)
MAX_AGE_RANGE: Final = (1, 1095)
REUSE_RANGE: Final = (1, 24)
VIOLATION: Final = "Password does not conform to the account password policy."


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """IAM's PasswordPolicy structure; ``max_password_age`` and ``password_reuse_prevention`` 0 mean unset."""

    minimum_password_length: int = 6
    require_symbols: bool = False
    require_numbers: bool = False
    require_uppercase_characters: bool = False
    require_lowercase_characters: bool = False
    allow_users_to_change_password: bool = False
    max_password_age: int = 0
    password_reuse_prevention: int = 0
    hard_expiry: bool = False

    @property
    def expire_passwords(self) -> bool:
        return self.max_password_age > 0


def _kinds(password: str) -> dict[str, bool]:
    return {
        "uppercase": any(c in string.ascii_uppercase for c in password),
        "lowercase": any(c in string.ascii_lowercase for c in password),
        "numbers": any(c in string.digits for c in password),
        "symbols": any(c in SYMBOLS for c in password),
    }


def password_violations(policy: PasswordPolicy | None, password: str, user_name: str) -> list[str]:
    """What ``password`` lacks under ``policy`` (None: IAM's default rules), in words a user can act on."""
    kinds = _kinds(password)
    if policy is None:
        found: list[str] = []
        if len(password) < 8:
            found.append("at least 8 characters")
        if sum(kinds.values()) < 3:
            found.append("at least three of: upper case letters, lower case letters, numbers, symbols")
        if password.lower() == user_name.lower():
            found.append("a password other than the user name")
        return found
    wanted = {
        "uppercase": policy.require_uppercase_characters,
        "lowercase": policy.require_lowercase_characters,
        "numbers": policy.require_numbers,
        "symbols": policy.require_symbols,
    }
    found = (
        [f"at least {policy.minimum_password_length} characters"]
        if len(password) < policy.minimum_password_length
        else []
    )
    found.extend(f"at least one of: {kind}" for kind, required in wanted.items() if required and not kinds[kind])
    return found
