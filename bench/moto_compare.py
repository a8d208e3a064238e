"""ecrd's ECR API against moto_server on identical boto3 calls: ``python bench/run.py --moto``.

Both servers run for the whole benchmark on free loopback ports: ecrd as it always runs (SigV4 verified, every
call authorized by the policy engine, metadata in SQLite, ``--workers 2``) and ``moto_server`` (moto's Flask
server from ``moto[server]``: no authentication, state in memory). Both get the same state: a repository of N
images (ecrd's blobs pushed through the data plane, then the same manifests by PutImage to both) and, for every
measured PutImage run, a fresh empty repository.

Each call — DescribeImages, BatchGetImage, ListImages, GetAuthorizationToken, PutImage — runs at each
concurrency in interleaved repetitions with the order alternating (ecrd, moto, moto, ecrd, …), and the table
shows median rates, p50/p99 latency, server CPU per call and the ratio ecrd ÷ moto.

Two clients (``--driver``):

- ``raw`` (default): the requests are made by boto3 itself — a boto3 client per server, the same botocore
  config, its serializer and SigV4 signer — and captured just before they would be sent; wrk then replays the
  captured bytes on keep-alive connections. A signature stays valid for 15 minutes, so replaying it is what a
  retrying client does; PutImage requests are each a distinct image (own manifest, digest and tag), signed in
  a pool large enough for the run. The client then costs ~10 µs per call: what is measured is the server.
- ``boto3``: threads each calling through their own boto3 client, as an application would. boto3 spends
  about a millisecond of CPU per call in the client, on the same two cores, so this measures the pair; the
  client's CPU per call is reported as its floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Registry
from measure import MB, Summary
from profiles import Profiler, summarize
from servers import LOOPBACK, REGION, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, Ecrd, Target
from tools import _apt_install, _pip_install, _py_spy, _which

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
DEFAULT_WORKERS = 2
MOTO_PACKAGE = "moto[server]==5.2.1"
"""The moto measured (installed when ``moto_server`` is missing); its version is recorded with the results."""
READ_REPOSITORY = "bench/read"
PUT_REPOSITORY = "bench/put-{run}"
GOAL = 2.0
WRK_TIMEOUT_SECONDS = 10
MAX_PUT_POOL = 40_000
"""PutImage requests signed for one measured run, at most (each is a distinct image)."""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# -- the calls ------------------------------------------------------------------------------------------------


def image_manifest(config_digest: str, config_size: int, layer_digest: str, layer_size: int, serial: str) -> str:
    """A small OCI image manifest made distinct by an annotation: every serial is its own image (digest)."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": layer_size}],
            "annotations": {"org.ecrd.bench.image": serial},
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class Blobs:
    """The config and layer every bench manifest refers to (ecrd checks that they are in the repository)."""

    config: bytes
    layer: bytes

    @property
    def config_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()

    @property
    def layer_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.layer).hexdigest()

    def manifest(self, serial: str) -> str:
        return image_manifest(self.config_digest, len(self.config), self.layer_digest, len(self.layer), serial)


BLOBS = Blobs(
    config=json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode(),
    layer=bytes(range(256)) * 16,
)


@dataclass(frozen=True)
class Call:
    """One ECR operation as the benchmark calls it: ``params(i, repository)`` are the arguments of call ``i``."""

    name: str
    operation: str
    params: Callable[[int, str, int], dict[str, Any]]
    distinct: bool = False
    """Every call must differ (PutImage: a new image each time), so requests are not reused."""
    title: str = ""


def _put_image_params(i: int, repository: str, _images: int) -> dict[str, Any]:
    manifest = BLOBS.manifest(f"{repository}/{i}")
    return {
        "repositoryName": repository,
        "imageManifest": manifest,
        "imageManifestMediaType": OCI_MANIFEST,
        "imageTag": f"p{i}",
        "imageDigest": "sha256:" + hashlib.sha256(manifest.encode()).hexdigest(),
    }


