"""ECR's signing configuration (PutSigningConfiguration): its rules, which repositories each covers, and the
signing profiles they name, as ARNs of AWS Signer's shape (``arn:aws:signer:<region>:<account>:/signing-profiles/
<name>``) for profiles the registry itself holds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from ecrd.domain.wildcards import wildcard_matches
from ecrd.errors import InvalidParameter

WILDCARD_MATCH: Final = "WILDCARD_MATCH"
# The model's SigningProfileArn pattern: a profile's name is two or more letters, digits or underscores.
PROFILE_NAME: Final = re.compile(r"[a-zA-Z0-9_]{2,64}")
_PROFILE_ARN: Final = re.compile(r"arn:aws(?:-[a-z]+)*:signer:([a-z0-9-]+):([0-9]{12}):/signing-profiles/(\w{2,})")

IN_PROGRESS: Final = "IN_PROGRESS"
COMPLETE: Final = "COMPLETE"
FAILED: Final = "FAILED"


@dataclass(frozen=True, slots=True)
class SigningRule:
    profile_arn: str
    # Empty: the rule covers every repository (the model makes repositoryFilters optional).
    filters: tuple[str, ...]

    def covers(self, repository: str) -> bool:
        return not self.filters or any(wildcard_matches(f, repository) for f in self.filters)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"signingProfileArn": self.profile_arn}
        if self.filters:
            out["repositoryFilters"] = [{"filter": f, "filterType": WILDCARD_MATCH} for f in self.filters]
        return out


@dataclass(frozen=True, slots=True)
class SigningConfiguration:
    rules: tuple[SigningRule, ...]

    def profiles_for(self, repository: str) -> list[str]:
        """The profiles that sign a push to ``repository``: each rule's that covers it, once each, in order."""
        found: list[str] = []
        for rule in self.rules:
            if rule.covers(repository) and rule.profile_arn not in found:
                found.append(rule.profile_arn)
        return found

    def to_json(self) -> dict[str, Any]:
        return {"rules": [rule.to_json() for rule in self.rules]}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> SigningConfiguration:
        """The configuration of a request (its shape checked against the model already) or of the stored text."""
        rules = []
        for rule in document.get("rules", []):
            filters = rule.get("repositoryFilters") or []
            for f in filters:
                if f.get("filterType") != WILDCARD_MATCH:
                    raise InvalidParameter(
                        "Invalid parameter at 'filterType' failed to satisfy constraint: 'Member must satisfy "
                        f"enum value set: [{WILDCARD_MATCH}]'"
                    )
            rules.append(SigningRule(rule["signingProfileArn"], tuple(f["filter"] for f in filters)))
        return cls(tuple(rules))


def signing_profile_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:signer:{region}:{account_id}:/signing-profiles/{name}"


def parse_signing_profile_arn(arn: str) -> tuple[str, str, str] | None:
    """(region, account, name) of a signing profile ARN, or None when it is not one."""
    match = _PROFILE_ARN.fullmatch(arn)
    return None if match is None else (match[1], match[2], match[3])


def check_profile_name(name: str) -> str:
    if PROFILE_NAME.fullmatch(name) is None:
        raise InvalidParameter(
            f"Invalid signing profile name '{name}': 2 to 64 letters, digits or underscores, as AWS Signer's are"
        )
    return name
