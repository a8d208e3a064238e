"""Replication to a peer: a second ecrd deployment (its own account, region, data and keys), served over real HTTP,
receives what the source pushes — through its AWS API (signed by the peer key the source holds) and its ``/v2/``
door — on SQLite and PostgreSQL. Time is a fake clock, so retries are reached by moving it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecrd.app import Registry
from ecrd.config import Settings
from ecrd.domain.replication import Destination
from ecrd.services.replication import FIRST_RETRY_SECONDS, MAX_ATTEMPTS
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.support.clients import AwsCredentials, aws_client, policy_json, put_image_through_api
from tests.support.clock import FakeClock
from tests.support.clocked import clocked_registry
from tests.support.images import OCI_INDEX, build_image, build_index
from tests.support.live_server import free_loopback_port, live_server

pytestmark = pytest.mark.timeout(300)

PEER = Destination("eu-west-1", "111122223333")
PEER_KEY, PEER_SECRET = "AKIAPEERROOT00000001", "peer-root-secret-0000000000000000000000"
# Another account of the source's own deployment.
OTHER_ACCOUNT = "444455556666"


@pytest.fixture
def clock() -> FakeClock:
    # Starting now: boto3 signs with the real time, which the registry checks against this clock.
    return FakeClock.at_wall_time()


@pytest.fixture
def source(settings: Settings, clock: FakeClock) -> Iterator[Registry]:
    with clocked_registry(settings, clock) as built:
        yield built


@pytest.fixture
def source_ecr(source: Registry) -> Iterator[Any]:
    with live_server(source) as url:
        yield aws_client("ecr", url, AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY))


class Peer:
    """The other deployment: started and stopped on one port, keeping its data."""

    def __init__(self, settings: Settings, tmp_path: Path, clock: FakeClock) -> None:
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = replace(
            settings,
            data_dir=tmp_path / "peer-data",
            database_url=f"sqlite:///{tmp_path / 'peer.db'}",
            public_url=self.url,
            account_id=PEER.registry_id,
            region=PEER.region,
            root_access_key_id=PEER_KEY,
            root_secret_access_key=type(settings.root_secret_access_key)(PEER_SECRET),
        )
        self.clock = clock

    @contextmanager
    def running(self) -> Iterator[Any]:
        with clocked_registry(self.settings, self.clock) as built:
            built.identity.authentication.bootstrap_root(PEER_KEY, PEER_SECRET)
            with live_server(built, port=self.port):
                yield aws_client("ecr", self.url, AwsCredentials(PEER_KEY, PEER_SECRET), region=PEER.region)


@pytest.fixture
def peer(settings: Settings, tmp_path: Path, clock: FakeClock) -> Peer:
    return Peer(settings, tmp_path, clock)


def _replicate_to_peer(source: Registry, source_ecr: Any, peer: Peer, *, secret: str = PEER_SECRET) -> None:
    source.replication.put_peer(PEER, peer.url, PEER_KEY, secret)
    source_ecr.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [PEER.json()],
                    "repositoryFilters": [{"filter": "team/", "filterType": "PREFIX_MATCH"}],
                }
            ]
        }
    )


def _statuses(source_ecr: Any, name: str, tag: str) -> list[dict[str, str]]:
    answer = source_ecr.describe_image_replication_status(repositoryName=name, imageId={"imageTag": tag})
    return list(answer["replicationStatuses"])


def _peer_image(peer_ecr: Any, name: str, tag: str) -> dict[str, Any]:
    [image] = peer_ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": tag}])["images"]
    return dict(image)


def test_a_push_replicates_to_the_peer_with_its_tag_and_blobs(source: Registry, source_ecr: Any, peer: Peer) -> None:
    # given a configuration replicating team/ to the peer
    _replicate_to_peer(source, source_ecr, peer)
    source_ecr.create_repository(repositoryName="team/app")
    source_ecr.create_repository(repositoryName="other/app")
    image = build_image((2048, 70_000), seed=11)
    # when an image is pushed to a covered repository and another to one no rule covers
    pushed = put_image_through_api(source_ecr, "team/app", image, "v1")
    put_image_through_api(source_ecr, "other/app", build_image((64,), seed=12), "v1")
    # then the covered push is in progress, and the other has no replication
    assert _statuses(source_ecr, "team/app", "v1") == [{**PEER.json(), "status": "IN_PROGRESS"}]
    assert _statuses(source_ecr, "other/app", "v1") == []
    with peer.running() as peer_ecr:
        # when the job runs
        source.jobs.drain()
        # then the peer has the image under its tag, with the same digest, in a repository made for it
        assert _statuses(source_ecr, "team/app", "v1") == [{**PEER.json(), "status": "COMPLETE"}]
        # and the outcome is an "ECR Replication Action" event of the source, naming the destination
        [event] = source.events.recent(detail_type="ECR Replication Action")
        assert event.envelope["detail"] == {
            "result": "SUCCESS",
            "repository-name": "team/app",
            "image-digest": pushed["imageId"]["imageDigest"],
            "source-account": "000000000000",
            "action-type": "REPLICATE",
            "source-region": "us-east-1",
            "image-tag": "v1",
            "destination-account": PEER.registry_id,
            "destination-region": PEER.region,
        }
        replicated = _peer_image(peer_ecr, "team/app", "v1")
        assert replicated["imageId"]["imageDigest"] == pushed["imageId"]["imageDigest"]
        assert replicated["imageManifest"] == image.manifest.decode()
        # and each layer's bytes, as the peer serves them, are the source's
        for layer in image.layers:
            url = peer_ecr.get_download_url_for_layer(repositoryName="team/app", layerDigest=layer.digest)
            assert url["layerDigest"] == layer.digest
        # when the same image is pushed again under another tag, then only the tag travels, and the job is
        # idempotent: running the replication again changes nothing
        source_ecr.put_image(repositoryName="team/app", imageManifest=image.manifest.decode(), imageTag="v2")
        source.jobs.drain()
        assert _peer_image(peer_ecr, "team/app", "v2")["imageId"]["imageDigest"] == image.manifest_digest
        assert peer_ecr.describe_repositories(repositoryNames=["team/app"])["repositories"][0]["registryId"] == (
            PEER.registry_id
        )


def test_a_multi_platform_index_replicates_with_its_children(source: Registry, source_ecr: Any, peer: Peer) -> None:
    _replicate_to_peer(source, source_ecr, peer)
    source_ecr.create_repository(repositoryName="team/multi")
    index = build_index((1024,), seed=21)
    for number, child in enumerate(index.images):
        put_image_through_api(source_ecr, "team/multi", child, f"child-{number}")
    source_ecr.put_image(
        repositoryName="team/multi",
        imageManifest=index.index.decode(),
        imageManifestMediaType=OCI_INDEX,
        imageTag="multi",
    )
    with peer.running() as peer_ecr:
        source.jobs.drain()
        assert _statuses(source_ecr, "team/multi", "multi") == [{**PEER.json(), "status": "COMPLETE"}]
        assert _peer_image(peer_ecr, "team/multi", "multi")["imageId"]["imageDigest"] == index.digest
        digests = {i["imageDigest"] for i in peer_ecr.list_images(repositoryName="team/multi")["imageIds"]}
        assert {image.manifest_digest for image in index.images} | {index.digest} <= digests


def test_an_unreachable_peer_is_retried_with_backoff_until_it_is_back(
    source: Registry, source_ecr: Any, peer: Peer, clock: FakeClock
) -> None:
    # given a peer that is down when the image is pushed
    _replicate_to_peer(source, source_ecr, peer)
    source_ecr.create_repository(repositoryName="team/app")
    put_image_through_api(source_ecr, "team/app", build_image((512,), seed=31), "v1")
    # when the job runs, then the replication stays in progress, with the next attempt queued for later
    assert source.jobs.drain() == 1
    assert _statuses(source_ecr, "team/app", "v1") == [{**PEER.json(), "status": "IN_PROGRESS"}]
    assert source.jobs.drain() == 0, "the retry waits for its delay"
    # when the peer is back and the delay has passed, then the retry completes it
    with peer.running():
        clock.advance(31.0)
        assert source.jobs.drain() == 1
    assert _statuses(source_ecr, "team/app", "v1") == [{**PEER.json(), "status": "COMPLETE"}]


def test_a_peer_down_for_every_attempt_fails_the_replication(
    source: Registry, source_ecr: Any, peer: Peer, clock: FakeClock
) -> None:
    _replicate_to_peer(source, source_ecr, peer)
    source_ecr.create_repository(repositoryName="team/app")
    put_image_through_api(source_ecr, "team/app", build_image((512,), seed=32), "v1")
    repository = source.registry.get_repository("team/app")
    digest = source_ecr.describe_images(repositoryName="team/app")["imageDetails"][0]["imageDigest"]
    runs = 0
    for attempt in range(1, MAX_ATTEMPTS + 2):
        runs += source.jobs.drain()
        # each retry waits twice as long as the one before (the clients' signatures would now be too far from the
        # registry's clock: the status is read in process)
        clock.advance(FIRST_RETRY_SECONDS * 2 ** (attempt - 1) + 1.0)
    assert runs == MAX_ATTEMPTS
    [state] = source.replication.statuses(repository, digest)
    assert (state.status, state.failure_code, state.attempts) == ("FAILED", "DESTINATION_UNREACHABLE", MAX_ATTEMPTS)


def test_a_peer_that_refuses_the_key_fails_at_once(source: Registry, source_ecr: Any, peer: Peer) -> None:
    _replicate_to_peer(source, source_ecr, peer, secret="not-the-peer-secret")
    source_ecr.create_repository(repositoryName="team/app")
    put_image_through_api(source_ecr, "team/app", build_image((512,), seed=33), "v1")
    with peer.running():
        assert source.jobs.drain() == 1
    assert _statuses(source_ecr, "team/app", "v1") == [
        {**PEER.json(), "status": "FAILED", "failureCode": "DESTINATION_ACCESS_DENIED"}
    ]
    # and the outcome is counted in the metrics
    assert 'ecrd_replications_total{status="FAILED"} 1.0' in source.metrics.exposition().decode()


def test_a_replication_queued_before_a_restart_completes_after_it(
    settings: Settings, clock: FakeClock, peer: Peer
) -> None:
    # given a push whose replication is queued when the source stops
    with clocked_registry(settings, clock) as first, live_server(first) as url:
        ecr = aws_client("ecr", url, AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY))
        _replicate_to_peer(first, ecr, peer)
        ecr.create_repository(repositoryName="team/app")
        image = build_image((4096,), seed=34)
        put_image_through_api(ecr, "team/app", image, "v1")
    # when the source starts again, then its queue carries the replication to the peer
    with clocked_registry(settings, clock) as second, peer.running() as peer_ecr:
        assert second.jobs.drain() == 1
        assert _peer_image(peer_ecr, "team/app", "v1")["imageManifest"] == image.manifest.decode()


def test_the_peer_secret_is_stored_sealed(source: Registry, peer: Peer) -> None:
    source.replication.put_peer(PEER, peer.url, PEER_KEY, PEER_SECRET)
    with source.store.read() as conn:
        rows = conn.exec_driver_sql("SELECT sealed_secret FROM replication_peers").all()
    assert rows and all(PEER_SECRET not in row[0] for row in rows)
    assert [p.access_key_id for p in source.replication.peers()] == [PEER_KEY]


def test_a_configuration_naming_a_registry_served_nowhere_is_refused(source_ecr: Any) -> None:
    with pytest.raises(ClientError) as refused:
        source_ecr.put_replication_configuration(
            replicationConfiguration={
                "rules": [{"destinations": [{"region": "ap-south-1", "registryId": "999999999999"}]}]
            }
        )
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "replication peer" in refused.value.response["Error"]["Message"]


def test_other_registries_of_the_deployment_receive_replicas_that_link_the_stored_blobs(source: Registry) -> None:
    with live_server(source) as url:
        root = AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
        source_ecr = aws_client("ecr", url, root)
        west_ecr = aws_client("ecr", url, root, region="eu-west-1")
        _, other_key, other_secret = source.registries.accounts.create(account_id=OTHER_ACCOUNT)
        other_ecr = aws_client("ecr", url, AwsCredentials(other_key, other_secret))
        # given the source account's own eu-west-1 (a KMS-encrypted REPLICATION template there) and another
        # account of the deployment (whose registry policy does not let the source in yet) as destinations
        west_key = aws_client("kms", url, root, region="eu-west-1").create_key()["KeyMetadata"]["Arn"]
        west_ecr.create_repository_creation_template(
            prefix="ROOT",
            appliedFor=["REPLICATION"],
            encryptionConfiguration={"encryptionType": "KMS", "kmsKey": west_key},
        )
        with pytest.raises(ClientError) as itself:
            source_ecr.put_replication_configuration(
                replicationConfiguration={
                    "rules": [{"destinations": [{"region": "us-east-1", "registryId": "000000000000"}]}]
                }
            )
        assert itself.value.response["Error"]["Message"] == (
            "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'Replication "
            "destination cannot be the same as the source registry'"
        )
        west = {"region": "eu-west-1", "registryId": "000000000000"}
        other = {"region": "us-east-1", "registryId": OTHER_ACCOUNT}
        source_ecr.put_replication_configuration(replicationConfiguration={"rules": [{"destinations": [west, other]}]})
        source_ecr.create_repository(repositoryName="team/app")
        stored_before = _blob_store_bytes(source)

        # when an image is pushed and its replications run
        image = build_image((4096, 8192), seed=21)
        digest = put_image_through_api(source_ecr, "team/app", image, "v1")["imageId"]["imageDigest"]
        pushed = _blob_store_bytes(source) - stored_before
        source.jobs.drain()

        # then eu-west-1 holds it in a repository of its template's encryption, with no second copy of its bytes,
        # and the other account refused it: its registry policy does not let the source account replicate
        assert _statuses(source_ecr, "team/app", "v1") == [
            {**west, "status": "COMPLETE"},
            {**other, "status": "FAILED", "failureCode": "DESTINATION_ACCESS_DENIED"},
        ]
        replica = west_ecr.describe_repositories(repositoryNames=["team/app"])["repositories"][0]
        assert replica["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": west_key}
        assert west_ecr.batch_get_image(repositoryName="team/app", imageIds=[{"imageTag": "v1"}])["images"]
        assert _blob_store_bytes(source) - stored_before == pushed
        layer = image.layers[0].digest
        west_layer = west_ecr.get_download_url_for_layer(repositoryName="team/app", layerDigest=layer)
        assert west_layer["layerDigest"] == layer
        # and each outcome is an "ECR Replication Action" event of the destination's registry that names the
        # source, as ECR writes it
        events = {
            (event.envelope["account"], event.envelope["region"]): event.envelope
            for event in source.events.recent(detail_type="ECR Replication Action")
        }
        assert set(events) == {("000000000000", "eu-west-1"), (OTHER_ACCOUNT, "us-east-1")}
        west_event = events[("000000000000", "eu-west-1")]
        assert west_event["resources"] == ["arn:aws:ecr:eu-west-1:000000000000:repository/team/app"]
        assert west_event["detail"] == {
            "result": "SUCCESS",
            "repository-name": "team/app",
            "image-digest": digest,
            "source-account": "000000000000",
            "action-type": "REPLICATE",
            "source-region": "us-east-1",
            "image-tag": "v1",
        }
        assert events[(OTHER_ACCOUNT, "us-east-1")]["detail"]["result"] == "FAILURE"

        # once the other account's registry policy lets the source account in, a backfill carries the image there
        other_ecr.put_registry_policy(
            policyText=policy_json(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
                    "Action": ["ecr:ReplicateImage", "ecr:CreateRepository"],
                    "Resource": f"arn:aws:ecr:us-east-1:{OTHER_ACCOUNT}:repository/*",
                }
            )
        )
        source.replication.start_backfill(Destination(other["region"], other["registryId"]))
        source.jobs.drain()
        assert {"region": "us-east-1", "registryId": OTHER_ACCOUNT, "status": "COMPLETE"} in _statuses(
            source_ecr, "team/app", "v1"
        )
        tags = other_ecr.list_images(repositoryName="team/app")["imageIds"]
        assert [t.get("imageTag") for t in tags] == ["v1"]


def test_deletions_replicate_where_a_rule_enables_them(source: Registry, source_ecr: Any, peer: Peer) -> None:
    # given a rule replicating team/ with its deletions to the peer and to eu-west-1 of the source's own account
    source.replication.put_peer(PEER, peer.url, PEER_KEY, PEER_SECRET)
    west = {"region": "eu-west-1", "registryId": "000000000000"}
    source_ecr.put_replication_configuration(
        replicationConfiguration={
            "rules": [{"destinations": [PEER.json(), west], "deleteReplication": {"enabled": True}}]
        }
    )
    source_ecr.create_repository(repositoryName="team/app")
    pushed = put_image_through_api(source_ecr, "team/app", build_image((64,), seed=31), "v1")
    digest = pushed["imageId"]["imageDigest"]
    source_ecr.put_image(repositoryName="team/app", imageManifest=pushed["imageManifest"], imageTag="latest")
    with peer.running() as peer_ecr, live_server(source) as url:
        source.jobs.drain()
        west_ecr = aws_client(
            "ecr", url, AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY), region="eu-west-1"
        )

        def tags(ecr: Any) -> list[str]:
            return sorted(i.get("imageTag", "-") for i in ecr.list_images(repositoryName="team/app")["imageIds"])

        assert tags(peer_ecr) == tags(west_ecr) == ["latest", "v1"]
        # when a tag is removed at the source, the image keeping its other tag
        source_ecr.batch_delete_image(repositoryName="team/app", imageIds=[{"imageTag": "latest"}])
        source.jobs.drain()
        # then the destinations lose that tag and keep the image
        assert tags(peer_ecr) == tags(west_ecr) == ["v1"]
        # when the image itself is deleted at the source, it is deleted there too
        source_ecr.batch_delete_image(repositoryName="team/app", imageIds=[{"imageDigest": digest}])
        source.jobs.drain()
        assert tags(peer_ecr) == tags(west_ecr) == []


def _blob_store_bytes(registry: Registry) -> int:
    root = registry.settings.data_dir / "blobs"
    return sum(entry.stat().st_size for entry in root.rglob("*") if entry.is_file())


# -- backfills ------------------------------------------------------------------------------------------------


def _backfill_status(source_ecr: Any, backfill_id: str) -> dict[str, Any]:
    answer = source_ecr.describe_replication_backfill_results(replicationBackfillId=backfill_id)
    return dict(answer)


def test_a_backfill_replicates_the_images_pushed_before_the_configuration(
    source: Registry, source_ecr: Any, peer: Peer
) -> None:
    # given images pushed before any replication was configured: two tags of one image, an untagged one, and one in
    # a repository no rule covers
    source_ecr.create_repository(repositoryName="team/app")
    source_ecr.create_repository(repositoryName="other/app")
    tagged = build_image((1024,), seed=41)
    put_image_through_api(source_ecr, "team/app", tagged, "v1")
    source_ecr.put_image(repositoryName="team/app", imageManifest=tagged.manifest.decode(), imageTag="latest")
    untagged, newer = build_image((512,), seed=42), build_image((512,), seed=46)
    put_image_through_api(source_ecr, "team/app", untagged, "old")
    put_image_through_api(source_ecr, "team/app", newer, "old")  # the tag moves: the first image is untagged
    put_image_through_api(source_ecr, "other/app", build_image((64,), seed=43), "v1")
    _replicate_to_peer(source, source_ecr, peer)
    assert source.jobs.drain() == 0, "nothing replicates what was pushed before the configuration"
    # when a backfill to the peer is started
    started = source_ecr.start_replication_backfill(destination=PEER.json())
    assert (started["status"], started["destination"]) == ("PREPARING", PEER.json())
    backfill_id = started["replicationBackfillId"]
    # then a second one to the same region is refused while it runs
    with pytest.raises(ClientError) as busy:
        source_ecr.start_replication_backfill(destination=PEER.json())
    assert busy.value.response["Error"]["Code"] == "ReplicationBackfillInProgressException"
    with peer.running() as peer_ecr:
        source.jobs.drain()
        # then every image and tag of the covered repository is on the peer, and nothing of the other
        described = _backfill_status(source_ecr, backfill_id)
        assert described["status"] == "COMPLETE"
        assert described["progress"] == {
            "totalReplicationCount": 4,
            "completedReplicationCount": 4,
            "failedReplicationCount": 0,
            "failureCodes": [],
        }
        results = {(r["imageId"]["imageDigest"], r["imageId"].get("imageTag")) for r in described["results"]}
        assert results == {
            (tagged.manifest_digest, "v1"),
            (tagged.manifest_digest, "latest"),
            (untagged.manifest_digest, None),
            (newer.manifest_digest, "old"),
        }
        assert _peer_image(peer_ecr, "team/app", "latest")["imageId"]["imageDigest"] == tagged.manifest_digest
        with pytest.raises(ClientError):
            peer_ecr.describe_repositories(repositoryNames=["other/app"])
    [summary] = source_ecr.list_replication_backfills()["backfills"]
    assert (summary["replicationBackfillId"], summary["status"]) == (backfill_id, "COMPLETE")
    assert "endedAt" in summary
    assert _statuses(source_ecr, "team/app", "v1") == [{**PEER.json(), "status": "COMPLETE"}]


def test_a_stopped_backfill_replicates_nothing_more(source: Registry, source_ecr: Any, peer: Peer) -> None:
    source_ecr.create_repository(repositoryName="team/app")
    put_image_through_api(source_ecr, "team/app", build_image((256,), seed=44), "v1")
    _replicate_to_peer(source, source_ecr, peer)
    backfill_id = source_ecr.start_replication_backfill(destination=PEER.json())["replicationBackfillId"]
    assert source_ecr.stop_replication_backfill(replicationBackfillId=backfill_id)["status"] == "STOPPING"
    source.jobs.drain()
    described = _backfill_status(source_ecr, backfill_id)
    assert (described["status"], described["results"]) == ("STOPPED", [])
    with pytest.raises(ClientError) as again:
        source_ecr.stop_replication_backfill(replicationBackfillId=backfill_id)
    assert again.value.response["Error"]["Code"] == "ReplicationBackfillInvalidStatusException"
    # and a new one may start once it is over
    assert source_ecr.start_replication_backfill(destination=PEER.json())["status"] == "PREPARING"


def test_backfill_errors_name_what_is_wrong(source: Registry, source_ecr: Any, peer: Peer) -> None:
    _replicate_to_peer(source, source_ecr, peer)
    with pytest.raises(ClientError) as absent:
        source_ecr.describe_replication_backfill_results(replicationBackfillId="00000000-0000-4000-8000-000000000000")
    assert absent.value.response["Error"]["Code"] == "ReplicationBackfillNotFoundException"
    with pytest.raises(ClientError) as elsewhere:
        source_ecr.start_replication_backfill(destination={"region": "eu-west-1", "registryId": "999999999999"})
    assert elsewhere.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "not in the registry's replication configuration" in elsewhere.value.response["Error"]["Message"]


def test_a_backfill_to_a_peer_that_is_down_records_each_failure(source: Registry, source_ecr: Any, peer: Peer) -> None:
    source_ecr.create_repository(repositoryName="team/app")
    put_image_through_api(source_ecr, "team/app", build_image((256,), seed=45), "v1")
    _replicate_to_peer(source, source_ecr, peer)
    backfill_id = source_ecr.start_replication_backfill(destination=PEER.json())["replicationBackfillId"]
    source.jobs.drain()
    described = _backfill_status(source_ecr, backfill_id)
    # fewer than 100 replications: a backfill does not fail as a whole, its replications do
    assert described["status"] == "COMPLETE"
    assert described["progress"]["failedReplicationCount"] == 1
    assert described["progress"]["failureCodes"] == ["DESTINATION_UNREACHABLE"]
    assert (
        source_ecr.describe_replication_backfill_results(
            replicationBackfillId=backfill_id, resultStatusFilter="FAILED"
        )["results"][0]["failureCode"]
        == "DESTINATION_UNREACHABLE"
    )
