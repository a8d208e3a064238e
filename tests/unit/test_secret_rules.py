"""Secrets Manager's rules as pure values: names and ARNs, values, recovery windows, staging labels, filters."""

from __future__ import annotations

import pytest

from ecrd.aws.models import service_model
from ecrd.aws.shapes import ShapeViolation, convert, validation_error
from ecrd.domain.secrets import (
    CURRENT,
    MAX_VERSIONS,
    PREVIOUS,
    SecretFacts,
    SecretFilter,
    SecretReference,
    SecretValue,
    check_secret_name,
    filters_match,
    labels_by_version,
    move_stage,
    outdated_versions,
    recovery_days,
    secret_arn,
    secret_reference,
    stage_new_version,
    value_of,
)
from ecrd.errors import InvalidParameter, LimitExceeded

REGION, ACCOUNT = "us-east-1", "000000000000"
V1, V2, V3 = "v1" * 16, "v2" * 16, "v3" * 16


# -- names, ARNs and references ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["db", "team/app/db-password", "a+b=c.d@e_f-g", "x" * 512])
def test_names_of_letters_digits_and_the_allowed_punctuation_are_accepted(name: str) -> None:
    check_secret_name(name)


@pytest.mark.parametrize("name", ["with space", "semi;colon", "quote'", "é"])
def test_other_characters_are_refused_with_secrets_managers_message(name: str) -> None:
    with pytest.raises(InvalidParameter, match=r"Invalid name\. Must be a valid name containing alphanumeric"):
        check_secret_name(name)


def test_an_arn_carries_the_name_and_a_six_character_suffix() -> None:
    assert secret_arn(REGION, ACCOUNT, "app/db", "AbC123") == (
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db-AbC123"
    )


def test_a_secret_id_is_a_name_a_full_arn_or_a_partial_arn() -> None:
    full = "arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db-AbC123"
    assert secret_reference("app/db", REGION, ACCOUNT) == SecretReference(name="app/db")
    assert secret_reference(full, REGION, ACCOUNT) == SecretReference(arn=full, name="app/db-AbC123")
    partial = "arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db"
    assert secret_reference(partial, REGION, ACCOUNT) == SecretReference(arn=partial, name="app/db")
    # Secrets are regional: another region's ARN names nothing here.
    assert secret_reference(full.replace("us-east-1", "eu-west-1"), REGION, ACCOUNT) is None
    # Another account's secret in this region is reached by its full ARN only, never by name.
    other = full.replace("000000000000", "111111111111")
    assert secret_reference(other, REGION, ACCOUNT) == SecretReference(arn=other, other_account=True)


# -- values ------------------------------------------------------------------------------------------------


def test_a_value_is_a_string_or_bytes_never_both_and_never_shown() -> None:
    assert value_of("s3cr3t", None, required=True) == SecretValue(string="s3cr3t")
    assert value_of(None, b"\x00\x01", required=True) == SecretValue(binary=b"\x00\x01")
    assert value_of(None, None, required=False) is None
    with pytest.raises(InvalidParameter, match="can't specify both a binary secret value and a string"):
        value_of("a", b"a", required=False)
    with pytest.raises(InvalidParameter, match="either SecretString or SecretBinary"):
        value_of(None, None, required=True)
    assert "s3cr3t" not in repr(SecretValue(string="s3cr3t"))
    assert "s3cr3t" not in str(SecretValue(string="s3cr3t"))


def test_the_size_limit_counts_bytes_not_characters() -> None:
    assert value_of("é" * 32768, None, required=True) is not None
    with pytest.raises(InvalidParameter, match="65536 bytes"):
        value_of("é" * 32769, None, required=True)


def test_values_compare_by_kind_and_content() -> None:
    assert SecretValue(string="a").same_as(SecretValue(string="a"))
    assert not SecretValue(string="a").same_as(SecretValue(string="b"))
    assert not SecretValue(string="a").same_as(SecretValue(binary=b"a"))


def test_a_sensitive_member_is_not_repeated_in_a_validation_error() -> None:
    shape = service_model("secretsmanager").operation_model("CreateSecret").input_shape
    with pytest.raises(ShapeViolation) as violation:
        convert(shape, {"Name": "db", "SecretString": "hunter2" * 10000})
    message = validation_error(violation.value, protocol="query").message
    assert "hunter2" not in message
    assert "Value '***' at 'secretString'" in message
    # A member that is not sensitive is quoted as before.
    with pytest.raises(ShapeViolation) as name_violation:
        convert(shape, {"Name": "n" * 513})
    assert f"Value '{'n' * 256}' at 'name'" in validation_error(name_violation.value, protocol="query").message


