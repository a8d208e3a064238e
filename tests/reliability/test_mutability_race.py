"""PutImageTagMutability racing pushes of the same tag, on two ``ecrd serve`` processes sharing one database.

A /v2/ push reads its repository before the manifest body arrives. The rule the push obeys is the setting
committed when it stores the manifest, not the one it read then: once ``PutImageTagMutability IMMUTABLE`` has
answered, the tag never moves, whatever pushes were in flight and on whichever process.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.reliability.test_races import Pair, at_once, error_code, push_blobs, responses, tag_digest
from tests.support.crash import CrashableRegistry, KiB, Ledger, Pusher, config_for, describe, manifest_for
from tests.support.databases import BACKENDS, database_url
from tests.support.images import OCI_MANIFEST, sha256_digest

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

ROUNDS = 4
PUSHERS = 4
SEED = 1010
REPOSITORY = "race/flip"


@pytest.fixture(scope="module", params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    workdir = tmp_path_factory.mktemp(f"mutability-{request.param}")
    with database_url(str(request.param), workdir) as url:
        shared = workdir / "data"
        a = CrashableRegistry(workdir / "a", url, data_dir=shared)
        b = CrashableRegistry(workdir / "b", url, data_dir=shared)
        a.start()  # migrates and makes the root key first; the second process finds both
        try:
            b.start()
            try:
                a.ecr.create_repository(repositoryName=REPOSITORY, imageTagMutability="MUTABLE")
                pair = Pair(a, b, Ledger())
                yield pair
                assert not [s for s in pair.ledger.statuses if s >= 500], pair.ledger.failures
            finally:
                b.stop()
        finally:
            a.stop()


def slow_put(pusher: Pusher, tag: str, payload: bytes, release: threading.Event | float) -> requests.Response:
    """PUT the manifest with its body held back after the first bytes, until ``release`` is set (or for that
    many seconds): the server has read the repository and waits for the rest, as it does for a slow client."""

    def body() -> Iterator[bytes]:
        yield payload[:16]
        if isinstance(release, threading.Event):
            assert release.wait(timeout=60), "the body was never released"
        else:
            time.sleep(release)  # a bounded, simulated slow network: the window the race needs
        yield payload[16:]

    return pusher.send("PUT", f"/v2/{REPOSITORY}/manifests/{tag}", data=body(), headers={"Content-Type": OCI_MANIFEST})


def set_mutability(registry: CrashableRegistry, mutability: str) -> None:
    registry.ecr_for_thread().put_image_tag_mutability(repositoryName=REPOSITORY, imageTagMutability=mutability)


def images(pusher: Pusher, label: str, layer: bytes, count: int) -> list[bytes]:
    configs = [config_for(f"{label}-{n}") for n in range(count)]
    push_blobs(pusher, REPOSITORY, *configs)
    return [manifest_for(config, [layer]) for config in configs]


def test_a_push_in_flight_when_the_tag_becomes_immutable_cannot_move_it(pair: Pair) -> None:
    rng = random.Random(SEED)
    setup = pair.a.pusher(pair.ledger)
    layer = rng.randbytes(64 * KiB)
    push_blobs(setup, REPOSITORY, layer)
    first, second = images(setup, "in-flight", layer, 2)
    assert (
        setup.send(
            "PUT", f"/v2/{REPOSITORY}/manifests/held", data=first, headers={"Content-Type": OCI_MANIFEST}
        ).status_code
        == 201
    )
    # given a push of another image to the tag, on process B, that has begun and waits for its body
    release = threading.Event()
    pushed: list[Any] = []
    pusher = pair.b.pusher(pair.ledger)
    thread = threading.Thread(target=lambda: pushed.append(slow_put(pusher, "held", second, release)))
    thread.start()
    try:
        time.sleep(0.5)  # the request is in the server, past its repository lookup (a bounded head start)
        # when the tag becomes immutable through process A, and only then the push's body arrives
        set_mutability(pair.a, "IMMUTABLE")
    finally:
        release.set()
        thread.join(timeout=60)
    # then the push is refused as ECR refuses it, and the tag still names the first image
    assert len(pushed) == 1 and isinstance(pushed[0], requests.Response), pushed
    assert (pushed[0].status_code, error_code(pushed[0])) == (400, "TAG_INVALID"), describe(pushed[0])
    for process in pair.servers():
        assert tag_digest(process.pusher(pair.ledger), REPOSITORY, "held") == sha256_digest(first)
    set_mutability(pair.a, "MUTABLE")
    pusher.close()
    setup.close()


def race_round(pair: Pair, setup: Pusher, rng: random.Random, round_number: int, layer: bytes) -> int:
    """One round: pushes of other images to a tag race the change to IMMUTABLE. The pushes that won."""
    tag = f"race-{round_number}"
    manifests = images(setup, tag, layer, PUSHERS + 1)
    assert (
        setup.send(
            "PUT", f"/v2/{REPOSITORY}/manifests/{tag}", data=manifests[0], headers={"Content-Type": OCI_MANIFEST}
        ).status_code
        == 201
    )
    pushers = pair.pushers(PUSHERS)
    delays = [rng.uniform(0.0, 0.3) for _ in pushers]
    after_flip: list[str | None] = []

    def flip() -> None:
        set_mutability((pair.a, pair.b)[round_number % 2], "IMMUTABLE")
        # what the tag names as soon as the setting has answered: from now on it must never change
        after_flip.append(tag_digest(setup, REPOSITORY, tag))

    # when pushes of other images to the tag (with slow bodies) race the change to IMMUTABLE
    results = at_once(
        flip,
        *[
            (lambda p=p, m=m, delay=delay: slow_put(p, tag, m, delay))
            for p, m, delay in zip(pushers, manifests[1:], delays, strict=True)
        ],
    )
    assert results[0] is None, results[0]
    pushes = responses(results[1:])
    # then every push either won before the change or was refused as ECR refuses it …
    for response in pushes:
        assert response.status_code == 201 or (response.status_code, error_code(response)) == (400, "TAG_INVALID"), (
            describe(response)
        )
    # … and the tag, on both processes, still names what it named when the change answered
    assert len(after_flip) == 1 and after_flip[0] is not None
    for process in pair.servers():
        assert tag_digest(process.pusher(pair.ledger), REPOSITORY, tag) == after_flip[0]
    set_mutability(pair.a, "MUTABLE")
    for pusher in pushers:
        pusher.close()
    return sum(r.status_code == 201 for r in pushes)


def test_once_immutable_has_answered_no_racing_push_moves_the_tag(pair: Pair) -> None:
    rng = random.Random(SEED + 1)
    setup = pair.a.pusher(pair.ledger)
    layer = rng.randbytes(64 * KiB)
    push_blobs(setup, REPOSITORY, layer)
    outcomes: dict[str, int] = {}
    for round_number in range(ROUNDS):
        won = race_round(pair, setup, rng, round_number, layer)
        outcomes[f"{won} pushes won"] = outcomes.get(f"{won} pushes won", 0) + 1
    setup.close()
    print(f"[{pair.a.database_url.split(':')[0]}] mutability races: {outcomes}")
