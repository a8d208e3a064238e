"""The pure rules of pull-through cache rules: upstream URLs, kinds, credentials, and name mapping."""

from __future__ import annotations

import pytest

from ecrd.domain.pull_through import (
    PullThroughRule,
    check_rule,
    checked_upstream_url,
    covering_rule,
    upstream_kind,
    upstream_repository,
)
from ecrd.errors import InvalidParameter, RepositoryNotFound, UnsupportedUpstreamRegistry

SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/hub-AbCdEf"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("registry-1.docker.io", "registry-1.docker.io"),
        ("https://Quay.io/", "quay.io"),
        ("127.0.0.1:5001", "127.0.0.1:5001"),
        ("[::1]:443", "[::1]:443"),
    ],
)
def test_an_upstream_url_is_a_host_with_an_optional_port(given: str, stored: str) -> None:
    assert checked_upstream_url(given) == stored


@pytest.mark.parametrize("given", ["quay.io/path", "ftp://quay.io", "host:0", "host:70000", "", "a b"])
def test_other_upstream_urls_are_refused(given: str) -> None:
    with pytest.raises(InvalidParameter):
        checked_upstream_url(given)


def test_the_kind_of_a_usual_host_is_known_and_an_unknown_kind_is_refused() -> None:
    assert upstream_kind("registry-1.docker.io", None) == "docker-hub"
    assert upstream_kind("ghcr.io", None) == "github-container-registry"
    assert upstream_kind("127.0.0.1:5001", None) is None
    with pytest.raises(UnsupportedUpstreamRegistry):
        upstream_kind("x.io", "nexus")


def test_docker_hub_needs_credentials_in_an_ecr_pullthroughcache_secret() -> None:
    with pytest.raises(InvalidParameter, match="credentialArn"):
        check_rule(PullThroughRule("hub", "registry-1.docker.io", "docker-hub"))
    with pytest.raises(InvalidParameter, match="ecr-pullthroughcache/"):
        check_rule(PullThroughRule("hub", "x.io", None, credential_arn=SECRET.replace("ecr-pullthroughcache/", "")))
    check_rule(PullThroughRule("hub", "registry-1.docker.io", "docker-hub", credential_arn=SECRET))


def test_the_longest_covering_prefix_wins_and_root_comes_last() -> None:
    rules = [PullThroughRule("ROOT", "a.io"), PullThroughRule("hub", "b.io"), PullThroughRule("hub/team", "c.io")]
    assert covering_rule(rules, "hub/team/app").upstream_registry_url == "c.io"  # type: ignore[union-attr]
    assert covering_rule(rules, "hub/app").upstream_registry_url == "b.io"  # type: ignore[union-attr]
    assert covering_rule(rules, "other/app").upstream_registry_url == "a.io"  # type: ignore[union-attr]
    assert covering_rule(rules[1:], "hubby/app") is None


def test_the_upstream_repository_is_the_name_after_the_prefix_under_the_upstream_prefix() -> None:
    assert upstream_repository(PullThroughRule("hub", "x.io"), "hub/library/nginx") == "library/nginx"
    assert upstream_repository(PullThroughRule("ROOT", "x.io"), "team/app") == "team/app"
    mirrored = PullThroughRule("mirror", "x.io", upstream_repository_prefix="org")
    assert upstream_repository(mirrored, "mirror/app") == "org/app"


def test_docker_hub_official_images_are_named_with_library() -> None:
    rule = PullThroughRule("hub", "registry-1.docker.io", "docker-hub", credential_arn=SECRET)
    with pytest.raises(RepositoryNotFound, match="hub/library/nginx"):
        upstream_repository(rule, "hub/nginx")
