"""IAM groups through boto3 on SQLite and PostgreSQL: their life, their members, and the policies they give them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecrd.app import Registry
from ecrd.policy.managed import READ_ONLY
from tests.integration.test_ecr_api import client_for


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _policy(action: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]})


def _user_with_key(iam: Any, name: str) -> dict[str, str]:
    iam.create_user(UserName=name)
    key: dict[str, str] = iam.create_access_key(UserName=name)["AccessKey"]
    return key


def test_a_group_is_created_read_listed_renamed_and_deleted_as_iam_does(endpoint: str, registry: Registry) -> None:
    # given the account root's IAM client
    iam = client_for(endpoint, "iam")
    account = registry.settings.account_id

    # when a group is created under a path
    group = iam.create_group(GroupName="Devs", Path="/teams/")["Group"]

    # then it has IAM's shape, and its name is taken whatever its case
    assert group["Arn"] == f"arn:aws:iam::{account}:group/teams/Devs"
    assert group["GroupId"].startswith("AGPA")
    with pytest.raises(ClientError) as taken:
        iam.create_group(GroupName="devs")
    assert _code(taken) == "EntityAlreadyExists"
    assert iam.get_group(GroupName="devs")["Group"] == group
    assert [g["GroupName"] for g in iam.list_groups(PathPrefix="/teams/")["Groups"]] == ["Devs"]
    assert iam.list_groups(PathPrefix="/other/")["Groups"] == []

    # and renamed, it answers to its new name only
    iam.update_group(GroupName="Devs", NewGroupName="Builders", NewPath="/eng/")
    assert iam.get_group(GroupName="Builders")["Group"]["Arn"] == f"arn:aws:iam::{account}:group/eng/Builders"
    with pytest.raises(ClientError) as gone:
        iam.get_group(GroupName="Devs")
    assert _code(gone) == "NoSuchEntity"

    # and deleted, it is gone
    iam.delete_group(GroupName="Builders")
    assert iam.list_groups()["Groups"] == []


def test_members_join_and_leave_and_hold_back_deletes_until_they_do(endpoint: str) -> None:
    # given a group and two users
    iam = client_for(endpoint, "iam")
    iam.create_group(GroupName="devs")
    iam.create_user(UserName="alice")
    iam.create_user(UserName="bob")

    # when both join (alice twice: IAM changes nothing the second time)
    iam.add_user_to_group(GroupName="devs", UserName="alice")
    iam.add_user_to_group(GroupName="devs", UserName="alice")
    iam.add_user_to_group(GroupName="devs", UserName="bob")

    # then GetGroup lists them by name, a page at a time, and each user lists the group
    first = iam.get_group(GroupName="devs", MaxItems=1)
    assert ([u["UserName"] for u in first["Users"]], first["IsTruncated"]) == (["alice"], True)
    rest = iam.get_group(GroupName="devs", Marker=first["Marker"])
    assert ([u["UserName"] for u in rest["Users"]], rest["IsTruncated"]) == (["bob"], False)
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="bob")["Groups"]] == ["devs"]

    # and neither the group nor a member can be deleted while the membership stands
    with pytest.raises(ClientError) as group_in_use:
        iam.delete_group(GroupName="devs")
    assert _code(group_in_use) == "DeleteConflict"
    with pytest.raises(ClientError) as user_in_group:
        iam.delete_user(UserName="bob")
    assert _code(user_in_group) == "DeleteConflict"

    # and once they leave, both can go; leaving twice is an error
    iam.remove_user_from_group(GroupName="devs", UserName="alice")
    iam.remove_user_from_group(GroupName="devs", UserName="bob")
    with pytest.raises(ClientError) as not_member:
        iam.remove_user_from_group(GroupName="devs", UserName="bob")
    assert _code(not_member) == "NoSuchEntity"
    assert iam.list_groups_for_user(UserName="bob")["Groups"] == []
    iam.delete_user(UserName="bob")
    iam.delete_group(GroupName="devs")


def test_a_groups_policies_apply_to_its_members_only_while_they_are_members(endpoint: str) -> None:
    # given a user without policies of its own, and a group
    iam = client_for(endpoint, "iam")
    key = _user_with_key(iam, "carol")
    carol_ecr = client_for(endpoint, "ecr", key["AccessKeyId"], key["SecretAccessKey"])
    iam.create_group(GroupName="readers")
    iam.add_user_to_group(GroupName="readers", UserName="carol")
    with pytest.raises(ClientError) as denied:
        carol_ecr.describe_repositories()
    assert _code(denied) == "AccessDeniedException"

    # when the group gets an inline policy, its member may do what it allows
    iam.put_group_policy(GroupName="readers", PolicyName="describe", PolicyDocument=_policy("ecr:DescribeRepositories"))
    assert carol_ecr.describe_repositories()["repositories"] == []
    assert iam.list_group_policies(GroupName="readers")["PolicyNames"] == ["describe"]
    stored = iam.get_group_policy(GroupName="READERS", PolicyName="describe")
    assert (stored["GroupName"], stored["PolicyDocument"]["Statement"][0]["Action"]) == (
        "readers",
        "ecr:DescribeRepositories",
    )

    # then, the inline policy gone, an attached managed policy gives the same, and counts as an attachment
    iam.delete_group_policy(GroupName="readers", PolicyName="describe")
    with pytest.raises(ClientError):
        carol_ecr.describe_repositories()
    created = iam.create_policy(PolicyName="describe", PolicyDocument=_policy("ecr:DescribeRepositories"))["Policy"]
    iam.attach_group_policy(GroupName="readers", PolicyArn=created["Arn"])
    iam.attach_group_policy(GroupName="readers", PolicyArn=READ_ONLY.arn)
    assert carol_ecr.describe_repositories()["repositories"] == []
    assert iam.get_policy(PolicyArn=created["Arn"])["Policy"]["AttachmentCount"] == 1
    assert iam.get_policy(PolicyArn=READ_ONLY.arn)["Policy"]["AttachmentCount"] == 1
    attached = iam.list_attached_group_policies(GroupName="readers")["AttachedPolicies"]
    assert {p["PolicyArn"] for p in attached} == {created["Arn"], READ_ONLY.arn}
    entities = iam.list_entities_for_policy(PolicyArn=created["Arn"])
    assert [g["GroupName"] for g in entities["PolicyGroups"]] == ["readers"]
    assert iam.list_entities_for_policy(PolicyArn=created["Arn"], EntityFilter="User")["PolicyGroups"] == []
    with pytest.raises(ClientError) as attached_policy:
        iam.delete_policy(PolicyArn=created["Arn"])
    assert _code(attached_policy) == "DeleteConflict"
    with pytest.raises(ClientError) as group_with_policies:
        iam.remove_user_from_group(GroupName="readers", UserName="carol")
        iam.delete_group(GroupName="readers")
    assert _code(group_with_policies) == "DeleteConflict"

    # and a user who left the group no longer has them
    with pytest.raises(ClientError) as left:
        carol_ecr.describe_repositories()
    assert _code(left) == "AccessDeniedException"
    iam.detach_group_policy(GroupName="readers", PolicyArn=created["Arn"])
    iam.detach_group_policy(GroupName="readers", PolicyArn=READ_ONLY.arn)
    iam.delete_policy(PolicyArn=created["Arn"])
    iam.delete_group(GroupName="readers")


def test_group_operations_are_authorized_on_the_group(endpoint: str, registry: Registry) -> None:
    # given a user allowed to read one group only
    iam = client_for(endpoint, "iam")
    account = registry.settings.account_id
    key = _user_with_key(iam, "dave")
    iam.create_group(GroupName="open")
    iam.create_group(GroupName="closed")
    iam.put_user_policy(
        UserName="dave",
        PolicyName="get-open",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "iam:GetGroup", "Resource": f"arn:aws:iam::{account}:group/open"}
                ],
            }
        ),
    )
    dave_iam = client_for(endpoint, "iam", key["AccessKeyId"], key["SecretAccessKey"])

    # when it reads both, then only the one its policy names answers
    assert dave_iam.get_group(GroupName="open")["Group"]["GroupName"] == "open"
    with pytest.raises(ClientError) as denied:
        dave_iam.get_group(GroupName="closed")
    assert _code(denied) == "AccessDenied"
    assert f"iam:GetGroup on resource: arn:aws:iam::{account}:group/closed" in str(denied.value)
    with pytest.raises(ClientError) as no_join:
        dave_iam.add_user_to_group(GroupName="open", UserName="dave")
    assert _code(no_join) == "AccessDenied"


def test_unknown_groups_and_users_answer_no_such_entity(endpoint: str) -> None:
    iam = client_for(endpoint, "iam")
    iam.create_group(GroupName="devs")
    for call in (
        lambda: iam.get_group(GroupName="nobody"),
        lambda: iam.delete_group(GroupName="nobody"),
        lambda: iam.add_user_to_group(GroupName="devs", UserName="nobody"),
        lambda: iam.list_groups_for_user(UserName="nobody"),
        lambda: iam.get_group_policy(GroupName="devs", PolicyName="none"),
        lambda: iam.detach_group_policy(GroupName="devs", PolicyArn=READ_ONLY.arn),
        lambda: iam.list_instance_profiles_for_role(RoleName="nobody"),
    ):
        with pytest.raises(ClientError) as missing:
            call()
        assert _code(missing) == "NoSuchEntity"


def test_a_role_is_in_no_instance_profile(endpoint: str) -> None:
    # given a role (ecrd has no EC2 instances, so no instance profiles)
    iam = client_for(endpoint, "iam")
    statement = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    trust = {"Version": "2012-10-17", "Statement": [statement]}
    iam.create_role(RoleName="worker", AssumeRolePolicyDocument=json.dumps(trust))

    # when Terraform asks which profiles hold it before deleting it, then none do
    answer = iam.list_instance_profiles_for_role(RoleName="worker")
    assert (answer["InstanceProfiles"], answer["IsTruncated"]) == ([], False)
