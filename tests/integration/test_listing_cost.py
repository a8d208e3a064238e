"""What a listing costs the metadata store does not grow with the registry: a page of every listing issues the same
statements in a repository of 20 images as in one of 400, a batch of image ids the same for 2 ids as for 20, a
full listing a bounded number per page, and the keyset queries seek their index to the page's position (on
SQLite, the plan says so) instead of reading every row before it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from ecrd.app import Registry
from ecrd.metadata import images as image_queries
from tests.conftest import registry_for, root_client, settings_for
from tests.integration.test_ecr_api import client_for
from tests.support.databases import BACKENDS
from tests.support.live_server import live_server
from tests.support.oci import OCI_MANIFEST, config_blob, digest_of, image_manifest, push_blob, random_blob

SMALL, LARGE = 20, 400


@contextmanager
def counted(registry: Registry) -> Iterator[list[str]]:
    """The SQL statements the store issues inside the block (every connection of its engine)."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(registry.store.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(registry.store.engine, "before_cursor_execute", record)


def fill(registry: Registry, client: TestClient, ecr: Any, name: str, count: int) -> list[str]:
    """``count`` images sharing a layer and a config, three in four tagged ``t<number>``; their digests by number.
    Pushed through the registry service (the same code as a manifest PUT) to keep the test quick."""
    ecr.create_repository(repositoryName=name)
    layer, config = random_blob(128), config_blob()
    push_blob(client, name, layer)
    push_blob(client, name, config)
    repository = registry.registry.get_repository(name)
    digests = []
    for number in range(count):
        payload = image_manifest(config, [layer], annotations={"n": str(number)})
        digest = digest_of(payload)
        registry.registry.put_manifest(repository, f"t{number:04d}" if number % 4 else digest, payload, OCI_MANIFEST)
        digests.append(digest)
    return digests


