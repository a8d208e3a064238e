"""A repository's settings doing what they do in ECR, driven by the real tools: immutable tags refused to docker
and skopeo in ECR's words, with one winner when pushes race; scan on push (and StartImageScan) giving this
machine's real advisories from the OSV data imported with ``ecrd vulndb import``, an SBOM as an OCI referrer, and
scans that survive a crash; KMS keys that stop and restore pulls, and nothing readable on disk."""

from __future__ import annotations

import importlib.metadata
import json
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from tests.support.clients import (
    ROOT_CREDENTIALS,
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    AwsCli,
    OciHttp,
    Skopeo,
    ToolFailed,
    aws_cli_binary,
    describe_response,
    ecr_client,
    ecr_registry_credentials,
    put_image_through_api,
    registry_session,
)
from tests.support.dockerd import DockerClient
from tests.support.images import (
    OCI_MANIFEST,
    Image,
    Layer,
    build_image,
    image_of_layers,
    sha256_digest,
    write_oci_layout,
)
from tests.support.layers import file, machine_entries, tar_bytes
from tests.support.registry_process import EcrdProcess, RegistryUnderTest
from tests.support.vulndata import VULNDATA

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LAYER_SIZES = (64 * 1024, 1024)


def immutable_refusal(tag: str, repository: str) -> str:
    """ECR's message for a push that would move an immutable tag (also what docker and skopeo print)."""
    return (
        f"The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten "
        "because the tag is immutable."
    )


def refused_push(docker: DockerClient, reference: str) -> str:
    """``docker push REFERENCE``, expected to fail; everything docker printed."""
    result = docker("push", reference, check=False)
    assert result.returncode != 0, f"docker push {reference} succeeded:\n{result.stdout}"
    return result.stdout + result.stderr


def pulled_image_id(docker: DockerClient, reference: str) -> str:
    """Forget ``reference`` locally, pull it again, and return the id of the image that came."""
    docker.remove_images(reference)
    docker("pull", reference)
    return docker.image_id(reference)


def create_repository(aws: AwsCli, name: str, *settings: str) -> dict[str, Any]:
    """``aws ecr create-repository --repository-name NAME SETTINGS…`` → the repository it printed."""
    repository: dict[str, Any] = aws.json("ecr", "create-repository", "--repository-name", name, *settings)[
        "repository"
    ]
    return repository


# -- 1. tag immutability ----------------------------------------------------------------------------------


