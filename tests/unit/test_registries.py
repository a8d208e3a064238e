"""Registries: the regions of the partition, ECR's host names, and the settings that choose what is served."""

from __future__ import annotations

import botocore.loaders
import pytest

from ecrd.config import Settings, SettingsError
from ecrd.domain.registries import PARTITION_REGIONS, RegistryId, registry_from_host, registry_host


def test_the_regions_are_those_of_the_aws_partition_in_botocores_endpoints() -> None:
    endpoints = botocore.loaders.create_loader().load_data("endpoints")
    [aws] = [partition for partition in endpoints["partitions"] if partition["partition"] == "aws"]
    assert set(PARTITION_REGIONS) == set(aws["regions"])


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", RegistryId("123456789012", "eu-west-1")),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com:443", RegistryId("123456789012", "eu-west-1")),
        ("123456789012.DKR.ECR.eu-west-1.AmazonAWS.com", RegistryId("123456789012", "eu-west-1")),
        ("localhost:5000", None),
        ("amazonaws.com", None),
        ("12345.dkr.ecr.eu-west-1.amazonaws.com", None),
        ("123456789012.dkr.ecr.amazonaws.com", None),
        ("x.123456789012.dkr.ecr.eu-west-1.amazonaws.com", None),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example", None),
    ],
)
def test_a_registry_is_read_from_ecrs_host_name_under_the_domain(host: str, expected: RegistryId | None) -> None:
    assert registry_from_host(host, "amazonaws.com") == expected
    if expected is not None:
        assert registry_from_host(registry_host(expected, "amazonaws.com"), "amazonaws.com") == expected


def test_no_domain_names_no_registry() -> None:
    assert registry_from_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "") is None


def test_registry_hosts_keep_the_public_urls_port_unless_it_is_the_schemes() -> None:
    registry = RegistryId("123456789012", "eu-west-1")
    on_5000 = Settings(registry_domain="ecr.test", public_url="http://registry.test:5000")
    assert on_5000.registry_host_for(registry) == "123456789012.dkr.ecr.eu-west-1.ecr.test:5000"
    on_443 = Settings(registry_domain="ecr.test", public_url="https://registry.test")
    assert on_443.registry_host_for(registry) == "123456789012.dkr.ecr.eu-west-1.ecr.test"
    assert Settings(public_url="http://registry.test:5000").registry_host_for(registry) == "registry.test:5000"


def test_regions_narrow_to_a_list_that_always_holds_the_default() -> None:
    assert Settings().served_regions == frozenset(PARTITION_REGIONS)
    narrowed = Settings.load(flags={"regions": "eu-west-1,eu-central-1", "region": "us-east-1"}, environ={})
    assert narrowed.served_regions == {"eu-west-1", "eu-central-1", "us-east-1"}
    with pytest.raises(SettingsError, match="not regions of the AWS partition: xx-nowhere-1"):
        Settings.load(flags={"regions": "eu-west-1,xx-nowhere-1"}, environ={})
    with pytest.raises(SettingsError, match="registry_domain"):
        Settings.load(flags={"registry_domain": "not a domain"}, environ={})
