"""The web console in a real browser: Debian's Chromium driven by Playwright against a real ``ecrd serve``.

One browser for the module. An IAM administrator signs in with the console password the AWS CLI gave it,
browses to an image docker pushed and reads its scan findings, edits a lifecycle policy and previews it before
saving, and signs out; a read-only user signs in, sees no write buttons and is denied in AWS's words.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import AwsCli
from tests.support.dockerd import DockerClient
from tests.support.images import Layer, image_of_layers
from tests.support.layers import file, tar_bytes
from tests.support.registry_process import RegistryUnderTest

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright drives the browser (a test dependency)")

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "Browser-Tested-1"
REPOSITORY = "e2e/console"
SCAN_DEADLINE = 60.0
# An old pip: the real advisories of tests/data/vulndata name it (PYSEC-2021-437 fixed in 21.1, PYSEC-2023-228
# fixed in 23.3).
OLD_PIP = "20.3"
EXPIRE_ALL_BUT_NEWEST = (
    '{"rules": [{"rulePriority": 1, "description": "keep the newest image", '
    '"selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, '
    '"action": {"type": "expire"}}]}'
)


def _pip_image(version: str, label: str) -> Any:
    metadata = f"usr/local/lib/python3.11/site-packages/pip-{version}.dist-info/METADATA"
    entries = [file(metadata, f"Metadata-Version: 2.1\nName: pip\nVersion: {version}\n")]
    return image_of_layers([Layer.of_tar(tar_bytes(entries))], label=label)


@pytest.fixture(scope="module")
def pushed(
    registry: RegistryUnderTest,
    ecr: Any,
    aws: AwsCli,
    docker: DockerClient,
    vulnerability_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """Two images docker pushed to a scan-on-push repository, the newer scanned; the newer's digest. And the
    console's two users, given their passwords with the AWS CLI."""
    ecr.create_repository(repositoryName=REPOSITORY, imageScanningConfiguration={"scanOnPush": True})
    workdir = tmp_path_factory.mktemp("console-images")
    digest = ""
    for tag, version in (("old", "19.0"), ("v1", OLD_PIP)):
        reference = registry.reference(REPOSITORY, tag)
        docker.load_image(_pip_image(version, f"console-{tag}"), reference, workdir)
        digest = docker.push(reference)
        docker.remove_images(reference)
    deadline = time.monotonic() + SCAN_DEADLINE
    while (
        ecr.describe_image_scan_findings(repositoryName=REPOSITORY, imageId={"imageTag": "v1"})["imageScanStatus"][
            "status"
        ]
        == "IN_PROGRESS"
    ):
        assert time.monotonic() < deadline, "the scan did not finish"
        time.sleep(0.5)
    for user, policy in (
        ("console-admin", "AmazonEC2ContainerRegistryFullAccess"),
        ("console-reader", "AmazonEC2ContainerRegistryReadOnly"),
    ):
        aws("iam", "create-user", "--user-name", user)
        aws("iam", "attach-user-policy", "--user-name", user, "--policy-arn", f"arn:aws:iam::aws:policy/{policy}")
        aws("iam", "create-login-profile", "--user-name", user, "--password", PASSWORD)
    assert aws.json("iam", "get-login-profile", "--user-name", "console-admin")["LoginProfile"]["UserName"] == (
        "console-admin"
    )
    return digest


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which("chromedriver") is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/test installs them)")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, registry: RegistryUnderTest) -> Iterator[Any]:
    context = browser.new_context(base_url=registry.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _sign_in(page: Any, user: str) -> None:
    page.goto("/console/")
    page.get_by_label("Account").fill("000000000000")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    playwright.expect(page.get_by_role("heading", name="Repositories", exact=True)).to_be_visible()


def _sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    playwright.expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_an_administrator_reads_findings_previews_a_lifecycle_policy_and_signs_out(
    page: Any, pushed: str, ecr: Any
) -> None:
    # given an IAM user with a console password and ECR's full access
    _sign_in(page, "console-admin")

    # when it browses to the image docker pushed
    page.get_by_role("link", name=REPOSITORY, exact=True).click()
    playwright.expect(page.get_by_role("heading", name=REPOSITORY)).to_be_visible()
    page.get_by_role("link", name=pushed[:19]).click()

    # then it reads the scan's findings: severity, package, installed and fixed versions, advisory link
    playwright.expect(page.get_by_role("heading", name="Vulnerabilities")).to_be_visible()
    findings = page.get_by_role("table", name="Vulnerabilities")
    row = findings.get_by_role("row").filter(has_text="CVE-2023-5752")
    playwright.expect(row).to_contain_text("pip")
    playwright.expect(row).to_contain_text(OLD_PIP)
    playwright.expect(row).to_contain_text("23.3")
    playwright.expect(row.get_by_role("link", name="CVE-2023-5752")).to_have_attribute("href", re.compile("^https://"))
    playwright.expect(page.get_by_role("link", name="Download SBOM (CycloneDX)")).to_be_visible()

    # when it edits a lifecycle policy and previews it
    page.get_by_role("link", name=REPOSITORY).click()
    page.get_by_role("link", name="Lifecycle policy").click()
    page.get_by_label("Lifecycle policy (JSON)").fill(EXPIRE_ALL_BUT_NEWEST)
    page.get_by_role("button", name="Preview").click()

    # then the preview shows the older image expiring by rule 1 (its SBOM with it), the newer staying, and
    # nothing is saved yet
    preview = page.get_by_role("region", name=re.compile("^Preview"))
    playwright.expect(preview.get_by_role("row").filter(has_text="old")).to_contain_text("EXPIRE")
    playwright.expect(preview.get_by_role("row").filter(has_text="v1")).to_have_count(0)
    with pytest.raises(ecr.exceptions.LifecyclePolicyNotFoundException):
        ecr.get_lifecycle_policy(repositoryName=REPOSITORY)

    # and saved, the policy is the repository's
    page.get_by_role("button", name="Save policy").click()
    playwright.expect(page.get_by_role("status").filter(has_text="Lifecycle policy saved.")).to_be_visible()
    assert '"imageCountMoreThan"' in ecr.get_lifecycle_policy(repositoryName=REPOSITORY)["lifecyclePolicyText"]

    # and signing out ends the session
    _sign_out(page)
    page.goto("/console/")
    playwright.expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_a_read_only_user_sees_no_write_buttons_and_is_denied_with_awss_message(page: Any, pushed: str) -> None:
    # given an IAM user with ECR's read-only policy, signed in
    _sign_in(page, "console-reader")

    # when it opens the repository
    page.get_by_role("link", name=REPOSITORY, exact=True).click()

    # then it sees the images but no button to change the settings
    playwright.expect(page.get_by_role("link", name=pushed[:19])).to_be_visible()
    playwright.expect(page.get_by_role("button", name="Save mutability")).to_have_count(0)
    playwright.expect(page.get_by_role("button", name="Create repository")).to_have_count(0)

    # and when it asks for a lifecycle preview, the engine denies it in AWS's words
    page.get_by_role("link", name="Lifecycle policy").click()
    playwright.expect(page.get_by_role("button", name="Save policy")).to_have_count(0)
    page.get_by_role("button", name="Preview").click()
    playwright.expect(page.get_by_role("alert")).to_contain_text(
        "User: arn:aws:iam::000000000000:user/console-reader is not authorized to perform: "
        "ecr:StartLifecyclePolicyPreview"
    )
    _sign_out(page)
