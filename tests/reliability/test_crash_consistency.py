"""Crash consistency: a real ``ecrd serve`` under concurrent pushes, killed with SIGKILL at chosen and random
points, keeps every promise it made once restarted.

Each crash point runs background clients (raw HTTP monolithic and chunked uploads into several repositories,
layers shared between them, image pushes, deletes, a skopeo copy now and then) and one scenario that aims
the crash at a moment: mid-PATCH, between the last chunk and the PUT, during a manifest write, during a
scan, during a delete, or at a random time. After the kill, ``ecrd fsck --repair`` runs on the stopped
registry's data as an operator would and must find no damage (only leftovers of uploads in flight); the
registry restarts on the same data, database and port, and the ledger of what it acknowledged is checked:
every acknowledged blob and manifest pulls whole and hashes to its digest, nothing whose upload never
completed is visible, things in doubt are whole or absent, every tag names a manifest, abandoned uploads
resume or are cleanly gone, and scans queued before the crash complete.

Bounded for CI (``CRASH_POINTS`` per back end); ``ECRD_RELIABILITY_LONG=1`` runs many more, and
``ECRD_RELIABILITY_SEED`` replays a run.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ecrd.app import build_registry
from ecrd.config import Settings
from ecrd.metadata.jobs_tables import jobs
from ecrd.metadata.store import MetadataStore
from ecrd.services.fsck import Fsck
from tests.support.clients import Skopeo, ToolFailed
from tests.support.crash import (
    CRASH_LEFTOVERS,
    GC_KILL_POINTS,
    VULNDATA,
    CrashableRegistry,
    Figures,
    KiB,
    KillableCollection,
    Ledger,
    MiB,
    Pusher,
    ServerGone,
    Verifier,
    aws_errors,
    blob_sizes,
    config_for,
    create_repositories,
    scannable_layer,
)
from tests.support.databases import database_url
from tests.support.images import build_image, sha256_digest, write_oci_layout

LONG = os.environ.get("ECRD_RELIABILITY_LONG") == "1"
CRASH_POINTS = 40 if LONG else 10
SEED = int(os.environ.get("ECRD_RELIABILITY_SEED", "61125"))
KINDS = ("mid-patch", "before-put", "manifest", "scan", "delete", "random")
REPOSITORIES = ["crash/alpha", "crash/beta", "crash/gamma"]
SCANNED = "crash/scanned"
BACKGROUND_CLIENTS = 2
GC_ROUNDS = 4 if LONG else 1

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(900 if LONG else 300)]


class Campaign:
    """The crash points of one back end, against one registry and one ledger."""

    def __init__(self, registry: CrashableRegistry, figures: Figures, workdir: Path, seed: int) -> None:
        self.registry = registry
        self.figures = figures
        self.workdir = workdir
        self.ledger = Ledger()
        self.rng = random.Random(seed)
        self.shared_layers = [self.rng.randbytes(blob_sizes(self.rng)) for _ in range(4)]
        self.skopeo = Skopeo(workdir / "skopeo", registry.credentials)
        self.tags = iter(range(1_000_000))
        self.observer = MetadataStore(registry.database_url)

    def tag(self, prefix: str) -> str:
        return f"{prefix}-{next(self.tags)}"

    # -- one crash point --

    def crash_point(self, number: int, kind: str) -> None:
        rng = random.Random(self.rng.getrandbits(64))
        stop, trigger = threading.Event(), threading.Event()
        threads = [
            self._thread(f"client-{n}", self._background(rng.getrandbits(64), stop, number, n))
            for n in range(BACKGROUND_CLIENTS)
        ]
        threads.append(self._thread("scenario", self._scenario(kind, rng.getrandbits(64), stop, trigger, number)))
        if number % 3 == 0:
            threads.append(self._thread("skopeo", self._skopeo_copy(number)))
        for thread in threads:
            thread.start()
        if kind == "random":
            time.sleep(rng.uniform(0.3, 2.0))
            fired = True
        else:
            fired = trigger.wait(timeout=15)
            time.sleep(
                {
                    "mid-patch": rng.uniform(0, 0.1),
                    "before-put": rng.uniform(0, 0.2),
                    "manifest": rng.uniform(0, 0.02),
                    "scan": rng.uniform(0, 0.03),
                    "delete": rng.uniform(0, 0.01),
                }[kind]
            )
        self.registry.crash()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), f"client thread {thread.name} hangs after the crash"
        self.figures.crash_points[kind] += 1
        self.figures.triggered[kind] += fired

        # The operator's check of the stopped registry's data: leftovers of uploads in flight, nothing worse.
        report = self.registry.fsck("--repair", "--grace-seconds", "0")
        self.figures.fsck_runs += 1
        problems = [f for f in report["findings"] if f["damage"] or f["problem"] not in CRASH_LEFTOVERS]
        assert not problems, f"crash point {number} ({kind}): fsck found {problems}"
        assert not report["repairErrors"], report["repairErrors"]
        for finding in report["repaired"]:
            self.figures.fsck_repaired[finding["problem"]] += 1

        self.registry.start()
        verifier = Verifier(self.registry, self.ledger, self.figures)
        try:
            broken = verifier.verify()
        finally:
            verifier.close()
        assert not broken, f"after crash point {number} ({kind}):\n" + "\n".join(broken[:30])
        assert not self.ledger.failures, f"crash point {number} ({kind}):\n" + "\n".join(self.ledger.failures[:30])

    def _thread(self, name: str, body: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                body()
            except ServerGone:
                pass  # killed: the ledger knows what was in flight
            except Exception as exc:  # any other surprise is a finding, reported by the crash point
                self.ledger.fail(f"{name}: {type(exc).__name__}: {exc}")

        return threading.Thread(target=run, name=name, daemon=True)

    def _pusher(self) -> Pusher:
        return self.registry.pusher(self.ledger)

    # -- what the clients do --

    def _background(self, seed: int, stop: threading.Event, number: int, client: int) -> Callable[[], None]:
        def body() -> None:
            rng = random.Random(seed)
            pusher = self._pusher()
            try:
                while not stop.is_set():
                    roll = rng.random()
                    repository = rng.choice(REPOSITORIES)
                    if roll < 0.4:
                        data = rng.choice(self.shared_layers) if rng.random() < 0.25 else rng.randbytes(blob_sizes(rng))
                        pusher.push_blob(repository, data, rng)
                    elif roll < 0.8 or not self.ledger.deletable:
                        self._push_image(pusher, repository, rng, f"bg{number}-{client}", deletable=rng.random() < 0.5)
                    else:
                        self._delete_one(pusher, rng)
            finally:
                pusher.close()

        return body

    def _push_image(
        self,
        pusher: Pusher,
        repository: str,
        rng: random.Random,
        prefix: str,
        *,
        deletable: bool = False,
        before_manifest: Callable[[], None] | None = None,
    ) -> str:
        layers = [
            rng.choice(self.shared_layers) if rng.random() < 0.4 else rng.randbytes(blob_sizes(rng))
            for _ in range(rng.randrange(1, 4))
        ]
        tag = self.tag(prefix)
        digest = pusher.push_image(
            repository, tag, layers, rng, label=f"{tag}-{rng.getrandbits(32)}", before_manifest=before_manifest
        )
        if deletable:
            with self.ledger.lock:
                self.ledger.deletable.append((repository, tag, digest))
        return digest

    def _delete_one(self, pusher: Pusher, rng: random.Random) -> None:
        with self.ledger.lock:
            if not self.ledger.deletable:
                return
            repository, tag, digest = self.ledger.deletable.pop(rng.randrange(len(self.ledger.deletable)))
        if rng.random() < 0.5:
            pusher.delete_manifest(repository, digest)
            return
        # ECR's BatchDeleteImage by tag: removes the tag and, with its last tag, the image.
        key = (repository, digest)
        try:
            answer = self.registry.ecr_for_thread().batch_delete_image(
                repositoryName=repository, imageIds=[{"imageTag": tag}]
            )
        except aws_errors():
            self.ledger.add("doubtful_deletes", key)
            raise ServerGone("BatchDeleteImage got no answer") from None
        if answer.get("failures") or not answer.get("imageIds"):
            self.ledger.fail(f"BatchDeleteImage {repository}:{tag}: {answer}")
            return
        self.ledger.add("deleted", key)

    def _scenario(
        self, kind: str, seed: int, stop: threading.Event, trigger: threading.Event, number: int
    ) -> Callable[[], None]:
        def body() -> None:
            rng = random.Random(seed)
            pusher = self._pusher()
            try:
                time.sleep(rng.uniform(0.1, 0.6))  # let the background clients get going
                repository = rng.choice(REPOSITORIES)
                if kind == "mid-patch":
                    data = rng.randbytes(rng.randrange(2 * MiB, 3 * MiB))
                    pusher.stream_patch(repository, data, rng.randrange(200 * KiB, 1300 * KiB), trigger, stop)
                elif kind == "before-put":
                    data = rng.randbytes(rng.randrange(MiB, 2 * MiB))

                    def before_put() -> bool:
                        trigger.set()
                        return not stop.wait(5)

                    pusher.push_blob(repository, data, rng, on_before_put=before_put)
                elif kind == "manifest":
                    while not stop.is_set():
                        self._push_image(pusher, repository, rng, f"m{number}", before_manifest=trigger.set)
                elif kind == "scan":
                    # Push images to scan until the server is seen running a scan job, then let it be killed.
                    while not stop.is_set() and not trigger.is_set():
                        self._push_scanned(pusher, rng, number)
                        if self._scan_running(deadline=time.monotonic() + 2.0, stop=stop):
                            trigger.set()
                elif kind == "delete":
                    own = self._push_image(pusher, repository, rng, f"d{number}")
                    trigger.set()
                    pusher.delete_manifest(repository, own)
            finally:
                pusher.close()

        return body

    def _scan_running(self, *, deadline: float, stop: threading.Event) -> bool:
        """Poll the job table (as an observer, read-only) until a scan job is running or the deadline passes."""
        while time.monotonic() < deadline and not stop.is_set():
            with self.observer.engine.connect() as conn:
                if conn.execute(select(func.count()).select_from(jobs).where(jobs.c.status == "running")).scalar():
                    return True
            time.sleep(0.002)
        return False

    def _push_scanned(self, pusher: Pusher, rng: random.Random, number: int) -> None:
        layers = [scannable_layer(rng)]  # a real tar layer: random bytes would not scan
        tag = self.tag(f"s{number}")
        digest = pusher.push_image(SCANNED, tag, layers, rng, label=f"{tag}-{rng.getrandbits(32)}")
        self.ledger.add("scanned", (SCANNED, digest))

    def _skopeo_copy(self, number: int) -> Callable[[], None]:
        def body() -> None:
            image = build_image([48 * KiB, 300 * KiB], seed=SEED * 1000 + number)
            layout = self.workdir / f"layout-{number}"
            write_oci_layout(layout, image)
            repository = REPOSITORIES[number % len(REPOSITORIES)]
            tag = self.tag("skopeo")
            digest_file = self.workdir / f"digest-{number}"
            blobs = [sha256_digest(layer.blob) for layer in image.layers] + [image.config_digest]
            try:
                self.skopeo.copy(
                    f"oci:{layout}:latest",
                    f"docker://{self.registry.host}/{repository}:{tag}",
                    "--digestfile",
                    str(digest_file),
                    timeout=60,
                )
            except ToolFailed:
                with self.ledger.lock:
                    self.ledger.doubtful_blobs.update((repository, b) for b in blobs)
                    self.ledger.doubtful_manifests[(repository, image.manifest_digest)] = image.manifest
                raise ServerGone("skopeo was cut off") from None
            digest = digest_file.read_text().strip()
            with self.ledger.lock:
                self.ledger.blobs.update((repository, b) for b in blobs)
                self.ledger.manifests[(repository, digest)] = image.manifest
                self.ledger.tags[(repository, tag)] = digest
            self.figures.skopeo_copies += 1

        return body


def test_acknowledged_pushes_survive_sigkill_at_every_kind_of_crash_point(
    backend: str, tmp_path: Path, reliability_figures: list[Figures]
) -> None:
    started = time.monotonic()
    figures = Figures(backend)
    campaign: Campaign | None = None
    with database_url(backend, tmp_path) as url:
        registry = CrashableRegistry(tmp_path / "ecrd", url)
        registry.start()
        try:
            # given repositories (one scanning on push) and the PyPI advisories, imported as an operator does
            create_repositories(registry.ecr, [*REPOSITORIES, SCANNED], scan_on_push={SCANNED: True})
            imported = registry.command("vulndb", "import", str(VULNDATA))
            assert imported.returncode == 0, imported.stderr
            campaign = Campaign(registry, figures, tmp_path, SEED + (backend == "postgresql"))
            kinds = list(KINDS) * (CRASH_POINTS // len(KINDS) + 1)
            random.Random(SEED).shuffle(kinds)
            # when the server is killed at each crash point and restarted (each checks the ledger)
            for number, kind in enumerate(kinds[:CRASH_POINTS]):
                campaign.crash_point(number, kind)
            # then, at the end, a full check with every digest verified finds the stores in agreement
            final = registry.fsck("--verify-digests")
            figures.fsck_runs += 1
            assert final["clean"], final["findings"]
            ledger = campaign.ledger
            figures.acked_blobs = len(ledger.blobs)
            figures.acked_manifests = len(ledger.manifests)
            figures.acked_deletes = len(ledger.deleted)
            figures.scans_requeued = registry.process.log_path.read_text(errors="replace").count(
                "which died: queued again"
            )
            assert figures.acked_manifests > CRASH_POINTS, "the workload acknowledged too little to prove much"
        finally:
            registry.stop()
            if campaign is not None:
                campaign.observer.dispose()
    figures.seconds = time.monotonic() - started
    reliability_figures.append(figures)
    for line in figures.lines():
        print(line)


def test_a_garbage_collection_killed_at_any_point_loses_no_referenced_blob(backend: str, tmp_path: Path) -> None:
    with database_url(backend, tmp_path) as url:
        registry = CrashableRegistry(tmp_path / "ecrd", url)
        registry.start()
        rng = random.Random(SEED)
        pusher = registry.pusher(Ledger())
        # The registry's stores as this process sees them, for the quick check after each kill.
        observer = build_registry(Settings(data_dir=registry.process.data_dir, database_url=url))
        try:
            create_repositories(registry.ecr, REPOSITORIES)
            shared = [rng.randbytes(blob_sizes(rng)) for _ in range(3)]
            kept: dict[tuple[str, str], list[bytes]] = {}
            collection, killed = KillableCollection(registry), 0
            for number, point in enumerate(GC_KILL_POINTS * GC_ROUNDS):
                # given garbage: images pushed and some deleted, layers shared between them, loose blobs
                for n in range(4):
                    repository, label = rng.choice(REPOSITORIES), f"gc{number}-{n}"
                    layers = [rng.choice(shared), rng.randbytes(rng.randrange(1, 64 * KiB))]
                    digest = pusher.push_image(repository, label, layers, rng, label=label)
                    kept[(repository, digest)] = [*layers, config_for(label)]
                for key in rng.sample(sorted(kept), 2):
                    pusher.delete_manifest(*key)
                    del kept[key]
                pusher.push_blob(rng.choice(REPOSITORIES), rng.randbytes(1000), rng)
                # when a collection is killed at this point
                killed += collection.run_until_killed(point, rng)
                # then fsck finds nothing worse than leftovers, and every image not deleted pulls whole
                report = Fsck(observer.store, observer.blobs, grace_seconds=0).check()
                problems = [f for f in report.findings if f.damage or f.problem not in CRASH_LEFTOVERS]
                assert not problems, f"killed at {point}: fsck found {problems}"
                for (repository, digest), blobs in kept.items():
                    assert pusher.send("GET", f"/v2/{repository}/manifests/{digest}").status_code == 200
                    for blob in blobs:
                        got = pusher.send("GET", f"/v2/{repository}/blobs/{sha256_digest(blob)}")
                        assert got.status_code == 200 and got.content == blob, f"killed at {point}: {repository}"
            # (a random moment may come after a small collection's end)
            assert killed >= (len(GC_KILL_POINTS) - 1) * GC_ROUNDS, "a collection ended before its kill point"
            # and a collection run to its end afterwards leaves the stores in agreement
            finished = registry.command("gc", "--gc-grace-minutes", "0")
            assert finished.returncode == 0, finished.stderr
            final = registry.fsck("--verify-digests", "--grace-seconds", "0")
            assert final["clean"], final["findings"]
        finally:
            observer.close()
            pusher.close()
            registry.stop()
