"""The workloads of the performance issue, each run the same way against every registry under test.

A workload prepares what it needs untimed (``setup`` once per registry, ``prepare`` once per repetition),
then ``run`` does the measured work against one registry and returns its figures plus how much work it did
(bytes moved, requests answered), which the runner turns into server CPU per GB and per request.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client import BlobSource, MiB, Registry, push_small_image
from images import write_layout
from measure import MB, disk_limit
from servers import Target
from tools import Tools

KiB = 1 << 10
GiB = 1 << 30
TOOL_TIMEOUT = 600.0


@dataclass(frozen=True)
class Sizes:
    """Everything a mode (--quick, default, --long) changes."""

    mode: str
    reps: int
    blob: int
    chunk: int
    big_image: tuple[int, int]
    """(layers, bytes per layer) of the skopeo image of a few large layers."""
    small_image: tuple[int, int]
    """(layers, bytes per layer) of the skopeo image of many small layers."""
    pushers: int
    memory_blobs: tuple[int, int]
    """The small and the large blob of the memory check."""
    wrk_seconds: int
    connections: tuple[int, ...] = (16, 64)


MODES = {
    "quick": Sizes(
        "quick",
        reps=2,
        blob=64 * MiB,
        chunk=16 * MiB,
        big_image=(8, 4 * MiB),
        small_image=(50, 4 * KiB),
        pushers=4,
        memory_blobs=(16 * MiB, 256 * MiB),
        wrk_seconds=3,
    ),
    "default": Sizes(
        "default",
        reps=3,
        blob=512 * MiB,
        chunk=16 * MiB,
        big_image=(8, 32 * MiB),
        small_image=(200, 4 * KiB),
        pushers=4,
        memory_blobs=(64 * MiB, 1 * GiB),
        wrk_seconds=8,
    ),
    "long": Sizes(
        "long",
        reps=5,
        blob=512 * MiB,
        chunk=16 * MiB,
        big_image=(8, 32 * MiB),
        small_image=(200, 4 * KiB),
        pushers=4,
        memory_blobs=(64 * MiB, 5 * GiB),
        wrk_seconds=15,
    ),
}


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    goal: float | None = None
    """The goal as ecrd ÷ distribution: at least this when higher is better, at most when lower is."""
    goal_text: str = ""


@dataclass
class Outcome:
    """One run of a workload against one registry."""

    figures: dict[str, float]
    bytes: int = 0
    requests: int = 0
    blobs: int = 0
    """Blobs pushed, for workloads of many small blobs where CPU per GB means nothing."""
    notes: list[str] = field(default_factory=list)


@dataclass
class Context:
    sizes: Sizes
    tools: Tools
    workdir: Path
    state: dict[Any, Any] = field(default_factory=dict)


class Workload:
    name = ""
    title = ""
    needs: tuple[str, ...] = ()
    metrics: tuple[Metric, ...] = ()
    reps_override: int | None = None

    def setup(self, target: Target, ctx: Context) -> None:
        """Untimed, once per registry before the first repetition."""

    def prepare(self, rep: int, ctx: Context) -> None:
        """Untimed, once per repetition before any registry runs it."""

    def run(self, target: Target, rep: int, ctx: Context) -> Outcome:
        raise NotImplementedError

    def cleanup(self, rep: int, ctx: Context) -> None:
        """Untimed, after every registry ran repetition ``rep``."""


def _repository(target: Target, name: str) -> str:
    target.create_repository(name)
    return name


def _mbps(size: int, seconds: float) -> float:
    return size / seconds / MB


THROUGHPUT = "MB/s"

# A push's figures beside the disk's limit, measured just before it (same size, same filesystem).
DISK_METRICS = (
    Metric("of_disk", "÷ disk (push ÷ write + fsync of the same size just before it)", "×", True, None, "ecrd ≥ 0.8"),
    Metric("disk_mbps", "disk limit: write + fsync of the same size, incompressible", THROUGHPUT, True),
    Metric("sha256_mbps", "sha256 of the same size, one core", THROUGHPUT, True),
)


def _beside_disk(ctx: Context, size: int, push: Callable[[], object]) -> dict[str, float]:
    """Run ``push`` (``size`` bytes) right after measuring the disk's limit for that size; its figures."""
    limit = disk_limit(ctx.workdir, size)
    start = time.perf_counter()
    push()
    seconds = time.perf_counter() - start
    throughput = _mbps(size, seconds)
    return {
        "throughput": throughput,
        "seconds": seconds,
        "of_disk": throughput / limit.write_mbps,
        "disk_mbps": limit.write_mbps,
        "sha256_mbps": limit.sha256_mbps,
    }


