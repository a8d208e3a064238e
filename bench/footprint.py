"""Where a registry's memory goes, process by process: ``python bench/run.py --footprint [--soak-minutes 30]``.

The main run sums the RSS of a server's process tree; this harness keeps each process apart (ecrd's supervisor
and every worker, distribution's one process) and follows a server through its life:

1. **at rest**: started, answered only its readiness probe;
2. **first requests of every kind**: a push and pulls on /v2/, ECR, IAM, STS and KMS calls (ecrd), repeated so
   that every worker sees each kind;
3. **under load**: the main run's small-request and pull workloads (wrk, hey, a blob pull, parallel pushes,
   skopeo), RSS of every process sampled every 50 ms, the peak kept;
4. **soak** (``--soak-minutes``, ecrd only): the registry filled to ``--images`` images (the scale benchmark's
   filler), then a mixed load — manifest and blob reads, tag and catalog pages, ECR listings, new images and
   blobs, logins, IAM, STS and KMS calls — for that long, RSS sampled every ``--sample-seconds``; the slope of
   each process's RSS over the soak after its first fifth (MB per hour) says whether memory is flat.

Each figure is VmRSS (resident, shared pages counted in every process that maps them), with the anonymous part
(RssAnon: heap and stacks, some of it shared with the supervisor after the fork) beside it, and in the
snapshots the memory the process alone holds (USS: its private pages), which is what one more worker costs.
It prints a Markdown table and writes JSON to ``bench/results/footprint-<time>.json``. It asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client import Registry, push_small_image
from measure import tree_pids
from scale_fill import OCI_MANIFEST, Layout, fill, manifest_of, prepare_repository, seed, tag_of
from servers import REGION, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, Distribution, Ecrd, Target
from tools import ensure_tools
from workloads import MODES, Context, all_workloads

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
LOAD_WORKLOADS = (
    "manifest_get_c16",
    "manifest_get_c64",
    "blob_head_c64",
    "tags_list_c64",
    "pull",
    "push_parallel",
    "skopeo_push_big",
    "skopeo_pull_big",
)
"""The main run's workloads that make up "the benchmark's load": small requests at both concurrencies, pulls
(plain and skopeo's 8 layers at once, after skopeo's push of them), parallel pushes."""
LOAD_SAMPLE_SECONDS = 0.05
SETTLE_SECONDS = 3.0
"""Seconds a server is left alone before its at-rest figures are read (workers finish starting)."""
AFTER_LOAD_SECONDS = 40.0
"""Seconds the servers rest after the load before their memory is read again (what stays resident)."""
SOAK_REPOSITORY = "soak/new"
SOAK_FIRST_NEW_IMAGE = 50_000_000
"""Numbers of the images the soak pushes: far above any the filler uses, so each is a new manifest."""
SOAK_BLOB_BYTES = 1 << 20
SOAK_WARMUP_FRACTION = 0.2
"""The first part of the soak, left out of the slope: caches and pools fill up there, as they should."""
HTTP_TIMEOUT = 60.0


def log(message: str) -> None:
    print(f"footprint: {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/run.py --footprint", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers", default="2", help="ecrd --workers, or 'default' for ecrd's own default (default: %(default)s)"
    )
    parser.add_argument("--mode", choices=sorted(MODES), default="quick", help="sizes of the load workloads")
    parser.add_argument("--no-load", action="store_true", help="skip the load phase")
    parser.add_argument("--no-reference", action="store_true", help="ecrd alone (no distribution)")
    parser.add_argument("--soak-minutes", type=float, default=0.0, help="length of the soak (0: none)")
    parser.add_argument("--images", type=int, default=100_000, help="images in the registry during the soak")
    parser.add_argument("--clients", type=int, default=4, help="client processes filling, threads soaking")
    parser.add_argument("--sample-seconds", type=float, default=5.0, help="RSS sampling interval of the soak")
    parser.add_argument("--ecrd-env", action="append", default=[], help="NAME=VALUE for ecrd's environment")
    parser.add_argument("--ecrd-src", type=Path, help="measure the ecrd of this src/ folder instead of the installed")
    parser.add_argument("--label", default="", help="free text recorded with the results")
    parser.add_argument("--workdir", type=Path, help="where to make the run's temporary folder (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get/pip install missing tools")
    return parser.parse_args(argv)


# -- per-process memory -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    rss_mb: float
    anon_mb: float
    threads: int


def process_memory(pid: int) -> ProcessMemory | None:
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "Threads"):
                fields[name] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return ProcessMemory(pid, fields.get("VmRSS", 0) / 1024, fields.get("RssAnon", 0) / 1024, fields.get("Threads", 0))


def roles(target: Target) -> dict[int, str]:
    """Each live process of ``target`` by role: ecrd's supervisor and workers, or distribution."""
    pids = tree_pids(target.pid)
    if not isinstance(target, Ecrd):
        return {pid: target.name for pid in pids}
    named = {target.pid: "supervisor"}
    for number, pid in enumerate(sorted(p for p in pids if p != target.pid), start=1):
        named[pid] = f"worker {number}"
    return named