# One registry per back end for the module, filled once: every test here only reads it (and filling 420 images
# is most of what the module costs).


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def registry(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with settings_for(backend, tmp_path_factory.mktemp("listing")) as settings, registry_for(settings) as built:
        yield built


@pytest.fixture(scope="module")
def client(registry: Registry) -> Iterator[TestClient]:
    with root_client(registry) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def ecr(registry: Registry) -> Iterator[Any]:
    with live_server(registry) as url:
        yield client_for(url, "ecr")


@pytest.fixture(scope="module")
def repositories(registry: Registry, client: TestClient, ecr: Any) -> dict[str, list[str]]:
    return {name: fill(registry, client, ecr, name, count) for name, count in (("small", SMALL), ("large", LARGE))}


def _middle_token(call: Callable[..., dict[str, Any]], **params: Any) -> str:
    """A token that continues a listing past its first page (a page from the middle is what costs most)."""
    token = call(**params, maxResults=2).get("nextToken")
    assert token
    return str(token)


def _cost(registry: Registry, call: Callable[[], object]) -> int:
    call()  # warm the per-process caches (identities, keys): what is counted is the listing's own cost
    with counted(registry) as statements:
        call()
    return len(statements)


ECR_PAGES = [
    ("ListImages", "list_images", {}),
    ("ListImages TAGGED", "list_images", {"filter": {"tagStatus": "TAGGED"}}),
    ("ListImages UNTAGGED", "list_images", {"filter": {"tagStatus": "UNTAGGED"}}),
    ("DescribeImages", "describe_images", {}),
    ("DescribeImages TAGGED", "describe_images", {"filter": {"tagStatus": "TAGGED"}}),
    ("DescribeImages UNTAGGED", "describe_images", {"filter": {"tagStatus": "UNTAGGED"}}),
]


@pytest.mark.parametrize(("label", "operation", "extra"), ECR_PAGES, ids=[label for label, _o, _e in ECR_PAGES])
def test_a_page_from_the_middle_of_an_ecr_listing_costs_the_same_in_a_large_repository(
    registry: Registry, ecr: Any, repositories: dict[str, list[str]], label: str, operation: str, extra: Any
) -> None:
    call = getattr(ecr, operation)
    costs = {}
    for name in ("small", "large"):
        token = _middle_token(call, repositoryName=name, **extra)
        costs[name] = _cost(
            registry, lambda name=name, token=token: call(repositoryName=name, maxResults=5, nextToken=token, **extra)
        )
    assert costs["large"] == costs["small"], (label, costs)


def test_oci_listing_pages_cost_the_same_whatever_the_repository_or_registry_holds(
    registry: Registry, client: TestClient, repositories: dict[str, list[str]]
) -> None:
    costs = {}
    for name in ("small", "large"):
        costs[name] = _cost(
            registry, lambda name=name: client.get(f"/v2/{name}/tags/list?n=5&last=t0005").raise_for_status()
        )
    costs["catalog"] = _cost(registry, lambda: client.get("/v2/_catalog?n=1&last=large").raise_for_status())
    assert costs["large"] == costs["small"], costs
    assert costs["catalog"] <= costs["small"] + 1, costs


@pytest.mark.parametrize("operation", ["describe_images", "batch_get_image"])
def test_a_batch_of_image_ids_costs_the_same_statements_for_2_ids_as_for_20(
    registry: Registry, ecr: Any, repositories: dict[str, list[str]], operation: str
) -> None:
    digests = repositories["large"]
    call = getattr(ecr, operation)

    def ids(count: int) -> list[dict[str, str]]:
        # By tag, by digest, and by both, as callers mix them.
        out: list[dict[str, str]] = []
        for number in range(1, 4 * count, 4)[:count]:
            kind = len(out) % 3
            if kind == 0:
                out.append({"imageTag": f"t{number:04d}"})
            elif kind == 1:
                out.append({"imageDigest": digests[number]})
            else:
                out.append({"imageTag": f"t{number:04d}", "imageDigest": digests[number]})
        return out

    few = _cost(registry, lambda: call(repositoryName="large", imageIds=ids(2)))
    many = _cost(registry, lambda: call(repositoryName="large", imageIds=ids(20)))
    assert many == few, (few, many)
    answer = call(repositoryName="large", imageIds=ids(20))
    assert len(answer["imageDetails"] if operation == "describe_images" else answer["images"]) == 20


def test_describe_images_by_id_answers_the_images_with_their_tags(ecr: Any, repositories: dict[str, list[str]]) -> None:
    digests = repositories["small"]
    answer = ecr.describe_images(
        repositoryName="small",
        imageIds=[{"imageTag": "t0001"}, {"imageDigest": digests[1]}, {"imageDigest": digests[4]}],
    )
    details = {d["imageDigest"]: d for d in answer["imageDetails"]}
    assert set(details) == {digests[1], digests[4]}
    assert details[digests[1]]["imageTags"] == ["t0001"]
    assert "imageTags" not in details[digests[4]]


def test_describe_images_reads_the_scans_counts_and_never_their_findings(
    registry: Registry, ecr: Any, repositories: dict[str, list[str]]
) -> None:
    """A page of scanned images shows each scan's state and severity counts; the findings (up to megabytes per
    image) are for DescribeImageScanFindings and stay unread."""
    digests = repositories["small"]
    calls = [
        lambda: ecr.describe_images(repositoryName="small", maxResults=10),
        lambda: ecr.describe_images(repositoryName="small", imageIds=[{"imageDigest": d} for d in digests[:3]]),
        lambda: ecr.describe_images(repositoryName="small", imageIds=[{"imageDigest": digests[0]}]),
    ]
    for call in calls:
        call()
        with counted(registry) as statements:
            call()
        scans = [statement for statement in statements if "image_scans" in statement]
        assert scans, statements
        assert not [statement for statement in scans if "findings" in statement], scans


def test_batch_get_image_answers_each_id_in_order_with_its_failures(
    ecr: Any, repositories: dict[str, list[str]]
) -> None:
    digests = repositories["small"]
    answer = ecr.batch_get_image(
        repositoryName="small",
        imageIds=[
            {"imageTag": "t0002"},
            {"imageTag": "missing"},
            {"imageDigest": digests[3]},
            {"imageTag": "t0005", "imageDigest": digests[6]},
        ],
    )
    assert [image["imageId"] for image in answer["images"]] == [
        {"imageDigest": digests[2], "imageTag": "t0002"},
        {"imageDigest": digests[3]},
    ]
    assert json.loads(answer["images"][0]["imageManifest"])["annotations"] == {"n": "2"}
    assert sorted(f["failureCode"] for f in answer["failures"]) == ["ImageNotFound", "ImageTagDoesNotMatchDigest"]


def test_describe_repositories_by_name_costs_the_same_for_1_name_as_for_2(
    registry: Registry, ecr: Any, repositories: dict[str, list[str]]
) -> None:
    one = _cost(registry, lambda: ecr.describe_repositories(repositoryNames=["small"]))
    two = _cost(registry, lambda: ecr.describe_repositories(repositoryNames=["small", "large"]))
    assert two == one, (one, two)


def test_a_full_listing_costs_a_bounded_number_of_statements_per_page(
    registry: Registry, ecr: Any, client: TestClient, repositories: dict[str, list[str]]
) -> None:
    for operation in ("list_images", "describe_images"):
        call = getattr(ecr, operation)
        with counted(registry) as statements:
            pages, token = 0, None
            while pages < 100:
                answer = call(repositoryName="large", maxResults=50, **({"nextToken": token} if token else {}))
                pages += 1
                token = answer.get("nextToken")
                if not token:
                    break
        assert pages == LARGE // 50 + (1 if operation == "list_images" else 0) or pages == LARGE // 50
        assert len(statements) <= 6 * pages, (operation, len(statements), pages)


# -- plans: the keyset queries seek their index (SQLite's EXPLAIN QUERY PLAN) ------------------------------------


def _plans(registry: Registry, run: Callable[[Any], object]) -> list[str]:
    """SQLite's plan of every statement ``run`` issues on a connection of the store."""
    with registry.store.read() as conn:
        with counted(registry) as statements:
            captured: list[tuple[str, Any]] = []

            def keep(conn_: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
                captured.append((statement, parameters))

            event.listen(registry.store.engine, "before_cursor_execute", keep)
            try:
                run(conn)
            finally:
                event.remove(registry.store.engine, "before_cursor_execute", keep)
        del statements
        details = []
        for statement, parameters in captured:
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all():
                details.append(str(row[-1]))
        return details


@pytest.mark.parametrize("tag_status", ["ANY", "TAGGED", "UNTAGGED"])
def test_list_images_from_a_position_seeks_the_index_and_sorts_nothing(
    registry: Registry, backend: str, repositories: dict[str, list[str]], tag_status: str
) -> None:
    if backend != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL's plans depend on its statistics")
    repository = registry.registry.get_repository("large")
    position = (sorted(repositories["large"])[LARGE // 2], "")
    plan = _plans(
        registry,
        lambda conn: image_queries.list_image_ids(
            conn, repository.id, tag_status=tag_status, image_status="ACTIVE", after=position, limit=11
        ),
    )
    joined = "\n".join(plan)
    assert "TEMP B-TREE" not in joined, joined
    assert any("digest>?" in line or "(manifest_digest,name)>(?,?)" in line for line in plan), joined
    assert not any(line.startswith("SCAN") for line in plan), joined


BATCH_LOOKUPS: list[tuple[str, Callable[[Any, int, list[str]], object]]] = [
    ("by tags", lambda conn, rid, names: image_queries.manifests_by_tags(conn, rid, names, payloads=True)),
    ("by digests", lambda conn, rid, names: image_queries.manifests_by_digests(conn, rid, names, payloads=True)),
    ("tags of digests", lambda conn, rid, names: image_queries.tags_by_digest(conn, rid, names)),
]


@pytest.mark.parametrize(("label", "lookup"), BATCH_LOOKUPS, ids=[label for label, _lookup in BATCH_LOOKUPS])
def test_a_batch_lookup_seeks_each_key_instead_of_reading_the_repository(
    registry: Registry,
    backend: str,
    repositories: dict[str, list[str]],
    label: str,
    lookup: Callable[[Any, int, list[str]], object],
) -> None:
    if backend != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL's plans depend on its statistics")
    repository = registry.registry.get_repository("large")
    keys = ["t0001", "t0002", "t0003"] if label == "by tags" else repositories["large"][:3]
    plan = _plans(registry, lambda conn: lookup(conn, repository.id, keys))
    # Every search names the whole key (repository and tag or digest), not the repository alone.
    assert all("=?)" in line and "(repository_id=?)" not in line for line in plan if line.startswith("SEARCH")), plan
    assert not any(line.startswith("SCAN") for line in plan), plan
