#!/usr/bin/env python3
"""Regenerate the console's screenshots in docs/images/console-*.png (shown by docs/console.md and the README).

Starts a throw-away `ecrd serve`, fills it the way its users would — repositories and users through the AWS API,
images pushed over the registry API, the advisories of tests/data/vulndata imported with `ecrd vulndb import` —
and photographs the main pages in Debian's Chromium driven by Playwright (no browser is downloaded).

    python scripts/console_screenshots.py            # from the repository's root
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
# The server it starts runs this checkout's ecrd too.
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])

import requests  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402
from tests.support.clients import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, aws_client  # noqa: E402
from tests.support.images import Image, Layer, image_of_layers  # noqa: E402
from tests.support.layers import file, tar_bytes  # noqa: E402
from tests.support.registry_process import EcrdProcess  # noqa: E402
from tests.support.vulndata import DATA_FILES  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
IMAGES = ROOT / "docs" / "images"
PASSWORD = "Screenshot-Pass-1"
SCAN_DEADLINE = 60.0
LIFECYCLE_POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "Keep the 3 newest images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 3},
            "action": {"type": "expire"},
        }
    ]
}


def _image(label: str, packages: dict[str, str]) -> Image:
    entries = [file("etc/os-release", "ID=debian\nVERSION_ID=12\n")]
    entries += [
        file(
            f"usr/local/lib/python3.11/site-packages/{name}-{version}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        )
        for name, version in packages.items()
    ]
    return image_of_layers([Layer.of_tar(tar_bytes(entries))], label=label)


def _push(session: requests.Session, url: str, repository: str, tag: str, image: Image) -> None:
    for digest, data in image.blobs().items():
        if digest == image.manifest_digest:
            continue
        answer = session.post(f"{url}/v2/{repository}/blobs/uploads/", params={"digest": digest}, data=data, timeout=60)
        answer.raise_for_status()
    answer = session.put(
        f"{url}/v2/{repository}/manifests/{tag}",
        data=image.manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        timeout=60,
    )
    answer.raise_for_status()


def fill(process: EcrdProcess) -> None:
    url = process.url
    process.command("vulndb", "import", *map(str, DATA_FILES))
    ecr, iam = aws_client("ecr", url), aws_client("iam", url)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    session = requests.Session()
    session.auth = (user, password)
    for name in ("team/web", "team/api", "team/worker", "tools/builder", "mirror/python", "sandbox/demo"):
        ecr.create_repository(repositoryName=name, imageScanningConfiguration={"scanOnPush": name.startswith("team/")})
    versions = [("v1.0", "20.3"), ("v1.1", "21.0"), ("v1.2", "22.0"), ("v1.3", "23.0"), ("v2.0", "23.2")]
    for number, (tag, pip) in enumerate(versions):
        _push(session, url, "team/web", tag, _image(f"web-{number}", {"pip": pip, "setuptools": "65.0.0"}))
    _push(session, url, "team/api", "latest", _image("api", {"pip": "24.0"}))
    _push(session, url, "team/worker", "latest", _image("worker", {"pip": "20.3"}))
    _push(session, url, "tools/builder", "stable", _image("builder", {"pip": "24.0"}))
    deadline = time.monotonic() + SCAN_DEADLINE
    while (
        ecr.describe_image_scan_findings(repositoryName="team/web", imageId={"imageTag": "v1.0"})["imageScanStatus"][
            "status"
        ]
        == "IN_PROGRESS"
    ):
        if time.monotonic() > deadline:
            raise SystemExit("the scan did not finish")
        time.sleep(0.5)
    for name, policy in (
        ("alice", "AmazonEC2ContainerRegistryFullAccess"),
        ("bob", "AmazonEC2ContainerRegistryReadOnly"),
        ("ci-pusher", "AmazonEC2ContainerRegistryPowerUser"),
    ):
        iam.create_user(UserName=name)
        iam.attach_user_policy(UserName=name, PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
    administrator = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="alice", PolicyName="administrator", PolicyDocument=json.dumps(administrator))
    iam.create_login_profile(UserName="alice", Password=PASSWORD)
    iam.create_access_key(UserName="ci-pusher")
    aws_client("kms", url).create_key(Description="team/web images")
    ecr.set_repository_policy(
        repositoryName="team/web",
        policyText=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "PullForCi",
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::000000000000:user/ci-pusher"},
                        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                    }
                ],
            }
        ),
    )


def shoot(page: Page, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / f"console-{name}.png"), full_page=True)
    print(f"docs/images/console-{name}.png")


def photograph(url: str) -> None:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context(base_url=url, viewport={"width": 1280, "height": 800}).new_page()
        page.goto("/console/")
        shoot(page, "signin")
        page.get_by_label("User name").fill("alice")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Repositories", exact=True).wait_for()
        shoot(page, "overview")
        page.get_by_role("link", name="team/web", exact=True).click()
        shoot(page, "repository")
        page.get_by_role("row").filter(has_text="v1.0").get_by_role("link").first.click()
        page.get_by_role("heading", name="Vulnerabilities").wait_for()
        shoot(page, "image")
        page.goto("/console/lifecycle?name=team/web")
        page.get_by_label("Lifecycle policy (JSON)").fill(json.dumps(LIFECYCLE_POLICY, indent=2))
        page.get_by_role("button", name="Preview").click()
        page.get_by_role("heading", name="Preview", exact=False).wait_for()
        shoot(page, "lifecycle")
        page.goto("/console/policy?name=team/web")
        page.get_by_label("Principal ARN").fill("arn:aws:iam::000000000000:user/bob")
        page.get_by_role("textbox", name="Action").fill("ecr:PutImage")
        page.get_by_role("button", name="Check").click()
        page.locator(".decision").wait_for()
        shoot(page, "policy")
        page.goto("/console/iam/users/ci-pusher")
        shoot(page, "user")
        page.goto("/console/audit?size=25")
        shoot(page, "audit")
        page.set_viewport_size({"width": 390, "height": 800})
        page.goto("/console/repository?name=team/web")
        shoot(page, "narrow")
        browser.close()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ecrd-screenshots-") as workdir:
        process = EcrdProcess(
            Path(workdir),
            env={"ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY},
        )
        process.start()
        try:
            fill(process)
            photograph(process.url)
        finally:
            process.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
