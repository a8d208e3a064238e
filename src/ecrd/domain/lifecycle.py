"""ECR lifecycle policies: the language (``lifecycle_policy``) and its one evaluator (``lifecycle_evaluation``),
shared by preview and execution."""

from ecrd.domain.lifecycle_evaluation import (
    DAY_SECONDS,
    MINIMUM_ARCHIVE_DAYS,
    LifecycleDecision,
    LifecycleImage,
    evaluate_lifecycle_policy,
)
from ecrd.domain.lifecycle_policy import (
    InvalidLifecyclePolicy,
    LifecyclePolicy,
    LifecycleRule,
    parse_lifecycle_policy,
)

__all__ = [
    "DAY_SECONDS",
    "MINIMUM_ARCHIVE_DAYS",
    "InvalidLifecyclePolicy",
    "LifecycleDecision",
    "LifecycleImage",
    "LifecyclePolicy",
    "LifecycleRule",
    "evaluate_lifecycle_policy",
    "parse_lifecycle_policy",
]
