"""ECR's paginated listings are keyset pages read in SQL: stable while images and repositories come and go
between requests, a bounded number of bounded queries per page, and ECR's errors for tokens it did not issue."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import event
from starlette.testclient import TestClient

from ecrd.app import Registry
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.integration.test_ecr_api import error_code
from tests.support.oci import (
    OCI_EMPTY,
    OCI_MANIFEST,
    Blob,
    config_blob,
    digest_of,
    image_manifest,
    push_blob,
    push_manifest,
    random_blob,
)

INVALID_TOKEN = "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'"


class Images:
    """Pushes small images (one shared layer, a config of their own) to one repository."""

    def __init__(self, client: TestClient, name: str) -> None:
        self.client, self.name = client, name
        self.layer = random_blob(256)
        push_blob(client, name, self.layer)

    def push(self, *tags: str) -> str:
        config = config_blob({"label": os.urandom(8).hex()})
        push_blob(self.client, self.name, config)
        manifest = image_manifest(config, [self.layer])
        push_manifest(self.client, self.name, digest_of(manifest), manifest)
        for tag in tags:
            push_manifest(self.client, self.name, tag, manifest)
        return digest_of(manifest)


def _pages(
    call: Callable[..., dict[str, Any]],
    key: str,
    between: Callable[[int], None] = lambda n: None,
    limit: int = 200,
    **params: Any,
) -> list[list[Any]]:
    """Every page of a listing, running ``between`` after each page; bounded in count."""
    pages: list[list[Any]] = []
    token: str | None = None
    for number in range(limit):
        answer = call(**params, **({"nextToken": token} if token else {}))
        pages.append(answer[key])
        token = answer.get("nextToken")
        if not token:
            return pages
        between(number)
    raise AssertionError(f"the listing did not end within {limit} pages")


# -- stable pages under concurrent writes ------------------------------------------------------------------


def test_list_images_pages_stay_whole_while_images_are_pushed_and_deleted_between_them(
    ecr: Any, client: TestClient
) -> None:
    ecr.create_repository(repositoryName="moving")
    images = Images(client, "moving")
    kept = {images.push(f"t{n}", f"u{n}") if n % 3 else images.push() for n in range(24)}
    doomed = sorted(kept)[:12:2]  # images deleted during the listing, some before their page, some after
    kept -= set(doomed)
    pushed: list[str] = []

    def meanwhile(page_number: int) -> None:
        pushed.append(images.push(f"new{page_number}"))
        if page_number < len(doomed):
            ecr.batch_delete_image(repositoryName="moving", imageIds=[{"imageDigest": doomed[page_number]}])

    pages = _pages(ecr.list_images, "imageIds", meanwhile, repositoryName="moving", maxResults=4)
    seen = [(i["imageDigest"], i.get("imageTag", "")) for page in pages for i in page]
    # then no item is listed twice, the listing is in (digest, tag) order, and every image that was there
    # throughout is listed with every tag
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    listed = {digest for digest, _tag in seen}
    assert kept <= listed
    assert listed <= kept | set(doomed) | set(pushed)
    tagged = {digest for digest, tag in seen if tag}
    for digest in kept & tagged:
        assert len([tag for d, tag in seen if d == digest]) == 2


def test_describe_images_pages_stay_whole_while_images_are_deleted_between_them(ecr: Any, client: TestClient) -> None:
    ecr.create_repository(repositoryName="described")
    images = Images(client, "described")
    digests = sorted(images.push(f"v{n}") for n in range(15))

    def delete_a_listed_image(page_number: int) -> None:
        ecr.batch_delete_image(repositoryName="described", imageIds=[{"imageDigest": digests[page_number]}])

    pages = _pages(ecr.describe_images, "imageDetails", delete_a_listed_image, repositoryName="described", maxResults=3)
    seen = [detail["imageDigest"] for page in pages for detail in page]
    assert seen == digests


def test_describe_repositories_pages_stay_whole_while_repositories_come_and_go(ecr: Any) -> None:
    names = [f"repo-{n:02d}" for n in range(12)]
    for name in names:
        ecr.create_repository(repositoryName=name)

    def meanwhile(page_number: int) -> None:
        ecr.delete_repository(repositoryName=names[page_number])  # listed already
        ecr.create_repository(repositoryName=f"zz-added-{page_number}")  # sorts after every name listed so far

    pages = _pages(ecr.describe_repositories, "repositories", meanwhile, maxResults=3)
    seen = [r["repositoryName"] for page in pages for r in page]
    assert seen[: len(names)] == names
    assert seen[len(names) :] == sorted(seen[len(names) :]) and all(
        n.startswith("zz-added-") for n in seen[len(names) :]
    )


# -- filters and imageIds ----------------------------------------------------------------------------------


def test_tag_status_filters_page_through_the_matching_images_only(ecr: Any, client: TestClient) -> None:
    ecr.create_repository(repositoryName="filtered")
    images = Images(client, "filtered")
    tagged = {images.push(f"v{n}") for n in range(5)}
    untagged = {images.push() for _ in range(4)}
    for status, expected in (("TAGGED", tagged), ("UNTAGGED", untagged), ("ANY", tagged | untagged)):
        listed = [
            i["imageDigest"]
            for page in _pages(
                ecr.list_images, "imageIds", repositoryName="filtered", maxResults=2, filter={"tagStatus": status}
            )
            for i in page
        ]
        assert sorted(listed) == sorted(expected), status
        described = [
            d["imageDigest"]
            for page in _pages(
                ecr.describe_images,
                "imageDetails",
                repositoryName="filtered",
                maxResults=2,
                filter={"tagStatus": status},
            )
            for d in page
        ]
        assert sorted(described) == sorted(expected), status
    one = sorted(tagged)[0]
    detail = ecr.describe_images(repositoryName="filtered", imageIds=[{"imageDigest": one}])["imageDetails"]
    assert [d["imageDigest"] for d in detail] == [one] and detail[0]["imageTags"]
    with pytest.raises(ClientError) as mixed:
        ecr.describe_images(repositoryName="filtered", imageIds=[{"imageDigest": one}], maxResults=2)
    assert error_code(mixed) == "InvalidParameterException"


def test_list_image_referrers_pages_and_filters_by_artifact_type(ecr: Any, client: TestClient) -> None:
    ecr.create_repository(repositoryName="referred")
    images = Images(client, "referred")
    subject = images.push("v1")
    size = len(client.get(f"/v2/referred/manifests/{subject}").content)
    empty = Blob(b"{}", OCI_EMPTY)
    push_blob(client, "referred", empty)
    kinds = {}
    for n in range(7):
        artifact_type = "application/vnd.example.sig" if n % 2 else "application/vnd.example.sbom"
        payload = image_manifest(
            empty,
            [empty],
            artifactType=artifact_type,
            annotations={"n": str(n)},
            subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": size},
        )
        push_manifest(client, "referred", digest_of(payload), payload)
        kinds[digest_of(payload)] = artifact_type
    pages = _pages(
        ecr.list_image_referrers,
        "referrers",
        repositoryName="referred",
        subjectId={"imageDigest": subject},
        maxResults=2,
    )
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [r["digest"] for page in pages for r in page] == sorted(kinds)
    signatures = [
        r["digest"]
        for page in _pages(
            ecr.list_image_referrers,
            "referrers",
            repositoryName="referred",
            subjectId={"imageDigest": subject},
            maxResults=1,
            filter={"artifactTypes": ["application/vnd.example.sig"]},
        )
        for r in page
    ]
    assert signatures == sorted(d for d, t in kinds.items() if t == "application/vnd.example.sig")


# -- cost: O(pages) statements, each reading one page ---------------------------------------------------------


def test_a_full_listing_issues_a_bounded_number_of_bounded_queries_per_page(
    ecr: Any, client: TestClient, registry: Registry
) -> None:
    ecr.create_repository(repositoryName="counted")
    images = Images(client, "counted")
    for n in range(40):
        images.push(f"v{n}") if n % 4 else images.push()
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(registry.store.engine, "before_cursor_execute", record)
    try:
        for call, key in ((ecr.list_images, "imageIds"), (ecr.describe_images, "imageDetails")):
            statements.clear()
            pages = _pages(call, key, repositoryName="counted", maxResults=5)
            assert len(pages) >= 8
            # then a page costs a few statements, whatever the repository holds …
            assert len(statements) <= 6 * len(pages), "\n".join(statements)
            # … and no statement reads every image: listings stop at their page (LIMIT), follow-ups name the
            # page's images (IN)
            for statement in statements:
                if " FROM manifests" in statement or " FROM tags" in statement or "JOIN tags" in statement:
                    assert " LIMIT " in statement or " IN (" in statement or "digest = " in statement, statement
    finally:
        event.remove(registry.store.engine, "before_cursor_execute", record)


# -- tokens ECR did not issue -----------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["not a token", "e30=", "W10=", "WyJhIl0=", "MQ==", "WzEsMl0="])
def test_a_token_ecr_did_not_issue_is_an_invalid_parameter(ecr: Any, client: TestClient, token: str) -> None:
    ecr.create_repository(repositoryName="tokens")
    Images(client, "tokens").push("v1")
    for call in (
        lambda: ecr.list_images(repositoryName="tokens", nextToken=token),
        lambda: ecr.describe_images(repositoryName="tokens", nextToken=token),
        lambda: ecr.describe_repositories(nextToken=token),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert error_code(refused) == "InvalidParameterException"
        assert refused.value.response["Error"]["Message"] == INVALID_TOKEN


def test_a_token_of_another_listing_is_an_invalid_parameter(ecr: Any, client: TestClient) -> None:
    ecr.create_repository(repositoryName="crossed")
    images = Images(client, "crossed")
    for n in range(3):
        images.push(f"v{n}")
    list_token = ecr.list_images(repositoryName="crossed", maxResults=1)["nextToken"]
    with pytest.raises(ClientError) as refused:
        ecr.describe_images(repositoryName="crossed", nextToken=list_token)
    assert error_code(refused) == "InvalidParameterException"
    assert refused.value.response["Error"]["Message"] == INVALID_TOKEN


@pytest.mark.parametrize(
    ("operation", "bad"),
    [("list_images", 0), ("list_images", 1001), ("describe_images", 1001), ("list_image_referrers", 51)],
)
def test_max_results_out_of_range_is_an_invalid_parameter(
    endpoint: str, client: TestClient, operation: str, bad: int
) -> None:
    # botocore checks the model's range itself; switched off, the request reaches the server as any client's would
    ecr = boto3.client(
        "ecr",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ROOT_ACCESS_KEY_ID,
        aws_secret_access_key=ROOT_SECRET_ACCESS_KEY,
        config=botocore.config.Config(parameter_validation=False, retries={"max_attempts": 1, "mode": "standard"}),
    )
    ecr.create_repository(repositoryName="sizes")
    subject = Images(client, "sizes").push("v1")
    params: dict[str, Any] = {"repositoryName": "sizes", "maxResults": bad}
    if operation == "list_image_referrers":
        params["subjectId"] = {"imageDigest": subject}
    with pytest.raises(ClientError) as refused:
        getattr(ecr, operation)(**params)
    assert error_code(refused) == "InvalidParameterException"
    assert "maxResults" in refused.value.response["Error"]["Message"]
