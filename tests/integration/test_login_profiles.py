"""IAM console passwords through boto3 on SQLite and PostgreSQL: login profiles, ChangePassword and the account
password policy, with IAM's shapes, errors and rules."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecrd.app import Registry
from tests.integration.test_ecr_api import client_for, error_code

STRONG = "Correct-Horse-7"


def _user_with_key(iam: Any, name: str) -> dict[str, str]:
    iam.create_user(UserName=name)
    key: dict[str, str] = iam.create_access_key(UserName=name)["AccessKey"]
    return key


def test_a_login_profile_is_created_read_updated_and_deleted_as_iam_does(endpoint: str, registry: Registry) -> None:
    # given a user
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="alice")

    # when it is given a console password
    created = iam.create_login_profile(UserName="alice", Password=STRONG, PasswordResetRequired=True)["LoginProfile"]

    # then IAM's shape comes back, and only once per user
    assert created["UserName"] == "alice"
    assert created["PasswordResetRequired"] is True
    assert iam.get_login_profile(UserName="ALICE")["LoginProfile"] == created
    with pytest.raises(ClientError) as twice:
        iam.create_login_profile(UserName="alice", Password=STRONG)
    assert error_code(twice) == "EntityAlreadyExists"

    # and the password signs in, and only it
    signed_in = registry.identity.login_profiles.sign_in("alice", STRONG)
    assert signed_in is not None and signed_in.must_change_password
    assert registry.identity.login_profiles.sign_in("alice", STRONG + "x") is None
    assert registry.identity.login_profiles.sign_in("nobody", STRONG) is None

    # and an update changes the password and the reset flag
    iam.update_login_profile(UserName="alice", Password="Another-Pass-8", PasswordResetRequired=False)
    assert iam.get_login_profile(UserName="alice")["LoginProfile"]["PasswordResetRequired"] is False
    assert registry.identity.login_profiles.sign_in("alice", STRONG) is None
    assert registry.identity.login_profiles.sign_in("alice", "Another-Pass-8") is not None

    # and the user cannot be deleted while it has one
    with pytest.raises(ClientError) as held:
        iam.delete_user(UserName="alice")
    assert error_code(held) == "DeleteConflict"
    assert "login profile" in str(held.value)

    # and deleted, it is gone
    iam.delete_login_profile(UserName="alice")
    with pytest.raises(ClientError) as gone:
        iam.get_login_profile(UserName="alice")
    assert error_code(gone) == "NoSuchEntity"
    iam.delete_user(UserName="alice")


def test_without_a_policy_iam_default_rules_refuse_a_weak_password(endpoint: str) -> None:
    # given a user and no account password policy
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="bob")
    with pytest.raises(ClientError) as none:
        iam.get_account_password_policy()
    assert error_code(none) == "NoSuchEntity"

    # when its password is short, of one kind, or its name
    for weak in ("Ab1!", "alllowercaseletters", "Bob"):
        with pytest.raises(ClientError) as refused:
            iam.create_login_profile(UserName="bob", Password=weak)
        # then IAM's error says so
        assert error_code(refused) == "PasswordPolicyViolation"


def test_the_account_password_policy_is_set_read_enforced_and_deleted(endpoint: str) -> None:
    # given a policy asking for 12 characters with symbols, and remembering 2 passwords
    iam = client_for(endpoint, "iam")
    iam.update_account_password_policy(
        MinimumPasswordLength=12, RequireSymbols=True, PasswordReusePrevention=2, AllowUsersToChangePassword=True
    )

    # then it reads back as IAM shows it, the settings left out at their defaults
    policy = iam.get_account_password_policy()["PasswordPolicy"]
    assert policy["MinimumPasswordLength"] == 12
    assert policy["RequireSymbols"] is True
    assert policy["RequireNumbers"] is False
    assert policy["ExpirePasswords"] is False
    assert policy["PasswordReusePrevention"] == 2
    assert "MaxPasswordAge" not in policy

    # and a password breaking it is refused, one keeping it accepted
    iam.create_user(UserName="carol")
    with pytest.raises(ClientError) as short:
        iam.create_login_profile(UserName="carol", Password="nosymbolsatall12")
    assert error_code(short) == "PasswordPolicyViolation"
    iam.create_login_profile(UserName="carol", Password="long-enough-1!")

    # and the user changes its own password (AllowUsersToChangePassword), not to one it used
    key = iam.create_access_key(UserName="carol")["AccessKey"]
    own = client_for(endpoint, "iam", key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(ClientError) as wrong_old:
        own.change_password(OldPassword="not-it-at-all!", NewPassword="another-one-2!")
    assert error_code(wrong_old) == "AccessDenied"
    own.change_password(OldPassword="long-enough-1!", NewPassword="another-one-2!")
    with pytest.raises(ClientError) as reused:
        own.change_password(OldPassword="another-one-2!", NewPassword="long-enough-1!")
    assert error_code(reused) == "PasswordPolicyViolation"

    # and deleted, the policy is gone
    iam.delete_account_password_policy()
    with pytest.raises(ClientError) as gone:
        iam.delete_account_password_policy()
    assert error_code(gone) == "NoSuchEntity"


def test_a_user_without_permission_cannot_change_its_password_nor_another_users(endpoint: str) -> None:
    # given two users, one with a password, and no policy letting users change theirs
    iam = client_for(endpoint, "iam")
    key = _user_with_key(iam, "dave")
    iam.create_login_profile(UserName="dave", Password=STRONG)
    iam.create_user(UserName="erin")
    dave = client_for(endpoint, "iam", key["AccessKeyId"], key["SecretAccessKey"])

    # when dave changes its password, or gives erin one
    with pytest.raises(ClientError) as own:
        dave.change_password(OldPassword=STRONG, NewPassword="Another-Pass-8")
    with pytest.raises(ClientError) as other:
        dave.create_login_profile(UserName="erin", Password=STRONG)

    # then both are denied by name
    assert error_code(own) == "AccessDenied" and "iam:ChangePassword" in str(own.value)
    assert error_code(other) == "AccessDenied" and "iam:CreateLoginProfile" in str(other.value)

    # and the root, which has no login profile, cannot change one
    with pytest.raises(ClientError) as root:
        iam.change_password(OldPassword=STRONG, NewPassword="Another-Pass-8")
    assert error_code(root) == "InvalidUserType"
