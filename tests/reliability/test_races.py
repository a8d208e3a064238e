"""Races between two ``ecrd serve`` processes on one database and one data directory.

Requests are lined up with a barrier and sent to both processes at once: the same blob uploaded to the same
and to different repositories, one tag pushed with different digests (a mutable tag ends on one of them with
every manifest kept; an immutable one has exactly one winner), and deletes of images and blobs racing pushes
that reference the same blobs. No response is ever a 5xx, no acknowledged write is lost, nothing references
what is gone, and ``ecrd fsck`` finds the stores in agreement afterwards.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.support.crash import (
    MANIFEST_ACCEPT,
    CrashableRegistry,
    KiB,
    Ledger,
    MiB,
    Pusher,
    config_for,
    create_repositories,
    describe,
    manifest_for,
)
from tests.support.databases import BACKENDS, database_url
from tests.support.images import OCI_MANIFEST, sha256_digest

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

ROUNDS = 12 if os.environ.get("ECRD_RELIABILITY_LONG") == "1" else 4
SEED = 4242


@dataclass
class Pair:
    """Two server processes of one registry, and the ledger every response of the test is counted in."""

    a: CrashableRegistry
    b: CrashableRegistry
    ledger: Ledger

    def servers(self) -> tuple[CrashableRegistry, CrashableRegistry]:
        return self.a, self.b

    def pushers(self, count: int) -> list[Pusher]:
        """``count`` clients, alternating between the two processes."""
        return [(self.a, self.b)[n % 2].pusher(self.ledger) for n in range(count)]


@pytest.fixture(scope="module", params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    workdir = tmp_path_factory.mktemp(f"races-{request.param}")
    with database_url(str(request.param), workdir) as url:
        shared = workdir / "data"
        a = CrashableRegistry(workdir / "a", url, data_dir=shared)
        b = CrashableRegistry(workdir / "b", url, data_dir=shared)
        a.start()  # migrates and makes the root key first; the second process finds both
        try:
            b.start()
            try:
                create_repositories(
                    a.ecr,
                    [
                        "race/same",
                        "race/one",
                        "race/two",
                        "race/three",
                        "race/mutable",
                        "race/immutable",
                        "race/delete",
                    ],
                    immutable={"race/immutable": True},
                )
                pair = Pair(a, b, Ledger())
                yield pair
                assert not [s for s in pair.ledger.statuses if s >= 500], pair.ledger.failures
            finally:
                b.stop()
        finally:
            a.stop()


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; their results (or exceptions) in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:  # reported by the caller, which knows what was expected
            results[index] = exc

    threads = [threading.Thread(target=run, args=(n, call)) for n, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def upload(pusher: Pusher, repository: str, data: bytes, style: str) -> requests.Response:
    """One upload of ``data``; the response that completed it (or the first that failed)."""
    digest = sha256_digest(data)
    if style == "monolithic":
        return pusher.send(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            params={"digest": digest},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
    started = pusher.send("POST", f"/v2/{repository}/blobs/uploads/")
    if started.status_code != 202:
        return started
    location = started.headers["Location"]
    half = len(data) // 2
    for first, last in ((0, half), (half, len(data))):
        patched = pusher.send(
            "PATCH",
            location,
            data=data[first:last],
            headers={"Content-Type": "application/octet-stream", "Content-Range": f"{first}-{last - 1}"},
        )
        if patched.status_code != 202:
            return patched
        location = patched.headers["Location"]
    return pusher.send("PUT", location, params={"digest": digest}, headers={"Content-Type": "application/octet-stream"})


def put_manifest(pusher: Pusher, repository: str, reference: str, payload: bytes) -> requests.Response:
    return pusher.send(
        "PUT", f"/v2/{repository}/manifests/{reference}", data=payload, headers={"Content-Type": OCI_MANIFEST}
    )


def pulled_whole(pusher: Pusher, repository: str, digest: str, *, manifest: bool = False) -> bool:
    kind = "manifests" if manifest else "blobs"
    response = pusher.send(
        "GET", f"/v2/{repository}/{kind}/{digest}", headers={"Accept": MANIFEST_ACCEPT} if manifest else {}
    )
    return response.status_code == 200 and sha256_digest(response.content) == digest


def tag_digest(pusher: Pusher, repository: str, tag: str) -> str | None:
    response = pusher.send("HEAD", f"/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT})
    return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


def error_code(response: requests.Response) -> str:
    try:
        return str(response.json()["errors"][0]["code"])
    except (ValueError, KeyError, IndexError):
        return f"<{response.status_code} without an error body>"


def responses(results: list[Any]) -> list[requests.Response]:
    for result in results:
        if not isinstance(result, requests.Response):
            raise AssertionError(f"a request failed without an answer: {result!r}")
    return results


def push_blobs(pusher: Pusher, repository: str, *blobs: bytes) -> None:
    for blob in blobs:
        finished = upload(pusher, repository, blob, "monolithic")
        assert finished.status_code == 201, describe(finished)


def assert_fsck_clean(pair: Pair) -> None:
    """``ecrd fsck --verify-digests`` beside both running processes (they share the data it checks)."""
    report = pair.a.fsck("--verify-digests")
    assert report["clean"], report["findings"]


def test_the_same_blob_uploaded_at_once_through_both_processes_is_stored_once_and_whole(pair: Pair) -> None:
    rng = random.Random(SEED)
    styles = ["monolithic", "chunked"]
    for round_number in range(ROUNDS):
        data = rng.randbytes(rng.randrange(MiB, 2 * MiB))
        digest = sha256_digest(data)
        # given eight clients on two processes, half to one repository and half spread over three others
        targets = ["race/same"] * 4 + ["race/one", "race/two", "race/three", "race/same"]
        pushers = pair.pushers(len(targets))
        # when they all upload the same content at once
        results = responses(
            at_once(
                *[
                    (lambda p=p, r=r, s=styles[(n + round_number) % 2], data=data: upload(p, r, data, s))
                    for n, (p, r) in enumerate(zip(pushers, targets, strict=True))
                ]
            )
        )
        # then every upload is acknowledged and the blob pulls whole from every repository, through both
        assert [r.status_code for r in results] == [201] * len(targets), [describe(r) for r in results]
        for repository in sorted(set(targets)):
            for pusher in pushers[:2]:
                assert pulled_whole(pusher, repository, digest), f"{repository}@{digest}"
        for pusher in pushers:
            pusher.close()
    assert_fsck_clean(pair)


def test_one_tag_pushed_with_different_digests_at_once_ends_on_one_of_them(pair: Pair) -> None:
    rng = random.Random(SEED + 1)
    setup = pair.a.pusher(pair.ledger)
    layer = rng.randbytes(100 * KiB)
    push_blobs(setup, "race/mutable", layer)
    push_blobs(setup, "race/immutable", layer)
    for round_number in range(ROUNDS):
        configs = [config_for(f"mutable-{round_number}-{n}") for n in range(6)]
        push_blobs(setup, "race/mutable", *configs)
        manifests = [manifest_for(config, [layer]) for config in configs]
        digests = {sha256_digest(m) for m in manifests}
        pushers = pair.pushers(len(manifests))
        tag = f"latest-{round_number}"
        # when six clients on two processes push six different images as the same mutable tag at once
        results = responses(
            at_once(
                *[
                    (lambda p=p, m=m, tag=tag: put_manifest(p, "race/mutable", tag, m))
                    for p, m in zip(pushers, manifests, strict=True)
                ]
            )
        )
        # then every push is acknowledged, every image is kept, and the tag names one of them
        assert [r.status_code for r in results] == [201] * len(manifests), [describe(r) for r in results]
        for digest in digests:
            assert pulled_whole(setup, "race/mutable", digest, manifest=True)
        assert tag_digest(setup, "race/mutable", tag) in digests
        assert tag_digest(pair.b.pusher(pair.ledger), "race/mutable", tag) == tag_digest(setup, "race/mutable", tag)
        for pusher in pushers:
            pusher.close()

    for round_number in range(ROUNDS):
        configs = [config_for(f"immutable-{round_number}-{n}") for n in range(6)]
        push_blobs(setup, "race/immutable", *configs)
        manifests = [manifest_for(config, [layer]) for config in configs]
        pushers = pair.pushers(len(manifests))
        tag = f"v{round_number}"
        # when six clients push six different images as the same immutable tag at once
        results = responses(
            at_once(
                *[
                    (lambda p=p, m=m, tag=tag: put_manifest(p, "race/immutable", tag, m))
                    for p, m in zip(pushers, manifests, strict=True)
                ]
            )
        )
        # then exactly one wins; the others are refused as ECR refuses them, and leave nothing behind
        winners = [m for m, r in zip(manifests, results, strict=True) if r.status_code == 201]
        assert len(winners) == 1, [describe(r) for r in results]
        losers = [r for r in results if r.status_code != 201]
        assert {(r.status_code, error_code(r)) for r in losers} == {(400, "TAG_INVALID")}, [describe(r) for r in losers]
        assert tag_digest(setup, "race/immutable", tag) == sha256_digest(winners[0])
        for manifest in manifests:
            if manifest is not winners[0]:
                gone = setup.send(
                    "GET",
                    f"/v2/race/immutable/manifests/{sha256_digest(manifest)}",
                    headers={"Accept": MANIFEST_ACCEPT},
                )
                assert gone.status_code == 404, describe(gone)
        for pusher in pushers:
            pusher.close()
    setup.close()
    assert_fsck_clean(pair)


def test_deletes_racing_pushes_of_the_same_blobs_lose_no_update_and_leave_no_dangling_reference(pair: Pair) -> None:
    rng = random.Random(SEED + 2)
    setup = pair.a.pusher(pair.ledger)
    outcomes: dict[str, int] = {}
    repository = "race/delete"
    for round_number in range(ROUNDS * 2):
        layers = [rng.randbytes(rng.randrange(10 * KiB, 300 * KiB)) for _ in range(2)]
        config_x, config_y = config_for(f"x-{round_number}"), config_for(f"y-{round_number}")
        push_blobs(setup, repository, *layers, config_x, config_y)
        image_x, image_y = manifest_for(config_x, layers), manifest_for(config_y, layers)
        x, y = sha256_digest(image_x), sha256_digest(image_y)
        assert put_manifest(setup, repository, f"x-{round_number}", image_x).status_code == 201
        deleter, pusher, blob_deleter = (
            pair.a.pusher(pair.ledger),
            pair.b.pusher(pair.ledger),
            pair.b.pusher(pair.ledger),
        )
        by_tag = round_number % 2 == 1
        layer_digest = sha256_digest(layers[0])

        def delete_x(
            deleter: Pusher = deleter, round_number: int = round_number, by_tag: bool = by_tag, x: str = x
        ) -> Any:
            if by_tag:  # ECR's BatchDeleteImage, on the other process than the push
                return pair.a.ecr_for_thread().batch_delete_image(
                    repositoryName=repository, imageIds=[{"imageTag": f"x-{round_number}"}]
                )
            return deleter.send("DELETE", f"/v2/{repository}/manifests/{x}")

        # when image X is deleted, image Y (the same layers) pushed, and Y's first layer deleted, all at once
        deleted_x, pushed_y, deleted_blob = at_once(
            delete_x,
            lambda pusher=pusher, round_number=round_number, image_y=image_y: put_manifest(
                pusher, repository, f"y-{round_number}", image_y
            ),
            lambda blob_deleter=blob_deleter, layer=layer_digest: blob_deleter.send(
                "DELETE", f"/v2/{repository}/blobs/{layer}"
            ),
        )
        for result in (pushed_y, deleted_blob):
            assert isinstance(result, requests.Response), result
        if by_tag:
            assert not isinstance(deleted_x, Exception) and not deleted_x.get("failures"), deleted_x
        else:
            assert isinstance(deleted_x, requests.Response) and deleted_x.status_code == 202, deleted_x
        # then X is gone (its delete was acknowledged), and whichever of the push and the blob delete lost
        # was refused cleanly: never both, so Y never references a blob the repository dropped
        assert setup.send("GET", f"/v2/{repository}/manifests/{x}").status_code == 404
        if pushed_y.status_code == 201:
            assert deleted_blob.status_code == 405 and error_code(deleted_blob) == "UNSUPPORTED", describe(deleted_blob)
            assert pulled_whole(setup, repository, y, manifest=True)
            assert tag_digest(setup, repository, f"y-{round_number}") == y
            for layer in layers:
                assert pulled_whole(setup, repository, sha256_digest(layer))
            outcome = "push won"
        else:
            assert (pushed_y.status_code, error_code(pushed_y)) == (400, "MANIFEST_BLOB_UNKNOWN"), describe(pushed_y)
            assert deleted_blob.status_code == 202, describe(deleted_blob)
            assert tag_digest(setup, repository, f"y-{round_number}") is None
            outcome = "blob delete won"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        for client in (deleter, pusher, blob_deleter):
            client.close()
    setup.close()
    print(f"[{pair.a.database_url.split(':')[0]}] delete races: {outcomes}")
    assert_fsck_clean(pair)
