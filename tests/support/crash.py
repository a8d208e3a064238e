"""Crash and race harness: drive a real ``ecrd serve`` with concurrent pushes, kill it with SIGKILL, and check
afterwards that the registry kept every promise it made.

The ``Ledger`` records what the registry acknowledged (a 201 or 202 arrived), what is in doubt (the request
was sent but the answer never came: it may or may not have happened) and what was never finished (the
client never asked to complete it). ``Pusher`` is one client thread's raw OCI HTTP with ``requests``,
recording into the ledger. ``verify`` checks a restarted registry against the ledger; ``run_fsck`` runs
``ecrd fsck`` as a separate process, as an operator would.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.clients import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    Credentials,
    bound_in_time,
    ecr_client,
)
from tests.support.images import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, canonical_json, sha256_digest
from tests.support.layers import file, tar_bytes
from tests.support.registry_process import EcrdProcess

KiB = 1024
MiB = 1024 * KiB
HTTP_TIMEOUT = (5.0, 60.0)
MANIFEST_ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
ROOT_ENV = {"ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY}
VULNDATA = Path(__file__).resolve().parents[1] / "data" / "vulndata" / "pypi.osv.jsonl"

# fsck findings a crash may leave behind: bytes of uploads that were being committed or begun. Anything
# else (a dangling tag, a missing blob, …) is a broken promise.
CRASH_LEFTOVERS = frozenset({"orphan-blob-file", "orphan-upload-file", "upload-file-missing"})


class ServerGone(Exception):
    """The server stopped answering (it was killed): the operation's outcome is unknown."""


# -- the ledger --------------------------------------------------------------------------------------------


@dataclass
class AbandonedUpload:
    repository: str
    location: str
    data: bytes
    acked: int
    """Bytes the registry acknowledged (202) before the crash."""

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    blobs: set[tuple[str, str]] = field(default_factory=set)
    doubtful_blobs: set[tuple[str, str]] = field(default_factory=set)
    unfinished_blobs: set[tuple[str, str]] = field(default_factory=set)
    manifests: dict[tuple[str, str], bytes] = field(default_factory=dict)
    doubtful_manifests: dict[tuple[str, str], bytes] = field(default_factory=dict)
    tags: dict[tuple[str, str], str] = field(default_factory=dict)
    deleted: set[tuple[str, str]] = field(default_factory=set)
    doubtful_deletes: set[tuple[str, str]] = field(default_factory=set)
    deletable: list[tuple[str, str, str]] = field(default_factory=list)
    """(repository, tag, digest) of acknowledged images only a delete operation may remove."""
    abandoned: list[AbandonedUpload] = field(default_factory=list)
    scanned: set[tuple[str, str]] = field(default_factory=set)
    """Acknowledged manifests in scan-on-push repositories: their scans must complete."""
    failures: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def add(self, attribute: str, item: Any) -> None:
        with self.lock:
            getattr(self, attribute).add(item)

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)

    def saw(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1


def describe(response: requests.Response) -> str:
    request = response.request
    return f"{request.method} {request.url} -> {response.status_code}: {response.text[:500]}"


# -- content --------------------------------------------------------------------------------------------


def config_for(label: str) -> bytes:
    return canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"ecrd.crash": label}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    )


def manifest_for(config: bytes, layers: list[bytes]) -> bytes:
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER_GZIP, "digest": sha256_digest(layer), "size": len(layer)} for layer in layers
            ],
        }
    )


def scannable_layer(rng: random.Random) -> bytes:
    """A (gzip) layer holding an old Django install, which the imported PyPI advisories match, and filler."""
    import gzip

    metadata = "Metadata-Version: 2.1\nName: Django\nVersion: 2.2\n"
    tar = tar_bytes(
        [
            file("usr/lib/python3/dist-packages/Django-2.2.dist-info/METADATA", metadata),
            file(f"srv/filler-{rng.getrandbits(32)}.bin", rng.randbytes(rng.randrange(64 * KiB, 512 * KiB))),
        ]
    )
    return gzip.compress(tar, compresslevel=1, mtime=0)


def blob_sizes(rng: random.Random) -> int:
    """Mostly small blobs; some over the 1 MiB encryption segment, so uploads resume mid-segment."""
    return rng.choice(
        [rng.randrange(1, 64 * KiB), rng.randrange(64 * KiB, 400 * KiB), rng.randrange(MiB + 1, MiB + 600 * KiB)]
    )


