"""Repository creation templates as values, and ECR's rule for which template a new repository takes.

ECR (``Prefix`` in the botocore model): "a prefix of ``prod`` would apply to all repositories beginning with
``prod/``" — "there is always an assumed ``/`` applied to the end of the prefix" — and ``ROOT`` applies "to all
repositories in your registry that don't have an associated creation template". So the template of a new
repository is the one with the longest prefix among those naming a namespace the repository lies in, else ROOT.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ecrd.domain.pull_policy import PullPolicy
from ecrd.domain.records import MutabilityExclusion
from ecrd.errors import InvalidParameter

ROOT: Final = "ROOT"

# RCTAppliedFor in the botocore model: the ways ECR creates a repository on the registry owner's behalf.
REPLICATION: Final = "REPLICATION"
PULL_THROUGH_CACHE: Final = "PULL_THROUGH_CACHE"
CREATE_ON_PUSH: Final = "CREATE_ON_PUSH"
APPLIED_FOR: Final = (REPLICATION, PULL_THROUGH_CACHE, CREATE_ON_PUSH)


@dataclass(frozen=True, slots=True)
class CreationTemplate:
    """A repository creation template: what a repository created for one of ``applied_for`` starts with."""

    prefix: str
    applied_for: tuple[str, ...]
    description: str | None = None
    encryption_type: str = "AES256"
    kms_key: str | None = None
    resource_tags: tuple[tuple[str, str], ...] = ()
    image_tag_mutability: str = "MUTABLE"
    mutability_exclusions: tuple[MutabilityExclusion, ...] = ()
    repository_policy: str | None = None
    lifecycle_policy: str | None = None
    custom_role_arn: str | None = None
    # ecrd's own: the image pull policy a repository created from the template starts with (decision 0030).
    pull_policy: PullPolicy | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


def checked_applied_for(values: Iterable[str]) -> tuple[str, ...]:
    """``appliedFor`` as stored: at least one scenario (the model sets no minimum, but a template for none would
    never be used), each one ECR knows, each once, in the order given."""
    scenarios = tuple(dict.fromkeys(values))
    if not scenarios:
        raise InvalidParameter(
            "Invalid parameter at 'appliedFor' failed to satisfy constraint: 'Member must have length greater than "
            "or equal to 1'"
        )
    if any(value not in APPLIED_FOR for value in scenarios):
        raise InvalidParameter(
            "Invalid parameter at 'appliedFor' failed to satisfy constraint: 'Member must satisfy enum value set: "
            f"[{', '.join(APPLIED_FOR)}]'"
        )
    return scenarios


def normalized_prefix(prefix: str) -> str:
    """One spelling per template: ``prod`` and ``prod/`` are the same namespace (the assumed trailing ``/``)."""
    return prefix if prefix == ROOT else prefix.rstrip("/")


def prefix_matches(prefix: str, repository_name: str) -> bool:
    """Whether a template of ``prefix`` covers ``repository_name``: ROOT covers every name; ``prod`` covers
    ``prod/app`` and ``prod/team/app``, not ``prod`` itself nor ``production/app``."""
    prefix = normalized_prefix(prefix)
    return prefix == ROOT or repository_name.startswith(prefix + "/")


def candidate_prefixes(repository_name: str) -> tuple[str, ...]:
    """Every prefix that could cover ``repository_name``, longest first, ROOT last: the few keys a lookup reads
    instead of scanning every template."""
    parts = repository_name.split("/")
    namespaces = ["/".join(parts[:end]) for end in range(len(parts) - 1, 0, -1)]
    return (*namespaces, ROOT)


def best_template(
    templates: Iterable[CreationTemplate], repository_name: str, applied_for: str
) -> CreationTemplate | None:
    """The template a repository named ``repository_name`` created for ``applied_for`` takes: among the
    templates that apply to that scenario and cover the name, the longest prefix wins; ROOT is the last resort.
    A template that does not apply to the scenario is passed over, so a ROOT template for CREATE_ON_PUSH still
    serves ``prod/app`` when the ``prod`` template is for PULL_THROUGH_CACHE only."""
    best: CreationTemplate | None = None
    for template in templates:
        if applied_for not in template.applied_for or not prefix_matches(template.prefix, repository_name):
            continue
        if best is None or _specificity(template.prefix) > _specificity(best.prefix):
            best = template
    return best


def _specificity(prefix: str) -> int:
    return -1 if prefix == ROOT else len(normalized_prefix(prefix))
