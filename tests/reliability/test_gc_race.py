"""Garbage collection racing pushes, on SQLite and PostgreSQL: a push that references a blob either succeeds
with the blob intact or is refused with MANIFEST_BLOB_UNKNOWN — never acknowledged with the blob gone.

The deterministic tests hold a collection at the points between its transactions (or a push inside its own)
and run the other party there. The randomized one runs ``ecrd gc`` processes in a loop beside pushes and
deletes against two ``ecrd serve`` processes, then checks every acknowledged image and ``ecrd fsck``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sqlalchemy import text
from starlette.testclient import TestClient

from ecrd.app import Registry, build_registry
from ecrd.config import Settings
from ecrd.services.fsck import Fsck
from ecrd.services.gc import GarbageCollector
from tests.support.clock import FakeClock
from tests.support.clocked import clocked_registry, root_client
from tests.support.crash import CrashableRegistry, Ledger, config_for, create_repositories, manifest_for
from tests.support.databases import BACKENDS, database_url
from tests.support.images import OCI_MANIFEST, sha256_digest
from tests.support.oci import Blob, config_blob, digest_of, error_codes, image_manifest, push_blob, random_blob

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

GRACE = 3600.0
WAIT = 10.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock.at_wall_time()


@pytest.fixture
def registry(settings: Settings, clock: FakeClock) -> Iterator[Registry]:
    with clocked_registry(settings, clock) as built:
        yield built


@pytest.fixture
def client(registry: Registry) -> Iterator[TestClient]:
    with root_client(registry) as test_client:
        yield test_client


def collector(registry: Registry, pause: Callable[[str], None]) -> GarbageCollector:
    return GarbageCollector(
        registry.store,
        (registry.blobs,),
        registry.uploads,
        grace_seconds=GRACE,
        upload_expiry_seconds=24 * 3600.0,
        clock=registry.clock,
        pause=pause,
    )


def at(point: str, action: Callable[[], None]) -> Callable[[str], None]:
    """A pause that runs ``action`` the first time the collection reaches ``point``."""
    done = threading.Event()

    def pause(reached: str) -> None:
        if reached == point and not done.is_set():
            done.set()
            action()

    return pause


def old_blobs(client: TestClient, clock: FakeClock, name: str) -> tuple[Blob, Blob]:
    """A layer and a config pushed longer ago than the grace period, referenced by nothing yet."""
    layer, config = random_blob(4096), config_blob({"n": random.random()})
    for blob in (layer, config):
        push_blob(client, name, blob)
    clock.advance(GRACE + 60)
    return layer, config


def put_manifest(client: TestClient, name: str, payload: bytes, **headers: str) -> Any:
    return client.put(f"/v2/{name}/manifests/v1", content=payload, headers={"Content-Type": OCI_MANIFEST, **headers})


def whole(client: TestClient, name: str, reference: str, blobs: list[Blob]) -> bool:
    return client.get(f"/v2/{name}/manifests/{reference}").status_code == 200 and all(
        client.get(f"/v2/{name}/blobs/{blob.digest}").content == blob.data for blob in blobs
    )


def fsck_clean(registry: Registry) -> bool:
    report = Fsck(registry.store, registry.blobs, registry=registry.registry, clock=registry.clock).check()
    return report.clean


def wait_for_a_blocked_writer(registry: Registry) -> None:
    """Until another transaction waits for a row lock (PostgreSQL). SQLite's writers queue for the one write
    lock, and whatever the order, the outcome checked is the same."""
    if registry.store.is_sqlite:
        return
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        with registry.store.read() as conn:
            if conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one():
                return
        time.sleep(0.01)
    raise AssertionError("no writer came to wait for the collection's lock")


def test_a_manifest_that_references_blobs_a_collection_has_chosen_keeps_them(
    client: TestClient, registry: Registry, clock: FakeClock
) -> None:
    registry.registry.create_repository("app")
    layer, config = old_blobs(client, clock, "app")
    payload = image_manifest(config, [layer])
    outcome: list[int] = []

    def push() -> None:
        assert client.head(f"/v2/app/blobs/{layer.digest}").status_code == 200
        outcome.append(put_manifest(client, "app", payload).status_code)

    report = collector(registry, at("chosen", push)).collect()

    assert outcome == [201]
    assert report.blobs == 0
    assert whole(client, "app", digest_of(payload), [layer, config])
    assert fsck_clean(registry)


def test_a_manifest_put_after_a_collection_unlinked_its_blob_is_refused_as_blob_unknown(
    client: TestClient, registry: Registry, clock: FakeClock
) -> None:
    registry.registry.create_repository("app")
    layer, config = old_blobs(client, clock, "app")
    assert client.head(f"/v2/app/blobs/{layer.digest}").status_code == 200  # the client sees it, then GC runs
    refused: list[Any] = []

    def push() -> None:
        refused.append(put_manifest(client, "app", image_manifest(config, [layer])))

    report = collector(registry, at("unlinked", push)).collect()

    [response] = refused
    assert response.status_code == 400 and error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"]
    assert report.blobs == 2
    assert client.head(f"/v2/app/blobs/{layer.digest}").status_code == 404
    assert fsck_clean(registry)


def test_a_collection_running_while_a_push_stores_its_manifest_leaves_that_manifests_blobs(
    client: TestClient, registry: Registry, clock: FakeClock
) -> None:
    registry.registry.create_repository("app")
    layer, config = old_blobs(client, clock, "app")
    payload = image_manifest(config, [layer])
    inside, release = threading.Event(), threading.Event()

    def hold(*_args: object) -> None:
        inside.set()  # the manifest and its references are written, not yet committed
        assert release.wait(WAIT)

    registry.registry.on_manifest_created.append(hold)
    pushed: list[int] = []
    push = threading.Thread(target=lambda: pushed.append(put_manifest(client, "app", payload).status_code))
    push.start()
    assert inside.wait(WAIT)
    reports: list[Any] = []
    collection = threading.Thread(target=lambda: reports.append(registry.gc.collect()))
    collection.start()
    # PostgreSQL: the collection skips the blobs the push holds and ends. SQLite: it waits for the push's commit.
    collection.join(timeout=2.0 if not registry.store.is_sqlite else 0.2)
    release.set()
    push.join(WAIT)
    collection.join(WAIT)

    assert pushed == [201]
    assert [report.blobs for report in reports] == [0]
    assert whole(client, "app", digest_of(payload), [layer, config])
    assert fsck_clean(registry)


def test_an_upload_of_content_a_collection_is_deleting_stores_its_own_copy(
    client: TestClient, registry: Registry, clock: FakeClock
) -> None:
    registry.registry.create_repository("app")
    layer, config = old_blobs(client, clock, "app")
    uploaded: list[int] = []
    upload = threading.Thread(
        target=lambda: uploaded.append(
            client.post(f"/v2/app/blobs/uploads/?digest={layer.digest}", content=layer.data).status_code
        )
    )

    def upload_again() -> None:
        # The collection holds the row it is about to delete: the upload finds the row, then waits for it.
        upload.start()
        wait_for_a_blocked_writer(registry)

    report = collector(registry, at("deleting", upload_again)).collect()
    upload.join(WAIT)

    assert uploaded == [201]
    assert report.blobs in (1, 2)  # the layer is freed, then stored again by the upload (SQLite: after it)
    assert client.head(f"/v2/app/blobs/{layer.digest}").status_code == 200
    push_blob(client, "app", config)
    payload = image_manifest(config, [layer])
    assert put_manifest(client, "app", payload).status_code == 201
    assert whole(client, "app", digest_of(payload), [layer, config])
    assert fsck_clean(registry)


# -- randomized: ecrd gc processes beside pushes to two ecrd serve processes ----------------------------------

RUN_SECONDS = 8.0
MAX_PUSHES = 400
DENSE_GRACE = 1.0
LAYERS = [random.Random(n).randbytes(2048 + n) for n in range(6)]


@pytest.fixture(params=BACKENDS)
def servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[CrashableRegistry, CrashableRegistry]]:
    workdir = tmp_path_factory.mktemp(f"gc-race-{request.param}")
    with database_url(str(request.param), workdir) as url:
        shared = workdir / "data"
        a = CrashableRegistry(workdir / "a", url, data_dir=shared)
        b = CrashableRegistry(workdir / "b", url, data_dir=shared)
        a.start()
        try:
            b.start()
            try:
                create_repositories(a.ecr, ["gc/one", "gc/two"])
                yield a, b
            finally:
                b.stop()
        finally:
            a.stop()


@dataclass
class Outcomes:
    lock: threading.Lock = field(default_factory=threading.Lock)
    kept: list[tuple[str, str, list[bytes]]] = field(default_factory=list)
    """(repository, tag, blobs) of acknowledged images not deleted since."""
    refused: int = 0
    collections: int = 0
    collected: int = 0
    failures: list[BaseException] = field(default_factory=list)


def push_and_delete(
    server: CrashableRegistry, ledger: Ledger, outcomes: Outcomes, seed: int, stop: threading.Event
) -> None:
    """Images of two layers drawn from a few shared ones, pushed as docker does (HEAD, upload what is missing,
    PUT the manifest); now and then one acknowledged image is deleted, so its blobs become garbage."""
    rng = random.Random(seed)
    pusher = server.pusher(ledger)
    try:
        for number in range(MAX_PUSHES):
            if stop.is_set():
                return
            repository, tag = rng.choice(["gc/one", "gc/two"]), f"t{seed}-{number}"
            config, layers = config_for(tag), rng.sample(LAYERS, 2)
            for blob in [config, *layers]:
                if pusher.send("HEAD", f"/v2/{repository}/blobs/{sha256_digest(blob)}").status_code != 200:
                    pusher.push_blob(repository, blob, rng)
            payload = manifest_for(config, layers)
            response = pusher.send(
                "PUT", f"/v2/{repository}/manifests/{tag}", data=payload, headers={"Content-Type": OCI_MANIFEST}
            )
            with outcomes.lock:
                if response.status_code == 201:
                    outcomes.kept.append((repository, tag, [config, *layers]))
                else:
                    assert response.status_code == 400 and "MANIFEST_BLOB_UNKNOWN" in response.text, response.text
                    outcomes.refused += 1
                victim = (
                    outcomes.kept.pop(rng.randrange(len(outcomes.kept)))
                    if outcomes.kept and rng.random() < 0.3
                    else None
                )
            if victim is not None:
                digest = sha256_digest(manifest_for(victim[2][0], victim[2][1:]))
                reply = pusher.send("DELETE", f"/v2/{victim[0]}/manifests/{digest}")
                assert reply.status_code == 202, reply.text
    finally:
        pusher.close()


def collect_in_a_loop(server: CrashableRegistry, outcomes: Outcomes, stop: threading.Event) -> None:
    """``ecrd gc`` as an operator runs it, again and again, with no grace: every unreferenced blob is fair game."""
    while not stop.is_set():
        done = server.command("gc", "--gc-grace-minutes", "0", "--json", timeout=60.0)
        assert done.returncode == 0, done.stderr
        with outcomes.lock:
            outcomes.collected += json.loads(done.stdout)["freed"]["blobs"]
            outcomes.collections += 1


def collect_densely(server: CrashableRegistry, outcomes: Outcomes, stop: threading.Event) -> None:
    """A collector of this process on the servers' database and data directory, collecting back to back (a
    command's start-up would leave the pushes long quiet stretches), with a grace of a second: most pushes get
    their manifest in first, and blobs of deleted images are taken while pushes HEAD and reference them."""
    own = build_registry(Settings(data_dir=server.process.data_dir, database_url=server.database_url))
    collector = GarbageCollector(
        own.store, (own.blobs,), own.uploads, grace_seconds=DENSE_GRACE, upload_expiry_seconds=24 * 3600.0
    )
    try:
        while not stop.is_set():
            freed = collector.collect().blobs
            with outcomes.lock:
                outcomes.collected += freed
                outcomes.collections += 1
    finally:
        own.close()


def test_collections_beside_concurrent_pushes_lose_no_acknowledged_image(
    servers: tuple[CrashableRegistry, CrashableRegistry],
) -> None:
    a, b = servers
    ledger, outcomes, stop = Ledger(), Outcomes(), threading.Event()

    def guarded(work: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # reported by the test, not lost in its thread
                with outcomes.lock:
                    outcomes.failures.append(exc)
                stop.set()

        return threading.Thread(target=run)

    pushers = [
        guarded(lambda s=server, n=n: push_and_delete(s, ledger, outcomes, n, stop)) for n, server in enumerate((a, b))
    ]
    collectors = [
        guarded(lambda: collect_in_a_loop(a, outcomes, stop)),
        guarded(lambda: collect_densely(b, outcomes, stop)),
    ]
    for thread in (*pushers, *collectors):
        thread.start()
    deadline = time.monotonic() + RUN_SECONDS
    for thread in pushers:
        thread.join(max(0.0, deadline - time.monotonic()))
    stop.set()
    for thread in (*pushers, *collectors):
        thread.join(120)

    assert not outcomes.failures, (outcomes.failures, ledger.failures)
    assert not ledger.failures, ledger.failures
    with requests.Session() as session:
        session.auth = (a.credentials.username, a.credentials.password)
        for repository, tag, blobs in outcomes.kept:
            manifest = session.get(
                f"{b.url}/v2/{repository}/manifests/{tag}", headers={"Accept": OCI_MANIFEST}, timeout=30
            )
            assert manifest.status_code == 200, (repository, tag)
            for blob in blobs:
                got = session.get(f"{b.url}/v2/{repository}/blobs/{sha256_digest(blob)}", timeout=30)
                assert got.status_code == 200 and got.content == blob, (repository, tag, sha256_digest(blob))
    report = a.fsck()
    assert report["clean"], report["findings"]
    assert outcomes.kept and outcomes.collected
    print(
        f"{len(outcomes.kept)} images kept, {outcomes.refused} pushes refused (blob unknown), "
        f"{outcomes.collections} collections freed {outcomes.collected} blobs"
    )
