"""IAM's and STS's quotas at their default values, how policy sizes count, and how IAM listings page.

Sources: "IAM and AWS STS quotas" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html)
and the STS API reference for session durations.
"""

from __future__ import annotations

from typing import Final

from ecrd.domain.pages import Paging
from ecrd.errors import ValidationError
from ecrd.services.iam.constraints import out_of_range

MAX_USERS: Final = 5000
MAX_ROLES: Final = 1000
MAX_GROUPS: Final = 300
MAX_GROUPS_PER_USER: Final = 10
MAX_CUSTOMER_POLICIES: Final = 1500
MAX_ACCESS_KEYS: Final = 2
MAX_ATTACHED_POLICIES: Final = 10
MAX_POLICY_VERSIONS: Final = 5
# "IAM doesn't count white space when calculating the size of a policy against these limits."
USER_INLINE_POLICY_SIZE: Final = 2048  # all of a user's inline policies together
ROLE_INLINE_POLICY_SIZE: Final = 10240  # all of a role's inline policies together
GROUP_INLINE_POLICY_SIZE: Final = 5120  # all of a group's inline policies together
MANAGED_POLICY_SIZE: Final = 6144
TRUST_POLICY_SIZE: Final = 2048

ROLE_SESSION_DEFAULT: Final = 3600
ROLE_SESSION_MIN: Final = 900
ROLE_SESSION_MAX: Final = 43200
# STS: "role chaining limits your AWS CLI or AWS API role session to a maximum of one hour".
ROLE_CHAINING_MAX: Final = 3600
# STS GetSessionToken: 900 s to 129,600 s for IAM users (default 43,200 s); at most one hour for the root.
SESSION_TOKEN_DEFAULT: Final = 43200
SESSION_TOKEN_MAX: Final = 129600
ROOT_SESSION_TOKEN_MAX: Final = 3600

DEFAULT_MAX_ITEMS: Final = 100
MAX_ITEMS_LIMIT: Final = 1000
MARKERS: Final = Paging(
    default_size=DEFAULT_MAX_ITEMS,
    max_size=MAX_ITEMS_LIMIT,
    invalid_token=lambda: ValidationError("Invalid Marker."),
    invalid_size=lambda requested: out_of_range(requested, "maxItems", 1, MAX_ITEMS_LIMIT),
)
"""IAM's Marker and MaxItems: 100 items by default, at most 1000."""


def name_after(marker: str | None) -> str | None:
    """The name key (lower case) a listing by name continues after; a marker holding anything else is not one
    IAM issued."""
    position = MARKERS.decode(marker)
    if position is None or isinstance(position, str):
        return position
    raise MARKERS.invalid_token()


def policy_size(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())
