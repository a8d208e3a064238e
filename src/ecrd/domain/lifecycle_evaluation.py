"""Which images of one repository a lifecycle policy expires or archives, at a given moment.

ECR's evaluation rules (user guide, "Lifecycle policy evaluation rules"):

- All rules are evaluated at once and applied in priority order, lowest ``rulePriority`` first.
- An image that matches a rule's tag selection is *seen* by it and can never be acted on by a later rule; so an
  image is acted on by at most one rule.
- Later rules still count images seen by earlier rules: "Rules can never mark images that are marked by higher
  priority rules, but can still identify them as if they haven't been expired."
- ``imageCountMoreThan`` ranks the images a rule selects from newest to oldest push and acts on those past the
  count; the ``since*`` types act on images older than ``countNumber`` days.

A rule looks only at images of its ``storageClass``. An archived image is never expired by a rule before it has
been archived for 90 days ("Minimum archive duration", archive-image user guide page).

The evaluator holds one small record per image and walks the images once per rule: linear in images × rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ecrd.domain.lifecycle_policy import COUNT_BY_NUMBER, LifecyclePolicy, LifecycleRule

DAY_SECONDS = 86_400
MINIMUM_ARCHIVE_DAYS = 90


@dataclass(frozen=True, slots=True)
class LifecycleImage:
    digest: str
    tags: tuple[str, ...]
    pushed_at: float
    last_pulled_at: float | None
    """ECR's ``lastRecordedPullTime``; an image never pulled counts as pulled when it was pushed."""
    storage_class: str
    """``STANDARD`` or ``ARCHIVE``."""
    last_archived_at: float | None
    """When the image last moved to the archive; if unknown, its push time stands in."""


@dataclass(frozen=True, slots=True)
class LifecycleDecision:
    digest: str
    rule_priority: int
    action: str
    """``EXPIRE`` or ``TRANSITION``, as the API spells them."""
    target_storage_class: str | None
    """``ARCHIVE`` for a transition, else None."""


def evaluate_lifecycle_policy(
    policy: LifecyclePolicy, images: Iterable[LifecycleImage], *, now: float
) -> list[LifecycleDecision]:
    """What ``policy`` does to ``images`` (one repository's top-level images, digests distinct) at ``now``.

    Decisions come in rule priority order, then oldest push first (ties by digest), whatever the input order.
    """
    by_class: dict[str, list[LifecycleImage]] = {}
    for image in images:
        by_class.setdefault(image.storage_class, []).append(image)
    for members in by_class.values():
        members.sort(key=_newest_first)
    # One flag per image: has a rule of its storage class selected it yet?
    seen = {storage_class: bytearray(len(members)) for storage_class, members in by_class.items()}
    decisions: list[LifecycleDecision] = []
    for rule in policy.rules:
        storage_class = rule.storage_class.upper()
        if storage_class not in by_class:
            continue
        acted = _apply(rule, by_class[storage_class], seen[storage_class], now)
        decisions.extend(_decision(rule, image) for image in sorted(acted, key=_oldest_first))
    return decisions


def _newest_first(image: LifecycleImage) -> tuple[float, str]:
    return (-image.pushed_at, image.digest)


def _oldest_first(image: LifecycleImage) -> tuple[float, str]:
    return (image.pushed_at, image.digest)


def _apply(rule: LifecycleRule, members: list[LifecycleImage], seen: bytearray, now: float) -> list[LifecycleImage]:
    """The images ``rule`` acts on; marks every image it selects as seen."""
    acted: list[LifecycleImage] = []
    ranked = 0
    for index, image in enumerate(members):
        if not rule.selects_tags(image.tags):
            continue
        seen_before = seen[index]
        seen[index] = 1
        if rule.count_type == COUNT_BY_NUMBER:
            ranked += 1
            beyond = ranked > rule.count_number
        else:
            beyond = now - _age_reference(rule, image) > rule.count_number * DAY_SECONDS
        if beyond and not seen_before and not _archive_too_young(rule, image, now):
            acted.append(image)
    return acted


def _age_reference(rule: LifecycleRule, image: LifecycleImage) -> float:
    if rule.count_type == "sinceImagePulled" and image.last_pulled_at is not None:
        return image.last_pulled_at
    if rule.count_type == "sinceImageTransitioned":
        return _archived_at(image)
    return image.pushed_at


def _archived_at(image: LifecycleImage) -> float:
    return image.pushed_at if image.last_archived_at is None else image.last_archived_at


def _archive_too_young(rule: LifecycleRule, image: LifecycleImage, now: float) -> bool:
    if rule.action != "expire" or image.storage_class != "ARCHIVE":
        return False
    return now - _archived_at(image) < MINIMUM_ARCHIVE_DAYS * DAY_SECONDS


def _decision(rule: LifecycleRule, image: LifecycleImage) -> LifecycleDecision:
    target = rule.target_storage_class.upper() if rule.target_storage_class else None
    return LifecycleDecision(image.digest, rule.priority, rule.action.upper(), target)
