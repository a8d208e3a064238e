"""IAM's password rules: the default ones without a policy, and each setting of an account password policy."""

from __future__ import annotations

import pytest

from ecrd.domain.password_policy import PasswordPolicy, password_violations


@pytest.mark.parametrize(
    ("password", "lacking"),
    [
        ("Correct-Horse-7", []),
        ("Ab1!", ["at least 8 characters"]),
        ("alllowercase", ["at least three of: upper case letters, lower case letters, numbers, symbols"]),
        ("Alice-1234", ["a password other than the user name"]),
    ],
)
def test_without_a_policy_iams_default_rules_apply(password: str, lacking: list[str]) -> None:
    assert password_violations(None, password, "alice-1234") == lacking


@pytest.mark.parametrize(
    ("policy", "password", "lacking"),
    [
        (PasswordPolicy(), "sixsix", []),
        (PasswordPolicy(minimum_password_length=10), "short", ["at least 10 characters"]),
        (PasswordPolicy(require_symbols=True), "nosymbols", ["at least one of: symbols"]),
        (
            PasswordPolicy(require_numbers=True, require_uppercase_characters=True),
            "lower-only",
            ["at least one of: uppercase", "at least one of: numbers"],
        ),
        (PasswordPolicy(require_lowercase_characters=True), "UPPER1!", ["at least one of: lowercase"]),
    ],
)
def test_a_policy_asks_for_what_it_sets(policy: PasswordPolicy, password: str, lacking: list[str]) -> None:
    assert password_violations(policy, password, "someone") == lacking


def test_a_policy_expires_passwords_only_with_a_maximum_age() -> None:
    assert not PasswordPolicy().expire_passwords
    assert PasswordPolicy(max_password_age=90).expire_passwords