CALLS: dict[str, Call] = {
    call.name: call
    for call in (
        Call(
            "describe_images",
            "DescribeImages",
            lambda i, repository, images: {"repositoryName": repository, "imageIds": [{"imageTag": f"v{i % images}"}]},
            title="DescribeImages of one image by tag",
        ),
        Call(
            "describe_images_page",
            "DescribeImages",
            lambda i, repository, images: {"repositoryName": repository, "maxResults": 20},
            title="DescribeImages, a page of 20",
        ),
        Call(
            "batch_get_image",
            "BatchGetImage",
            lambda i, repository, images: {"repositoryName": repository, "imageIds": [{"imageTag": f"v{i % images}"}]},
            title="BatchGetImage of one image by tag",
        ),
        Call(
            "list_images",
            "ListImages",
            lambda i, repository, images: {"repositoryName": repository, "maxResults": 100},
            title="ListImages, a page of up to 100",
        ),
        Call(
            "get_authorization_token",
            "GetAuthorizationToken",
            lambda i, repository, images: {},
            title="GetAuthorizationToken",
        ),
        Call("put_image", "PutImage", _put_image_params, distinct=True, title="PutImage of a new image"),
    )
}


# -- servers --------------------------------------------------------------------------------------------------


class MotoServer(Target):
    """``moto_server`` (moto's Flask app on werkzeug's threaded server) on a free loopback port."""

    name = "moto"
    ready_path = "/moto-api/"

    def __init__(self, workdir: Path, binary: str) -> None:
        super().__init__(workdir)
        self.binary = binary

    def argv(self) -> list[str]:
        return [self.binary, "-H", LOOPBACK, "-p", str(self.port)]

    def environment(self) -> dict[str, str]:
        # The AWS_* variables of the caller's shell must not change moto's behaviour (account, region, auth).
        return {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MOTO_"))}

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "version": _package_version("moto"),
            "auth": "none (moto does not verify signatures)",
            "state": "in memory",
        }