# -- one client thread -----------------------------------------------------------------------------------


class Pusher:
    """Raw OCI distribution calls from one thread, each outcome recorded in the ledger."""

    def __init__(self, base_url: str, credentials: Credentials, ledger: Ledger) -> None:
        self.base_url = base_url
        self.ledger = ledger
        self.session = bound_in_time(requests.Session())
        self.session.auth = (credentials.username, credentials.password)

    def close(self) -> None:
        self.session.close()

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        target = url if url.startswith("http") else self.base_url + url
        try:
            response = self.session.request(method, target, **kwargs)
        except requests.RequestException as exc:
            raise ServerGone(f"{method} {target}: {type(exc).__name__}") from None
        self.ledger.saw(response.status_code)
        if response.status_code >= 500:
            self.ledger.fail(f"server error: {describe(response)}")
        return response

    def _expect(self, response: requests.Response, *statuses: int) -> requests.Response:
        if response.status_code not in statuses:
            self.ledger.fail(f"expected {statuses}: {describe(response)}")
            raise ServerGone("unexpected answer")  # stop this thread's work: it is reported
        return response

    # -- blobs --

    def push_blob(
        self, repository: str, data: bytes, rng: random.Random, *, on_before_put: Callable[[], bool] | None = None
    ) -> None:
        """Push ``data`` monolithically (POST ?digest=, or POST then PUT) or in chunks, picked by ``rng``."""
        style = rng.choice(["monolithic", "post-put", "chunked", "chunked"]) if on_before_put is None else "chunked"
        digest = sha256_digest(data)
        key = (repository, digest)
        if style == "monolithic":
            self._complete(key, "POST", f"/v2/{repository}/blobs/uploads/", params={"digest": digest}, data=data)
            return
        self.ledger.add("unfinished_blobs", key)
        started = self._expect(self.send("POST", f"/v2/{repository}/blobs/uploads/"), 202)
        location = started.headers["Location"]
        body = data
        if style == "chunked":
            offset = 0
            while offset < len(data):
                size = rng.randrange(128 * KiB, 700 * KiB)
                chunk = data[offset : offset + size]
                abandoned = AbandonedUpload(repository, location, data, offset)
                try:
                    response = self.send(
                        "PATCH",
                        location,
                        data=chunk,
                        headers={
                            "Content-Type": "application/octet-stream",
                            "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                        },
                    )
                except ServerGone:
                    with self.ledger.lock:
                        self.ledger.abandoned.append(abandoned)
                    raise
                self._expect(response, 202)
                location = response.headers["Location"]
                offset += len(chunk)
            body = b""
            if on_before_put is not None and not on_before_put():
                with self.ledger.lock:
                    self.ledger.abandoned.append(AbandonedUpload(repository, location, data, len(data)))
                raise ServerGone("killed between the last chunk and the PUT")
        self._complete(key, "PUT", location, params={"digest": digest}, data=body)

    def _complete(self, key: tuple[str, str], method: str, url: str, **kwargs: Any) -> None:
        """The request that completes an upload: acknowledged on 201, in doubt when its answer is lost."""
        try:
            response = self.send(method, url, headers={"Content-Type": "application/octet-stream"}, **kwargs)
        except ServerGone:
            self.ledger.add("doubtful_blobs", key)
            raise
        self._expect(response, 201)
        self.ledger.add("blobs", key)

    def stream_patch(
        self, repository: str, data: bytes, first: int, started: threading.Event, stop: threading.Event
    ) -> None:
        """A chunked upload whose second PATCH streams slowly, announcing ``started`` half-way through it: the
        crash lands while the server is writing the chunk."""
        digest = sha256_digest(data)
        self.ledger.add("unfinished_blobs", (repository, digest))
        location = self._expect(self.send("POST", f"/v2/{repository}/blobs/uploads/"), 202).headers["Location"]
        response = self._expect(
            self.send(
                "PATCH",
                location,
                data=data[:first],
                headers={"Content-Type": "application/octet-stream", "Content-Range": f"0-{first - 1}"},
            ),
            202,
        )
        location = response.headers["Location"]

        def body() -> Iterator[bytes]:
            piece = 64 * KiB
            for number, offset in enumerate(range(first, len(data), piece)):
                if number == 4:
                    started.set()
                if number >= 4:
                    stop.wait(0.02)
                yield data[offset : offset + piece]

        try:
            self._expect(
                self.send(
                    "PATCH",
                    location,
                    data=body(),
                    headers={"Content-Type": "application/octet-stream", "Content-Range": f"{first}-{len(data) - 1}"},
                ),
                202,
            )
        except ServerGone:
            with self.ledger.lock:
                self.ledger.abandoned.append(AbandonedUpload(repository, location, data, first))
            raise
        self._complete((repository, digest), "PUT", location, params={"digest": digest})

    # -- manifests --

    def push_manifest(self, repository: str, reference: str, payload: bytes, *, tag: str | None = None) -> None:
        digest = sha256_digest(payload)
        key = (repository, digest)
        try:
            response = self.send(
                "PUT", f"/v2/{repository}/manifests/{reference}", data=payload, headers={"Content-Type": OCI_MANIFEST}
            )
        except ServerGone:
            with self.ledger.lock:
                self.ledger.doubtful_manifests[key] = payload
            raise
        self._expect(response, 201)
        with self.ledger.lock:
            self.ledger.manifests[key] = payload
            if tag is not None:
                self.ledger.tags[(repository, tag)] = digest

    def push_image(
        self,
        repository: str,
        tag: str,
        layers: list[bytes],
        rng: random.Random,
        *,
        label: str,
        before_manifest: Callable[[], None] | None = None,
    ) -> str:
        config = config_for(label)
        for blob in [*layers, config]:
            self.push_blob(repository, blob, rng)
        payload = manifest_for(config, layers)
        if before_manifest is not None:
            before_manifest()
        self.push_manifest(repository, tag, payload, tag=tag)
        return sha256_digest(payload)

    def delete_manifest(self, repository: str, digest: str) -> None:
        key = (repository, digest)
        try:
            response = self.send("DELETE", f"/v2/{repository}/manifests/{digest}")
        except ServerGone:
            self.ledger.add("doubtful_deletes", key)
            raise
        self._expect(response, 202)
        self.ledger.add("deleted", key)


# -- the registry under test -----------------------------------------------------------------------------


class CrashableRegistry:
    """``ecrd serve`` on one data directory and database, started again on the same port after each crash."""

    def __init__(
        self, workdir: Path, database_url: str, *, port: int | None = None, data_dir: Path | None = None
    ) -> None:
        self.database_url = database_url
        self.process = EcrdProcess(
            workdir, port=port, data_dir=data_dir, extra_args=["--database-url", database_url], env=ROOT_ENV
        )
        self._credentials: Credentials | None = None
        self._ecr: Any = None
        self._local = threading.local()

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def host(self) -> str:
        return self.process.host

    def start(self) -> None:
        self.process.start()

    def crash(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()

    @property
    def ecr(self) -> Any:
        if self._ecr is None:
            self._ecr = ecr_client(self.url)
        return self._ecr

    def ecr_for_thread(self) -> Any:
        """A boto3 ECR client of the calling thread's own."""
        if getattr(self._local, "ecr", None) is None:
            self._local.ecr = ecr_client(self.url)
        return self._local.ecr

    @property
    def credentials(self) -> Credentials:
        """Registry credentials (a token signed with the master key: it stays valid across restarts)."""
        if self._credentials is None:
            token = self.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
            username, _, password = base64.b64decode(token).decode().partition(":")
            self._credentials = Credentials(username, password)
        return self._credentials

    def pusher(self, ledger: Ledger) -> Pusher:
        return Pusher(self.url, self.credentials, ledger)

    def command(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        argv = [
            sys.executable,
            "-m",
            "ecrd",
            *args,
            "--data-dir",
            str(self.process.data_dir),
            "--database-url",
            self.database_url,
        ]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=self.process.environment(), check=False
        )

    def fsck(self, *args: str) -> dict[str, Any]:
        """``ecrd fsck --json ARGS`` as a separate process; its report (exit status under ``exit``)."""
        done = self.command("fsck", "--json", *args)
        assert done.returncode in (0, 1, 3), f"ecrd fsck failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        report: dict[str, Any] = json.loads(done.stdout)
        report["exit"] = done.returncode
        return report


def create_repositories(
    ecr: Any,
    names: list[str],
    *,
    scan_on_push: Mapping[str, bool] | None = None,
    immutable: Mapping[str, bool] | None = None,
) -> None:
    for name in names:
        ecr.create_repository(
            repositoryName=name,
            imageScanningConfiguration={"scanOnPush": bool((scan_on_push or {}).get(name))},
            imageTagMutability="IMMUTABLE" if (immutable or {}).get(name) else "MUTABLE",
        )


# -- checks after a restart ------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one back end's run did and verified: the numbers docs/reliability.md reports."""

    backend: str
    crash_points: Counter[str] = field(default_factory=Counter)
    triggered: Counter[str] = field(default_factory=Counter)
    blobs_verified: int = 0
    manifests_verified: int = 0
    tags_verified: int = 0
    acked_blobs: int = 0
    acked_manifests: int = 0
    acked_deletes: int = 0
    doubtful_present: int = 0
    doubtful_absent: int = 0
    unfinished_absent: int = 0
    uploads_resumed: int = 0
    uploads_gone: int = 0
    scans_completed: int = 0
    skopeo_copies: int = 0
    scans_requeued: int = 0
    """Scan jobs a killed process held, queued again by the restarted one (from its log)."""
    fsck_runs: int = 0
    fsck_repaired: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        points = ", ".join(
            f"{kind} {n} ({self.triggered[kind]} at the point)" for kind, n in sorted(self.crash_points.items())
        )
        repaired = ", ".join(f"{n} {problem}" for problem, n in sorted(self.fsck_repaired.items())) or "nothing"
        return [
            f"[{self.backend}] {sum(self.crash_points.values())} crash points in {self.seconds:.0f} s: {points}",
            f"[{self.backend}] acknowledged and verified after every restart: {self.acked_blobs} blobs, "
            f"{self.acked_manifests} manifests ({self.skopeo_copies} by skopeo), {self.acked_deletes} deletes; "
            f"{self.blobs_verified} blob pulls, {self.manifests_verified} manifest pulls and {self.tags_verified} "
            "tag lookups digest-verified in all",
            f"[{self.backend}] in doubt at a crash: {self.doubtful_present} present and whole, "
            f"{self.doubtful_absent} absent; never completed and absent: {self.unfinished_absent}; abandoned "
            f"uploads: {self.uploads_resumed} resumed, {self.uploads_gone} cleanly gone; scans completed after "
            f"restart: {self.scans_completed} ({self.scans_requeued} taken over from the killed process mid-scan)",
            f"[{self.backend}] ecrd fsck: {self.fsck_runs} runs, no damage; repaired {repaired}",
        ]


class Verifier:
    """Checks a restarted registry against the ledger, with its own session."""

    def __init__(self, registry: CrashableRegistry, ledger: Ledger, figures: Figures) -> None:
        self.registry = registry
        self.ledger = ledger
        self.figures = figures
        self.session = bound_in_time(requests.Session())
        self.session.auth = (registry.credentials.username, registry.credentials.password)
        self.problems: list[str] = []

    def close(self) -> None:
        self.session.close()

    def _get(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.registry.url + path
        if method in ("PATCH", "PUT"):
            # A server answering an upload early (404, 416: before it read the body) closes the connection
            # afterwards: never reuse the connection of a request that carries a body.
            kwargs["headers"] = {**kwargs.get("headers", {}), "Connection": "close"}
        try:
            response = self.session.request(method, url, timeout=HTTP_TIMEOUT, **kwargs)
        except requests.ConnectionError:
            # The pool may still have handed out a connection the server had just closed: ask again, afresh.
            # (Safe to repeat: status reads, and chunks with a Content-Range a second copy of cannot extend.)
            response = self.session.request(method, url, timeout=HTTP_TIMEOUT, **kwargs)
        if response.status_code >= 500:
            self.problems.append(f"server error: {describe(response)}")
        return response

    def _blob_whole(self, repository: str, digest: str) -> bool | None:
        """True: pulled and it hashes to its digest; None: not there (404); False: anything else."""
        response = self._get("GET", f"/v2/{repository}/blobs/{digest}")
        if response.status_code == 404:
            return None
        return response.status_code == 200 and sha256_digest(response.content) == digest

    def _manifest_whole(self, repository: str, reference: str, digest: str | None = None) -> bool | None:
        response = self._get("GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            return False
        got = sha256_digest(response.content)
        return got == (digest or reference) and response.headers.get("Docker-Content-Digest") == got

    def verify(self) -> list[str]:
        self._resolve_abandoned_uploads()
        ledger, figures = self.ledger, self.figures
        for repository, digest in sorted(ledger.blobs):
            if self._blob_whole(repository, digest) is not True:
                self.problems.append(f"acknowledged blob {repository}@{digest} is not whole")
            figures.blobs_verified += 1
        # Never completed: no PUT was sent for it (one sent but unanswered makes it in doubt instead).
        unfinished = ledger.unfinished_blobs - ledger.blobs - ledger.doubtful_blobs
        for repository, digest in sorted(ledger.doubtful_blobs - ledger.blobs):
            whole = self._blob_whole(repository, digest)
            if whole is False:
                self.problems.append(f"blob {repository}@{digest}, in doubt at a crash, is visible but not whole")
            figures.doubtful_present += whole is True
            figures.doubtful_absent += whole is None
        ledger.doubtful_blobs.clear()
        for repository, digest in sorted(unfinished):
            response = self._get("HEAD", f"/v2/{repository}/blobs/{digest}")
            if response.status_code != 404:
                self.problems.append(
                    f"blob {repository}@{digest}, whose upload never completed, answers HEAD "
                    f"with {response.status_code}"
                )
            figures.unfinished_absent += 1
        ledger.unfinished_blobs.clear()
        for (repository, digest), _payload in sorted(ledger.manifests.items()):
            expected = None if (repository, digest) in ledger.deleted else True
            whole = self._manifest_whole(repository, digest)
            if (repository, digest) in ledger.doubtful_deletes and whole is None:
                expected = None
            if whole is not expected:
                self.problems.append(
                    f"acknowledged manifest {repository}@{digest}: expected "
                    f"{'whole' if expected else 'deleted'}, found {whole}"
                )
            figures.manifests_verified += 1
        for repository, digest in sorted(set(ledger.doubtful_manifests) - set(ledger.manifests)):
            whole = self._manifest_whole(repository, digest)
            if whole is False:
                self.problems.append(f"manifest {repository}@{digest}, in doubt at a crash, is not whole")
            figures.doubtful_present += whole is True
            figures.doubtful_absent += whole is None
        ledger.doubtful_manifests.clear()
        for (repository, tag), digest in sorted(ledger.tags.items()):
            gone = (repository, digest) in ledger.deleted or (repository, digest) in ledger.doubtful_deletes
            whole = self._manifest_whole(repository, tag, digest)
            if not (whole is True or (gone and whole is None)):
                self.problems.append(f"tag {repository}:{tag} (pushed as {digest}): {whole}")
            figures.tags_verified += 1
        self._check_every_tag_resolves()
        self._check_scans()
        return self.problems

    def _resolve_abandoned_uploads(self) -> None:
        """An upload abandoned at a crash is resumable (its status tells where to go on) or cleanly gone."""
        for upload in self.ledger.abandoned:
            status = self._get(
                "GET", upload.location if upload.location.startswith("http") else self.registry.url + upload.location
            )
            if status.status_code == 404:
                self.figures.uploads_gone += 1
                continue
            if status.status_code != 204:
                self.problems.append(f"abandoned upload: {describe(status)}")
                continue
            last = int(status.headers["Range"].rpartition("-")[2])
            held = last + 1 if last or upload.acked else 0
            if held < upload.acked:
                self.problems.append(
                    f"abandoned upload {upload.location} holds {held} bytes, {upload.acked} were acknowledged"
                )
                continue
            location = status.headers["Location"]
            outcome = "resumed"
            for _attempt in range(3):
                if held >= len(upload.data):
                    break
                patched = self._get(
                    "PATCH",
                    location,
                    data=upload.data[held:],
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{held}-{len(upload.data) - 1}",
                    },
                )
                if patched.status_code == 416:
                    # The chunk in flight at the crash arrived after all: go on from where the upload ends.
                    held = int(patched.headers["Range"].rpartition("-")[2]) + 1
                    location = patched.headers.get("Location", location)
                    continue
                if patched.status_code == 404:
                    outcome = "gone"  # its last record was torn by the crash: discarded, cleanly
                elif patched.status_code != 202:
                    outcome = "broken"
                    self.problems.append(f"resuming an abandoned upload: {describe(patched)}")
                else:
                    location = patched.headers["Location"]
                    held = len(upload.data)
                break
            if outcome == "gone":
                self.figures.uploads_gone += 1
                continue
            if outcome == "broken":
                continue
            put = self._get(
                "PUT", location, params={"digest": upload.digest}, headers={"Content-Type": "application/octet-stream"}
            )
            if put.status_code != 201:
                self.problems.append(f"completing a resumed upload: {describe(put)}")
                continue
            self.ledger.blobs.add((upload.repository, upload.digest))
            self.figures.uploads_resumed += 1
        self.ledger.abandoned.clear()

    def _check_every_tag_resolves(self) -> None:
        repositories = {repository for repository, _ in self.ledger.blobs} | {r for r, _ in self.ledger.manifests}
        for repository in sorted(repositories):
            listed = self._get("GET", f"/v2/{repository}/tags/list")
            if listed.status_code != 200:
                self.problems.append(f"tags/list: {describe(listed)}")
                continue
            for tag in listed.json().get("tags") or []:
                response = self._get("HEAD", f"/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT})
                if response.status_code != 200:
                    self.problems.append(f"tag {repository}:{tag} points at nothing: {response.status_code}")

    def _check_scans(self, deadline_seconds: float = 90.0) -> None:
        """Every scan queued by an acknowledged push to a scan-on-push repository completes (after restart)."""
        deadline = time.monotonic() + deadline_seconds
        for repository, digest in sorted(self.ledger.scanned):
            while True:
                try:
                    found = self.registry.ecr.describe_image_scan_findings(
                        repositoryName=repository, imageId={"imageDigest": digest}
                    )
                    status = found["imageScanStatus"]["status"]
                    description = found["imageScanStatus"].get("description", "")
                except ClientError as exc:
                    status, description = exc.response["Error"]["Code"], str(exc)
                if status != "IN_PROGRESS":
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            if status != "COMPLETE":
                self.problems.append(f"the scan of {repository}@{digest} ended {status}: {description}")
            else:
                self.figures.scans_completed += 1
        self.ledger.scanned.clear()


def aws_errors() -> tuple[type[Exception], ...]:
    """What a boto3 call raises when the server is gone or refuses."""
    return (BotoCoreError, ClientError, requests.RequestException)


# -- a garbage collection to kill ------------------------------------------------------------------------

GC_KILL_POINTS = ("chosen", "unlinked", "deleting", "deleted", "random")
"""Where a collection is killed: at a named point between or inside its transactions (``GarbageCollector``'s
``pause``), or at a random moment of its run."""


class KillableCollection:
    """A garbage collection in a child process of its own, on a registry's database and data directory, with no
    grace and batches of one blob, killed with SIGKILL at a chosen point of its run."""

    def __init__(self, registry: CrashableRegistry) -> None:
        self.registry = registry

    def run_until_killed(self, point: str, rng: random.Random) -> bool:
        """Kill the collection at ``point`` (its first occurrence, or a random moment); False when it finished
        first (nothing was left to collect there)."""
        # A random moment: from the collection's start, the child holding nowhere.
        wanted, awaited = ("none", "started") if point == "random" else (point, point)
        child = subprocess.Popen(
            [sys.executable, "-c", _GC_CHILD, str(self.registry.process.data_dir), self.registry.database_url, wanted],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.registry.process.environment(),
        )
        try:
            assert child.stdout is not None
            for line in child.stdout:
                if line.strip() == "finished":
                    break
                if line.strip() == f"at {awaited}":
                    if point == "random":
                        time.sleep(rng.uniform(0.0, 0.05))
                    child.kill()
                    child.wait(30)
                    return True
            child.wait(60)
            assert child.returncode == 0, child.stderr.read() if child.stderr else ""
            return False
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(30)
            for stream in (child.stdout, child.stderr):
                if stream is not None:
                    stream.close()


# The child: a collection that announces each point it reaches and, at the wanted one, waits to be killed.
_GC_CHILD = """
import sys, time
from pathlib import Path
from ecrd.app import build_registry
from ecrd.config import Settings
from ecrd.services.gc import GarbageCollector

data_dir, database_url, wanted = sys.argv[1:4]
registry = build_registry(Settings(data_dir=Path(data_dir), database_url=database_url))

def pause(point):
    print("at", point, flush=True)
    if point == wanted:
        time.sleep(600)

collector = GarbageCollector(
    registry.store, (registry.blobs,), registry.uploads,
    grace_seconds=0.0, upload_expiry_seconds=86400.0, batch_size=1, pause=pause,
)
pause("started")
collector.collect()
print("finished", flush=True)
"""
