"""`ecrd signing-profile … --account-id … --region …`: the registry a profile is made in, which is not the
server's default registry the command opens the deployment with."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecrd.cli.main import build_parser, main, settings_flags
from ecrd.cli.signing_profile import chosen_registry
from ecrd.config import EMBEDDED_DATABASE_FILE, Settings
from ecrd.domain.registries import RegistryId


def _parsed(*argv: str) -> object:
    return build_parser().parse_args(["signing-profile", *argv, "--data-dir", "/nowhere"])


def test_the_flags_name_the_profiles_registry_and_leave_the_servers_default_alone() -> None:
    args = _parsed("create", "release", "--account-id", "111111111111", "--region", "eu-west-1")

    # the settings the deployment is opened with keep their default account and region (rows made before accounts
    # existed move to it when the database is migrated)
    assert "account_id" not in settings_flags(args)  # type: ignore[arg-type]
    assert "region" not in settings_flags(args)  # type: ignore[arg-type]
    args.settings = Settings(account_id="000000000000", region="us-east-1")  # type: ignore[attr-defined]
    assert chosen_registry(args) == RegistryId("111111111111", "eu-west-1")  # type: ignore[arg-type]


def test_without_flags_the_profile_is_the_servers_default_registrys() -> None:
    for action in (("create", "release"), ("list",), ("trust-root",)):
        args = _parsed(*action)
        args.settings = Settings(account_id="000000000000", region="us-east-1")  # type: ignore[attr-defined]
        assert chosen_registry(args) == RegistryId("000000000000", "us-east-1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flags", "refusal"),
    [
        (("--account-id", "1234"), "--account-id must be 12 digits"),
        (("--region", "moon-central-1"), "--region must be a region of the aws partition"),
    ],
)
def test_a_registry_that_cannot_be_is_refused_before_the_deployment_is_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: tuple[str, str], refusal: str
) -> None:
    (tmp_path / EMBEDDED_DATABASE_FILE).write_bytes(b"")  # an existing registry as far as the command looks

    assert main(["signing-profile", "list", *flags, "--data-dir", str(tmp_path)]) == 1

    assert refusal in capsys.readouterr().err