def test_immutable_tag_takes_the_same_image_again_and_refuses_another_with_ecrs_message_in_docker(
    aws: AwsCli,
    docker: DockerClient,
    registry: RegistryUnderTest,
    repository_name: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given a repository created IMMUTABLE, where docker pushed image A as :v1
    created = create_repository(aws, repository_name, "--image-tag-mutability", "IMMUTABLE")
    assert created["imageTagMutability"] == "IMMUTABLE"
    image_a, image_b = build_image(LAYER_SIZES, seed=image_seed), build_image(LAYER_SIZES, seed=image_seed + 1)
    reference = registry.reference(repository_name, "v1")
    docker.load_image(image_a, reference, tmp_path / "a")
    digest_a = docker.push(reference)

    # when the same image is pushed as :v1 again, then a different image B as :v1
    again = docker.push(reference)
    docker.load_image(image_b, reference, tmp_path / "b")
    refusal = refused_push(docker, reference)

    # then the same image goes through, and B is refused with ECR's message shown by docker
    assert again == digest_a
    assert f"tag invalid: {immutable_refusal('v1', repository_name)}" in refusal, refusal
    # and :v1 still is image A, for docker and for the API
    assert pulled_image_id(docker, reference) == image_a.config_digest
    found = aws.json("ecr", "describe-images", "--repository-name", repository_name, "--image-ids", "imageTag=v1")
    assert [detail["imageDigest"] for detail in found["imageDetails"]] == [digest_a]
    docker.remove_images(reference)


def test_exclusion_filter_lets_latest_move_while_other_tags_stay_until_the_repository_is_made_mutable(
    aws: AwsCli,
    docker: DockerClient,
    registry: RegistryUnderTest,
    repository_name: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given a repository IMMUTABLE_WITH_EXCLUSION excluding `latest`, holding image A as :v1 and :latest
    created = create_repository(
        aws, repository_name,
        "--image-tag-mutability", "IMMUTABLE_WITH_EXCLUSION",
        "--image-tag-mutability-exclusion-filters", "filterType=WILDCARD,filter=latest",
    )  # fmt: skip
    assert created["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert created["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest"}]
    image_a, image_b = build_image(LAYER_SIZES, seed=image_seed), build_image(LAYER_SIZES, seed=image_seed + 1)
    v1, latest = registry.reference(repository_name, "v1"), registry.reference(repository_name, "latest")
    docker.load_image(image_a, v1, tmp_path / "a")
    docker("tag", v1, latest)
    docker.push(v1)
    docker.push(latest)

    # when docker pushes image B as :latest and as :v1
    docker.load_image(image_b, latest, tmp_path / "b")
    digest_b = docker.push(latest)
    docker("tag", latest, v1)
    refusal = refused_push(docker, v1)

    # then :latest moved to B, and :v1 was refused and still is A
    assert f"tag invalid: {immutable_refusal('v1', repository_name)}" in refusal, refusal
    assert pulled_image_id(docker, latest) == image_b.config_digest
    assert pulled_image_id(docker, v1) == image_a.config_digest

    # when put-image-tag-mutability makes the repository MUTABLE
    switched = aws.json(
        "ecr", "put-image-tag-mutability", "--repository-name", repository_name, "--image-tag-mutability", "MUTABLE"
    )

    # then :v1 moves to B at the next push
    assert switched["imageTagMutability"] == "MUTABLE"
    docker("tag", latest, v1)
    assert docker.push(v1) == digest_b
    assert pulled_image_id(docker, v1) == image_b.config_digest
    docker.remove_images(v1, latest)


def test_put_image_tag_mutability_immutable_stops_docker_moving_a_tag_it_moved_before(
    aws: AwsCli,
    docker: DockerClient,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given a (default, MUTABLE) repository whose :latest docker moved from image A to image B
    image_a, image_b = build_image(LAYER_SIZES, seed=image_seed), build_image(LAYER_SIZES, seed=image_seed + 1)
    latest = registry.reference(repository, "latest")
    docker.load_image(image_a, latest, tmp_path / "a")
    docker.push(latest)
    docker.load_image(image_b, latest, tmp_path / "b")
    docker.push(latest)

    # when put-image-tag-mutability makes it IMMUTABLE, and docker pushes A as :latest again
    switched = aws.json(
        "ecr", "put-image-tag-mutability", "--repository-name", repository, "--image-tag-mutability", "IMMUTABLE"
    )
    docker.load_image(image_a, latest, tmp_path / "a-again")
    refusal = refused_push(docker, latest)

    # then the push is refused in ECR's words, and :latest stays B
    assert switched["imageTagMutability"] == "IMMUTABLE"
    [described] = aws.json("ecr", "describe-repositories", "--repository-names", repository)["repositories"]
    assert described["imageTagMutability"] == "IMMUTABLE"
    assert f"tag invalid: {immutable_refusal('latest', repository)}" in refusal, refusal
    assert pulled_image_id(docker, latest) == image_b.config_digest
    docker.remove_images(latest)


def test_skopeo_copy_of_another_image_onto_an_immutable_tag_is_refused(
    aws: AwsCli,
    skopeo: Skopeo,
    registry: RegistryUnderTest,
    repository_name: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given an IMMUTABLE repository where skopeo copied image A to :v1 (and copies it there again)
    create_repository(aws, repository_name, "--image-tag-mutability", "IMMUTABLE")
    image_a, image_b = build_image(LAYER_SIZES, seed=image_seed), build_image(LAYER_SIZES, seed=image_seed + 1)
    write_oci_layout(tmp_path / "a", image_a, tag="v1")
    write_oci_layout(tmp_path / "b", image_b, tag="v1")
    destination = f"docker://{registry.reference(repository_name, 'v1')}"
    skopeo.copy(f"oci:{tmp_path / 'a'}:v1", destination, timeout=120)
    skopeo.copy(f"oci:{tmp_path / 'a'}:v1", destination, timeout=120)

    # when skopeo copies image B to :v1
    with pytest.raises(ToolFailed) as refused:
        skopeo.copy(f"oci:{tmp_path / 'b'}:v1", destination, timeout=120)

    # then it fails printing ECR's message, and :v1 is still image A
    assert f"tag invalid: {immutable_refusal('v1', repository_name)}" in str(refused.value), refused.value
    assert skopeo.inspect(destination, raw=True)["config"]["digest"] == image_a.config_digest


def test_racing_pushes_of_different_images_to_one_immutable_tag_have_exactly_one_winner(
    aws: AwsCli,
    docker: DockerClient,
    skopeo: Skopeo,
    registry: RegistryUnderTest,
    repository_name: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given an IMMUTABLE repository, docker holding image 0 as :v1 and OCI layouts of images 1…3
    create_repository(aws, repository_name, "--image-tag-mutability", "IMMUTABLE")
    images = [build_image(LAYER_SIZES, seed=image_seed + number) for number in range(4)]
    reference = registry.reference(repository_name, "v1")
    docker.load_image(images[0], reference, tmp_path / "docker")
    for number, image in enumerate(images[1:], start=1):
        write_oci_layout(tmp_path / f"layout-{number}", image, tag="v1")

    def push(number: int) -> str | None:
        """Push image ``number`` as :v1 (docker for 0, skopeo for the others); None if it went in, else the
        refusal printed."""
        if number == 0:
            result = docker("push", reference, check=False)
            return None if result.returncode == 0 else result.stdout + result.stderr
        try:
            skopeo.copy(f"oci:{tmp_path / f'layout-{number}'}:v1", f"docker://{reference}", timeout=120)
        except ToolFailed as refused:
            return str(refused)
        return None

    # when docker and three skopeo copies push their four images as :v1 at once
    with ThreadPoolExecutor(max_workers=len(images)) as pool:
        outcomes = list(pool.map(push, range(len(images))))

    # then exactly one went in, every other was refused in ECR's words, and :v1 is the winner's image
    winners = [number for number, refusal in enumerate(outcomes) if refusal is None]
    assert len(winners) == 1, outcomes
    for refusal in filter(None, outcomes):
        assert f"tag invalid: {immutable_refusal('v1', repository_name)}" in refusal, refusal
    [winner] = winners
    assert skopeo.inspect(f"docker://{reference}", raw=True)["config"]["digest"] == images[winner].config_digest
    docker.remove_images(reference)


# -- 2. scan on push, with the real advisories -------------------------------------------------------------

SCAN_DEADLINE = 30.0
"""Seconds a scan may take from push to result: the job queue is polled every second, a scan takes one or two."""
POLL_INTERVAL = 0.5
SBOM_ARTIFACT_TYPE = "application/vnd.cyclonedx+json"
SCAN_QUOTA_MESSAGE = "The scan quota per image has been exceeded. Wait and try again."
"""ECR's LimitExceededException message for a second basic scan of an image within 24 hours."""
THIS_MACHINES_ADVISORIES = (
    # (distribution, advisory, CVE, first fixed version): the README's real matches on this machine.
    ("pip", "PYSEC-2023-228", "CVE-2023-5752", "23.3"),
    ("setuptools", "PYSEC-2022-43012", "CVE-2022-40897", "65.5.1"),
    ("orjson", "PYSEC-2024-40", "CVE-2024-27454", "3.9.15"),
)
needs_dpkg = pytest.mark.skipif(not Path("/var/lib/dpkg/status").exists(), reason="needs a Debian machine")


def scan_outcome(aws: AwsCli, ecr: Any, repository: str, image_id: dict[str, str]) -> dict[str, Any]:
    """Once the scan of ``image_id`` is no longer IN_PROGRESS (polled with boto3, against a deadline), what
    ``aws ecr describe-image-scan-findings --image-id KEY=VALUE`` prints for it."""
    deadline = time.monotonic() + SCAN_DEADLINE
    while True:
        status = ecr.describe_image_scan_findings(repositoryName=repository, imageId=image_id)["imageScanStatus"]
        if status["status"] != "IN_PROGRESS":
            break
        assert time.monotonic() < deadline, f"the scan of {repository} {image_id} ran over {SCAN_DEADLINE:.0f} s"
        time.sleep(POLL_INTERVAL)
    [(key, value)] = image_id.items()
    found: dict[str, Any] = aws.json(
        "ecr", "describe-image-scan-findings", "--repository-name", repository, "--image-id", f"{key}={value}"
    )
    return found


def installed_version(distribution: str) -> str | None:
    """The version of a Python distribution installed here (what the image's METADATA files say), if any."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def attributes(finding: dict[str, Any]) -> dict[str, str]:
    return {attribute["key"]: attribute["value"] for attribute in finding.get("attributes", [])}


def machine_image() -> Image:
    """One layer holding this machine's real os-release, dpkg status and installed Python distributions."""
    return image_of_layers([Layer.of_tar(tar_bytes(machine_entries()))], label="ecrd-e2e-this-machine")


def pip_image() -> Image:
    """One layer holding the METADATA of the pip installed here, where a Python image keeps it."""
    pip = importlib.metadata.distribution("pip")
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    metadata = f"usr/local/lib/{python}/site-packages/pip-{pip.version}.dist-info/METADATA"
    return image_of_layers([Layer.of_tar(tar_bytes([file(metadata, pip.read_text("METADATA") or "")]))], label="pip")


@dataclass(frozen=True)
class ScannedImage:
    repository: str
    digest: str
    outcome: dict[str, Any]
    """What describe-image-scan-findings answered once the scan was done."""


@pytest.fixture(scope="module")
def scanned_machine_image(
    aws: AwsCli,
    ecr: Any,
    docker: DockerClient,
    registry: RegistryUnderTest,
    vulnerability_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> ScannedImage:
    """The README's workflow up to the scan: the real advisories imported with `ecrd vulndb import`, a repository
    made with scan on push and KMS encryption, docker pushing an image of this machine's real packages, and
    describe-image-scan-findings asked until the scan is done."""
    if not Path("/var/lib/dpkg/status").exists():
        pytest.skip("needs a Debian machine")
    repository = "e2e/scan-on-push-this-machine"
    create_repository(
        aws, repository,
        "--image-scanning-configuration", "scanOnPush=true",
        "--encryption-configuration", "encryptionType=KMS",
    )  # fmt: skip
    reference = registry.reference(repository, "machine")
    docker.load_image(machine_image(), reference, tmp_path_factory.mktemp("machine-image"))
    digest = docker.push(reference)
    docker.remove_images(reference)
    return ScannedImage(repository, digest, scan_outcome(aws, ecr, repository, {"imageTag": "machine"}))


@needs_dpkg
def test_scan_on_push_finds_the_real_advisories_of_this_machines_python_packages(
    scanned_machine_image: ScannedImage,
) -> None:
    # given this machine's packages pushed to a scan-on-push repository (fixture)
    # when the scan is done
    outcome = scanned_machine_image.outcome

    # then it completed, on this image, and found the real advisories of the versions installed here
    assert outcome["imageScanStatus"]["status"] == "COMPLETE", outcome["imageScanStatus"]
    assert outcome["imageId"]["imageDigest"] == scanned_machine_image.digest
    findings = outcome["imageScanFindings"]["findings"]
    by_name = {finding["name"]: finding for finding in findings}
    for distribution, advisory_id, cve, fixed in THIS_MACHINES_ADVISORIES:
        installed = installed_version(distribution)
        if installed is None or Version(installed) >= Version(fixed):
            assert cve not in by_name, f"{distribution} {installed} is not affected by {advisory_id}"
            continue
        finding = by_name[cve]
        assert attributes(finding)["package_name"] == distribution, finding
        assert attributes(finding)["package_version"] == installed, finding
        assert finding["uri"].startswith("https://"), finding
        assert finding["severity"] in {"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"}
    if Version(importlib.metadata.version("pip")) < Version("23.3"):
        # PYSEC-2023-228 carries CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:L/A:N, a base score of 3.3: LOW.
        pip = by_name["CVE-2023-5752"]
        assert pip["severity"] == "LOW"
        assert attributes(pip)["CVSS3_VECTOR"] == "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:L/A:N"
        assert attributes(pip)["CVSS3_SCORE"] == "3.3"
    # and the severity counts are those of the findings listed
    assert outcome["imageScanFindings"]["findingSeverityCounts"] == dict(Counter(f["severity"] for f in findings))
    assert outcome["imageScanFindings"]["imageScanCompletedAt"] >= outcome["imageScanFindings"].get(
        "vulnerabilitySourceUpdatedAt", 0
    )


@needs_dpkg
def test_describe_images_shows_the_completed_scan_and_its_severity_counts(
    aws: AwsCli, scanned_machine_image: ScannedImage
) -> None:
    # given this machine's image, scanned on push (fixture)
    # when describe-images describes it
    [detail] = aws.json(
        "ecr", "describe-images", "--repository-name", scanned_machine_image.repository,
        "--image-ids", f"imageDigest={scanned_machine_image.digest}",
    )["imageDetails"]  # fmt: skip

    # then the image carries the scan's status and a summary with the same counts
    assert detail["imageDigest"] == scanned_machine_image.digest
    assert detail["imageScanStatus"]["status"] == "COMPLETE"
    summary = detail["imageScanFindingsSummary"]
    findings = scanned_machine_image.outcome["imageScanFindings"]
    assert summary["findingSeverityCounts"] == findings["findingSeverityCounts"]
    assert summary["imageScanCompletedAt"] == findings["imageScanCompletedAt"]
    assert "vulnerabilitySourceUpdatedAt" in summary


@needs_dpkg
def test_start_image_scan_on_an_image_scanned_on_push_today_answers_limit_exceeded(
    aws: AwsCli, scanned_machine_image: ScannedImage
) -> None:
    # given an image scanned on push moments ago (fixture)
    # when start-image-scan asks for another scan of it
    refused = aws.error(
        "ecr", "start-image-scan", "--repository-name", scanned_machine_image.repository,
        "--image-id", f"imageDigest={scanned_machine_image.digest}",
    )  # fmt: skip

    # then ECR's quota of one basic scan per image per 24 hours refuses it
    assert (refused.code, refused.message) == ("LimitExceededException", SCAN_QUOTA_MESSAGE)


@needs_dpkg
def test_scan_attaches_a_cyclonedx_sbom_naming_pip_that_the_referrers_api_lists_and_oras_pulls(
    scanned_machine_image: ScannedImage, oci: OciHttp, oras_client: Any, registry: RegistryUnderTest, tmp_path: Path
) -> None:
    # given this machine's image, scanned on push (fixture)
    repository, digest = scanned_machine_image.repository, scanned_machine_image.digest

    # when the referrers API is asked for the image's CycloneDX referrers, and oras pulls the one listed
    listed = oci.referrers(repository, digest, artifact_type=SBOM_ARTIFACT_TYPE)
    assert listed.status_code == 200, describe_response(listed)
    [sbom] = listed.json()["manifests"]
    [pulled] = oras_client.pull(target=f"{registry.host}/{repository}@{sbom['digest']}", outdir=str(tmp_path))

    # then it is the document `ecrd sbom` prints for the image …
    assert sbom["artifactType"] == SBOM_ARTIFACT_TYPE
    document = json.loads(Path(pulled).read_bytes())
    assert isinstance(registry.process, EcrdProcess)
    printed = registry.process.command("sbom", "--repository-name", repository, "--image", "machine").stdout
    assert json.loads(printed) == document
    # … a CycloneDX 1.5 document of this image, naming the pip installed here with its package URL
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.5")
    assert isinstance(document["version"], int) and document["version"] >= 1
    assert re.fullmatch(r"urn:uuid:[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", document["serialNumber"])
    assert digest in json.dumps(document["metadata"]["component"])
    components = document["components"]
    assert all(component["type"] and component["name"] for component in components)
    refs = [component["bom-ref"] for component in components if "bom-ref" in component]
    assert len(refs) == len(set(refs)), "bom-ref values must be unique"
    pip_version = importlib.metadata.version("pip")
    [pip] = [component for component in components if component["name"] == "pip"]
    assert pip["version"] == pip_version
    assert pip["purl"] == f"pkg:pypi/pip@{pip_version}"


def test_start_image_scan_scans_an_image_of_a_repository_without_scan_on_push(
    aws: AwsCli,
    ecr: Any,
    docker: DockerClient,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    vulnerability_database: str,
) -> None:
    # given an image of this machine's pip pushed to a repository that does not scan on push: it has no scan
    reference = registry.reference(repository, "pip")
    docker.load_image(pip_image(), reference, tmp_path)
    digest = docker.push(reference)
    docker.remove_images(reference)
    missing = aws.error(
        "ecr", "describe-image-scan-findings", "--repository-name", repository, "--image-id", f"imageDigest={digest}"
    )
    assert missing.code == "ScanNotFoundException", missing

    # when start-image-scan asks for a scan
    started = aws.json("ecr", "start-image-scan", "--repository-name", repository, "--image-id", "imageTag=pip")

    # then the scan starts, and completes with the real advisories of this pip
    assert started["imageId"] == {"imageDigest": digest, "imageTag": "pip"}
    assert started["imageScanStatus"]["status"] == "IN_PROGRESS", started
    outcome = scan_outcome(aws, ecr, repository, {"imageDigest": digest})
    assert outcome["imageScanStatus"]["status"] == "COMPLETE", outcome["imageScanStatus"]
    names = {finding["name"] for finding in outcome["imageScanFindings"]["findings"]}
    assert ("CVE-2023-5752" in names) == (Version(importlib.metadata.version("pip")) < Version("23.3")), names


def test_image_of_one_static_file_scans_to_unsupported_image(
    aws: AwsCli,
    ecr: Any,
    docker: DockerClient,
    registry: RegistryUnderTest,
    repository_name: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given a scan-on-push repository, and a scratch-like image: one layer holding one static file
    create_repository(aws, repository_name, "--image-scanning-configuration", "scanOnPush=true")
    reference = registry.reference(repository_name, "static")
    docker.load_image(build_image((4096,), seed=image_seed), reference, tmp_path)

    # when docker pushes it and the scan is done
    digest = docker.push(reference)
    outcome = scan_outcome(aws, ecr, repository_name, {"imageDigest": digest})

    # then the scan says the image is not supported, and why, with no findings
    status = outcome["imageScanStatus"]
    assert status["status"] == "UNSUPPORTED_IMAGE", status
    assert status["description"].startswith("UnsupportedImageError"), status
    assert not outcome.get("imageScanFindings", {}).get("findings"), outcome
    [detail] = aws.json("ecr", "describe-images", "--repository-name", repository_name)["imageDetails"]
    assert detail["imageScanStatus"]["status"] == "UNSUPPORTED_IMAGE"
    docker.remove_images(reference)


# -- 3. scans survive a crash -----------------------------------------------------------------------------


@pytest.fixture
def own_ecrd(registry: RegistryUnderTest, tmp_path: Path) -> Iterator[EcrdProcess]:
    """An ecrd of the test's own (its own data directory and port), for a test that kills it."""
    if registry.kind != "ecrd":
        pytest.skip(f"{registry.kind} is not ecrd")
    process = EcrdProcess(
        tmp_path / "own-ecrd",
        env={"ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY},
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_scan_queued_by_a_push_completes_after_the_server_is_killed_and_started_again(
    own_ecrd: EcrdProcess, tmp_path: Path
) -> None:
    # given an ecrd of its own with the real PyPI advisories, and a scan-on-push repository
    binary = aws_cli_binary()
    if binary is None:
        pytest.skip("the AWS CLI is not installed")
    aws = AwsCli(own_ecrd.url, ROOT_CREDENTIALS, tmp_path / "aws-home", binary=binary)
    own_ecrd.command("vulndb", "import", str(VULNDATA / "pypi.osv.jsonl"))
    repository = "e2e/scan-survives-a-crash"
    create_repository(aws, repository, "--image-scanning-configuration", "scanOnPush=true")
    image = pip_image()

    # when an image is pushed and the server is killed (SIGKILL) the moment its manifest is stored, before the
    # job queue (polled every second) can take the scan up; then the server starts again on the same data
    with registry_session(ecr_registry_credentials(ecr_client(own_ecrd.url))) as session:
        oci = OciHttp(session, own_ecrd.url)
        for blob in (image.config, image.layers[0].blob):
            oci.push_blob(repository, blob, sha256_digest(blob))
        stored = oci.put_manifest(repository, "pip", image.manifest, OCI_MANIFEST)
        own_ecrd.kill()
        killed_at = time.time()
    assert stored.status_code == 201, describe_response(stored)
    own_ecrd.start()

    # then the scan completes — after the crash, so the restarted server did it — with the real advisories
    outcome = scan_outcome(aws, ecr_client(own_ecrd.url), repository, {"imageDigest": image.manifest_digest})
    assert outcome["imageScanStatus"]["status"] == "COMPLETE", outcome["imageScanStatus"]
    assert outcome["imageScanFindings"]["imageScanCompletedAt"] > killed_at
    names = {finding["name"] for finding in outcome["imageScanFindings"]["findings"]}
    assert ("CVE-2023-5752" in names) == (Version(importlib.metadata.version("pip")) < Version("23.3")), names


# -- 4. encryption at rest and KMS keys -------------------------------------------------------------------


def marked_images(marker: str, seed: int, *, compressed: bool = True) -> tuple[Image, Image]:
    """Two images sharing a base layer whose file holds ``marker``; their configs carry it as a label too."""
    base = Layer.of_tar(tar_bytes([file("srv/marker.txt", f"{marker}\n" * 64)]), compressed=compressed)

    def image(name: str) -> Image:
        top = Layer.of_tar(tar_bytes([file(f"srv/{name}.txt", f"{name} {seed}\n")]), compressed=compressed)
        return image_of_layers([base, top], label=f"{marker} {name} {seed}")

    return image("first"), image("second")


def refused_pull(docker: DockerClient, reference: str) -> str:
    """``docker pull REFERENCE`` (after forgetting it locally), expected to fail; everything docker printed."""
    docker.remove_images(reference)
    result = docker("pull", reference, check=False)
    assert result.returncode != 0, f"docker pull {reference} succeeded:\n{result.stdout}"
    return result.stdout + result.stderr


def test_disabled_kms_key_stops_pulls_of_its_repository_only_and_enabling_it_restores_them(
    aws: AwsCli,
    docker: DockerClient,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given a key aliased alias/team, a repository encrypted with it (which names the key by its ARN, as ECR
    # does) and another with AES256, and two images sharing a base layer pushed by docker to each
    key = aws.json("kms", "create-key", "--description", "ecrd e2e: team key")["KeyMetadata"]
    aws("kms", "create-alias", "--alias-name", "alias/team", "--target-key-id", key["KeyId"])
    encrypted = f"{repository}-kms"
    created = create_repository(aws, encrypted, "--encryption-configuration", "encryptionType=KMS,kmsKey=alias/team")
    assert created["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": key["Arn"]}
    [described] = aws.json("ecr", "describe-repositories", "--repository-names", encrypted)["repositories"]
    assert described["encryptionConfiguration"] == created["encryptionConfiguration"]
    kms_image, aes_image = marked_images(f"base-{image_seed}", image_seed)
    kms_ref, aes_ref = registry.reference(encrypted, "v1"), registry.reference(repository, "v1")
    docker.load_image(kms_image, kms_ref, tmp_path / "kms")
    docker.load_image(aes_image, aes_ref, tmp_path / "aes")
    docker.push(kms_ref)
    docker.push(aes_ref)
    docker.remove_images(kms_ref, aes_ref)

    # when the key is disabled
    aws("kms", "disable-key", "--key-id", key["KeyId"])

    # then docker cannot pull from the KMS repository, and says why, naming the key …
    refusal = refused_pull(docker, kms_ref)
    assert f"denied: The KMS key {key['Arn']} of repository '{encrypted}' cannot be used" in refusal, refusal
    assert "(DisabledException)" in refusal, refusal
    # … while the AES256 repository, sharing the base layer, still pulls
    assert pulled_image_id(docker, aes_ref) == aes_image.config_digest
    docker.remove_images(aes_ref)

    # when the key is enabled again, then the KMS repository pulls again
    aws("kms", "enable-key", "--key-id", key["KeyId"])
    assert pulled_image_id(docker, kms_ref) == kms_image.config_digest
    docker.remove_images(kms_ref)


def files_containing(root: Path, marker: bytes) -> list[Path]:
    """Every file under ``root`` (SQLite's database, -wal and -shm files included) holding ``marker``."""
    chunk = 4 << 20
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        with path.open("rb") as stream:
            tail = b""
            while block := stream.read(chunk):
                if marker in tail + block:
                    found.append(path)
                    break
                tail = block[-len(marker) :]
    return found


def test_nothing_readable_of_pushed_layers_or_configs_lies_in_the_data_directory(
    aws: AwsCli,
    ecr: Any,
    docker: DockerClient,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given a marker in a layer's file and in the image config, in images pushed as plain (uncompressed) tar
    # layers through the ECR API to an AES256 and a KMS repository, and by docker too
    marker = f"ecrd-e2e-plaintext-marker-{uuid.uuid4().hex}"
    plain_first, plain_second = marked_images(marker, image_seed, compressed=False)
    assert marker.encode() in plain_first.layers[0].blob and marker.encode() in plain_first.config
    encrypted = f"{repository}-kms"
    create_repository(aws, encrypted, "--encryption-configuration", "encryptionType=KMS")
    put_image_through_api(ecr, repository, plain_first, "plain")
    put_image_through_api(ecr, encrypted, plain_second, "plain")
    docker_ref = registry.reference(encrypted, "docker")
    docker.load_image(plain_first, docker_ref, tmp_path)
    docker.push(docker_ref)
    docker.remove_images(docker_ref)

    # when every file under the registry's data directory is read
    assert isinstance(registry.process, EcrdProcess)
    holding = files_containing(registry.process.data_dir, marker.encode())

    # then none holds the marker, and yet the images read back whole
    assert holding == [], f"plaintext found on disk in {holding}"
    got = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": "plain"}])["images"]
    assert [image["imageManifest"].encode() for image in got] == [plain_first.manifest]
    assert pulled_image_id(docker, registry.reference(encrypted, "plain")) == plain_second.config_digest
    docker.remove_images(registry.reference(encrypted, "plain"))
