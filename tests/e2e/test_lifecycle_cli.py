"""Lifecycle policies with the real AWS CLI against a real ``ecrd serve``: put-lifecycle-policy, a preview that
the server's own job runner completes, get-lifecycle-policy-preview, and ``ecrd lifecycle run`` beside the server
(dry, then for real) expiring exactly what the preview listed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import AwsCli, put_image_through_api
from tests.support.images import build_image
from tests.support.registry_process import EcrdProcess, RegistryUnderTest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PREVIEW_DEADLINE_SECONDS = 30.0
KEEP = 2
POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": f"keep the {KEEP} newest builds",
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": ["build-"],
                "countType": "imageCountMoreThan",
                "countNumber": KEEP,
            },
            "action": {"type": "expire"},
        }
    ]
}


def completed_preview(aws: AwsCli, repository: str) -> dict[str, Any]:
    """get-lifecycle-policy-preview, asked until the server's job runner has completed it (bounded in time)."""
    deadline = time.monotonic() + PREVIEW_DEADLINE_SECONDS
    while True:
        preview: dict[str, Any] = aws.json("ecr", "get-lifecycle-policy-preview", "--repository-name", repository)
        if preview["status"] != "IN_PROGRESS" or time.monotonic() > deadline:
            return preview
        time.sleep(0.2)


def test_the_aws_cli_previews_a_policy_and_ecrd_lifecycle_run_expires_what_it_listed(
    aws: AwsCli, ecr: Any, registry: RegistryUnderTest, repository: str, tmp_path: Path, image_seed: int
) -> None:
    # given five builds pushed one after another (their push times ordered), and the policy in a file
    digests = []
    for n in range(5):
        put = put_image_through_api(ecr, repository, build_image((2048,), seed=image_seed * 10 + n), f"build-{n}")
        digests.append(put["imageId"]["imageDigest"])
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(POLICY))

    # when the CLI puts the policy, starts a preview of it and reads the preview
    put_policy = aws.json(
        "ecr",
        "put-lifecycle-policy",
        "--repository-name",
        repository,
        "--lifecycle-policy-text",
        f"file://{policy_file}",
    )
    started = aws.json("ecr", "start-lifecycle-policy-preview", "--repository-name", repository)
    preview = completed_preview(aws, repository)

    # then the preview lists the three oldest builds, expiring by rule 1
    assert put_policy["repositoryName"] == repository
    assert json.loads(put_policy["lifecyclePolicyText"]) == POLICY
    assert started["status"] == "IN_PROGRESS"
    assert preview["status"] == "COMPLETE", preview
    assert sorted(r["imageDigest"] for r in preview["previewResults"]) == sorted(digests[:-KEEP])
    assert all(r["action"]["type"] == "EXPIRE" and r["appliedRulePriority"] == 1 for r in preview["previewResults"])
    assert preview["summary"]["expiringImageTotalCount"] == len(digests) - KEEP

    # when the operator runs the policy beside the server, first dry, then for real
    assert isinstance(registry.process, EcrdProcess)
    dry = registry.process.command("lifecycle", "run", "--repository", repository, "--dry-run").stdout
    assert {d for d in digests if d in dry} == set(digests[:-KEEP])
    assert len(ecr.list_images(repositoryName=repository)["imageIds"]) == len(digests)
    done = registry.process.command("lifecycle", "run", "--repository", repository).stdout

    # then it printed each image with its tag and rule, and exactly the previewed images are gone
    for n, digest in enumerate(digests[:-KEEP]):
        assert f"{repository}\t{digest}\tbuild-{n}\trule 1\texpire" in done
    assert f"expired {len(digests) - KEEP} images" in done
    left = {i["imageDigest"] for i in ecr.list_images(repositoryName=repository)["imageIds"]}
    assert left == set(digests[-KEEP:])
    evaluated = aws.json("ecr", "get-lifecycle-policy", "--repository-name", repository)
    assert "lastEvaluatedAt" in evaluated


def test_the_aws_cli_reports_a_bad_policy_in_ecrs_words(aws: AwsCli, repository: str) -> None:
    rule = {"rulePriority": 0, "selection": {}, "action": {"type": "expire"}}
    text = json.dumps({"rules": [rule], "padding": "x" * 80})  # past the model's 100-character minimum
    error = aws.error("ecr", "put-lifecycle-policy", "--repository-name", repository, "--lifecycle-policy-text", text)
    assert error.code == "InvalidParameterException"
    assert error.message.startswith("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint")
