"""ECR's wildcard filters (tag mutability exclusions, scanning rules): '*' is any run of characters, and the
filter must match the whole name."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def wildcard_matches(pattern: str, text: str) -> bool:
    return _compiled(pattern).fullmatch(text) is not None
