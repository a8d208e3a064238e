"""Pull-through cache rules as values, and their pure rules: what ECR accepts in a rule, which rule covers a
repository name, and which upstream repository a cached repository mirrors.

ECR's user guide ("Pull through cache rules", "Creating a pull through cache rule") is the source: a rule maps
the repositories under ``ecrRepositoryPrefix`` (or every repository, for ``ROOT``) to an upstream registry; the
part of the name after the prefix is the upstream repository, under ``upstreamRepositoryPrefix`` when the rule
has one. Docker Hub's official images are named with their ``library/`` namespace ("For Docker Hub official
images, the /library prefix must be included"), which this module checks rather than guesses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ecrd.domain.creation_templates import ROOT, candidate_prefixes, normalized_prefix, prefix_matches
from ecrd.errors import InvalidParameter, RepositoryNotFound, UnsupportedUpstreamRegistry

# ECR's service quotas: "Pull through cache rules per registry: 50".
MAX_RULES: Final = 50

# ``upstreamRegistry`` kinds and the host each reaches (ECR: "Sync an upstream registry with an Amazon ECR
# private registry"). ``ecr`` and ``azure-container-registry`` name per-account hosts: the URL says which.
UPSTREAM_HOSTS: Final[dict[str, str | None]] = {
    "ecr-public": "public.ecr.aws",
    "quay": "quay.io",
    "k8s": "registry.k8s.io",
    "docker-hub": "registry-1.docker.io",
    "github-container-registry": "ghcr.io",
    "gitlab-container-registry": "registry.gitlab.com",
    "chainguard": "cgr.dev",
    "azure-container-registry": None,
    "ecr": None,
}
# ECR: "Authentication credentials are required" for these upstreams (a Secrets Manager secret).
NEEDS_CREDENTIALS: Final = frozenset(
    {"docker-hub", "github-container-registry", "azure-container-registry", "gitlab-container-registry"}
)
DOCKER_HUB: Final = "docker-hub"
ECR_UPSTREAM: Final = "ecr"
DOCKER_HUB_OFFICIAL_NAMESPACE: Final = "library"
# ECR: a credential secret's name must begin with this (the model's CredentialArn pattern says it too).
CREDENTIAL_SECRET_PREFIX: Final = "ecr-pullthroughcache/"

# A host name or IPv4/IPv6 literal with an optional port: what ``upstreamRegistryUrl`` holds. A scheme or a
# path is refused: the registry always speaks HTTPS (or HTTP to a host the operator marked insecure).
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$"
)
_MAX_URL: Final = 1024


@dataclass(frozen=True, slots=True)
class PullThroughRule:
    """One rule: the stored fields of ECR's ``PullThroughCacheRule``."""

    ecr_repository_prefix: str
    upstream_registry_url: str
    upstream_registry: str | None = None
    upstream_repository_prefix: str = ROOT
    credential_arn: str | None = None
    custom_role_arn: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


def checked_upstream_url(url: str) -> str:
    """``upstreamRegistryUrl`` as stored: ``host[:port]``, lower-cased host, no scheme or path."""
    candidate = url.strip()
    for scheme in ("https://", "http://"):
        # ECR's examples show bare hosts; the CLI's users paste URLs. A scheme says nothing here (see above).
        if candidate.lower().startswith(scheme):
            candidate = candidate[len(scheme) :]
    candidate = candidate.rstrip("/")
    match = _HOST.fullmatch(candidate) if len(candidate) <= _MAX_URL else None
    if match is None or (match.group(1) is not None and not 0 < int(match.group(1)) < 65536):
        raise InvalidParameter(
            f"Invalid parameter at 'upstreamRegistryUrl' failed to satisfy constraint: '{url[:200]} is not a host "
            "name with an optional port'"
        )
    host, _, port = candidate.rpartition(":") if match.group(1) is not None else (candidate, "", "")
    return f"{host.lower()}:{port}" if port else candidate.lower()


