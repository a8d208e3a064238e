"""Enhanced scanning on the AWS door: stored observations rendered as ECR's ``EnhancedImageScanFinding``.

An observation (``ecrd.scanner.enhanced``) holds the finding, the packages it was found in and its times; this
module adds what the request knows — the account, region, repository, the image's tags and push time — in the
shape botocore's ECR model defines: ``packageVulnerabilityDetails`` (the CVSS scores the advisory carries,
``vulnerablePackages`` with ``fixedInVersion``), ``remediation``, ``resources``, ``score``, ``fixAvailable``.
OSV data says nothing of exploits, so ``exploitAvailable`` is left out rather than guessed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ecrd.domain.arns import repository_arn

FINDING_TYPE: Final = "PACKAGE_VULNERABILITY"
RESOURCE_TYPE: Final = "AWS_ECR_CONTAINER_IMAGE"
# Inspector's severity of a finding without a rating; basic scanning calls it UNDEFINED.
UNRATED: Final = {"UNDEFINED": "UNTRIAGED"}
NO_REMEDIATION: Final = "None Provided"


@dataclass(frozen=True, slots=True)
class ImageOfFindings:
    """The image the findings are about, as the request names it."""

    account_id: str
    region: str
    repository: str
    digest: str
    tags: list[str]
    pushed_at: float


def _when(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def _modified(text: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def enhanced_severity(severity: str) -> str:
    return UNRATED.get(severity, severity)


def enhanced_severity_counts(counts: Mapping[str, int]) -> dict[str, int]:
    return {enhanced_severity(severity): count for severity, count in counts.items()}


def _cvss_version(vector: str) -> str:
    # "CVSS:3.1/AV:N/…" names its version; a bare CVSS v2 vector does not.
    return vector[5:].split("/", 1)[0] if vector.startswith("CVSS:") else "2.0"


def enhanced_finding(observation: Mapping[str, Any], image: ImageOfFindings) -> dict[str, Any]:
    finding = observation["finding"]
    name, package = finding["name"], finding["package_name"]
    identity = f"{image.repository}@{image.digest}/{observation['key']}"
    finding_id = hashlib.sha256(identity.encode()).hexdigest()[:32]
    fixed = finding.get("fixed_version")
    details: dict[str, Any] = {
        "vulnerabilityId": name,
        "source": finding["advisory_id"].split("-", 1)[0],
        "sourceUrl": finding["uri"],
        "vulnerablePackages": observation["packages"],
    }
    if finding.get("references"):
        details["referenceUrls"] = finding["references"]
    if finding.get("related"):
        details["relatedVulnerabilities"] = finding["related"]
    if finding.get("vendor_severity"):
        details["vendorSeverity"] = finding["vendor_severity"]
    updated = _modified(finding.get("modified") or "")
    if updated is not None:
        details["vendorUpdatedAt"] = updated
    out: dict[str, Any] = {
        "awsAccountId": image.account_id,
        "description": finding["description"],
        "findingArn": f"arn:aws:inspector2:{image.region}:{image.account_id}:finding/{finding_id}",
        "firstObservedAt": _when(observation["first_observed_at"]),
        "lastObservedAt": _when(observation["last_observed_at"]),
        "packageVulnerabilityDetails": details,
        "remediation": {
            "recommendation": {
                "text": f"Upgrade {package} to version {fixed} or later." if fixed else NO_REMEDIATION,
                "url": finding["uri"],
            }
        },
        "resources": [
            {
                "type": RESOURCE_TYPE,
                "id": f"{repository_arn(image.region, image.account_id, image.repository)}/{image.digest}",
                "details": {
                    "awsEcrContainerImage": {
                        "imageHash": image.digest,
                        "imageTags": image.tags,
                        "pushedAt": _when(image.pushed_at),
                        "registry": image.account_id,
                        "repositoryName": image.repository,
                    }
                },
            }
        ],
        "severity": enhanced_severity(finding["severity"]),
        "status": observation["status"],
        "title": f"{name} - {package}",
        "type": FINDING_TYPE,
        "updatedAt": _when(observation["updated_at"]),
        "fixAvailable": "YES" if fixed else "NO",
    }
    vector, score = finding.get("cvss_vector"), finding.get("cvss_score")
    if vector and score is not None:
        version = _cvss_version(vector)
        details["cvss"] = [
            {"baseScore": score, "scoringVector": vector, "source": details["source"], "version": version}
        ]
        out["score"] = score
        out["scoreDetails"] = {
            "cvss": {"score": score, "scoreSource": details["source"], "scoringVector": vector, "version": version}
        }
    return out
