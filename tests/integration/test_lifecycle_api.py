"""Lifecycle policies through the ECR API (boto3 on a real socket) and the service's runs, on both back ends:
policies stored and refused as ECR does, previews that are IN_PROGRESS until their job runs, runs that expire
what the preview listed (indexes with their children, referrers with their subject), and pull-time exclusions."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from sqlalchemy import select

from ecrd.app import Registry, build_registry
from ecrd.config import Settings
from ecrd.metadata.lifecycle_tables import lifecycle_actions
from ecrd.services.lifecycle import LIFECYCLE_PRINCIPAL
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, basic_auth_for
from tests.support.clients import AwsCredentials, aws_client
from tests.support.clock import FakeClock
from tests.support.clocked import clocked_registry
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, Blob, config_blob, digest_of, image_manifest, random_blob

DAY = 86_400.0
READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
POLICY_PREFIX = "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation"


def policy(*rules: dict[str, Any]) -> str:
    return json.dumps({"rules": [{"description": f"rule {r['rulePriority']} of this test", **r} for r in rules]})


def keep_newest(count: int, prefix: str, priority: int = 1) -> dict[str, Any]:
    return {
        "rulePriority": priority,
        "selection": {
            "tagStatus": "tagged",
            "tagPrefixList": [prefix],
            "countType": "imageCountMoreThan",
            "countNumber": count,
        },
        "action": {"type": "expire"},
    }


def older_than(days: int, count_type: str = "sinceImagePushed", tag_status: str = "any") -> dict[str, Any]:
    return {
        "rulePriority": 1,
        "selection": {"tagStatus": tag_status, "countType": count_type, "countUnit": "days", "countNumber": days},
        "action": {"type": "expire"},
    }


@pytest.fixture
def clock() -> FakeClock:
    # At wall time, so SigV4 and registry tokens hold; advanced by seconds between pushes, by days only after the
    # last request of a test that calls the service directly.
    return FakeClock.at_wall_time()


@pytest.fixture
def registry(settings: Settings, clock: FakeClock) -> Iterator[Registry]:
    with clocked_registry(settings, clock) as built:
        yield built


def client_for(endpoint: str, service: str, key: str = ROOT_ACCESS_KEY_ID, secret: str = ROOT_SECRET_ACCESS_KEY) -> Any:
    return aws_client(service, endpoint, AwsCredentials(key, secret))


def login(ecr: Any) -> requests.Session:
    session = requests.Session()
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    session.headers["Authorization"] = f"Basic {token}"
    return session


class Pusher:
    """Pushes images to one repository over /v2/, a second apart so that their push order is well defined."""

    def __init__(self, endpoint: str, ecr: Any, clock: FakeClock, name: str) -> None:
        self.endpoint, self.clock, self.name = endpoint, clock, name
        self.session = login(ecr)
        ecr.create_repository(repositoryName=name)

    def blob(self, blob: Blob) -> None:
        url = f"{self.endpoint}/v2/{self.name}/blobs/uploads/?digest={blob.digest}"
        assert self.session.post(url, data=blob.data).status_code == 201

    def manifest(self, payload: bytes, reference: str | None = None, media_type: str = OCI_MANIFEST) -> str:
        self.clock.advance(1.0)
        url = f"{self.endpoint}/v2/{self.name}/manifests/{reference or digest_of(payload)}"
        answer = self.session.put(url, data=payload, headers={"Content-Type": media_type})
        assert answer.status_code == 201, answer.text
        return digest_of(payload)

    def image(self, tag: str | None, **extra: Any) -> str:
        config, layer = config_blob({"nonce": os.urandom(8).hex()}), random_blob(256)
        for blob in (config, layer):
            self.blob(blob)
        return self.manifest(image_manifest(config, [layer], **extra), tag)

    def index(self, tag: str, children: list[str], payloads: dict[str, bytes]) -> str:
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": d,
                    "size": len(payloads[d]),
                    "platform": {"os": "linux", "architecture": a},
                }
                for d, a in zip(children, ["amd64", "arm64", "s390x"], strict=False)
            ],
        }
        return self.manifest(json.dumps(body).encode(), tag, OCI_INDEX)

    def referrer(self, subject: str, subject_size: int) -> str:
        config = Blob(b"{}", "application/vnd.example.signature")
        self.blob(config)
        layer = random_blob(64)
        self.blob(layer)
        subject_descriptor = {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size}
        return self.manifest(image_manifest(config, [layer], subject=subject_descriptor))


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return str(exc.value.response["Error"]["Code"]), str(exc.value.response["Error"]["Message"])


def image_digests(ecr: Any, name: str) -> set[str]:
    return {image["imageDigest"] for image in ecr.list_images(repositoryName=name)["imageIds"]}


# -- policies ------------------------------------------------------------------------------------------------


def test_a_policy_is_put_read_and_deleted_then_not_found_in_ecrs_words(ecr: Any) -> None:
    ecr.create_repository(repositoryName="app")
    text = policy(keep_newest(3, "v"))

    put = ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=text)
    got = ecr.get_lifecycle_policy(repositoryName="app")
    deleted = ecr.delete_lifecycle_policy(repositoryName="app")
    with pytest.raises(ClientError) as missing:
        ecr.get_lifecycle_policy(repositoryName="app")
    with pytest.raises(ClientError) as missing_delete:
        ecr.delete_lifecycle_policy(repositoryName="app")

    assert put["lifecyclePolicyText"] == got["lifecyclePolicyText"] == deleted["lifecyclePolicyText"] == text
    assert (got["registryId"], got["repositoryName"]) == ("000000000000", "app")
    assert "lastEvaluatedAt" not in got
    assert error_of(missing) == (
        "LifecyclePolicyNotFoundException",
        "Lifecycle policy does not exist for the repository with name 'app' in the registry with id '000000000000'",
    )
    assert error_of(missing_delete)[0] == "LifecyclePolicyNotFoundException"


def test_an_invalid_policy_is_refused_with_ecrs_message_and_nothing_is_stored(ecr: Any) -> None:
    ecr.create_repository(repositoryName="app")
    bad = policy(
        {
            **keep_newest(3, "v"),
            "selection": {"tagStatus": "sometimes", "countType": "imageCountMoreThan", "countNumber": 1},
        }
    )

    with pytest.raises(ClientError) as refused:
        ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=bad)
    with pytest.raises(ClientError) as refused_preview:
        ecr.start_lifecycle_policy_preview(repositoryName="app", lifecyclePolicyText=bad)

    code, message = error_of(refused)
    assert code == "InvalidParameterException" and message.startswith(POLICY_PREFIX)
    assert "sometimes" in message
    assert error_of(refused_preview)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as missing:
        ecr.get_lifecycle_policy(repositoryName="app")
    assert error_of(missing)[0] == "LifecyclePolicyNotFoundException"


def test_policy_operations_on_a_missing_repository_answer_repository_not_found(ecr: Any) -> None:
    with pytest.raises(ClientError) as missing:
        ecr.put_lifecycle_policy(repositoryName="nowhere", lifecyclePolicyText=policy(keep_newest(1, "v")))
    assert error_of(missing)[0] == "RepositoryNotFoundException"


def test_a_caller_without_permissions_is_refused_each_lifecycle_action(endpoint: str, ecr: Any) -> None:
    ecr.create_repository(repositoryName="app")
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="reader")
    iam.attach_user_policy(UserName="reader", PolicyArn=READ_ONLY)
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    reader = client_for(endpoint, "ecr", key["AccessKeyId"], key["SecretAccessKey"])
    arn = "arn:aws:iam::000000000000:user/reader"

    calls = {
        "ecr:PutLifecyclePolicy": lambda: reader.put_lifecycle_policy(
            repositoryName="app", lifecyclePolicyText=policy(keep_newest(1, "v"))
        ),
        "ecr:DeleteLifecyclePolicy": lambda: reader.delete_lifecycle_policy(repositoryName="app"),
        "ecr:StartLifecyclePolicyPreview": lambda: reader.start_lifecycle_policy_preview(repositoryName="app"),
        "ecr:RegisterPullTimeUpdateExclusion": lambda: reader.register_pull_time_update_exclusion(principalArn=arn),
        "ecr:DeregisterPullTimeUpdateExclusion": lambda: reader.deregister_pull_time_update_exclusion(principalArn=arn),
        "ecr:ListPullTimeUpdateExclusions": lambda: reader.list_pull_time_update_exclusions(),
    }
    for action, call in calls.items():
        with pytest.raises(ClientError) as denied:
            call()
        code, message = error_of(denied)
        assert code == "AccessDeniedException" and action in message, (action, message)
    # The read-only managed policy grants the two reads, which then answer for what is (not) there.
    with pytest.raises(ClientError) as no_policy:
        reader.get_lifecycle_policy(repositoryName="app")
    assert error_of(no_policy)[0] == "LifecyclePolicyNotFoundException"


# -- previews ----------------------------------------------------------------------------------------------------


def test_a_preview_is_in_progress_until_its_job_runs_then_pages_what_would_expire(
    endpoint: str, ecr: Any, clock: FakeClock, registry: Registry
) -> None:
    pusher = Pusher(endpoint, ecr, clock, "app")
    digests = [pusher.image(f"v{n}") for n in range(1, 6)]
    untagged = pusher.image(None)
    text = policy(keep_newest(2, "v"))

    started = ecr.start_lifecycle_policy_preview(repositoryName="app", lifecyclePolicyText=text)
    with pytest.raises(ClientError) as busy:
        ecr.start_lifecycle_policy_preview(repositoryName="app", lifecyclePolicyText=text)
    pending = ecr.get_lifecycle_policy_preview(repositoryName="app")
    registry.jobs.drain()
    first = ecr.get_lifecycle_policy_preview(repositoryName="app", maxResults=2)
    second = ecr.get_lifecycle_policy_preview(repositoryName="app", maxResults=2, nextToken=first["nextToken"])
    untagged_only = ecr.get_lifecycle_policy_preview(repositoryName="app", filter={"tagStatus": "UNTAGGED"})
    by_tag = ecr.get_lifecycle_policy_preview(repositoryName="app", imageIds=[{"imageTag": "v1"}])

    assert (started["status"], started["lifecyclePolicyText"]) == ("IN_PROGRESS", text)
    assert error_of(busy)[0] == "LifecyclePolicyPreviewInProgressException"
    assert pending["status"] == "IN_PROGRESS" and "previewResults" not in pending
    assert first["status"] == "COMPLETE" and "nextToken" not in second
    listed = first["previewResults"] + second["previewResults"]
    assert sorted(r["imageDigest"] for r in listed) == sorted(digests[:3])
    assert {r["imageTags"][0] for r in listed} == {"v1", "v2", "v3"}
    assert all(r["action"] == {"type": "EXPIRE"} and r["appliedRulePriority"] == 1 for r in listed)
    assert all(r["storageClass"] == "STANDARD" for r in listed)
    assert first["summary"] == {"expiringImageTotalCount": 3, "transitioningImageTotalCounts": []}
    assert untagged_only["previewResults"] == []
    assert [r["imageDigest"] for r in by_tag["previewResults"]] == [digests[0]]
    # A preview changes nothing.
    assert image_digests(ecr, "app") == {*digests, untagged}


def test_a_preview_without_a_policy_or_before_any_preview_is_not_found(ecr: Any) -> None:
    ecr.create_repository(repositoryName="app")
    with pytest.raises(ClientError) as no_policy:
        ecr.start_lifecycle_policy_preview(repositoryName="app")
    with pytest.raises(ClientError) as no_preview:
        ecr.get_lifecycle_policy_preview(repositoryName="app")
    assert error_of(no_policy)[0] == "LifecyclePolicyNotFoundException"
    assert error_of(no_preview)[0] == "LifecyclePolicyPreviewNotFoundException"


def test_a_preview_of_the_stored_policy_uses_its_text(ecr: Any, registry: Registry) -> None:
    ecr.create_repository(repositoryName="app")
    text = policy(keep_newest(5, "release-"))
    ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=text)

    assert ecr.start_lifecycle_policy_preview(repositoryName="app")["lifecyclePolicyText"] == text
    registry.jobs.drain()
    done = ecr.get_lifecycle_policy_preview(repositoryName="app")
    assert (done["status"], done["lifecyclePolicyText"], done["previewResults"]) == ("COMPLETE", text, [])


# -- runs -----------------------------------------------------------------------------------------------------


def test_a_run_expires_what_the_preview_listed_and_records_each_action_with_its_rule(
    endpoint: str, ecr: Any, clock: FakeClock, registry: Registry
) -> None:
    pusher = Pusher(endpoint, ecr, clock, "app")
    digests = [pusher.image(f"v{n}") for n in range(1, 5)]
    ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=policy(keep_newest(1, "v")))
    ecr.start_lifecycle_policy_preview(repositoryName="app")
    registry.jobs.drain()
    previewed = {r["imageDigest"] for r in ecr.get_lifecycle_policy_preview(repositoryName="app")["previewResults"]}

    [report] = list(registry.lifecycle.run("app"))

    assert {a.digest for a in report.actions} == previewed == set(digests[:3])
    assert image_digests(ecr, "app") == {digests[3]}
    assert "lastEvaluatedAt" in ecr.get_lifecycle_policy(repositoryName="app")
    with registry.store.read() as conn:
        recorded = conn.execute(select(lifecycle_actions)).all()
    assert {(r.digest, r.rule_priority, r.action) for r in recorded} == {(d, 1, "EXPIRE") for d in digests[:3]}
    audited = registry.audit.events(principal=LIFECYCLE_PRINCIPAL)
    assert {(e.action, e.repository) for e in audited} == {("lifecycle:EXPIRE", "app")} and len(audited) == 3
    # Nothing is left to do: a second run acts on nothing.
    assert [r.actions for r in registry.lifecycle.run("app")] == [[]]


def test_a_dry_run_plans_and_changes_nothing(endpoint: str, ecr: Any, clock: FakeClock, registry: Registry) -> None:
    pusher = Pusher(endpoint, ecr, clock, "app")
    digests = [pusher.image(f"v{n}") for n in range(1, 4)]
    ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=policy(keep_newest(1, "v")))

    [report] = list(registry.lifecycle.run("app", dry_run=True))

    assert {a.digest for a in report.actions} == set(digests[:2])
    assert image_digests(ecr, "app") == set(digests)


def test_an_index_expires_with_its_untagged_children_and_referrers_follow_their_subject(
    endpoint: str, ecr: Any, clock: FakeClock, registry: Registry
) -> None:
    pusher = Pusher(endpoint, ecr, clock, "app")
    payloads: dict[str, bytes] = {}

    def child() -> str:
        config, layer = config_blob({"nonce": os.urandom(8).hex()}), random_blob(128)
        pusher.blob(config)
        pusher.blob(layer)
        payload = image_manifest(config, [layer])
        payloads[digest_of(payload)] = payload
        return pusher.manifest(payload)

    shared, only_old, only_new = child(), child(), child()
    old_index = pusher.index("multi-1", [shared, only_old], payloads)
    new_index = pusher.index("multi-2", [shared, only_new], payloads)
    signature = pusher.referrer(old_index, 0)
    signature_of_child = pusher.referrer(only_old, len(payloads[only_old]))
    ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=policy(keep_newest(1, "multi")))

    planned = registry.lifecycle.plan(registry.registry.get_repository("app"), policy(keep_newest(1, "multi")))
    [report] = list(registry.lifecycle.run("app"))

    expected = {old_index, only_old, signature, signature_of_child}
    assert {a.digest for a in planned} == {a.digest for a in report.actions} == expected
    assert all(a.follows == old_index for a in planned if a.digest != old_index)
    assert image_digests(ecr, "app") == {new_index, shared, only_new}
    # The surviving index still pulls whole.
    session = login(ecr)
    for digest in (new_index, shared, only_new):
        assert session.get(f"{endpoint}/v2/app/manifests/{digest}").status_code == 200


def test_an_untagged_rule_never_expires_the_children_of_an_index(
    endpoint: str, ecr: Any, clock: FakeClock, registry: Registry
) -> None:
    pusher = Pusher(endpoint, ecr, clock, "app")
    payloads: dict[str, bytes] = {}
    children = []
    for _ in range(3):
        config, layer = config_blob({"nonce": os.urandom(8).hex()}), random_blob(128)
        pusher.blob(config)
        pusher.blob(layer)
        payload = image_manifest(config, [layer])
        payloads[digest_of(payload)] = payload
        children.append(pusher.manifest(payload))
    pusher.index("multi", children[:2], payloads)
    clock.advance(3 * DAY)

    registry.lifecycle.put_policy(registry.registry.get_repository("app"), policy(older_than(1, tag_status="untagged")))

    [run] = list(registry.lifecycle.run("app"))

    assert {a.digest for a in run.actions} == {children[2]}


def test_since_image_pulled_counts_pulls_except_those_of_excluded_principals(
    endpoint: str, ecr: Any, clock: FakeClock, registry: Registry
) -> None:
    pusher = Pusher(endpoint, ecr, clock, "app")
    # Pushed three days ago: the token of that moment is made in-process (SigV4 signs with the real time).
    clock.advance(-3 * DAY)
    pusher.session.headers["Authorization"] = basic_auth_for(registry, ROOT_ACCESS_KEY_ID)
    by_root, by_scanner, never = pusher.image("root-pulls"), pusher.image("scanner-pulls"), pusher.image("unpulled")
    clock.advance(3 * DAY)
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="scanner")
    iam.attach_user_policy(UserName="scanner", PolicyArn=READ_ONLY)
    key = iam.create_access_key(UserName="scanner")["AccessKey"]
    scanner = login(client_for(endpoint, "ecr", key["AccessKeyId"], key["SecretAccessKey"]))
    arn = "arn:aws:iam::000000000000:user/scanner"
    registered = ecr.register_pull_time_update_exclusion(principalArn=arn)

    assert login(ecr).get(f"{endpoint}/v2/app/manifests/root-pulls").status_code == 200
    assert scanner.get(f"{endpoint}/v2/app/manifests/scanner-pulls").status_code == 200
    details = {d["imageDigest"]: d for d in ecr.describe_images(repositoryName="app")["imageDetails"]}
    plan = registry.lifecycle.plan(registry.registry.get_repository("app"), policy(older_than(2, "sinceImagePulled")))

    assert registered["principalArn"] == arn and "createdAt" in registered
    assert "lastRecordedPullTime" in details[by_root]
    assert "lastRecordedPullTime" not in details[by_scanner]
    assert {a.digest for a in plan} == {by_scanner, never}


def test_pull_time_exclusions_are_listed_paged_refused_twice_and_deregistered(ecr: Any) -> None:
    arns = [f"arn:aws:iam::000000000000:role/scanner-{n}" for n in range(3)]
    for arn in arns:
        ecr.register_pull_time_update_exclusion(principalArn=arn)
    with pytest.raises(ClientError) as again:
        ecr.register_pull_time_update_exclusion(principalArn=arns[0])
    first = ecr.list_pull_time_update_exclusions(maxResults=2)
    second = ecr.list_pull_time_update_exclusions(maxResults=2, nextToken=first["nextToken"])
    ecr.deregister_pull_time_update_exclusion(principalArn=arns[1])
    with pytest.raises(ClientError) as missing:
        ecr.deregister_pull_time_update_exclusion(principalArn=arns[1])
    with pytest.raises(ClientError) as malformed:
        ecr.register_pull_time_update_exclusion(principalArn="arn:aws:iam::000000000000:group/ops")

    assert error_of(again)[0] == "ExclusionAlreadyExistsException"
    assert first["pullTimeUpdateExclusions"] + second["pullTimeUpdateExclusions"] == arns
    assert "nextToken" not in second
    assert error_of(missing)[0] == "ExclusionNotFoundException"
    assert error_of(malformed)[0] == "InvalidParameterException"
    assert ecr.list_pull_time_update_exclusions()["pullTimeUpdateExclusions"] == [arns[0], arns[2]]


def test_at_most_one_hundred_principals_are_excluded(ecr: Any, registry: Registry) -> None:
    for n in range(100):
        registry.lifecycle.register_exclusion(f"arn:aws:iam::000000000000:user/u{n:03}")
    with pytest.raises(ClientError) as full:
        ecr.register_pull_time_update_exclusion(principalArn="arn:aws:iam::000000000000:user/one-more")
    assert error_of(full)[0] == "LimitExceededException"


def test_the_schedule_queues_one_run_per_repository_once_across_processes(
    endpoint: str, ecr: Any, clock: FakeClock, registry: Registry, settings: Settings
) -> None:
    pusher = Pusher(endpoint, ecr, clock, "app")
    digests = [pusher.image(f"v{n}") for n in range(1, 4)]
    ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=policy(keep_newest(1, "v")))
    other = build_registry(settings, clock=clock)
    try:
        # The first look only sets the schedule; one interval later, exactly one of two processes queues the runs.
        assert registry.lifecycle.schedule_runs("a", 3600.0) == 0
        clock.advance(3601.0)
        queued = [registry.lifecycle.schedule_runs("a", 3600.0), other.lifecycle.schedule_runs("b", 3600.0)]
        ran = registry.jobs.drain() + other.jobs.drain()
    finally:
        other.close()
    clock.advance(-3601.0)  # back to the time SigV4 signs with

    assert sorted(queued) == [0, 1] and ran == 1
    assert image_digests(ecr, "app") == {digests[2]}
