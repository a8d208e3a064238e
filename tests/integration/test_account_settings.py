"""GetAccountSetting and PutAccountSetting through boto3 on the live server, on both metadata back ends: the
settings are kept, and REGISTRY_POLICY_SCOPE decides which actions a registry policy may name and grants."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import text

from ecrd.app import Registry
from ecrd.metadata.repositories import get_registry_setting, set_registry_setting
from ecrd.metadata.store import MetadataStore
from tests.integration.test_ecr_api import client_for, error_code

ACCOUNT = "000000000000"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
INVALID_REGISTRY_POLICY = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'"
)


@pytest.fixture
def bob(endpoint: str) -> Any:
    """The ECR client of an IAM user with no policies of its own."""
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="bob")
    key = iam.create_access_key(UserName="bob")["AccessKey"]
    return client_for(endpoint, "ecr", key["AccessKeyId"], key["SecretAccessKey"])


def _registry_policy(*actions: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": list(actions), "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _refusal(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as refused:
        call(**params)
    return error_code(refused), str(refused.value.response["Error"]["Message"])


def test_a_registry_that_never_chose_answers_ecrs_defaults(ecr: Any) -> None:
    scope = ecr.get_account_setting(name="REGISTRY_POLICY_SCOPE")
    assert (scope["name"], scope["value"]) == ("REGISTRY_POLICY_SCOPE", "V2")
    scan = ecr.get_account_setting(name="BASIC_SCAN_TYPE_VERSION")
    assert (scan["name"], scan["value"]) == ("BASIC_SCAN_TYPE_VERSION", "AWS_NATIVE")


def test_a_setting_put_is_answered_and_read_back(ecr: Any) -> None:
    put = ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
    assert (put["name"], put["value"]) == ("REGISTRY_POLICY_SCOPE", "V1")
    assert ecr.get_account_setting(name="REGISTRY_POLICY_SCOPE")["value"] == "V1"
    ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V2")
    assert ecr.get_account_setting(name="REGISTRY_POLICY_SCOPE")["value"] == "V2"
    assert ecr.put_account_setting(name="BASIC_SCAN_TYPE_VERSION", value="AWS_NATIVE")["value"] == "AWS_NATIVE"
    assert ecr.get_account_setting(name="BASIC_SCAN_TYPE_VERSION")["value"] == "AWS_NATIVE"


def test_names_and_values_ecr_does_not_accept_are_invalid_parameters(ecr: Any) -> None:
    assert _refusal(ecr.put_account_setting, name="REGISTRY_POLICY_SCOPE", value="V3") == (
        "InvalidParameterException",
        "Invalid parameter at 'value' failed to satisfy constraint: 'Value for REGISTRY_POLICY_SCOPE must be one "
        "of [V1, V2]'",
    )
    assert _refusal(ecr.put_account_setting, name="BASIC_SCAN_TYPE_VERSION", value="CLAIR")[0] == (
        "InvalidParameterException"
    )
    assert _refusal(ecr.get_account_setting, name="NO_SUCH_SETTING") == (
        "InvalidParameterException",
        "Invalid parameter at 'name' failed to satisfy constraint: 'Account setting name must be one of "
        "[BASIC_SCAN_TYPE_VERSION, REGISTRY_POLICY_SCOPE]'",
    )
    # Nothing refused was stored.
    assert ecr.get_account_setting(name="REGISTRY_POLICY_SCOPE")["value"] == "V2"


def test_a_caller_without_the_action_is_denied_with_awss_message(bob: Any) -> None:
    for call, action, params in (
        (bob.get_account_setting, "ecr:GetAccountSetting", {"name": "REGISTRY_POLICY_SCOPE"}),
        (bob.put_account_setting, "ecr:PutAccountSetting", {"name": "REGISTRY_POLICY_SCOPE", "value": "V1"}),
    ):
        assert _refusal(call, **params) == (
            "AccessDeniedException",
            f"User: {BOB} is not authorized to perform: {action} on resource: * because no identity-based policy "
            f"allows the {action} action",
        )


def test_the_scope_decides_which_actions_the_registry_policy_grants(ecr: Any, bob: Any) -> None:
    # Given a registry policy granting bob, who has no policies of his own, to create and to describe
    ecr.put_registry_policy(policyText=_registry_policy("ecr:CreateRepository", "ecr:DescribeRepositories"))
    bob.create_repository(repositoryName="first")
    assert [r["repositoryName"] for r in bob.describe_repositories()["repositories"]] == ["first"]

    # When the registry goes back to V1, only the replication actions of the policy still count
    ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
    bob.create_repository(repositoryName="second")
    code, message = _refusal(bob.describe_repositories)
    assert code == "AccessDeniedException"
    assert "ecr:DescribeRepositories" in message
    # The stored policy is kept as it was written.
    assert json.loads(ecr.get_registry_policy()["policyText"])["Statement"][0]["Action"] == [
        "ecr:CreateRepository",
        "ecr:DescribeRepositories",
    ]

    # And back on V2 the whole policy applies again
    ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V2")
    assert len(bob.describe_repositories()["repositories"]) == 2


def test_under_v1_a_registry_policy_may_name_only_replication_actions(ecr: Any, bob: Any) -> None:
    # bob, whom the policies name, exists: ECR checks a policy's principals when it is set.
    ecr.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
    refused = _refusal(ecr.put_registry_policy, policyText=_registry_policy("ecr:ReplicateImage", "ecr:BatchGetImage"))
    assert refused == ("InvalidParameterException", INVALID_REGISTRY_POLICY)
    with pytest.raises(ClientError):
        ecr.get_registry_policy()
    for actions in (("ecr:ReplicateImage", "ecr:CreateRepository"), ("ecr:BatchImportUpstreamImage",), ("ecr:*",)):
        ecr.put_registry_policy(policyText=_registry_policy(*actions))


def test_under_v2_a_registry_policy_may_name_every_ecr_action_and_no_other(ecr: Any, bob: Any) -> None:
    # bob, whom the policies name, exists: ECR checks a policy's principals when it is set.
    ecr.put_registry_policy(policyText=_registry_policy("ecr:BatchGetImage", "ecr:PutImage", "ecr:CreateRepository"))
    assert _refusal(ecr.put_registry_policy, policyText=_registry_policy("ecr:BatchGetImage", "iam:CreateUser")) == (
        "InvalidParameterException",
        INVALID_REGISTRY_POLICY,
    )
    code, message = _refusal(ecr.put_registry_policy, policyText='{"Statement": "nope"}')
    assert code == "InvalidParameterException"
    assert message.startswith(INVALID_REGISTRY_POLICY)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_first_writes_of_a_setting_at_once_both_succeed(registry: Registry) -> None:
    # SQLite's writers queue at the write gate; PostgreSQL runs them side by side, which is the race.
    store, key = registry.store, "account_setting:REGISTRY_POLICY_SCOPE"
    failures: list[BaseException] = []

    def second_writer() -> None:
        try:
            with store.write() as conn:
                set_registry_setting(conn, registry.registries.default_id, key, "V2")
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    with store.write() as conn:
        set_registry_setting(conn, registry.registries.default_id, key, "V1")
        other = threading.Thread(target=second_writer)
        other.start()
        # Given the second writer waiting on the first one's uncommitted row
        deadline = time.monotonic() + 10
        while not _lock_waits(store):
            assert time.monotonic() < deadline, "the second writer never waited for the first"
            time.sleep(0.01)
    # When the first commits, then the second succeeds too, and its value is the one kept
    other.join(10)
    assert not other.is_alive() and failures == []
    with store.read() as conn:
        assert get_registry_setting(conn, registry.registries.default_id, key) == "V2"


def _lock_waits(store: MetadataStore) -> int:
    """Backends of this database waiting on a lock. Each look is a transaction of its own: PostgreSQL takes one
    snapshot of pg_stat_activity per transaction, so polling inside one would see the first answer forever."""
    with store.read() as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        return int(conn.execute(text(query)).scalar_one())
