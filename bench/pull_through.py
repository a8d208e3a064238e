"""The first pull through ecrd's pull-through cache against a pull straight from its upstream, in the same run:
CNCF distribution (Debian's ``docker-registry``) as the upstream on a loopback port, ecrd (``--workers 2``,
authentication and at-rest encryption on, as it always runs) with a rule to it.

    python bench/pull_through.py                        # 4 layers of 64 MiB, 5 repetitions, two links
    python bench/pull_through.py --layers 8 --layer-mib 32 --reps 3 --links 0,200 --json OUT

Each repetition pushes a fresh image (unique content) to the upstream, then pulls it as docker does — the
manifest, then its blobs three at a time — once directly from the upstream and once through the cache (the
first pull: the cache creates the repository, imports the manifest and streams every blob while storing it),
in alternating order so that neither always finds the upstream's files in the page cache; then once more from
the cache (served from ecrd's own store). Prints the medians and the ratio cache ÷ direct. A benchmark, not a
test: it asserts nothing about timings.

``--links`` names the links to the upstream, in Mbit/s (0: loopback as it is): a throttling TCP proxy in front
of the upstream, shared by both pulls, stands in for the network to a real upstream registry. On loopback the
upstream serves from the page cache at memory speed, and the first pull is bound by what the cache must do
that a direct pull does not — write every byte to its store; over a link slower than the store, the two should
take the same time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from client import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, BlobSource, MiB, Registry
from servers import Distribution, Ecrd

PARALLEL_BLOBS = 3  # docker's max-concurrent-downloads
SOURCE = Path(__file__).resolve().parents[1] / "src"


def push_image(upstream: Registry, repository: str, layers: int, layer_size: int, seed: int) -> list[str]:
    """A fresh image of ``layers`` layers tagged ``1`` in the upstream; returns the digests of its blobs."""
    sources = [BlobSource(layer_size, seed * 1000 + n) for n in range(layers)]
    for source in sources:
        upstream.push_monolithic(repository, source)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}, "seed": seed}).encode()
    config_digest = upstream.push_bytes(repository, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": s.digest, "size": s.size} for s in sources],
        }
    ).encode()
    upstream.put_manifest(repository, "1", manifest, OCI_MANIFEST)
    return [config_digest, *(source.digest for source in sources)]


def pull_image(host: str, authorization: str | None, repository: str, blobs: list[str]) -> float:
    """Seconds to GET the manifest by tag, then every blob, ``PARALLEL_BLOBS`` at a time, each on its own
    connection."""
    started = time.perf_counter()
    with Registry(host, authorization) as registry:
        registry.request("GET", f"/v2/{repository}/manifests/1", headers={"Accept": OCI_MANIFEST})

    def pull(digest: str) -> int:
        with Registry(host, authorization) as own:
            return own.pull(repository, digest)

    with ThreadPoolExecutor(PARALLEL_BLOBS) as pool:
        received = sum(pool.map(pull, blobs))
    assert received > 0
    return time.perf_counter() - started


class ThrottledLink:
    """A TCP proxy on a free loopback port to ``target``, passing what the target sends at ``mbps`` (shared by
    every connection, as one link is) and what it is sent unthrottled."""

    def __init__(self, target: str, mbps: float) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.bytes_per_second = mbps * 1e6 / 8
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._next_free = time.monotonic()
        self._closing = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closing.set()
        self.listener.close()

    def _take(self, count: int) -> None:
        """Wait until the link has carried ``count`` more bytes."""
        with self._lock:
            start = max(time.monotonic(), self._next_free)
            self._next_free = start + count / self.bytes_per_second
            due = self._next_free
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            server = socket.create_connection(self.target, timeout=30)
            for source, sink, throttled in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._pipe, args=(source, sink, throttled), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, throttled: bool) -> None:
        # Ends at the source's end of stream (or an error), passing the end on: the sink is closed for writing.
        with contextlib.suppress(OSError):
            while data := source.recv(256 * 1024):
                if throttled:
                    self._take(len(data))
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--layer-mib", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--links", default="0,400", help="links to the upstream in Mbit/s, 0 for loopback as it is")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    parser.add_argument(
        "--ecrd-src", type=Path, default=SOURCE, help="the src folder of the ecrd to measure (default: this checkout's)"
    )
    args = parser.parse_args(argv)

    links = [float(mbps) for mbps in args.links.split(",")]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ecrd-bench-ptc-") as work:
        upstream = Distribution(Path(work) / "distribution")
        throttled = [ThrottledLink(upstream.host, mbps) if mbps else None for mbps in links]
        hosts = [link.host if link else upstream.host for link in throttled]
        cache = Ecrd(
            Path(work) / "ecrd", workers=2, source=args.ecrd_src, env={"ECRD_INSECURE_UPSTREAM": ",".join(hosts)}
        )
        upstream.start()
        try:
            cache.start()
            try:
                for index, (mbps, host) in enumerate(zip(links, hosts, strict=True)):
                    figures = run(
                        upstream.host, host, cache, f"link{index}", args.layers, args.layer_mib * MiB, args.reps
                    )
                    results.append({"link_mbps": mbps or "loopback", **figures})
                    report(results[-1], args)
            finally:
                cache.stop()
        finally:
            upstream.stop()
            for link in throttled:
                if link is not None:
                    link.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def run(
    push_host: str, upstream: str, cache: Ecrd, prefix: str, layers: int, layer_size: int, reps: int
) -> dict[str, Any]:
    """``reps`` fresh images pushed at ``push_host``, pulled from ``upstream`` (the same registry, perhaps over
    a throttled link) directly and through ``cache`` under a rule of ``prefix`` to it."""
    cache._ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=prefix, upstreamRegistryUrl=upstream)
    direct: list[float] = []
    first: list[float] = []
    cached: list[float] = []
    for rep in range(reps):
        repository = f"bench/{prefix}-image-{rep}"
        with Registry(push_host, None) as client:
            blobs = push_image(client, repository, layers, layer_size, seed=hash((prefix, rep)) & 0xFFFF)
        pulls = [
            (direct, upstream, None, repository),
            (first, cache.host, cache.authorization, f"{prefix}/{repository}"),
        ]
        for figures, host, authorization, name in pulls if rep % 2 == 0 else reversed(pulls):
            figures.append(pull_image(host, authorization, name, blobs))
        cached.append(pull_image(cache.host, cache.authorization, f"{prefix}/{repository}", blobs))
        print(
            f"rep {rep + 1}/{reps}: direct {direct[-1]:.2f} s, first through the cache {first[-1]:.2f} s, "
            f"cached {cached[-1]:.2f} s",
            file=sys.stderr,
        )
    size_mb = (layers * layer_size) / 1e6
    return {
        "image_mb": round(size_mb, 1),
        "layers": layers,
        "reps": reps,
        "direct_s": direct,
        "first_through_cache_s": first,
        "cached_s": cached,
        "first_over_direct": statistics.median(first) / statistics.median(direct),
        "cached_over_direct": statistics.median(cached) / statistics.median(direct),
    }


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"

    mb = figures["image_mb"]
    link = figures["link_mbps"]
    link = link if isinstance(link, str) else f"a {link:.0f} Mbit/s link"
    shape = f"{args.layers} × {args.layer_mib} MiB ({mb} MB), {args.reps} repetitions"
    print(f"\nFirst pull through the cache: {shape}, {link}\n")
    print("| pull | median (min–max) | MB/s | ÷ direct |")
    print("|---|---|---|---|")
    rows = [
        ("direct from the upstream", "direct_s", 1.0),
        ("first, through ecrd's cache", "first_through_cache_s", figures["first_over_direct"]),
        ("again, from ecrd's cache", "cached_s", figures["cached_over_direct"]),
    ]
    for label, key, ratio in rows:
        values = figures[key]
        print(f"| {label} | {cell(values)} | {mb / statistics.median(values):.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
