"""Terraform end to end: the real ``terraform`` with the AWS provider applies one configuration of every resource
and data source ecrd serves (tests/data/terraform/main.tf) against a real ``ecrd serve``, plans again with no
changes — every attribute round-trips — and destroys it all.

The provider comes from a local filesystem mirror (``ECRD_TF_PLUGIN_MIRROR``, else the first of a few usual
places holding ``registry.terraform.io/hashicorp/aws``); nothing is fetched from the network. Without
``terraform`` or the mirror the test is skipped, saying which is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.clients import (
    TEST_ACCESS_KEY_ID,
    TEST_ACCOUNT_ID,
    TEST_SECRET_ACCESS_KEY,
    AwsCredentials,
    aws_client,
    put_image_through_api,
    run_tool,
)
from tests.support.images import build_image
from tests.support.registry_process import EcrdProcess, RegistryUnderTest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CONFIGURATION = Path(__file__).parents[1] / "data" / "terraform" / "main.tf"
MIRROR_ENV = "ECRD_TF_PLUGIN_MIRROR"
MIRROR_PLACES = ("/opt/tf-plugins", "/usr/share/terraform/plugins", "/usr/local/share/terraform/plugins")
PROVIDER = "registry.terraform.io/hashicorp/aws"
TERRAFORM_TIMEOUT = 300.0
IMAGE_REPOSITORY = "tf/source"


def plugin_mirror() -> Path | None:
    """The filesystem mirror holding the AWS provider, if this machine has one."""
    places = [os.environ[MIRROR_ENV]] if os.environ.get(MIRROR_ENV) else list(MIRROR_PLACES)
    for place in places:
        if (Path(place) / PROVIDER).is_dir():
            return Path(place)
    return None


class Terraform:
    """``terraform`` in one working directory, with its own CLI configuration (providers from the mirror only)
    and an environment that none of the machine's AWS or Terraform settings reach."""

    def __init__(self, binary: str, workdir: Path, mirror: Path, variables: Mapping[str, str]) -> None:
        self.binary = binary
        self.workdir = workdir
        cli_config = workdir / "terraform.tfrc"
        cli_config.write_text(
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["{PROVIDER}"]\n  }}\n'
            f'  direct {{\n    exclude = ["{PROVIDER}"]\n  }}\n'
            "}\n"
        )
        env = {key: value for key, value in os.environ.items() if not key.startswith(("TF_", "AWS_"))}
        env.update(
            {
                "TF_CLI_CONFIG_FILE": str(cli_config),
                "TF_DATA_DIR": str(workdir / ".terraform"),
                "TF_IN_AUTOMATION": "1",
                "TF_INPUT": "0",
                # No shared AWS files of the machine: the provider block carries the credentials.
                "AWS_CONFIG_FILE": str(workdir / "aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "aws-credentials"),
                "AWS_EC2_METADATA_DISABLED": "true",
                **{f"TF_VAR_{name}": value for name, value in variables.items()},
            }
        )
        self.env = env
        self.redact = [value for name, value in variables.items() if "secret" in name]

    def __call__(self, *args: str, check: bool = True) -> Any:
        argv = [self.binary, f"-chdir={self.workdir}", *args, "-no-color"]
        return run_tool(argv, env=self.env, timeout=TERRAFORM_TIMEOUT, check=check, redact=self.redact)

    def outputs(self) -> dict[str, Any]:
        shown = json.loads(self("output", "-json").stdout)
        return {name: value["value"] for name, value in shown.items()}


@pytest.fixture
def terraform(registry: RegistryUnderTest, tmp_path: Path) -> Terraform:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed")
    mirror = plugin_mirror()
    if mirror is None:
        pytest.skip(f"no provider mirror holding {PROVIDER} ({MIRROR_ENV}, or one of {', '.join(MIRROR_PLACES)})")
    if registry.ecr is None:
        pytest.skip(f"{registry.kind} has no AWS API")
    shutil.copy(CONFIGURATION, tmp_path / CONFIGURATION.name)
    variables = {
        "endpoint": registry.url,
        "access_key": TEST_ACCESS_KEY_ID,
        "secret_key": TEST_SECRET_ACCESS_KEY,
        "image_repository": IMAGE_REPOSITORY,
    }
    return Terraform(binary, tmp_path, mirror, variables)


def test_terraform_applies_plans_no_changes_and_destroys(
    terraform: Terraform, registry: RegistryUnderTest, ecr: Any, image_seed: int
) -> None:
    # given an image for the aws_ecr_image data source to find, and the configuration's providers installed
    ecr.create_repository(repositoryName=IMAGE_REPOSITORY)
    pushed = put_image_through_api(ecr, IMAGE_REPOSITORY, build_image((4096,), seed=image_seed), "latest")
    terraform("init")
    root = AwsCredentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
    iam, kms = aws_client("iam", registry.url, root), aws_client("kms", registry.url, root)
    secrets = aws_client("secretsmanager", registry.url, root)

    # (the replication destination is a peer deployment, registered beside the running server as an operator does)
    process = registry.process
    assert isinstance(process, EcrdProcess)
    run_tool(
        [sys.executable, "-m", "ecrd", "replication-peer", "add", "--destination-registry-id", "111122223333",
         "--destination-region", "eu-west-1", "--url", "http://127.0.0.1:1", "--access-key-id", "AKIAEDGE",
         "--secret-access-key-stdin", "--data-dir", str(process.data_dir), *process.extra_args],
        input="edge-secret\n", env=process.environment(),
    )  # fmt: skip

    # when Terraform applies the configuration
    terraform("apply", "-auto-approve")

    # then the data sources read ecrd, and what it made is there as the configuration says
    outputs = terraform.outputs()
    assert outputs["account_id"] == TEST_ACCOUNT_ID
    assert outputs["caller_arn"] == f"arn:aws:iam::{TEST_ACCOUNT_ID}:root"
    assert outputs["proxy_endpoint"] == registry.url
    assert outputs["image_digest"] == pushed["imageId"]["imageDigest"]
    assert outputs["repository_url"] == f"{registry.host}/tf/app"
    [app] = ecr.describe_repositories(repositoryNames=["tf/app"])["repositories"]
    assert (app["imageTagMutability"], app["encryptionConfiguration"]["encryptionType"]) == ("IMMUTABLE", "KMS")
    assert [u["UserName"] for u in iam.get_group(GroupName="tf-developers")["Users"]] == ["tf-ci"]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="tf-operator")["Groups"]] == ["tf-operators"]
    [rule] = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["cache"])["pullThroughCacheRules"]
    assert (rule["upstreamRegistryUrl"], rule["upstreamRegistry"]) == ("registry-1.docker.io", "docker-hub")
    assert rule["credentialArn"] == secrets.describe_secret(SecretId="ecr-pullthroughcache/tf-upstream")["ARN"]
    assert outputs["cache_registry_id"] == TEST_ACCOUNT_ID
    [rule_of_replication] = ecr.describe_registry()["replicationConfiguration"]["rules"]
    assert rule_of_replication["destinations"] == [{"region": "eu-west-1", "registryId": "111122223333"}]
    [template] = ecr.describe_repository_creation_templates(prefixes=["cache"])["repositoryCreationTemplates"]
    assert template["appliedFor"] == ["PULL_THROUGH_CACHE"]
    key_id = app["encryptionConfiguration"]["kmsKey"]
    rotation = kms.get_key_rotation_status(KeyId=key_id)
    assert (rotation["KeyRotationEnabled"], rotation["RotationPeriodInDays"]) == (True, 180)
    # and the access key Terraform made signs requests, with the permissions its groups and policies give
    ci_ecr = aws_client("ecr", registry.url, AwsCredentials(outputs["ci_access_key_id"], outputs["ci_secret"]))
    assert [r["repositoryName"] for r in ci_ecr.describe_repositories(repositoryNames=["tf/app"])["repositories"]] == [
        "tf/app"
    ]

    # when Terraform plans again, then every attribute read back matches the configuration: no changes
    planned = terraform("plan", "-detailed-exitcode", check=False)
    assert planned.returncode == 0, planned.stdout + planned.stderr

    # when it destroys the configuration, then everything it made is gone (the key waits for its deletion)
    terraform("destroy", "-auto-approve")
    remaining = {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}
    assert not remaining & {"tf/app", "tf/plain"}
    for call in (
        lambda: iam.get_user(UserName="tf-ci"),
        lambda: iam.get_group(GroupName="tf-developers"),
        lambda: iam.get_role(RoleName="tf-deployer"),
    ):
        with pytest.raises(ClientError) as gone:
            call()
        assert gone.value.response["Error"]["Code"] == "NoSuchEntity"
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    # (the session's registry is shared: only what this configuration made is looked for)
    rules = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    assert "cache" not in {rule["ecrRepositoryPrefix"] for rule in rules}
    assert ecr.describe_registry()["replicationConfiguration"]["rules"] == []
    templates = ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
    assert "cache" not in {template["prefix"] for template in templates}
    # recovery_window_in_days = 0: deleted at once, not scheduled
    names = {secret["Name"] for secret in secrets.list_secrets(IncludePlannedDeletion=True)["SecretList"]}
    assert "ecr-pullthroughcache/tf-upstream" not in names