def unique_mb(pid: int) -> float | None:
    """Memory only this process holds (USS: private pages, clean or dirty): what one more worker costs. Read
    from smaps_rollup, which walks the page tables: for snapshots, not for sampling every 50 ms."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return total / 1024


def snapshot(target: Target) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for pid, role in roles(target).items():
        memory = process_memory(pid)
        unique = unique_mb(pid)
        if memory is not None:
            found[role] = {"rss_mb": memory.rss_mb, "anon_mb": memory.anon_mb, "threads": memory.threads}
            if unique is not None:
                found[role]["uss_mb"] = unique
    return found


class ProcessSampler:
    """RSS of every process of a target, sampled in a background thread: peaks per role, and the series."""

    def __init__(self, target: Target, interval: float) -> None:
        self.target = target
        self.interval = interval
        self.peaks: dict[str, dict[str, float]] = {}
        self.series: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="footprint-sampler", daemon=True)

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        started = time.monotonic()
        named = roles(self.target)
        refreshed = started
        while True:
            now = time.monotonic()
            if now - refreshed > 1.0:
                named, refreshed = roles(self.target), now
            point: dict[str, float] = {}
            for pid, role in named.items():
                memory = process_memory(pid)
                if memory is None:
                    continue
                point[role] = memory.rss_mb
                peak = self.peaks.setdefault(role, {"rss_mb": 0.0, "anon_mb": 0.0, "threads": 0})
                peak["rss_mb"] = max(peak["rss_mb"], memory.rss_mb)
                peak["anon_mb"] = max(peak["anon_mb"], memory.anon_mb)
                peak["threads"] = max(peak["threads"], memory.threads)
            point["total"] = sum(point.values())
            self.series.append((now - started, point))
            if self._stop.wait(self.interval):
                return


def slope_mb_per_hour(series: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    if len(series) < 3:
        return 0.0
    times = [t for t, _ in series]
    values = [v for _, v in series]
    mean_t, mean_v = statistics.fmean(times), statistics.fmean(values)
    spread = sum((t - mean_t) ** 2 for t in times)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in series) / spread * 3600


# -- phases -------------------------------------------------------------------------------------------------


def aws(service: str, url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=ROOT_ACCESS_KEY_ID, aws_secret_access_key=ROOT_SECRET_ACCESS_KEY, region_name=REGION
    ).client(service, endpoint_url=url, config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 1}))


def first_requests(target: Target, rounds: int) -> None:
    """Requests of every kind the registry answers, ``rounds`` times (workers take connections in turn)."""
    target.create_repository("footprint/kinds")
    with Registry(target.host, target.authorization) as registry:
        layer, _ = push_small_image(registry, "footprint/kinds", ["v1", "v2"], seed=42)
        for _ in range(rounds):
            registry.request("GET", "/v2/footprint/kinds/manifests/v1", headers={"Accept": OCI_MANIFEST})
            registry.request("HEAD", f"/v2/footprint/kinds/blobs/{layer}")
            registry.request("GET", "/v2/footprint/kinds/tags/list")
            registry.request("GET", f"/v2/footprint/kinds/blobs/{layer}")
    if not isinstance(target, Ecrd):
        return
    for _ in range(rounds):
        ecr = aws("ecr", target.url)
        ecr.get_authorization_token()
        ecr.describe_repositories()
        ecr.describe_images(repositoryName="footprint/kinds")
        ecr.list_images(repositoryName="footprint/kinds")
        ecr.batch_get_image(repositoryName="footprint/kinds", imageIds=[{"imageTag": "v1"}])
        aws("iam", target.url).list_users()
        aws("sts", target.url).get_caller_identity()
        aws("kms", target.url).list_keys()


def load_phase(targets: list[Target], mode: str, workdir: Path, install: bool) -> dict[str, Any]:
    """The main run's load workloads against each target, one repetition, with every process sampled."""
    tools = ensure_tools(install=install, want_profiler=False)
    sizes = MODES[mode]
    ctx = Context(sizes, tools, workdir)
    found: dict[str, Any] = {}
    for workload in [w for w in all_workloads(sizes) if w.name in LOAD_WORKLOADS]:
        missing = [tool for tool in workload.needs if not tools.has(tool)]
        if missing:
            log(f"skip {workload.name}: {', '.join(missing)} missing")
            continue
        log(f"load: {workload.title}")
        for target in targets:
            workload.setup(target, ctx)
        workload.prepare(0, ctx)
        for target in targets:
            try:
                with ProcessSampler(target, LOAD_SAMPLE_SECONDS) as sampler:
                    workload.run(target, 0, ctx)
            except (RuntimeError, OSError) as exc:
                log(f"{workload.name} failed for {target.name}: {exc}")
                continue
            found.setdefault(workload.name, {})[target.name] = sampler.peaks
        workload.cleanup(0, ctx)
    return found