def _package_version(name: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout.strip()


def ensure_moto(*, install: bool) -> str | None:
    """The ``moto_server`` program, pip-installing moto[server] when it is missing."""
    beside = Path(sys.executable).with_name("moto_server")
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None and install:
        log(f"installing PyPI package: {MOTO_PACKAGE}")
        _pip_install([MOTO_PACKAGE])
        found = str(beside) if beside.exists() else shutil.which("moto_server")
    return found


def ecr_client(url: str, *, pool: int = 16) -> Any:
    """The boto3 ECR client every call goes through, the same for both servers (keep-alive, no retries)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=ROOT_ACCESS_KEY_ID, aws_secret_access_key=ROOT_SECRET_ACCESS_KEY, region_name=REGION
    ).client(
        "ecr",
        endpoint_url=url,
        config=Config(
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 1, "mode": "standard"},
            max_pool_connections=pool,
            tcp_keepalive=True,
        ),
    )


def prepare_repository(target: Target, client: Any, name: str, images: int) -> None:
    """``name`` with ``images`` images tagged v0…v(n-1): blobs through the data plane (ecrd), manifests by PutImage."""
    client.create_repository(repositoryName=name)
    if isinstance(target, Ecrd):
        with Registry(target.host, target.authorization) as registry:
            registry.push_bytes(name, BLOBS.config)
            registry.push_bytes(name, BLOBS.layer)
    for i in range(images):
        manifest = BLOBS.manifest(f"{name}/v{i}")
        client.put_image(
            repositoryName=name,
            imageManifest=manifest,
            imageManifestMediaType=OCI_MANIFEST,
            imageTag=f"v{i}",
            imageDigest="sha256:" + hashlib.sha256(manifest.encode()).hexdigest(),
        )


# -- requests made by boto3, captured before sending ----------------------------------------------------------


class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def _capture(request: Any, **_kwargs: Any) -> None:
    raise _Captured(request)


class RequestSigner:
    """Requests exactly as a boto3 client would send them (serialized and SigV4-signed by botocore)."""

    def __init__(self, url: str) -> None:
        self.client = ecr_client(url)
        self.client.meta.events.register_first("before-send.ecr.*", _capture)
        self.host = url.split("://", 1)[1]

    def wire(self, operation: str, params: dict[str, Any]) -> bytes:
        method = getattr(self.client, _snake(operation))
        try:
            method(**params)
        except _Captured as captured:
            return _http_bytes(captured.request, self.host)
        raise RuntimeError(f"{operation}: botocore sent nothing to capture")


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


def _http_bytes(request: Any, host: str) -> bytes:
    """An HTTP/1.1 request as urllib3 would put it on the wire for botocore's prepared ``request``."""
    path = request.url.split(host, 1)[1] or "/"
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    headers = {"Host": host, **{k: v for k, v in request.headers.items()}}
    headers.setdefault("Content-Length", str(len(body)))
    lines = [f"{request.method} {path} HTTP/1.1", *(f"{k}: {_text(v)}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


# -- load: wrk replaying captured requests --------------------------------------------------------------------

_WRK_SCRIPT = """\
local requests = {{}}
local count = 0
local next_index = 0
init = function(args)
  local file = assert(io.open("{path}", "rb"))
  local data = file:read("*a")
  file:close()
  local position = 1
  while position <= #data do
    local stop = string.find(data, "\\0", position, true)
    count = count + 1
    requests[count] = string.sub(data, position, stop - 1)
    position = stop + 1
  end
end
request = function()
  next_index = next_index % count + 1
  return requests[next_index]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    client_cpu_seconds: float
    detail: dict[str, Any] = field(default_factory=dict)


def wrk_load(wrk: str, url: str, requests: list[bytes], workdir: Path, connections: int, seconds: float) -> LoadResult:
    """wrk (one thread: it is not the bottleneck) replaying ``requests`` in turn on ``connections`` connections."""
    data = workdir / f"requests-{time.monotonic_ns()}.bin"
    data.write_bytes(b"".join(request + b"\0" for request in requests))
    script = data.with_suffix(".lua")
    script.write_text(_WRK_SCRIPT.format(path=data))
    argv = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", f"{WRK_TIMEOUT_SECONDS}s"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([*argv, "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    data.unlink()
    script.unlink()
    for line in done.stdout.splitlines():
        if line.startswith("WRKJSON "):
            parsed = json.loads(line.removeprefix("WRKJSON "))
            errors = sum(parsed[key] for key in ("connect", "read", "write", "status", "timeout"))
            return LoadResult(
                requests=parsed["requests"],
                seconds=parsed["duration_us"] / 1e6,
                p50_ms=parsed["p50_us"] / 1000,
                p99_ms=parsed["p99_us"] / 1000,
                errors=errors,
                client_cpu_seconds=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
                detail=parsed,
            )
    raise RuntimeError(f"wrk printed no summary (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def boto3_load(url: str, call: Call, repository: str, images: int, connections: int, seconds: float) -> LoadResult:
    """``connections`` threads, each with its own boto3 client, calling for ``seconds``."""
    clients = [ecr_client(url, pool=1) for _ in range(connections)]
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    serial = iter(range(10**9))
    lock = threading.Lock()
    start_gate = threading.Barrier(connections + 1)
    deadline = 0.0

    def work(index: int) -> None:
        method = getattr(clients[index], _snake(call.operation))
        start_gate.wait()
        while time.monotonic() < deadline:
            with lock:
                i = next(serial)
            params = call.params(i, repository, images)
            began = time.perf_counter()
            try:
                method(**params)
            except Exception:  # a failed call is counted, not fatal
                errors[index] += 1
            latencies[index].append(time.perf_counter() - began)

    threads = [threading.Thread(target=work, args=(index,), daemon=True) for index in range(connections)]
    for thread in threads:
        thread.start()
    cpu0 = time.process_time()
    deadline = time.monotonic() + seconds
    began = time.perf_counter()
    start_gate.wait()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu0
    every = sorted(latency for per_thread in latencies for latency in per_thread)
    return LoadResult(
        requests=len(every),
        seconds=elapsed,
        p50_ms=_percentile(every, 50) * 1000,
        p99_ms=_percentile(every, 99) * 1000,
        errors=sum(errors),
        client_cpu_seconds=cpu,
    )


def _percentile(ordered: list[float], percent: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, math.ceil(len(ordered) * percent / 100) - 1)]


# -- the run --------------------------------------------------------------------------------------------------


@dataclass
class Side:
    """One server under test, with what the benchmark keeps for it."""

    target: Target
    signer: RequestSigner
    client: Any
    """A plain boto3 client of this server, for preparing state."""
    put_rate: float = 0.0
    """Calls per second of PutImage in its warm-up: sizes the pool of distinct requests to sign."""


@dataclass
class Plan:
    calls: list[Call]
    connections: list[int]
    reps: int
    seconds: float
    images: int
    driver: str


class Runner:
    def __init__(self, plan: Plan, sides: list[Side], wrk: str | None, workdir: Path) -> None:
        self.plan = plan
        self.sides = sides
        self.wrk = wrk
        self.workdir = workdir
        self.put_runs = 0

    def _fresh_repository(self) -> str:
        """An empty repository in every server for one PutImage run."""
        name = PUT_REPOSITORY.format(run=self.put_runs)
        self.put_runs += 1
        for side in self.sides:
            prepare_repository(side.target, side.client, name, 0)
        return name

    def _requests(self, side: Side, call: Call, repository: str, seconds: float, connections: int) -> list[bytes]:
        if not call.distinct:
            # A few distinct requests (different tags) in turn; the same bytes are replayed.
            return [side.signer.wire(call.operation, call.params(i, repository, self.plan.images)) for i in range(64)]
        rate = side.put_rate or 200.0
        count = min(MAX_PUT_POOL, int(rate * seconds * 2.0) + 50 * connections + 200)
        return [side.signer.wire(call.operation, call.params(i, repository, self.plan.images)) for i in range(count)]

    def load(self, side: Side, call: Call, repository: str, connections: int, seconds: float) -> LoadResult:
        if self.plan.driver == "boto3":
            return boto3_load(side.target.url, call, repository, self.plan.images, connections, seconds)
        assert self.wrk is not None
        requests = self._requests(side, call, repository, seconds, connections)
        result = wrk_load(self.wrk, side.target.url, requests, self.workdir, connections, seconds)
        if call.distinct and result.requests > len(requests):
            raise RuntimeError(f"{side.target.name} {call.name}: {result.requests} calls, only {len(requests)} signed")
        return result

    def warm_up(self, call: Call) -> None:
        for side in self.sides:
            repository = self._fresh_repository() if call.distinct else READ_REPOSITORY
            result = self.load(side, call, repository, max(self.plan.connections), 1.0)
            if call.distinct:
                side.put_rate = result.requests / max(result.seconds, 0.1)
            if result.errors:
                log(f"  warm-up {side.target.name} {call.name}: {result.errors} errors of {result.requests}")

    def run(self, call: Call, connections: int, profiler: Callable[[Side, str], Any] | None) -> dict[str, Any]:
        record: dict[str, Any] = {
            "call": call.name,
            "operation": call.operation,
            "title": call.title,
            "connections": connections,
            "runs": {side.target.name: [] for side in self.sides},
        }
        for rep in range(self.plan.reps):
            order = self.sides if rep % 2 == 0 else list(reversed(self.sides))
            repository = self._fresh_repository() if call.distinct else READ_REPOSITORY
            for side in order:
                profiling = profiler(side, f"{call.name}_c{connections}") if profiler is not None else None
                if profiling is not None:
                    profiling.__enter__()
                    time.sleep(0.5)  # py-spy attaches to every process before the load starts
                try:
                    with side.target.meter() as meter:
                        result = self.load(side, call, repository, connections, self.plan.seconds)
                finally:
                    if profiling is not None:
                        profiling.__exit__(None, None, None)
                if result.requests == 0 or result.errors > result.requests * 0.01:
                    raise RuntimeError(
                        f"{side.target.name} {call.name}: {result.requests} calls, {result.errors} errors"
                    )
                usage = meter.usage
                run = {
                    "rep": rep,
                    "rate": result.requests / result.seconds,
                    "p50_ms": result.p50_ms,
                    "p99_ms": result.p99_ms,
                    "calls": result.requests,
                    "errors": result.errors,
                    "seconds": result.seconds,
                    "server_cpu_ms_per_call": usage.cpu_seconds * 1000 / result.requests,
                    "client_cpu_ms_per_call": result.client_cpu_seconds * 1000 / result.requests,
                    "server_cpu_seconds": round(usage.cpu_seconds, 3),
                    "peak_rss_mb": round(usage.peak_rss / MB, 1),
                    "cpu_by_thread": usage.threads,
                }
                record["runs"][side.target.name].append(run)
                log(
                    f"  rep {rep + 1}/{self.plan.reps} {side.target.name:<5} c{connections:<3} "
                    f"{run['rate']:8.0f}/s p50={result.p50_ms:.2f}ms p99={result.p99_ms:.2f}ms "
                    f"cpu={run['server_cpu_ms_per_call']:.3f}ms/call client={run['client_cpu_ms_per_call']:.3f}ms/call"
                )
        summarize_record(record)
        return record


def summarize_record(record: dict[str, Any]) -> None:
    summary: dict[str, dict[str, Any]] = {}
    for name, runs in record["runs"].items():
        keys = ("rate", "p50_ms", "p99_ms", "server_cpu_ms_per_call", "client_cpu_ms_per_call")
        summary[name] = {key: Summary.of([run[key] for run in runs]).as_json() for key in keys if runs}
    record["summary"] = summary
    if "ecrd" in summary and "moto" in summary and summary["moto"]:
        ecrd, moto = summary["ecrd"], summary["moto"]
        ratio = ecrd["rate"]["median"] / moto["rate"]["median"]
        record["comparison"] = {
            "rate_ratio": ratio,
            "cpu_ratio": ecrd["server_cpu_ms_per_call"]["median"] / moto["server_cpu_ms_per_call"]["median"],
            "p99_ratio": ecrd["p99_ms"]["median"] / moto["p99_ms"]["median"],
            "goal": f"≥ {GOAL:g}×",
            "met": ratio >= GOAL,
        }


# -- output ---------------------------------------------------------------------------------------------------


def _fig(summary: dict[str, Any] | None, digits: int = 0) -> str:
    if not summary:
        return "—"
    return f"{summary['median']:.{digits}f} ({summary['min']:.{digits}f}–{summary['max']:.{digits}f})"


def table(records: list[dict[str, Any]]) -> str:
    header = [
        "call",
        "conn.",
        "ecrd calls/s",
        "moto calls/s",
        "ecrd ÷ moto",
        "ecrd p50 / p99 ms",
        "moto p50 / p99 ms",
        "server CPU ms/call ecrd / moto",
        "client CPU ms/call ecrd / moto",
        "goal ≥ 2×",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in records:
        summary = record.get("summary", {})
        ecrd, moto = summary.get("ecrd", {}), summary.get("moto", {})
        comparison = record.get("comparison", {})

        def latency(side: dict[str, Any]) -> str:
            if not side:
                return "—"
            return f"{side['p50_ms']['median']:.2f} / {side['p99_ms']['median']:.2f}"

        def cpu(side: dict[str, Any], key: str = "server_cpu_ms_per_call") -> str:
            return f"{side[key]['median']:.3f}" if side else "—"

        ratio = f"**{comparison['rate_ratio']:.2f}×**" if comparison else "—"
        verdict = ("met" if comparison["met"] else "GAP") if comparison else ""
        lines.append(
            "| "
            + " | ".join(
                [
                    record["title"],
                    str(record["connections"]),
                    _fig(ecrd.get("rate")),
                    _fig(moto.get("rate")),
                    ratio,
                    latency(ecrd),
                    latency(moto),
                    f"{cpu(ecrd)} / {cpu(moto)}",
                    f"{cpu(ecrd, 'client_cpu_ms_per_call')} / {cpu(moto, 'client_cpu_ms_per_call')}",
                    verdict,
                ]
            )
            + " |"
        )
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/run.py --moto", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repetitions of 3 s: about 3 minutes")
    parser.add_argument("--reps", type=int, help="repetitions (default 3; 2 with --quick)")
    parser.add_argument("--seconds", type=float, help="seconds per measured run (default 5; 3 with --quick)")
    parser.add_argument("--connections", default="4,16", help="concurrent clients, comma-separated (%(default)s)")
    parser.add_argument("--images", type=int, default=50, help="images in the repository read (%(default)s)")
    parser.add_argument("--only", help="comma-separated calls: " + ", ".join(CALLS))
    parser.add_argument(
        "--driver",
        choices=("raw", "boto3"),
        default="raw",
        help="raw: boto3's signed requests replayed by wrk (default); boto3: boto3 clients in threads",
    )
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="ecrd --workers (%(default)s)")
    parser.add_argument("--ecrd-src", type=Path, help="measure the ecrd of this src/ folder instead of the installed")
    parser.add_argument("--label", default="", help="free text recorded with the results")
    parser.add_argument("--no-moto", action="store_true", help="run ecrd alone")
    parser.add_argument("--profile", action="store_true", help="ecrd alone, one repetition, under py-spy")
    parser.add_argument("--json", type=Path, help="also write the JSON record here (always: bench/results/)")
    parser.add_argument(
        "--no-install", action="store_true", help="do not install moto[server] (pip) or wrk (apt) when missing"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and the server logs")
    return parser.parse_args(argv)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    reps = 1 if args.profile else args.reps or (2 if args.quick else 3)
    seconds = args.seconds or (3.0 if args.quick else 5.0)
    wanted = [name.strip() for name in (args.only or ",".join(CALLS)).split(",") if name.strip()]
    unknown = [name for name in wanted if name not in CALLS]
    if unknown:
        log(f"unknown calls {unknown}; known: {', '.join(CALLS)}")
        return 2
    plan = Plan(
        calls=[CALLS[name] for name in wanted],
        connections=[int(c) for c in args.connections.split(",")],
        reps=reps,
        seconds=seconds,
        images=args.images,
        driver=args.driver,
    )
    if importlib.util.find_spec("boto3") is None:
        log("boto3 is needed: pip install boto3")
        return 2
    wrk = _which("wrk")
    if plan.driver == "raw" and wrk is None and not args.no_install and _apt_install(["wrk"]):
        wrk = _which("wrk")
    if plan.driver == "raw" and wrk is None:
        log("the raw driver needs wrk: apt-get install wrk (or use --driver boto3)")
        return 2
    moto_binary = None if args.no_moto or args.profile else ensure_moto(install=not args.no_install)
    if not (args.no_moto or args.profile) and moto_binary is None:
        log(f"moto_server is missing: pip install '{MOTO_PACKAGE}'")
        return 2
    py_spy = _py_spy() if args.profile else None
    if args.profile and py_spy is None:
        log("--profile needs py-spy: pip install py-spy")
        return 2

    signal.signal(signal.SIGTERM, _interrupt)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="ecrd-moto-bench-"))
    targets: list[Target] = []
    started_at = time.monotonic()
    records: list[dict[str, Any]] = []
    try:
        source = args.ecrd_src.resolve() if args.ecrd_src else None
        targets.append(Ecrd(workdir / "ecrd", workers=args.workers, source=source))
        if moto_binary is not None:
            targets.append(MotoServer(workdir / "moto", moto_binary))
        sides: list[Side] = []
        for target in targets:
            log(f"starting {target.name}")
            target.start()
            sides.append(Side(target, RequestSigner(target.url), ecr_client(target.url)))
        for side in sides:
            log(f"{side.target.name}: {plan.images} images in {READ_REPOSITORY}")
            prepare_repository(side.target, side.client, READ_REPOSITORY, plan.images)
        runner = Runner(plan, sides, wrk, workdir)
        profile_dir = RESULTS / f"profile-moto-{stamp}" if args.profile else None

        def profiler(side: Side, name: str) -> Profiler | None:
            if profile_dir is None or py_spy is None:
                return None
            return Profiler(py_spy, side.target.pid, profile_dir / f"{name}.txt")

        for call in plan.calls:
            log(f"{call.name}: {call.title}")
            runner.warm_up(call)
            for connections in plan.connections:
                records.append(runner.run(call, connections, profiler if args.profile else None))
        if profile_dir is not None:
            for raw in sorted(profile_dir.glob("*.txt")):
                raw.with_suffix(".summary").write_text(summarize(raw))
            log(f"profiles: {profile_dir}")
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for target in targets:
            target.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    output = {
        "mode": "moto",
        "label": args.label,
        "started": stamp,
        "seconds_total": round(time.monotonic() - started_at, 1),
        "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
        "cores": os.cpu_count(),
        "plan": {
            "driver": plan.driver,
            "reps": plan.reps,
            "seconds": plan.seconds,
            "connections": plan.connections,
            "images": plan.images,
            "calls": [call.name for call in plan.calls],
        },
        "targets": [target.describe() for target in targets],
        "versions": {name: _package_version(name) for name in ("boto3", "botocore", "moto")},
        "records": records,
    }
    text = table(records)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{stamp}-moto{'-profile' if args.profile else ''}.json"
    path.write_text(json.dumps(output, indent=2, default=str))
    if args.json is not None:
        args.json.write_text(json.dumps(output, indent=2, default=str))
    log(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
