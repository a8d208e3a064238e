"""Registry events and webhooks, on SQLite and PostgreSQL: a real push (the oras SDK) reaches a webhook receiver
on 127.0.0.1 signed; a failing receiver is retried, an always-failing one dead-lettered and shown by
`ecrd events`; an event committed before a crash is delivered after the restart; a cause rolled back leaves
no event."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from sqlalchemy import select

from ecrd.app import Registry
from ecrd.cli.main import main
from ecrd.config import Settings
from ecrd.domain.events import (
    EVENT_ID_HEADER,
    IMAGE_ACTION,
    IMAGE_SCAN,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EventFilter,
    image_action,
    signature_valid,
)
from ecrd.errors import ImageTagAlreadyExists, ManifestUnknown
from ecrd.metadata import events as event_queries
from ecrd.metadata.events_tables import webhooks as webhook_rows
from ecrd.services.webhooks import WebhookDispatcher
from tests.conftest import ROOT_ACCESS_KEY_ID, basic_auth_for, decode_basic
from tests.integration.test_aws_door_cost import traced
from tests.support.clients import Credentials, oras_registry
from tests.support.clock import FakeClock
from tests.support.clocked import clocked_registry, root_client
from tests.support.images import sha256_digest
from tests.support.live_server import live_server
from tests.support.oci import config_blob, image_manifest, push_blob, push_image, random_blob
from tests.support.webhooks import Receiver, webhook_receiver

pytestmark = pytest.mark.timeout(120)

SECRET = "receiver-shared-secret-0123456789"
REPOSITORY = "events/app"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock.at_wall_time()


def open_registry(settings: Settings, clock: FakeClock) -> AbstractContextManager[Registry]:
    """The registry on a fake clock, with a limit of 3 attempts per delivery."""
    return clocked_registry(dataclasses.replace(settings, webhook_max_attempts=3), clock)


@pytest.fixture
def clocked(settings: Settings, clock: FakeClock) -> Iterator[Registry]:
    with open_registry(settings, clock) as built:
        yield built


def push(registry: Registry, tag: str = "v1") -> str:
    with root_client(registry) as client:
        payload, _ = push_image(client, REPOSITORY, tag)
    return sha256_digest(payload)


def deliveries(registry: Registry) -> list[event_queries.DeliveryRecord]:
    return registry.webhooks.deliveries()


def test_an_oras_push_reaches_the_webhook_as_a_signed_ecr_push_event(
    registry: Registry, receiver: Receiver, tmp_path: Path
) -> None:
    # given a webhook and a repository, and a real client pushing through a socket
    registry.webhooks.add(receiver.url, EventFilter(), SECRET)
    registry.registry.create_repository(REPOSITORY)
    payload = tmp_path / "notes.txt"
    payload.write_text("release notes\n")
    user, password = decode_basic(basic_auth_for(registry, ROOT_ACCESS_KEY_ID))
    with live_server(registry) as url:
        host = url.removeprefix("http://")
        oras = oras_registry(host, Credentials(user, password))
        response = oras.push(target=f"{host}/{REPOSITORY}:v1", files=[str(payload)], disable_path_validation=True)
        assert response.status_code == 201

    # when the dispatcher runs
    tried = registry.dispatcher.drain()

    # then the receiver got one ECR "Image Action" PUSH, signed with its secret
    assert tried == 1
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert signature_valid(SECRET, got.headers[TIMESTAMP_HEADER], got.body, got.headers[SIGNATURE_HEADER])
    assert not signature_valid("another secret", got.headers[TIMESTAMP_HEADER], got.body, got.headers[SIGNATURE_HEADER])
    envelope = got.envelope
    assert got.headers[EVENT_ID_HEADER] == envelope["id"]
    assert envelope["version"] == "0"
    assert envelope["source"] == "aws.ecr"
    assert envelope["detail-type"] == IMAGE_ACTION
    assert envelope["account"] == registry.settings.account_id
    assert envelope["region"] == registry.settings.region
    assert envelope["time"].endswith("Z")
    assert envelope["resources"] == [
        f"arn:aws:ecr:{registry.settings.region}:{registry.settings.account_id}:repository/{REPOSITORY}"
    ]
    detail = envelope["detail"]
    assert detail["action-type"] == "PUSH"
    assert detail["result"] == "SUCCESS"
    assert detail["repository-name"] == REPOSITORY
    assert detail["image-tag"] == "v1"
    assert detail["image-digest"].startswith("sha256:")
    assert detail["manifest-media-type"] == "application/vnd.oci.image.manifest.v1+json"
    assert [d.status for d in deliveries(registry)] == ["delivered"]


def test_a_failing_receiver_is_retried_with_backoff_until_it_takes_the_event(
    clocked: Registry, clock: FakeClock, receiver: Receiver
) -> None:
    # given a receiver that fails twice, then answers 200
    receiver.answers = [503, 500]
    clocked.webhooks.add(receiver.url, EventFilter(), SECRET)
    clocked.registry.create_repository(REPOSITORY)
    push(clocked)

    # when the dispatcher runs: a first attempt fails, and nothing is due again until the backoff has passed
    assert clocked.dispatcher.run_once() == 1
    assert clocked.dispatcher.run_once() == 0
    [waiting] = deliveries(clocked)
    assert waiting.status == "pending"
    assert waiting.last_status == 503
    assert waiting.next_attempt_at > clock.now()
    for _ in range(2):
        clock.set(deliveries(clocked)[0].next_attempt_at)
        assert clocked.dispatcher.run_once() == 1

    # then the third attempt delivered the same event, the same body each time
    assert [d.status for d in deliveries(clocked)] == ["delivered"]
    assert len(receiver.received) == 3
    assert len({r.body for r in receiver.received}) == 1
    assert len({r.headers[EVENT_ID_HEADER] for r in receiver.received}) == 1
    exposition = clocked.metrics.exposition().decode()
    assert 'ecrd_webhook_deliveries_total{outcome="retried"} 2.0' in exposition
    assert 'ecrd_webhook_deliveries_total{outcome="delivered"} 1.0' in exposition


def test_an_always_failing_receiver_is_dead_lettered_shown_by_ecrd_events_and_redelivered(
    clocked: Registry, clock: FakeClock, receiver: Receiver, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a receiver that always fails, and a limit of 3 attempts
    receiver.always = 500
    clocked.webhooks.add(receiver.url, EventFilter(), SECRET)
    clocked.registry.create_repository(REPOSITORY)
    push(clocked)

    # when the dispatcher tries until nothing is left to try
    for _ in range(10):
        if clocked.dispatcher.run_once() == 0:
            pending = [d for d in deliveries(clocked) if d.status == "pending"]
            if not pending:
                break
            clock.set(pending[0].next_attempt_at)

    # then the delivery is dead after 3 attempts, and `ecrd events failed` shows it
    [dead] = deliveries(clocked)
    assert (dead.status, dead.attempts, dead.last_status) == ("dead", 3, 500)
    assert len(receiver.received) == 3
    assert 'ecrd_webhook_deliveries_total{outcome="dead"} 1.0' in clocked.metrics.exposition().decode()
    where = ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]
    capsys.readouterr()
    assert main(["events", "failed", "--json", *where]) == 0
    [line] = capsys.readouterr().out.splitlines()
    shown = json.loads(line)
    assert shown["deliveryId"] == dead.id
    assert shown["status"] == "dead"
    assert shown["detailType"] == IMAGE_ACTION
    assert shown["repository"] == REPOSITORY
    assert shown["lastError"] == "HTTP 500"

    # and `ecrd events redeliver` queues it again, which a healed receiver takes
    assert main(["events", "redeliver", str(dead.id), *where]) == 0
    receiver.always = 200
    assert clocked.dispatcher.drain() == 1
    assert [d.status for d in deliveries(clocked)] == ["delivered"]
    assert main(["events", "failed", *where]) == 0
    assert "dead" not in capsys.readouterr().out


def test_an_event_committed_before_a_crash_is_delivered_after_the_restart(
    settings: Settings, clock: FakeClock, receiver: Receiver
) -> None:
    # given a push committed, and a process that died before delivering it (one dispatcher claimed the
    # delivery and never settled it, another never dispatched the next event)
    with open_registry(settings, clock) as first:
        first.webhooks.add(receiver.url, EventFilter(), SECRET)
        first.registry.create_repository(REPOSITORY)
        push(first, "v1")
        with first.store.write() as conn:
            event_queries.dispatch(conn, clock(), 100)
            [claimed] = event_queries.claim_deliveries(conn, "other-host:1:dead", clock(), 60.0, 5)
        push(first, "v2")

    # when a new process starts on the same store, and the dead claim's lease runs out
    with open_registry(settings, clock) as second:
        assert second.dispatcher.drain() == 1
        clock.advance(second.dispatcher.lease_seconds + 1)
        assert second.dispatcher.drain() == 1

        # then both events were delivered, each once
        tags = sorted(r.envelope["detail"]["image-tag"] for r in receiver.received)
        assert tags == ["v1", "v2"]
        assert claimed.event_id in {r.headers[EVENT_ID_HEADER] for r in receiver.received}
        assert [d.status for d in deliveries(second)] == ["delivered", "delivered"]


def test_a_push_whose_transaction_rolls_back_leaves_no_event(registry: Registry) -> None:
    # given a repository whose tag is immutable, and a push of v1
    registry.registry.create_repository(REPOSITORY, image_tag_mutability="IMMUTABLE")
    repository = registry.registry.get_repository(REPOSITORY)
    with root_client(registry) as client:
        config, layer = config_blob(), random_blob(600)
        for blob in (config, layer):
            push_blob(client, REPOSITORY, blob)
    first = image_manifest(config, [layer])
    registry.registry.put_manifest(repository, "v1", first, "application/vnd.oci.image.manifest.v1+json")
    assert len(registry.events.recent()) == 1

    # when another image is pushed to the immutable tag (refused after its manifest was inserted), and a push
    # fails in a later step of its transaction, after its event was written
    second = image_manifest(config, [layer], annotations={"n": "2"})
    with pytest.raises(ImageTagAlreadyExists):
        registry.registry.put_manifest(repository, "v1", second, "application/vnd.oci.image.manifest.v1+json")

    def fail_late(*_: object) -> None:
        raise RuntimeError("a later step of the push fails")

    registry.registry.on_image_pushed.append(fail_late)
    third = image_manifest(config, [layer], annotations={"n": "3"})
    with pytest.raises(RuntimeError):
        registry.registry.put_manifest(repository, "v3", third, "application/vnd.oci.image.manifest.v1+json")

    # then only the first push has its event, and neither failed image was stored
    assert [e.envelope["detail"]["image-tag"] for e in registry.events.recent()] == ["v1"]
    with pytest.raises(ManifestUnknown):
        registry.registry.get_manifest(repository, "v3", record_pull=False)
    assert registry.registry.get_manifest(repository, "v1", record_pull=False).digest == sha256_digest(first)


def test_deletions_untags_and_scans_are_events_and_filters_choose_what_a_webhook_gets(
    registry: Registry, receiver: Receiver
) -> None:
    # given a webhook for scans of events/* only, and a catch-all one
    with webhook_receiver() as everything:
        registry.webhooks.add(receiver.url, EventFilter((IMAGE_SCAN,), ("events/*",)), SECRET)
        registry.webhooks.add(everything.url, EventFilter(), SECRET)
        registry.registry.create_repository(REPOSITORY)
        repository = registry.registry.get_repository(REPOSITORY)
        digest = push(registry, "v1")
        push(registry, "v2")

        # when an image is scanned, a tag is removed from an image that keeps another, and an image deleted
        registry.scanning.run_scan_job({"repository_id": repository.id, "digest": digest})
        registry.registry.untag_or_delete_image(repository, "v2")
        registry.registry.untag_or_delete_image(repository, "v1")
        registry.dispatcher.drain()

        # then the catch-all webhook got every event, in the ECR shapes
        got = [r.envelope for r in everything.received]
        kinds = sorted((e["detail-type"], e["detail"].get("action-type", "-")) for e in got)
        assert kinds == [
            (IMAGE_ACTION, "DELETE"),
            (IMAGE_ACTION, "DELETE"),
            (IMAGE_ACTION, "PUSH"),
            (IMAGE_ACTION, "PUSH"),
            (IMAGE_SCAN, "-"),
        ]
        deletes = [e["detail"] for e in got if e["detail"].get("action-type") == "DELETE"]
        assert sorted(d["image-tag"] for d in deletes) == ["v1", "v2"]
        scan = next(e for e in got if e["detail-type"] == IMAGE_SCAN)["detail"]
        assert scan["image-digest"] == digest
        assert scan["repository-name"] == REPOSITORY
        assert isinstance(scan["finding-severity-counts"], dict)

        # and the filtered one only the scan
        assert [r.envelope["detail-type"] for r in receiver.received] == [IMAGE_SCAN]


def test_webhook_secrets_are_stored_sealed_and_old_events_are_pruned(
    clocked: Registry, clock: FakeClock, receiver: Receiver
) -> None:
    # given a webhook and a delivered event
    webhook_id, _ = clocked.webhooks.add(receiver.url, EventFilter(), SECRET)
    clocked.registry.create_repository(REPOSITORY)
    push(clocked)
    clocked.dispatcher.drain()

    # then the secret is not in the store as given
    with clocked.store.read() as conn:
        stored = conn.execute(select(webhook_rows.c.secret).where(webhook_rows.c.id == webhook_id)).scalar_one()
    assert SECRET not in stored

    # and the event stays until its retention has passed
    assert clocked.dispatcher.prune() == 0
    clock.advance(clocked.settings.event_retention_hours * 3600.0 + 1)
    assert clocked.dispatcher.prune() == 1
    assert clocked.events.recent() == []
    assert deliveries(clocked) == []


def test_a_lifecycle_expiry_is_a_delete_event_written_with_the_expiry(registry: Registry) -> None:
    # given two images and a policy keeping only the newest
    registry.registry.create_repository(REPOSITORY)
    repository = registry.registry.get_repository(REPOSITORY)
    old = push(registry, "old")
    push(registry, "new")
    policy = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
                "action": {"type": "expire"},
            }
        ]
    }
    registry.lifecycle.put_policy(repository, json.dumps(policy))

    # when the policy runs
    report = registry.lifecycle.run_repository(repository)

    # then the expired image is an "ECR Image Action" DELETE under its tag
    assert report.count("EXPIRE") == 1
    deletes = [e.envelope["detail"] for e in registry.events.recent(detail_type=IMAGE_ACTION)]
    assert [d for d in deletes if d["action-type"] == "DELETE"] == [
        {
            "result": "SUCCESS",
            "repository-name": REPOSITORY,
            "image-digest": old,
            "action-type": "DELETE",
            "image-tag": "old",
        }
    ]


def test_ecrd_events_manages_webhooks_and_lists_recent_events(
    registry: Registry, settings: Settings, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]
    capsys.readouterr()

    # when a webhook is added without a secret, a random one is made and shown once
    assert main(["events", "webhook", "add", receiver.url, "--repository", "events/*", *where]) == 0
    added = dict(line.split(" ", 1) for line in capsys.readouterr().out.splitlines())
    secret = added["secret"]
    assert len(secret) >= 32

    # then the list shows the webhook and its filter, never the secret
    assert main(["events", "webhook", "list", *where]) == 0
    listed = capsys.readouterr().out
    assert receiver.url in listed and "repositories=events/*" in listed and secret not in listed

    # and an event pushed is listed, and delivered signed with that secret
    registry.registry.create_repository(REPOSITORY)
    digest = push(registry)
    assert main(["events", "list", "--repository", REPOSITORY, *where]) == 0
    assert digest in capsys.readouterr().out
    registry.dispatcher.drain()
    [got] = receiver.received
    assert signature_valid(secret, got.headers[TIMESTAMP_HEADER], got.body, got.headers[SIGNATURE_HEADER])

    # and a URL that is not http(s) is refused, an unknown webhook cannot be removed, a known one can
    assert main(["events", "webhook", "add", "ftp://example.com/x", *where]) == 1
    assert "http:// or https://" in capsys.readouterr().err
    assert main(["events", "webhook", "remove", "999", *where]) == 1
    assert main(["events", "webhook", "remove", added["webhook"], *where]) == 0
    assert registry.webhooks.list_webhooks() == []


def test_a_push_that_changes_nothing_is_no_event_and_a_tag_moved_to_an_image_is_one(registry: Registry) -> None:
    # given an image pushed under v1
    registry.registry.create_repository(REPOSITORY)
    repository = registry.registry.get_repository(REPOSITORY)
    with root_client(registry) as client:
        payload, _ = push_image(client, REPOSITORY, "v1")
    digest = sha256_digest(payload)

    # when the same manifest is pushed again by digest and under v1, then tagged v2
    for reference in (digest, "v1", "v2"):
        registry.registry.put_manifest(repository, reference, payload, "application/vnd.oci.image.manifest.v1+json")

    # then only the first push and the new tag are events
    pushed = [e.envelope["detail"].get("image-tag") for e in reversed(registry.events.recent())]
    assert pushed == ["v1", "v2"]


def test_dispatchers_of_several_processes_deliver_each_event_once(registry: Registry, receiver: Receiver) -> None:
    # given a webhook and twenty events committed
    registry.webhooks.add(receiver.url, EventFilter(), SECRET)
    with registry.store.write() as conn:
        for n in range(20):
            detail = image_action("PUSH", REPOSITORY, f"sha256:{n:064x}", tag=f"t{n}")
            registry.events.record(conn, IMAGE_ACTION, detail, repository=REPOSITORY, now=registry.clock())
    recorded = {event.event_id for event in registry.events.recent()}

    # when two dispatchers (as of two server processes) work at once
    dispatchers = [
        WebhookDispatcher(registry.store, registry.webhooks, max_attempts=3, timeout_seconds=10, retention_seconds=60)
        for _ in range(2)
    ]
    with ThreadPoolExecutor(2) as pool:
        tried = sum(pool.map(lambda dispatcher: dispatcher.drain(limit=50), dispatchers))

    # then each event was claimed by one of them and delivered once
    delivered = [r.headers[EVENT_ID_HEADER] for r in receiver.received]
    assert tried == 20
    assert sorted(delivered) == sorted(recorded)
    assert {d.status for d in deliveries(registry)} == {"delivered"}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_push_pays_one_insert_for_its_event(registry: Registry) -> None:
    # given a repository with its blobs uploaded
    registry.registry.create_repository(REPOSITORY)
    repository = registry.registry.get_repository(REPOSITORY)
    config, layer = config_blob(), random_blob(700)
    with root_client(registry) as client:
        for blob in (config, layer):
            push_blob(client, REPOSITORY, blob)
    payload = image_manifest(config, [layer])

    # when the manifest is pushed, every statement traced
    with traced(registry) as statements:
        registry.registry.put_manifest(repository, "v1", payload, "application/vnd.oci.image.manifest.v1+json")

    # then the outbox costs the push one INSERT, and nothing else of the events' tables
    touching = [s for s in statements if re.search(r"\b(events|webhooks|event_deliveries)\b", s)]
    assert len(touching) == 1 and touching[0].startswith("INSERT INTO events")
