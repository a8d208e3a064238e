"""The web console's overview figures, on SQLite and PostgreSQL: pushes and pulls per day, the largest
repositories and the bytes held count one registry (an account in a region) and nothing of another."""

from __future__ import annotations

import dataclasses

from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app
from ecrd.config import Settings
from ecrd.domain.registries import RegistryId
from ecrd.services.registry_overview import DAY, RegistryOverview
from tests.conftest import ROOT_ACCESS_KEY_ID, basic_auth_for, registry_for
from tests.support.clock import FakeClock
from tests.support.oci import push_image

DOMAIN = "registry.test"
OTHER = "222222222222"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _client(registry: Registry, host: str, authorization: str) -> TestClient:
    return TestClient(asgi_app(registry), base_url=f"http://{host}", headers={"Authorization": authorization})


def test_the_overview_counts_one_registrys_pushes_pulls_and_bytes_per_day(settings: Settings) -> None:
    clock = FakeClock(START_OF_DAY := 1_700_006_400.0)  # 2023-11-15T00:00:00Z: days start at whole days
    with registry_for(dataclasses.replace(settings, registry_domain=DOMAIN), clock=clock) as registry:
        default = registry.registries.default_id
        other = RegistryId(OTHER, default.region)
        _, other_key_id, _ = registry.registries.accounts.create(account_id=OTHER)
        other_services = registry.registries.get(other)
        other_caller = other_services.identity.authentication.current_caller(other_key_id)
        assert other_caller is not None
        registry.registry.create_repository("app")
        other_services.registry.create_repository("other-app")

        # given two images pushed on the first day, one on the third, each pulled on the third day
        with _client(registry, "127.0.0.1:5000", basic_auth_for(registry, ROOT_ACCESS_KEY_ID)) as client:
            push_image(client, "app", "v1")
            push_image(client, "app", "v2")
        clock.advance(2 * DAY + 60)
        with _client(registry, "127.0.0.1:5000", basic_auth_for(registry, ROOT_ACCESS_KEY_ID)) as client:
            push_image(client, "app", "v3", layers=1)
            for tag in ("v1", "v2"):
                assert client.get(f"/v2/app/manifests/{tag}", headers={"Accept": MANIFEST}).status_code == 200
        # and another account's image, pushed the same third day under its own host name
        other_auth = "Basic " + other_services.tokens.issue(other_caller).authorization_token
        with _client(registry, f"{OTHER}.dkr.ecr.{other.region}.{DOMAIN}", other_auth) as client:
            push_image(client, "other-app", "v1", layers=3)

        overview = RegistryOverview(registry.store, clock=clock)
        mine = overview.activity(default, days=3)
        theirs = overview.activity(other, days=3)

    # then each registry's figures are its own, per day from the oldest
    assert mine.days == (START_OF_DAY, START_OF_DAY + DAY, START_OF_DAY + 2 * DAY)
    assert mine.pushes == (2, 0, 1)
    assert mine.pulls == (0, 0, 2)
    assert [name for name, _ in mine.largest] == ["app"]
    assert theirs.pushes == (0, 0, 1) and theirs.pulls == (0, 0, 0)
    assert [name for name, _ in theirs.largest] == ["other-app"]
    # and the bytes held are those of each registry's blobs (random layers: nothing shared)
    assert mine.stored_bytes > 0 and theirs.stored_bytes > 0 and mine.stored_bytes != theirs.stored_bytes
    assert mine.archived_bytes == theirs.archived_bytes == 0