# -- deletion ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "force", "days"), [(None, None, 30), (7, None, 7), (30, False, 30), (None, True, 0), (None, False, 30)]
)
def test_the_recovery_window_is_7_to_30_days_or_none_when_forced(
    window: int | None, force: bool | None, days: int
) -> None:
    assert recovery_days(window, force) == days


@pytest.mark.parametrize("window", [0, 6, 31, -1])
def test_a_window_outside_7_to_30_days_is_refused(window: int) -> None:
    with pytest.raises(InvalidParameter, match="between 7 and 30 days"):
        recovery_days(window, None)


def test_forcing_and_a_window_together_are_refused() -> None:
    with pytest.raises(InvalidParameter, match="ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays"):
        recovery_days(7, True)


# -- staging labels ----------------------------------------------------------------------------------------


def test_the_first_version_becomes_current() -> None:
    assert stage_new_version({}, V1, [CURRENT]) == {CURRENT: V1}


def test_a_new_current_version_makes_the_old_one_previous() -> None:
    assert stage_new_version({CURRENT: V1, PREVIOUS: "v0" * 16}, V2, [CURRENT]) == {CURRENT: V2, PREVIOUS: V1}


def test_a_version_staged_without_current_leaves_current_where_it_is() -> None:
    assert stage_new_version({CURRENT: V1}, V2, ["AWSPENDING"]) == {"AWSPENDING": V2}


def test_a_version_takes_at_most_20_labels() -> None:
    with pytest.raises(LimitExceeded):
        stage_new_version({}, V1, [f"L{i}" for i in range(21)])


def test_moving_current_leaves_previous_on_the_version_that_held_it() -> None:
    moves = move_stage({CURRENT: V1}, CURRENT, remove_from=V1, move_to=V2, versions=[V1, V2])
    assert moves == {CURRENT: V2, PREVIOUS: V1}


def test_a_label_is_removed_only_from_the_version_that_holds_it() -> None:
    with pytest.raises(InvalidParameter, match="currently attached to version"):
        move_stage({"BETA": V1}, "BETA", remove_from=V2, move_to=None, versions=[V1, V2])
    assert move_stage({"BETA": V1}, "BETA", remove_from=V1, move_to=None, versions=[V1, V2]) == {"BETA": None}


def test_current_cannot_be_removed_without_a_new_home_nor_moved_to_an_unknown_version() -> None:
    with pytest.raises(InvalidParameter, match="without moving it"):
        move_stage({CURRENT: V1}, CURRENT, remove_from=V1, move_to=None, versions=[V1])
    with pytest.raises(InvalidParameter, match="doesn't exist"):
        move_stage({CURRENT: V1}, CURRENT, remove_from=V1, move_to=V3, versions=[V1])


def test_labels_group_by_version() -> None:
    assert labels_by_version({CURRENT: V2, PREVIOUS: V1, "BETA": V2}) == {V1: [PREVIOUS], V2: [CURRENT, "BETA"]}


def test_beyond_the_version_quota_the_oldest_unlabelled_versions_go() -> None:
    versions = [f"{i:032d}" for i in range(MAX_VERSIONS + 2)]
    stages = {CURRENT: versions[-1], PREVIOUS: versions[0]}
    assert outdated_versions(versions, stages) == [versions[1], versions[2]]
    assert outdated_versions(versions[:MAX_VERSIONS], stages) == []


# -- ListSecrets filters -----------------------------------------------------------------------------------

FACTS = SecretFacts("prod/app/db", "Database Password", (("team", "blue"), ("env", "production")))


@pytest.mark.parametrize(
    ("key", "values", "expected"),
    [
        ("name", ("prod/",), True),
        ("name", ("Prod/",), False),  # names match case-sensitively
        ("name", ("app",), False),  # a prefix of the whole name
        ("description", ("database",), True),  # descriptions do not
        ("tag-key", ("te",), True),
        ("tag-value", ("prod",), True),
        ("tag-value", ("green", "blue"), True),  # values of one filter are alternatives
        ("name", ("!prod",), False),  # "!" excludes
        ("name", ("!dev",), True),
        ("all", ("APP",), True),  # all: any word of any attribute, whatever the case
        ("all", ("password blue",), True),
        ("all", ("password green",), False),
    ],
)
def test_filters_match_as_secrets_manager_documents(key: str, values: tuple[str, ...], expected: bool) -> None:
    assert SecretFilter(key, values).matches(FACTS) is expected  # type: ignore[arg-type]


def test_filters_combine_with_and() -> None:
    assert filters_match([SecretFilter("name", ("prod",)), SecretFilter("tag-key", ("team",))], FACTS)
    assert not filters_match([SecretFilter("name", ("prod",)), SecretFilter("tag-key", ("owner",))], FACTS)
