"""Settings refuse what they would otherwise ignore: misspelt variables and keys, and derive a public URL docker
and the README agree on."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecrd.config import NOT_SETTINGS, SERIALIZED_ENV, Settings, SettingsError

MASTER_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("ECRD_MASTERKEY", "ECRD_MASTER_KEY"),
        ("ECRD_DATABSE_URL", "ECRD_DATABASE_URL"),
        ("ECRD_DATADIR", "ECRD_DATA_DIR"),
        ("ECRD_PROT", "ECRD_PORT"),
    ],
)
def test_a_misspelt_environment_variable_is_an_error_naming_it_and_the_closest_setting(
    variable: str, suggestion: str
) -> None:
    # given a variable one typo away from a real setting
    environ = {variable: MASTER_KEY}

    # when settings are resolved, then it is refused, naming the variable, where it came from and the fix
    with pytest.raises(SettingsError) as raised:
        Settings.load(environ=environ)
    message = str(raised.value)
    assert f"unknown setting {variable} in the environment" in message
    assert f"did you mean {suggestion}?" in message
    # the value of an unknown variable may be a secret (a misspelt master key): it is never echoed
    assert MASTER_KEY not in message


def test_an_unknown_variable_far_from_every_setting_is_refused_without_a_guess() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.load(environ={"ECRD_COLOUR": "blue"})
    assert "unknown setting ECRD_COLOUR in the environment" in str(raised.value)
    assert "did you mean" not in str(raised.value)


@pytest.mark.parametrize("variable", [*sorted(NOT_SETTINGS), SERIALIZED_ENV])
def test_variables_the_test_suite_and_the_server_read_themselves_are_not_settings_errors(variable: str) -> None:
    assert Settings.load(environ={variable: "1"}).port == 5000


def test_variables_without_the_prefix_are_none_of_our_business() -> None:
    assert Settings.load(environ={"ECRDX": "1", "MY_ECRD_PORT": "1", "PATH": "/bin"}).port == 5000


@pytest.mark.parametrize(
    ("line", "shown", "suggestion"),
    [
        ('databse_url = "sqlite:///x.db"\n', "databse_url", "database_url"),
        ('databse-url = "sqlite:///x.db"\n', "databse-url", "database-url"),
        ('[ecrd]\nmasterkey = "x"\n', "masterkey", "master_key"),
    ],
)
def test_a_misspelt_toml_key_is_an_error_naming_the_file_and_the_closest_key(
    tmp_path: Path, line: str, shown: str, suggestion: str
) -> None:
    toml = tmp_path / "ecrd.toml"
    toml.write_text(line)
    with pytest.raises(SettingsError) as raised:
        Settings.load(config_file=toml, environ={})
    assert str(raised.value) == f"unknown setting {shown!r} in {toml}; did you mean {suggestion!r}?"


def test_top_level_keys_beside_an_ecrd_table_are_not_silently_ignored(tmp_path: Path) -> None:
    # given a file whose port sits above the [ecrd] table (TOML puts top-level keys first)
    toml = tmp_path / "ecrd.toml"
    toml.write_text('port = 6000\n[ecrd]\nregion = "eu-west-1"\n')

    # then the stray key is named rather than dropped
    with pytest.raises(SettingsError, match=rf"'port' in {toml} is outside the \[ecrd\] table"):
        Settings.load(config_file=toml, environ={})


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "0.0.0.0", "::"])
def test_the_default_public_url_of_a_local_or_wildcard_bind_is_localhost(host: str) -> None:
    # docker treats localhost as an insecure registry, and the README logs in to localhost:PORT, so the
    # repository URIs it tags with must say localhost too
    settings = Settings.load(flags={"host": host, "port": "5001"}, environ={})
    assert settings.resolved_public_url == "http://localhost:5001"
    assert settings.registry_host == "localhost:5001"


def test_the_default_public_url_of_another_address_is_that_address() -> None:
    assert Settings.load(flags={"host": "192.0.2.7"}, environ={}).registry_host == "192.0.2.7:5000"
    assert Settings.load(flags={"host": "fd00::7"}, environ={}).resolved_public_url == "http://[fd00::7]:5000"
    assert Settings.load(flags={"host": "registry.internal"}, environ={}).registry_host == "registry.internal:5000"
