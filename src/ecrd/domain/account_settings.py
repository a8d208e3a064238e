"""ECR's account settings (GetAccountSetting, PutAccountSetting): the names and values accepted, the defaults of a
registry that never chose, and which actions each registry policy scope governs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ecrd.errors import InvalidParameter

BASIC_SCAN_TYPE_VERSION: Final = "BASIC_SCAN_TYPE_VERSION"
REGISTRY_POLICY_SCOPE: Final = "REGISTRY_POLICY_SCOPE"

# ECR's registry permissions guide: with V1 "Amazon ECR only enforces the following permissions at the private
# registry level" (replication, pull through cache, and creating the repositories they fill); with V2 "Amazon ECR
# allows all ECR actions in the policy and enforces the registry policy in all ECR requests".
V1_REGISTRY_ACTIONS: Final = frozenset({"ecr:replicateimage", "ecr:batchimportupstreamimage", "ecr:createrepository"})
V2_SERVICE: Final = "ecr"


@dataclass(frozen=True, slots=True)
class AccountSetting:
    name: str
    values: tuple[str, ...]
    # ECR: "All new customer registries are opted into" AWS native basic scanning, and "New ECR accounts will
    # automatically use registry policy v2"; every ecrd registry is such a new registry.
    default: str


SETTINGS: Final = {
    # The model (and the API reference since Clair's retirement): "Valid value for basic scan type: AWS_NATIVE".
    BASIC_SCAN_TYPE_VERSION: AccountSetting(BASIC_SCAN_TYPE_VERSION, ("AWS_NATIVE",), "AWS_NATIVE"),
    REGISTRY_POLICY_SCOPE: AccountSetting(REGISTRY_POLICY_SCOPE, ("V1", "V2"), "V2"),
}


def account_setting(name: str) -> AccountSetting:
    """The setting called ``name`` (names are exact: ECR's are upper case)."""
    setting = SETTINGS.get(name)
    if setting is None:
        names = ", ".join(sorted(SETTINGS))
        raise InvalidParameter(
            f"Invalid parameter at 'name' failed to satisfy constraint: 'Account setting name must be one of [{names}]'"
        )
    return setting


def default_value(name: str) -> str:
    return account_setting(name).default


def check_account_setting(name: str, value: str) -> AccountSetting:
    setting = account_setting(name)
    if value not in setting.values:
        raise InvalidParameter(
            f"Invalid parameter at 'value' failed to satisfy constraint: 'Value for {name} must be one of "
            f"[{', '.join(setting.values)}]'"
        )
    return setting


def registry_policy_governs(scope: str, action: str) -> bool:
    """Whether the registry policy takes part in deciding ``action`` under ``scope`` (IAM action names are
    case-insensitive)."""
    folded = action.lower()
    if scope == "V1":
        return folded in V1_REGISTRY_ACTIONS
    return folded.startswith(V2_SERVICE + ":")
