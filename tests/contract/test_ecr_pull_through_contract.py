"""The pull-through cache rule operations answer exactly the botocore model's output shapes (checked on the raw
JSON), with every member a rule can carry and with none of the optional ones; their errors are ones the model
lists for the operation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecrd.aws import ecr as ecr_operations
from ecrd.aws.ecr_pull_through import PULL_THROUGH_OPERATIONS
from ecrd.aws.models import service_model
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.contract import test_ecr_contract
from tests.support.clients import AwsCredentials, aws_client

checked_ecr = test_ecr_contract.checked_ecr
# Nothing listens on port 1: a rule pointing there is valid in form and fails validation for real.
UNREACHABLE = "127.0.0.1:1"


def _secret(ecr: Any, name: str) -> str:
    secrets = aws_client(
        "secretsmanager", ecr.meta.endpoint_url, AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    )
    value = json.dumps({"username": "puller", "accessToken": "token"})
    return str(secrets.create_secret(Name=name, SecretString=value)["ARN"])


def _model_errors(operation: str) -> set[str]:
    return {shape.name for shape in service_model("ecr").operation_model(operation).error_shapes}


def _error(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def test_the_pull_through_operations_are_in_the_model_and_served() -> None:
    assert set(PULL_THROUGH_OPERATIONS) <= set(service_model("ecr").operation_names)
    assert set(PULL_THROUGH_OPERATIONS) <= set(ecr_operations.OPERATIONS)


def test_responses_of_every_pull_through_operation_match_the_model(
    checked_ecr: tuple[Any, list[str], set[str]],
) -> None:
    ecr, problems, seen = checked_ecr
    arn = _secret(ecr, "ecr-pullthroughcache/hub")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="bare", upstreamRegistryUrl=UNREACHABLE)
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="hub",
        upstreamRegistryUrl=UNREACHABLE,
        upstreamRegistry="docker-hub",
        credentialArn=arn,
        upstreamRepositoryPrefix="mirror",
    )
    ecr.describe_pull_through_cache_rules()
    ecr.describe_pull_through_cache_rules(maxResults=1)
    ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["hub"])
    ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="hub", credentialArn=arn)
    validated = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="hub")
    assert validated["isValid"] is False and "could not be reached" in validated["failure"]
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="hub")
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="bare")
    assert problems == []
    assert seen >= set(PULL_THROUGH_OPERATIONS)


def test_pull_through_errors_are_the_models(checked_ecr: tuple[Any, list[str], set[str]]) -> None:
    ecr, _, _ = checked_ecr
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="one", upstreamRegistryUrl=UNREACHABLE)
    missing_secret = "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/absent-AbCdEf"
    errors = {
        "CreatePullThroughCacheRule": [
            _error(lambda: ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="one", upstreamRegistryUrl="x.io")),
            _error(
                lambda: ecr.create_pull_through_cache_rule(
                    ecrRepositoryPrefix="two", upstreamRegistryUrl="https://x.io/path"
                )
            ),
            _error(
                lambda: ecr.create_pull_through_cache_rule(
                    ecrRepositoryPrefix="hub", upstreamRegistryUrl="registry-1.docker.io", upstreamRegistry="docker-hub"
                )
            ),
            _error(
                lambda: ecr.create_pull_through_cache_rule(
                    ecrRepositoryPrefix="three", upstreamRegistryUrl="ghcr.io", credentialArn=missing_secret
                )
            ),
        ],
        "UpdatePullThroughCacheRule": [
            _error(
                lambda: ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="absent", credentialArn=missing_secret)
            )
        ],
        "DeletePullThroughCacheRule": [
            _error(lambda: ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="absent"))
        ],
        "ValidatePullThroughCacheRule": [
            _error(lambda: ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="absent"))
        ],
        "DescribePullThroughCacheRules": [
            _error(lambda: ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["absent"])),
            _error(lambda: ecr.describe_pull_through_cache_rules(nextToken="forged")),
        ],
    }
    assert errors["CreatePullThroughCacheRule"] == [
        "PullThroughCacheRuleAlreadyExistsException",
        "InvalidParameterException",
        "InvalidParameterException",
        "SecretNotFoundException",
    ]
    for operation, codes in errors.items():
        assert set(codes) <= _model_errors(operation), (operation, codes)


def test_an_upstream_prefix_left_unset_is_not_answered_for_a_non_ecr_upstream(
    checked_ecr: tuple[Any, list[str], set[str]],
) -> None:
    # Terraform's AWS provider reads the member back into a force-new attribute: answering the implied ROOT for a
    # rule that never set it would make every plan replace the rule (the provider's own acceptance tests plan
    # empty against ECR for such rules).
    ecr, _, _ = checked_ecr
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="plain", upstreamRegistryUrl=UNREACHABLE)
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="prefixed", upstreamRegistryUrl=UNREACHABLE, upstreamRepositoryPrefix="mirror"
    )
    rules = {
        rule["ecrRepositoryPrefix"]: rule for rule in ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    }
    assert "upstreamRepositoryPrefix" not in rules["plain"]
    assert rules["prefixed"]["upstreamRepositoryPrefix"] == "mirror"
    updated = ecr.update_pull_through_cache_rule(
        ecrRepositoryPrefix="plain", credentialArn=_secret(ecr, "ecr-pullthroughcache/plain")
    )
    assert "upstreamRepositoryPrefix" not in updated
