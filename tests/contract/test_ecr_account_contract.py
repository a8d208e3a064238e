"""GetAccountSetting and PutAccountSetting answer exactly the botocore model's output shapes (checked on the raw
JSON, before botocore's lenient parser sees it), and their errors are among the model's."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecrd.aws import ecr as ecr_operations
from ecrd.aws.ecr_account import ACCOUNT_OPERATIONS
from ecrd.aws.models import service_model
from tests.contract import test_ecr_contract

# boto3 on the in-process registry, each raw response checked against the model.
checked_ecr = test_ecr_contract.checked_ecr


def test_the_account_setting_operations_are_in_the_model_and_served() -> None:
    assert set(ACCOUNT_OPERATIONS) <= set(service_model("ecr").operation_names)
    assert set(ACCOUNT_OPERATIONS) <= set(ecr_operations.OPERATIONS)


def test_every_answer_matches_the_model(checked_ecr: tuple[Any, list[str], set[str]]) -> None:
    ecr, problems, seen = checked_ecr
    for name, value in (("REGISTRY_POLICY_SCOPE", "V1"), ("BASIC_SCAN_TYPE_VERSION", "AWS_NATIVE")):
        ecr.get_account_setting(name=name)
        ecr.put_account_setting(name=name, value=value)
        ecr.get_account_setting(name=name)
    for operation, params in (
        (ecr.put_account_setting, {"name": "REGISTRY_POLICY_SCOPE", "value": "V9"}),
        (ecr.get_account_setting, {"name": "UNKNOWN"}),
    ):
        with pytest.raises(ClientError) as refused:
            operation(**params)
        code = refused.value.response["Error"]["Code"]
        model = service_model("ecr").operation_model(refused.value.operation_name)
        assert code in {shape.name for shape in model.error_shapes}
    assert problems == []
    assert seen == set(ACCOUNT_OPERATIONS)