# -- blob transfers -------------------------------------------------------------------------------------------


class MonolithicPush(Workload):
    name = "push_monolithic"
    metrics = (Metric("throughput", "throughput", THROUGHPUT, True, 2.0, "≥ 2×"), *DISK_METRICS)

    def __init__(self, sizes: Sizes) -> None:
        self.title = f"blob push {sizes.blob // MiB} MiB, monolithic (POST + PUT)"

    def prepare(self, rep: int, ctx: Context) -> None:
        ctx.state["mono", rep] = blob = BlobSource(ctx.sizes.blob, 1_000 + rep)
        _ = blob.digest  # hashed now, not while timing

    def run(self, target: Target, rep: int, ctx: Context) -> Outcome:
        blob: BlobSource = ctx.state["mono", rep]
        repository = _repository(target, f"bench/mono-{rep}")
        with Registry(target.host, target.authorization) as registry:
            figures = _beside_disk(ctx, blob.size, lambda: registry.push_monolithic(repository, blob))
        return Outcome(figures, bytes=blob.size)


class ChunkedPush(Workload):
    name = "push_chunked"
    metrics = (Metric("throughput", "throughput", THROUGHPUT, True, 2.0, "≥ 2×"), *DISK_METRICS)

    def __init__(self, sizes: Sizes) -> None:
        self.title = f"blob push {sizes.blob // MiB} MiB, chunked ({sizes.chunk // MiB} MiB PATCHes)"

    def prepare(self, rep: int, ctx: Context) -> None:
        ctx.state["chunked", rep] = blob = BlobSource(ctx.sizes.blob, 2_000 + rep)
        _ = blob.digest

    def run(self, target: Target, rep: int, ctx: Context) -> Outcome:
        blob: BlobSource = ctx.state["chunked", rep]
        repository = _repository(target, f"bench/chunked-{rep}")
        with Registry(target.host, target.authorization) as registry:
            figures = _beside_disk(ctx, blob.size, lambda: registry.push_chunked(repository, blob, ctx.sizes.chunk))
        return Outcome(figures, bytes=blob.size)


class Pull(Workload):
    name = "pull"
    metrics = (Metric("throughput", "throughput", THROUGHPUT, True, 1.0, "≥ 1×"),)

    def __init__(self, sizes: Sizes) -> None:
        self.title = f"blob pull {sizes.blob // MiB} MiB"

    def setup(self, target: Target, ctx: Context) -> None:
        blob = BlobSource(ctx.sizes.blob, 3_000)
        repository = _repository(target, "bench/pull")
        with Registry(target.host, target.authorization) as registry:
            registry.push_monolithic(repository, blob)
            registry.pull(repository, blob.digest)  # the first read warms the page cache for every run
        ctx.state["pull", target.name] = repository, blob

    def run(self, target: Target, rep: int, ctx: Context) -> Outcome:
        repository, blob = ctx.state["pull", target.name]
        with Registry(target.host, target.authorization) as registry:
            start = time.perf_counter()
            received = registry.pull(repository, blob.digest)
            seconds = time.perf_counter() - start
        if received != blob.size:
            raise RuntimeError(f"{target.name} sent {received} bytes of a {blob.size}-byte blob")
        return Outcome({"throughput": _mbps(received, seconds), "seconds": seconds}, bytes=received)


class ParallelPush(Workload):
    name = "push_parallel"
    metrics = (Metric("throughput", "aggregate throughput", THROUGHPUT, True, 2.0, "≥ 2×"), *DISK_METRICS)

    def __init__(self, sizes: Sizes) -> None:
        self.each = sizes.blob // sizes.pushers
        self.title = f"{sizes.pushers} parallel monolithic pushes of {self.each // MiB} MiB"

    def prepare(self, rep: int, ctx: Context) -> None:
        blobs = [BlobSource(self.each, 4_000 + rep * 100 + i) for i in range(ctx.sizes.pushers)]
        for blob in blobs:
            _ = blob.digest
        ctx.state["parallel", rep] = blobs

    def run(self, target: Target, rep: int, ctx: Context) -> Outcome:
        blobs: list[BlobSource] = ctx.state["parallel", rep]
        repository = _repository(target, f"bench/parallel-{rep}")
        errors: list[BaseException] = []

        def push(blob: BlobSource) -> None:
            try:
                with Registry(target.host, target.authorization) as registry:
                    registry.push_monolithic(repository, blob)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=push, args=(blob,), daemon=True) for blob in blobs]

        def push_all() -> None:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=TOOL_TIMEOUT)

        total = sum(blob.size for blob in blobs)
        figures = _beside_disk(ctx, total, push_all)
        if errors or any(thread.is_alive() for thread in threads):
            raise RuntimeError(f"parallel push failed: {errors[:1] or 'timed out'}")
        return Outcome(figures, bytes=total)


