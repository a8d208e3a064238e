"""The IAM and STS models' constraints on input (names, paths, ranges, descriptions), and the Query services'
wording when a value breaks one."""

from __future__ import annotations

import re
from typing import Final

from ecrd.errors import ValidationError

# Model patterns (botocore iam/sts service-2), with Java's \w read as ASCII: (what we match, what we quote).
NAME: Final = (re.compile(r"[\w+=,.@-]+", re.ASCII), r"[\w+=,.@-]+")
SESSION_NAME: Final = (re.compile(r"[\w+=,.@-]*", re.ASCII), r"[\w+=,.@-]*")
PATH: Final = (re.compile(r"/|/[\x21-\x7e]+/"), r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)")
POLICY_PATH: Final = (re.compile(r"(/[A-Za-z0-9.,+@=_-]+)*/"), r"((/[A-Za-z0-9\.,\+@=_-]+)*)/")
PATH_PREFIX: Final = (re.compile(r"/[\x21-\x7f]*"), r"\u002F[\u0021-\u007F]*")
ACCESS_KEY_ID: Final = (re.compile(r"\w+", re.ASCII), r"[\w]+")


def invalid(value: object, field: str, constraint: str) -> ValidationError:
    """The Query services' wording for a value that breaks a model constraint."""
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
    )


def check_text(value: str, field: str, pattern: tuple[re.Pattern[str], str], min_len: int, max_len: int) -> None:
    if len(value) < min_len:
        raise invalid(value, field, f"Member must have length greater than or equal to {min_len}")
    if len(value) > max_len:
        raise invalid(value, field, f"Member must have length less than or equal to {max_len}")
    if pattern[0].fullmatch(value) is None:
        raise invalid(value, field, f"Member must satisfy regular expression pattern: {pattern[1]}")


def out_of_range(value: int, field: str, low: int, high: int) -> ValidationError:
    """The error for a ``value`` outside ``low..high``, naming the bound it crosses."""
    if value < low:
        return invalid(value, field, f"Member must have value greater than or equal to {low}")
    return invalid(value, field, f"Member must have value less than or equal to {high}")


def check_range(value: int, field: str, low: int, high: int) -> None:
    if not low <= value <= high:
        raise out_of_range(value, field, low, high)


def check_description(value: str) -> None:
    if len(value) > 1000:
        raise invalid(value, "description", "Member must have length less than or equal to 1000")
