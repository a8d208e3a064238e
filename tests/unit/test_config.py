"""Settings: precedence, validation with the key and its source, secrets that never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecrd.config import Secret, Settings, SettingsError, configuration_reference

ROOT = Path(__file__).resolve().parents[2]


def test_flags_beat_environment_beat_toml_beat_defaults(tmp_path: Path) -> None:
    toml = tmp_path / "ecrd.toml"
    toml.write_text('port = 6000\nregion = "eu-west-1"\naccount-id = "111122223333"\n')
    settings = Settings.load(
        flags={"port": "7000"},
        environ={"ECRD_PORT": "6500", "ECRD_REGION": "eu-central-1"},
        config_file=toml,
    )
    assert settings.port == 7000
    assert settings.region == "eu-central-1"
    assert settings.account_id == "111122223333"
    assert settings.host == "127.0.0.1"


def test_bad_value_names_key_source_and_value() -> None:
    with pytest.raises(SettingsError, match=r"account_id = '12' from environment variable ECRD_ACCOUNT_ID"):
        Settings.load(environ={"ECRD_ACCOUNT_ID": "12"})
    with pytest.raises(SettingsError, match="port"):
        Settings.load(flags={"port": "not-a-number"}, environ={})


def test_unknown_toml_key_is_an_error(tmp_path: Path) -> None:
    toml = tmp_path / "ecrd.toml"
    toml.write_text("colour = 'blue'\n")
    with pytest.raises(SettingsError, match="unknown setting 'colour'"):
        Settings.load(config_file=toml, environ={})


def test_secrets_print_as_stars() -> None:
    settings = Settings.load(
        environ={"ECRD_ROOT_ACCESS_KEY_ID": "AKIA0000000000000000", "ECRD_ROOT_SECRET_ACCESS_KEY": "hunter2-secret"}
    )
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.root_secret_access_key)
    assert isinstance(settings.root_secret_access_key, Secret)
    assert settings.root_secret_access_key.reveal() == "hunter2-secret"


def test_public_url_and_registry_host_derive_from_host_and_port() -> None:
    settings = Settings.load(flags={"port": "5001"}, environ={})
    assert settings.resolved_public_url == "http://localhost:5001"
    assert settings.registry_host == "localhost:5001"
    public = Settings.load(flags={"public_url": "https://registry.example.com"}, environ={})
    assert public.registry_host == "registry.example.com"


def test_serialized_settings_round_trip_including_secrets() -> None:
    settings = Settings.load(
        environ={
            "ECRD_ROOT_ACCESS_KEY_ID": "AKIA0000000000000000",
            "ECRD_ROOT_SECRET_ACCESS_KEY": "s3cret",
            "ECRD_CREATE_ON_PUSH": "true",
        }
    )
    import json

    restored = Settings._build({k: (v, "test") for k, v in json.loads(settings.serialize()).items()})
    assert restored == settings


def test_configuration_reference_is_current() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == configuration_reference()
