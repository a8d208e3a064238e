"""ecrd's pull policy operations answer exactly the shapes of the model they are served with (ECR's, extended by
``ecrd.aws.extensions``), for a repository and a template, and their errors are ones that model lists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecrd.app import Registry
from ecrd.aws import ecr as ecr_operations
from ecrd.aws.ecr_pull_policy import PULL_POLICY_OPERATIONS
from ecrd.aws.extensions import ECR_EXTENSIONS
from ecrd.aws.models import service_model
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.contract import test_ecr_templates_contract
from tests.contract.test_ecr_contract import checked
from tests.support.clients import AwsCredentials, ecr_with_ecrd_operations
from tests.support.live_server import live_server

_model_errors = test_ecr_templates_contract._model_errors
_error = test_ecr_templates_contract._error


@pytest.fixture
def checked_ecrd(registry: Registry, tmp_path: Path) -> Iterator[tuple[Any, list[str], set[str]]]:
    with live_server(registry) as url:
        root = AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
        yield checked(ecr_with_ecrd_operations(url, tmp_path / "models", root))


def test_the_pull_policy_operations_are_ecrds_own_and_served() -> None:
    assert set(PULL_POLICY_OPERATIONS) == set(ECR_EXTENSIONS["operations"])
    assert set(PULL_POLICY_OPERATIONS) <= set(service_model("ecr").operation_names)
    assert set(PULL_POLICY_OPERATIONS) <= set(ecr_operations.OPERATIONS)


def test_responses_of_every_pull_policy_operation_match_the_model(
    checked_ecrd: tuple[Any, list[str], set[str]], registry: Registry
) -> None:
    ecr, problems, seen = checked_ecrd
    profile = registry.aws.services.signing.create_signing_profile("release").arn
    full = {
        "severityThreshold": "CRITICAL",
        "requireSignatureFrom": [profile],
        "exemptPrincipals": ["arn:aws:iam::000000000000:role/scanner"],
    }
    ecr.create_repository(repositoryName="app")
    ecr.put_image_pull_policy(repositoryName="app", pullPolicy=full)
    ecr.put_image_pull_policy(repositoryName="app", pullPolicy={})
    ecr.get_image_pull_policy(repositoryName="app")
    ecr.delete_image_pull_policy(repositoryName="app")
    ecr.create_repository_creation_template(prefix="team", appliedFor=["CREATE_ON_PUSH"])
    ecr.put_image_pull_policy(templatePrefix="team", pullPolicy=full)
    assert ecr.get_image_pull_policy(templatePrefix="team")["pullPolicy"] == full
    ecr.delete_image_pull_policy(templatePrefix="team")
    assert problems == []
    assert set(PULL_POLICY_OPERATIONS) <= seen


def test_pull_policy_errors_are_the_models(checked_ecrd: tuple[Any, list[str], set[str]]) -> None:
    ecr, _, _ = checked_ecrd
    ecr.create_repository(repositoryName="app")
    absent_profile = "arn:aws:signer:us-east-1:000000000000:/signing-profiles/absent"
    errors = {
        "PutImagePullPolicy": [
            _error(lambda: ecr.put_image_pull_policy(repositoryName="absent", pullPolicy={})),
            _error(lambda: ecr.put_image_pull_policy(pullPolicy={})),
            _error(
                lambda: ecr.put_image_pull_policy(
                    repositoryName="app", pullPolicy={"requireSignatureFrom": [absent_profile]}
                )
            ),
            _error(lambda: ecr.put_image_pull_policy(templatePrefix="absent", pullPolicy={})),
        ],
        "GetImagePullPolicy": [
            _error(lambda: ecr.get_image_pull_policy(repositoryName="app")),
            _error(lambda: ecr.get_image_pull_policy(repositoryName="app", templatePrefix="app")),
        ],
        "DeleteImagePullPolicy": [_error(lambda: ecr.delete_image_pull_policy(repositoryName="app"))],
    }
    assert errors["GetImagePullPolicy"][0] == "ImagePullPolicyNotFoundException"
    assert errors["PutImagePullPolicy"][3] == "TemplateNotFoundException"
    for operation, codes in errors.items():
        assert set(codes) <= _model_errors(operation), (operation, codes)
