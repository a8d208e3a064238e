"""moto's own ECR tests, run against one ecrd: those that sign for eu-central-1 (regional tests, not about moto)
and its replication and registry tests, wherever moto's behaviour is ECR's as documented.

They come from moto's source distribution (``scripts/test`` fetches the tests of the installed version into
``.cache/moto-tests``) and run in a pytest of their own with ``tests.support.moto_against_ecrd``: ``mock_aws``
does nothing, boto3 goes to ``AWS_ENDPOINT_URL`` (an in-process ecrd serving moto's account, 123456789012, with
ECR's host names for repository URIs), and every registry is emptied between tests as moto's fresh backend is.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from ecrd.config import Settings
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, registry_for
from tests.support.live_server import live_server

ROOT = Path(__file__).resolve().parents[2]
MOTO_TESTS = ROOT / ".cache" / "moto-tests" / importlib.metadata.version("moto")
MOTO_ACCOUNT = "123456789012"

EU_CENTRAL_TESTS = (
    "test_create_repository_with_aws_managed_kms",
    "test_list_tags_for_resource_error_not_exists",
    "test_list_tags_for_resource_error_invalid_param",
    "test_tag_resource_error_not_exists",
    "test_untag_resource_error_not_exists",
    "test_put_image_tag_mutability_error_not_exists",
    "test_put_image_scanning_configuration_error_not_exists",
    "test_set_repository_policy_error_not_exists",
    "test_set_repository_policy_error_invalid_param",
    "test_get_repository_policy_error_repo_not_exists",
    "test_get_repository_policy_error_policy_not_exists",
    "test_delete_repository_policy_error_repo_not_exists",
    "test_delete_repository_policy_error_policy_not_exists",
    "test_put_lifecycle_policy_error_repo_not_exists",
    "test_get_lifecycle_policy_error_repo_not_exists",
    "test_get_lifecycle_policy_error_policy_not_exists",
    "test_delete_lifecycle_policy_error_repo_not_exists",
    "test_delete_lifecycle_policy_error_policy_not_exists",
    "test_start_image_scan_error_repo_not_exists",
    "test_describe_image_scan_findings_error_repo_not_exists",
    "test_put_replication_configuration_error_same_source",
)
REPLICATION_AND_REGISTRY_TESTS = (
    "test_put_replication_configuration",
    "test_describe_registry",
    "test_describe_registry_after_update",
    "test_put_registry_policy",
    "test_get_registry_policy",
    "test_get_registry_policy_error_policy_not_exists",
    "test_delete_registry_policy",
    "test_delete_registry_policy_error_policy_not_exists",
)
# Where moto is not ECR, and why (not run):
NOT_ECR = {
    # Creates a repository with a KMS key that does not exist: ECR refuses it (KmsException), moto does not look.
    "test_create_repository_with_non_default_config": "a made-up KMS key",
    # moto lists the allowed values in an order of its own; ecrd's message takes them from ECR's model.
    "test_put_image_tag_mutability_error_invalid_param": "moto's order of the enum values",
    # Cross-account destinations are a feature ECR has; moto answers "This feature is disabled".
    "test_put_replication_configuration_error_feature_disabled": "moto lacks cross-account replication",
    # ECR's registry policy scope V2 (the default) allows every ECR action; moto knows only V1's.
    "test_put_registry_policy_error_invalid_action": "registry policy scope V1 only",
}


def test_motos_ecr_tests_pass_against_ecrd(settings: Settings, tmp_path: Path) -> None:
    suite = MOTO_TESTS / "tests" / "test_ecr" / "test_ecr.py"
    if not suite.is_file():
        pytest.skip(f"moto's tests are not fetched (scripts/test puts them in {MOTO_TESTS})")
    served = dataclasses.replace(
        settings, account_id=MOTO_ACCOUNT, registry_domain="amazonaws.com", public_url="https://ecr.example"
    )
    selected = EU_CENTRAL_TESTS + REPLICATION_AND_REGISTRY_TESTS
    report = tmp_path / "moto.xml"
    with registry_for(served) as registry, live_server(registry) as url:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=url,
            AWS_ACCESS_KEY_ID=ROOT_ACCESS_KEY_ID,
            AWS_SECRET_ACCESS_KEY=ROOT_SECRET_ACCESS_KEY,
            PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        )
        finished = subprocess.run(
            [
                sys.executable, "-m", "pytest", "-q", "-p", "tests.support.moto_against_ecrd", "-p", "no:randomly",
                "-p", "no:cacheprovider", "--rootdir", str(MOTO_TESTS), f"--junitxml={report}",
                *(f"{suite}::{name}" for name in selected),
            ],
            env=env,
            cwd=MOTO_TESTS,
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
    outcomes = _outcomes(report)
    failed = {name: outcome for name, outcome in outcomes.items() if outcome != "passed"}
    assert not failed, f"{failed}\n{finished.stdout[-6000:]}"
    # Parametrized tests run once per parameter: every selected test ran at least once, and nothing else did.
    assert {name.split("[")[0] for name in outcomes} == set(selected), finished.stdout[-3000:]
    assert not set(selected) & set(NOT_ECR)


def _outcomes(report: Path) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        outcomes[case.attrib["name"]] = next(
            (kind for kind in ("failure", "error", "skipped") if kind in kinds), "passed"
        )
    return outcomes