# -- small requests under concurrency (wrk) -------------------------------------------------------------------

_WRK_SCRIPT = """\
wrk.method = "{method}"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""

SMALL_REPOSITORY = "bench/small"
SMALL_TAGS = 20


def _small_image(target: Target, ctx: Context) -> tuple[str, str]:
    """The tiny image the small-request workloads read, pushed once per registry."""
    key = ("small", target.name)
    if key not in ctx.state:
        repository = _repository(target, SMALL_REPOSITORY)
        with Registry(target.host, target.authorization) as registry:
            tags = ["latest", *(f"v{i}" for i in range(1, SMALL_TAGS))]
            ctx.state[key] = push_small_image(registry, repository, tags, seed=7)
    found: tuple[str, str] = ctx.state[key]
    return found


class SmallRequests(Workload):
    def __init__(self, endpoint: str, connections: int) -> None:
        self.endpoint = endpoint
        self.connections = connections
        self.name = f"{endpoint}_c{connections}"
        self.needs = ("hey",) if endpoint == "blob_head" else ("wrk",)
        what = {"manifest_get": "manifest GET by tag", "blob_head": "HEAD blob", "tags_list": "tags/list"}[endpoint]
        self.title = f"{what}, {connections} connections"
        self.metrics = (
            Metric("rps", "requests/s", "req/s", True, 2.0, "≥ 2×"),
            Metric("p50_ms", "p50 latency", "ms", False),
            Metric("p99_ms", "p99 latency", "ms", False, 1.0, "lower"),
        )

    def _request(self, target: Target, ctx: Context) -> tuple[str, str, dict[str, str]]:
        layer, _manifest = _small_image(target, ctx)
        if self.endpoint == "manifest_get":
            return (
                "GET",
                f"/v2/{SMALL_REPOSITORY}/manifests/latest",
                {"Accept": "application/vnd.oci.image.manifest.v1+json"},
            )
        if self.endpoint == "blob_head":
            return "HEAD", f"/v2/{SMALL_REPOSITORY}/blobs/{layer}", {}
        return "GET", f"/v2/{SMALL_REPOSITORY}/tags/list", {}

    def _script(self, target: Target, ctx: Context) -> tuple[Path, str]:
        method, path, headers = self._request(target, ctx)
        if target.authorization:
            headers = {**headers, "Authorization": target.authorization}
        lines = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items())
        script = ctx.workdir / f"wrk-{target.name}-{self.endpoint}.lua"
        script.write_text(_WRK_SCRIPT.format(method=method, headers=lines))
        return script, target.url + path

    def _wrk(self, target: Target, ctx: Context, seconds: int, connections: int) -> dict[str, int]:
        script, url = self._script(target, ctx)
        threads = min(2, connections)
        argv = [
            ctx.tools.path("wrk"),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        for line in done.stdout.splitlines():
            if line.startswith("WRKJSON "):
                parsed: dict[str, int] = json.loads(line.removeprefix("WRKJSON "))
                return parsed
        raise RuntimeError(f"wrk printed no summary (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")

    def _hey(self, target: Target, ctx: Context, seconds: int, connections: int) -> dict[str, int]:
        """hey, for HEAD: wrk waits for the body a HEAD response announces and never counts it."""
        method, path, headers = self._request(target, ctx)
        if target.authorization:
            headers = {**headers, "Authorization": target.authorization}
        argv = [
            ctx.tools.path("hey"),
            "-z",
            f"{seconds}s",
            "-c",
            str(connections),
            "-m",
            method,
            "-t",
            "5",
            "-disable-compression",
        ]
        for name, value in headers.items():
            argv += ["-H", f"{name}: {value}"]
        argv.append(target.url + path)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        return _parse_hey(done.stdout, done.returncode, done.stderr)

    def _load(self, target: Target, ctx: Context, seconds: int) -> dict[str, int]:
        load = self._hey if self.endpoint == "blob_head" else self._wrk
        return load(target, ctx, seconds, self.connections)

    def setup(self, target: Target, ctx: Context) -> None:
        self._load(target, ctx, 1)  # warm-up: connections, caches, code paths

    def run(self, target: Target, rep: int, ctx: Context) -> Outcome:
        result = self._load(target, ctx, ctx.sizes.wrk_seconds)
        requests = result["requests"]
        errors = result["connect"] + result["read"] + result["write"] + result["status"] + result["timeout"]
        notes = [f"{errors} errors ({json.dumps(result)})"] if errors else []
        if requests == 0 or errors > requests * 0.01:
            raise RuntimeError(f"load against {target.name}: {requests} requests, {errors} errors: {result}")
        return Outcome(
            {
                "rps": requests / (result["duration_us"] / 1e6),
                "p50_ms": result["p50_us"] / 1000,
                "p99_ms": result["p99_us"] / 1000,
                "p90_ms": result["p90_us"] / 1000,
            },
            requests=requests,
            notes=notes,
        )


_HEY_TOTAL = re.compile(r"Total:\s+([\d.]+) secs")
_HEY_PERCENTILE = re.compile(r"(\d+)%+ in ([\d.]+) secs")
_HEY_STATUS = re.compile(r"\[(\d+)\]\s+(\d+) responses")
_HEY_ERRORS = re.compile(r"^\s+\[(\d+)\]\s+(?!.*responses)", re.MULTILINE)


def _parse_hey(out: str, returncode: int, err: str) -> dict[str, int]:
    """hey's text summary as wrk's done() figures: requests, duration and percentiles in µs, errors."""
    total = _HEY_TOTAL.search(out)
    if total is None:
        raise RuntimeError(f"hey printed no summary (exit {returncode}):\n{out}\n{err}")
    percentiles = {int(p): float(secs) for p, secs in _HEY_PERCENTILE.findall(out)}
    statuses = {int(code): int(count) for code, count in _HEY_STATUS.findall(out)}
    errors_part = out.partition("Error distribution:")[2]
    errors = sum(int(count) for count in _HEY_ERRORS.findall(errors_part))
    ok = sum(count for code, count in statuses.items() if code < 400)
    return {
        "requests": sum(statuses.values()),
        "duration_us": int(float(total[1]) * 1e6),
        "p50_us": int(percentiles.get(50, 0) * 1e6),
        "p90_us": int(percentiles.get(90, 0) * 1e6),
        "p99_us": int(percentiles.get(99, 0) * 1e6),
        "max_us": 0,
        "connect": 0,
        "read": errors,
        "write": 0,
        "status": sum(statuses.values()) - ok,
        "timeout": 0,
    }


# -- skopeo end to end ----------------------------------------------------------------------------------------


class Skopeo:
    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        workdir.mkdir(parents=True, exist_ok=True)
        self.policy = workdir / "policy.json"
        self.policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        self.auth = workdir / "auth.json"
        self.auth.write_text("{}")

    def copy(self, source: str, destination: str, creds: str | None) -> float:
        argv = [self.binary, "--policy", str(self.policy), "copy", "--quiet"]
        for side, ref in (("src", source), ("dest", destination)):
            if ref.startswith("docker://"):
                argv.append(f"--{side}-tls-verify=false")
                if creds:
                    argv.append(f"--{side}-creds={creds}")
        argv += [source, destination]
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.policy.parent),
            "REGISTRY_AUTH_FILE": str(self.auth),
        }
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT, env=env)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            shown = " ".join(argv).replace(creds or "\0", "***")
            raise RuntimeError(f"`{shown}` failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return seconds


def _skopeo(ctx: Context) -> Skopeo:
    if "skopeo" not in ctx.state:
        ctx.state["skopeo"] = Skopeo(ctx.tools.path("skopeo"), ctx.workdir / "skopeo")
    found: Skopeo = ctx.state["skopeo"]
    return found


class SkopeoPush(Workload):
    needs = ("skopeo",)

    def __init__(self, kind: str, sizes: Sizes) -> None:
        self.kind = kind
        self.layers, self.layer_size = sizes.big_image if kind == "big" else sizes.small_image
        self.name = f"skopeo_push_{kind}"
        size = f"{self.layer_size // MiB} MiB" if self.layer_size >= MiB else f"{self.layer_size // KiB} KiB"
        self.title = f"skopeo push {self.layers} × {size} layers"
        goal = 0.67 if kind == "big" else 0.5
        self.metrics = (Metric("seconds", "time", "s", False, goal, f"≤ {goal}×"),)

    def prepare(self, rep: int, ctx: Context) -> None:
        # Fresh layers every repetition: skopeo's blob-info cache would otherwise mount known blobs.
        layout = ctx.workdir / f"layout-{self.kind}-{rep}"
        total = write_layout(layout, [self.layer_size] * self.layers, seed=50_000 + rep * 10 + len(self.kind))
        ctx.state["layout", self.kind, rep] = layout, total

    def run(self, target: Target, rep: int, ctx: Context) -> Outcome:
        layout, total = ctx.state["layout", self.kind, rep]
        repository = _repository(target, f"bench/skopeo-{self.kind}-{rep}")
        seconds = _skopeo(ctx).copy(
            f"oci:{layout}:latest", f"docker://{target.host}/{repository}:latest", target.skopeo_creds
        )
        ctx.state["pushed", self.kind, target.name, rep] = repository
        figures = {"seconds": seconds, "throughput": _mbps(total, seconds)}
        if self.layer_size < MiB:
            return Outcome(figures, blobs=self.layers + 1)
        return Outcome(figures, bytes=total)

    def cleanup(self, rep: int, ctx: Context) -> None:
        layout, _total = ctx.state.pop(("layout", self.kind, rep))
        shutil.rmtree(layout, ignore_errors=True)


class SkopeoPull(Workload):
    needs = ("skopeo",)

    def __init__(self, kind: str, sizes: Sizes) -> None:
        self.kind = kind
        layers, layer_size = sizes.big_image if kind == "big" else sizes.small_image
        self.name = f"skopeo_pull_{kind}"
        self.title = f"skopeo pull {layers} × {layer_size // MiB} MiB layers"
        self.metrics = (Metric("seconds", "time", "s", False, 1.0, "≤ 1×"),)

    def run(self, target: Target, rep: int, ctx: Context) -> Outcome:
        repository = ctx.state.get(("pushed", self.kind, target.name, rep))
        if repository is None:
            raise RuntimeError(f"skopeo_push_{self.kind} did not run for {target.name}: nothing to pull")
        destination = ctx.workdir / f"pulled-{target.name}-{self.kind}-{rep}"
        try:
            seconds = _skopeo(ctx).copy(
                f"docker://{target.host}/{repository}:latest", f"oci:{destination}:latest", target.skopeo_creds
            )
            total = sum(path.stat().st_size for path in (destination / "blobs" / "sha256").iterdir())
        finally:
            shutil.rmtree(destination, ignore_errors=True)
        return Outcome({"seconds": seconds, "throughput": _mbps(total, seconds)}, bytes=total)


# -- memory ---------------------------------------------------------------------------------------------------


class MemoryCheck(Workload):
    """A small and a large blob pushed and pulled with the server's RSS sampled: flat means the large one
    costs no more memory than the small one."""

    name = "memory"
    reps_override = 1

    def __init__(self, sizes: Sizes) -> None:
        small, large = sizes.memory_blobs
        self.title = f"memory: push + pull of {small // MiB} MiB vs {large / GiB:g} GiB"
        self.metrics = (
            Metric("rss_small_mb", f"peak RSS, {small // MiB} MiB blob", "MB", False),
            Metric("rss_large_mb", f"peak RSS, {large / GiB:g} GiB blob", "MB", False),
            Metric("rss_growth_mb", "growth with blob size", "MB", False),
            Metric("push_large", "large push", THROUGHPUT, True),
            Metric("pull_large", "large pull", THROUGHPUT, True),
        )

    def run(self, target: Target, rep: int, ctx: Context) -> Outcome:
        small, large = ctx.sizes.memory_blobs
        repository = _repository(target, f"bench/memory-{rep}")
        figures: dict[str, float] = {}
        total = 0
        with Registry(target.host, target.authorization) as registry:
            for label, size in (("small", small), ("large", large)):
                blob = BlobSource(size, 9_000 + size // MiB)
                _ = blob.digest
                with target.meter() as meter:
                    push = _timed(lambda blob=blob: registry.push_monolithic(repository, blob))
                    pull = _timed(lambda blob=blob: registry.pull(repository, blob.digest))
                figures[f"rss_{label}_mb"] = meter.usage.peak_rss / MB
                figures[f"push_{label}"] = _mbps(size, push)
                figures[f"pull_{label}"] = _mbps(size, pull)
                total += 2 * size
        figures["rss_growth_mb"] = figures["rss_large_mb"] - figures["rss_small_mb"]
        return Outcome(figures, bytes=total)


def _timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


# -- the list -------------------------------------------------------------------------------------------------


def all_workloads(sizes: Sizes) -> list[Workload]:
    small: list[Workload] = [
        SmallRequests(endpoint, connections)
        for endpoint in ("manifest_get", "blob_head", "tags_list")
        for connections in sizes.connections
    ]
    return [
        MonolithicPush(sizes),
        ChunkedPush(sizes),
        Pull(sizes),
        ParallelPush(sizes),
        *small,
        SkopeoPush("big", sizes),
        SkopeoPull("big", sizes),
        SkopeoPush("small", sizes),
        MemoryCheck(sizes),
    ]