class SoakClient:
    """One client thread of the soak: its own connection to /v2/ and its own AWS clients."""

    def __init__(self, server: Ecrd, layout: Layout, rng: random.Random, counter: Callable[[], int]) -> None:
        self.server = server
        self.layout = layout
        self.sampler = layout.sampler(rng)
        self.rng = rng
        self.next_number = counter
        self.connection: http.client.HTTPConnection | None = None
        self.ecr = aws("ecr", server.url)
        self.others = {name: aws(name, server.url) for name in ("iam", "sts", "kms")}
        self.authorization = server.authorization
        self.done: dict[str, int] = {}

    def http(self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None) -> int:
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.server.host, timeout=HTTP_TIMEOUT)
            try:
                self.connection.request(
                    method, target, body=body, headers={"Authorization": self.authorization, **(headers or {})}
                )
                response = self.connection.getresponse()
                response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.connection.close()
                    self.connection = None
                return response.status
            except (ConnectionError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def one(self) -> None:
        """One operation, drawn by weight: reads dominate, as on a registry in use."""
        repository, index = self.sampler.image()
        name = repository.name
        roll = self.rng.random()
        if roll < 0.35:
            kind = "manifest GET"
            self.http("GET", f"/v2/{name}/manifests/{tag_of(index)}", headers={"Accept": OCI_MANIFEST})
        elif roll < 0.45:
            kind = "manifest HEAD by digest"
            digest = "sha256:" + hashlib.sha256(manifest_of(index)).hexdigest()
            self.http("HEAD", f"/v2/{name}/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
        elif roll < 0.55:
            kind = "tags/list page"
            self.http("GET", f"/v2/{name}/tags/list?n=100&last={tag_of(index)}")
        elif roll < 0.58:
            kind = "_catalog page"
            self.http("GET", f"/v2/_catalog?n=100&last={name}")
        elif roll < 0.66:
            kind = "DescribeImages"
            self.ecr.describe_images(repositoryName=name, maxResults=100)
        elif roll < 0.70:
            kind = "ListImages"
            self.ecr.list_images(repositoryName=name, maxResults=100)
        elif roll < 0.74:
            kind = "BatchGetImage"
            self.ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": tag_of(index)}])
        elif roll < 0.82:
            kind = "push of a new image"
            number = self.next_number()
            status = self.http(
                "PUT",
                f"/v2/{SOAK_REPOSITORY}/manifests/{tag_of(number)}",
                manifest_of(number),
                {"Content-Type": OCI_MANIFEST},
            )
            if status != 201:
                raise RuntimeError(f"PUT manifest -> {status}")
        elif roll < 0.88:
            kind = "blob push and pull (1 MiB)"
            self.blob_round_trip()
        elif roll < 0.92:
            kind = "GetAuthorizationToken"
            self.ecr.get_authorization_token()
        elif roll < 0.94:
            kind = "IAM ListUsers"
            self.others["iam"].list_users()
        elif roll < 0.96:
            kind = "STS GetCallerIdentity"
            self.others["sts"].get_caller_identity()
        elif roll < 0.98:
            kind = "KMS ListKeys"
            self.others["kms"].list_keys()
        else:
            kind = "DescribeRepositories"
            self.ecr.describe_repositories(maxResults=100)
        self.done[kind] = self.done.get(kind, 0) + 1

    def blob_round_trip(self) -> None:
        data = self.rng.randbytes(SOAK_BLOB_BYTES)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        conn = http.client.HTTPConnection(self.server.host, timeout=HTTP_TIMEOUT)
        try:
            headers = {"Authorization": self.authorization}
            conn.request("POST", f"/v2/{SOAK_REPOSITORY}/blobs/uploads/", headers=headers)
            response = conn.getresponse()
            response.read()
            location = response.getheader("Location", "")
            location = location.split("://", 1)[-1].partition("/")[2] if "://" in location else location.lstrip("/")
            separator = "&" if "?" in location else "?"
            conn.request("PUT", f"/{location}{separator}digest={digest}", body=data, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 201:
                raise RuntimeError(f"PUT blob -> {response.status}")
            conn.request("GET", f"/v2/{SOAK_REPOSITORY}/blobs/{digest}", headers=headers)
            response = conn.getresponse()
            if len(response.read()) != len(data):
                raise RuntimeError("short blob")
        finally:
            conn.close()


def soak(server: Ecrd, args: argparse.Namespace) -> dict[str, Any]:
    """Fill the registry to ``--images``, then run the mixed load for ``--soak-minutes`` with RSS sampled."""
    ecr = aws("ecr", server.url)
    ecr.create_repository(repositoryName="scale-seed")
    seed(server.host, server.authorization)
    layout = Layout()
    log(f"soak: filling to {args.images:,} images with {args.clients} clients")
    filled = fill(
        layout,
        args.images,
        host=server.host,
        authorization=server.authorization,
        create_repository=lambda name: ecr.create_repository(repositoryName=name),
        clients=args.clients,
        deadline=time.monotonic() + 3600,
        log=log,
    )
    log(f"soak: {layout.total:,} images in {filled.seconds:.0f} s ({filled.rate:.0f}/s)")
    ecr.create_repository(repositoryName=SOAK_REPOSITORY)
    # The new images refer to the filler's config and layer: mounted into their repository, no bytes move.
    prepare_repository(server.host, server.authorization, SOAK_REPOSITORY)
    lock = threading.Lock()
    numbers = iter(range(SOAK_FIRST_NEW_IMAGE, SOAK_FIRST_NEW_IMAGE + 10**8))

    def counter() -> int:
        with lock:
            return next(numbers)

    clients = [SoakClient(server, layout, random.Random(1000 + i), counter) for i in range(args.clients)]
    stop = threading.Event()
    errors: list[str] = []

    def work(client: SoakClient) -> None:
        while not stop.is_set():
            try:
                client.one()
            except Exception as exc:  # counted and shown; the soak goes on
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                time.sleep(0.1)

    seconds = args.soak_minutes * 60
    log(f"soak: mixed load for {args.soak_minutes:g} min, {args.clients} client threads")
    started = time.monotonic()
    with ProcessSampler(server, args.sample_seconds) as sampler:
        threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in clients]
        for thread in threads:
            thread.start()
        last_log = started
        while time.monotonic() - started < seconds:
            time.sleep(1)
            if time.monotonic() - last_log >= 60 and sampler.series:
                last_log = time.monotonic()
                point = sampler.series[-1][1]
                log(
                    f"soak: {(last_log - started) / 60:.0f} min, RSS "
                    + ", ".join(f"{role} {mb:.0f}" for role, mb in point.items())
                    + f" MB; load {os.getloadavg()[0]:.1f}; {len(errors)} errors"
                )
        stop.set()
        for thread in threads:
            thread.join(timeout=HTTP_TIMEOUT)
    elapsed = time.monotonic() - started
    done: dict[str, int] = {}
    for client in clients:
        for kind, count in client.done.items():
            done[kind] = done.get(kind, 0) + count
    after_warmup = [(t, p) for t, p in sampler.series if t >= elapsed * SOAK_WARMUP_FRACTION]
    by_role: dict[str, Any] = {}
    for role in sorted({r for _, p in sampler.series for r in p}):
        points = [(t, p[role]) for t, p in after_warmup if role in p]
        every = [p[role] for _, p in sampler.series if role in p]
        if not every:
            continue
        by_role[role] = {
            "start_mb": every[0],
            "after_warmup_mb": points[0][1] if points else every[0],
            "end_mb": every[-1],
            "peak_mb": max(every),
            "slope_mb_per_hour": slope_mb_per_hour(points),
        }
    return {
        "images": layout.total,
        "fill_seconds": filled.seconds,
        "minutes": elapsed / 60,
        "operations": done,
        "requests": sum(done.values()),
        "errors": len(errors),
        "first_errors": errors[:10],
        "by_role": by_role,
        "series": [(round(t, 1), {r: round(v, 1) for r, v in p.items()}) for t, p in sampler.series],
        "load_average_end": os.getloadavg(),
    }


# -- report -------------------------------------------------------------------------------------------------


def _cell(figures: dict[str, float] | None) -> str:
    if not figures:
        return "–"
    unique = f"{figures['uss_mb']:.0f} own, " if "uss_mb" in figures else ""
    return f"{figures['rss_mb']:.0f} ({unique}{figures['anon_mb']:.0f} anon, {figures['threads']:.0f} thr.)"


def table(record: dict[str, Any]) -> str:
    lines = [
        "| phase | process | " + " | ".join(record["targets"]) + " |",
        "|---|---|" + "---|" * len(record["targets"]),
    ]
    phases: list[tuple[str, dict[str, Any]]] = [
        ("at rest", record["at_rest"]),
        ("after requests of every kind", record["after_kinds"]),
    ]
    for workload, by_target in record.get("load", {}).items():
        phases.append((f"peak under {workload}", by_target))
    if "after_load" in record:
        phases.append((f"{AFTER_LOAD_SECONDS:.0f} s after the load", record["after_load"]))
    for label, by_target in phases:
        role_names = sorted({role for figures in by_target.values() for role in figures}, key=_role_order)
        for role in role_names:
            cells = [_cell(by_target.get(name, {}).get(role)) for name in record["targets"]]
            lines.append(f"| {label} | {role} | " + " | ".join(cells) + " |")
    soak_record = record.get("soak")
    if soak_record:
        lines.append("")
        lines.append(
            f"soak: {soak_record['minutes']:.1f} min at {soak_record['images']:,} images, "
            f"{soak_record['requests']:,} operations ({soak_record['errors']} errors)"
        )
        lines.append("")
        lines.append("| process | start MB | after warm-up MB | end MB | peak MB | slope MB/hour (after warm-up) |")
        lines.append("|---|---|---|---|---|---|")
        for role, figures in sorted(soak_record["by_role"].items(), key=lambda kv: _role_order(kv[0])):
            lines.append(
                f"| {role} | {figures['start_mb']:.1f} | {figures['after_warmup_mb']:.1f} | {figures['end_mb']:.1f} "
                f"| {figures['peak_mb']:.1f} | {figures['slope_mb_per_hour']:+.1f} |"
            )
    return "\n".join(lines)


def _role_order(role: str) -> tuple[int, str]:
    return (0 if role == "supervisor" else 2 if role == "total" else 1, role)


# -- main ---------------------------------------------------------------------------------------------------


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    workers = None if args.workers == "default" else int(args.workers)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ecrd-footprint-", dir=args.workdir))
    tools = ensure_tools(install=not args.no_install, want_profiler=False)
    env = dict(item.split("=", 1) for item in args.ecrd_env)
    source = args.ecrd_src.resolve() if args.ecrd_src else None
    ecrd = Ecrd(workdir / "ecrd", workers=workers, env=env, login=False, source=source)
    targets: list[Target] = [ecrd]
    if not args.no_reference and tools.has("docker-registry"):
        targets.append(Distribution(workdir / "distribution", binary=Path(tools.path("docker-registry"))))
    record: dict[str, Any] = {
        "started": stamp,
        "label": args.label,
        "argv": argv,
        "targets": [target.name for target in targets],
        "workers": args.workers,
        "ecrd_env": env,
        "ecrd_src": str(source or "installed"),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_start": os.getloadavg(),
    }
    status = 0
    try:
        with ExitStack() as stack:
            for target in targets:
                stack.callback(target.stop)
                log(f"starting {target.name}")
                target.start()
            time.sleep(SETTLE_SECONDS)
            record["at_rest"] = {target.name: snapshot(target) for target in targets}
            ecrd.login(ecrd.url)
            for target in targets:
                first_requests(target, rounds=4)
            time.sleep(1)
            record["after_kinds"] = {target.name: snapshot(target) for target in targets}
            if not args.no_load:
                record["load"] = load_phase(targets, args.mode, workdir, install=not args.no_install)
                record["load_average_after_load"] = os.getloadavg()
                time.sleep(AFTER_LOAD_SECONDS)
                record["after_load"] = {target.name: snapshot(target) for target in targets}
            if args.soak_minutes > 0:
                record["soak"] = soak(ecrd, args)
    except KeyboardInterrupt:
        log("interrupted: stopping the servers")
        status = 130
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"footprint-{stamp}.json"
    out.write_text(json.dumps(record, indent=1, default=str))
    if "at_rest" in record and "after_kinds" in record:
        print(table(record))
    print(f"\nJSON: {out}")
    return status