def upstream_kind(url: str, declared: str | None) -> str | None:
    """The kind of upstream a rule reaches: the declared one, else the kind whose usual host ``url`` is (None:
    any other OCI registry)."""
    if declared is not None:
        if declared not in UPSTREAM_HOSTS:
            raise UnsupportedUpstreamRegistry(f"The upstream registry '{declared}' is not supported")
        return declared
    host = url.split(":", 1)[0]
    for kind, usual in UPSTREAM_HOSTS.items():
        if usual == host:
            return kind
    if host.endswith(".azurecr.io"):
        return "azure-container-registry"
    return None


def check_rule(rule: PullThroughRule) -> None:
    """What ECR refuses in a rule beyond the model's constraints (which the door has checked)."""
    if rule.upstream_registry in NEEDS_CREDENTIALS and rule.credential_arn is None:
        raise InvalidParameter(
            f"Invalid parameter at 'credentialArn' failed to satisfy constraint: 'A credential ARN is required "
            f"for the upstream registry {rule.upstream_registry}'"
        )
    if rule.upstream_registry == ECR_UPSTREAM and rule.custom_role_arn is None:
        raise InvalidParameter(
            "Invalid parameter at 'customRoleArn' failed to satisfy constraint: 'A custom role ARN is required "
            "for an Amazon ECR upstream registry'"
        )
    if rule.credential_arn is not None:
        check_credential_arn(rule.credential_arn)
    prefix = rule.ecr_repository_prefix
    if prefix != ROOT and prefix.split("/", 1)[0] in ("aws", "ecr"):
        # ECR reserves these namespaces for its own repositories.
        raise InvalidParameter(
            f"Invalid parameter at 'ecrRepositoryPrefix' failed to satisfy constraint: 'The prefix '{prefix}' "
            "is reserved'"
        )


def check_credential_arn(arn: str) -> None:
    name = arn.split(":secret:", 1)[-1]
    if ":secretsmanager:" not in arn or not name.startswith(CREDENTIAL_SECRET_PREFIX):
        raise InvalidParameter(
            f"Invalid parameter at 'credentialArn' failed to satisfy constraint: 'The secret name must begin with "
            f"{CREDENTIAL_SECRET_PREFIX}'"
        )


def rule_prefixes(repository_name: str) -> tuple[str, ...]:
    """Every rule prefix that could cover ``repository_name``, longest first, ROOT last."""
    return candidate_prefixes(repository_name)


def covering_rule(rules: Iterable[PullThroughRule], repository_name: str) -> PullThroughRule | None:
    """The rule a pull of ``repository_name`` goes through: the longest prefix covering it, ROOT last. A name
    equal to a prefix has no upstream repository part, so no rule covers it."""
    best: PullThroughRule | None = None
    for rule in rules:
        prefix = normalized_prefix(rule.ecr_repository_prefix)
        if not prefix_matches(prefix, repository_name):
            continue
        if best is None or best.ecr_repository_prefix == ROOT or len(prefix) > len(best.ecr_repository_prefix):
            best = rule
    return best


def upstream_repository(rule: PullThroughRule, repository_name: str) -> str:
    """The upstream repository that the cached ``repository_name`` mirrors under ``rule``."""
    prefix = normalized_prefix(rule.ecr_repository_prefix)
    rest = repository_name if prefix == ROOT else repository_name[len(prefix) + 1 :]
    upstream_prefix = normalized_prefix(rule.upstream_repository_prefix)
    name = rest if upstream_prefix == ROOT else f"{upstream_prefix}/{rest}"
    if rule.upstream_registry == DOCKER_HUB and "/" not in name:
        raise RepositoryNotFound(
            f"Docker Hub official images are named with their namespace: pull "
            f"'{repository_name[: len(repository_name) - len(rest)]}{DOCKER_HUB_OFFICIAL_NAMESPACE}/{rest}'",
            detail={"name": repository_name},
        )
    return name
