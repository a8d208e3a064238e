"""The ECR API's account settings (GetAccountSetting, PutAccountSetting), each named after its API operation.
Reached through ``ecrd.aws.ecr``, whose ``OPERATIONS`` lists them.

The settings belong to the registry, not to a repository, so they are authorized on "*" as the registry's other
settings (the registry policy, the scanning configuration) are.
"""

from __future__ import annotations

from typing import Any

from ecrd.aws.context import AwsContext, Operation


def get_account_setting(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:GetAccountSetting", "*")
    name = params["name"]
    return {"name": name, "value": ctx.services.settings_service.get_account_setting(name)}


def put_account_setting(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:PutAccountSetting", "*")
    name = params["name"]
    return {"name": name, "value": ctx.services.settings_service.put_account_setting(name, params["value"])}


ACCOUNT_OPERATIONS: dict[str, Operation] = {
    "GetAccountSetting": get_account_setting,
    "PutAccountSetting": put_account_setting,
}
