"""How ecrd's cost per request grows with the number of images: ``python bench/run.py --scale [options]``.

For each back end (SQLite, PostgreSQL) it starts ``ecrd serve``, fills it through the real API (OCI manifest
PUTs from parallel clients, on keep-alive connections; see ``scale_fill`` for the layout) to each size in turn,
and at each size measures every probe of ``scale_probe`` (latency percentiles at the client, server CPU per
request from /proc), full listings of the large repository and the database's size. It prints a Markdown table
per back end, writes the JSON record to ``bench/results/`` after every size (a run stopped early keeps what it
measured) and a PNG plot beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from cluster import postgres_database
from scale_fill import Layout, fill, seed
from scale_probe import Oci, Probes, full_listings, measure_operation, postgres_size, sqlite_size, sqlite_tables
from scale_report import backend_tables, plot
from servers import REGION, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, Ecrd
from tools import ensure_module

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
BACKENDS = ("sqlite", "postgresql")
MEMORY_FOLDER = Path("/dev/shm")
FILL_DURABILITY = """\
Commits do not wait for the disk (unless --durable): SQLite's files are in a memory file system (/dev/shm) and
the PostgreSQL database has synchronous_commit off. A flushed commit per manifest caps a fill at ~70 images/s on
this disk, which would take hours to reach 10⁶; what is measured here is the cost of reads as the registry grows,
and commit latency is measured by the push workloads of bench/run.py."""


def log(message: str) -> None:
    print(f"scale: {message}", file=sys.stderr, flush=True)


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(float(item)) for item in text.split(",") if item.strip()})
    if not sizes or sizes[0] < 20:
        raise argparse.ArgumentTypeError("sizes are numbers of images, at least 20 (e.g. 1e3,1e4)")
    return sizes


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/run.py --scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql")
    parser.add_argument("--sizes", type=_sizes, default=_sizes("1e3,1e4,1e5,1e6"), help="images, e.g. 1e3,1e4")
    parser.add_argument("--requests", type=int, default=200, help="requests per operation and size")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests before each operation")
    parser.add_argument("--clients", type=int, default=4, help="parallel pushing processes during the fill")
    parser.add_argument("--workers", type=int, default=2, help="ecrd serve --workers")
    parser.add_argument(
        "--max-minutes", type=float, default=180.0, help="stop filling after this (shared equally by the back ends)"
    )
    parser.add_argument("--quick", action="store_true", help="sizes 1e3,1e4 and 50 requests per operation")
    parser.add_argument("--seed", type=int, default=15, help="seed of the random choice of images")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the servers' data here (default: a temporary folder in /dev/shm, see FILL_DURABILITY)",
    )
    parser.add_argument(
        "--durable", action="store_true", help="fill with every commit flushed to disk (ten times slower here)"
    )
    parser.add_argument("--plot", type=Path, help="also copy the PNG plot here (e.g. docs/images/scale.png)")
    parser.add_argument("--label", default="", help="free text recorded with the results")
    parser.add_argument("--no-install", action="store_true", help="do not pip install matplotlib when missing")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = [s for s in args.sizes if s <= 10_000] or args.sizes[:1]
        args.requests = min(args.requests, 50)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown back end(s): {', '.join(sorted(unknown))}")
    return args


def _ecr_client(url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=ROOT_ACCESS_KEY_ID, aws_secret_access_key=ROOT_SECRET_ACCESS_KEY, region_name=REGION
    ).client(
        "ecr",
        endpoint_url=url,
        config=Config(connect_timeout=5, read_timeout=300, retries={"max_attempts": 1}, max_pool_connections=4),
    )


def _commits_without_flush(url: str) -> None:
    """The benchmark's own database commits without waiting for its WAL to reach the disk (new sessions)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit TO off')


def _analyze(url: str) -> None:
    """Fresh planner statistics, as autovacuum gathers them after bulk inserts. Without them (autovacuum off, or
    not yet run after a fill) PostgreSQL takes a repository of 10⁵ images for one of a few dozen and reads the
    whole rest of it for every page: 150 ms instead of 0.5 ms measured at 10⁵ images."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def _database_size(server: Ecrd, database_url: str) -> dict[str, Any]:
    if database_url:
        return postgres_size(database_url)
    path = server.data_dir / "metadata.db"
    sizes = sqlite_size(path)
    return {
        "database_bytes": sizes["file_bytes"] + sizes["wal_bytes"],
        **sizes,
        "tables": sqlite_tables(path),
    }


def run_backend(
    backend: str, args: argparse.Namespace, workdir: Path, deadline: float, record: dict[str, Any], save: Any
) -> None:
    stages: list[dict[str, Any]] = record["backends"][backend]["stages"]
    with ExitStack() as stack:
        database_url = stack.enter_context(postgres_database("scale")) if backend == "postgresql" else ""
        if database_url and not args.durable:
            _commits_without_flush(database_url)
        server = Ecrd(workdir / backend, workers=args.workers, database_url=database_url)
        log(f"{backend}: starting ecrd (--workers {args.workers})")
        server.start()
        stack.callback(server.stop)
        record["backends"][backend]["server"] = server.describe()
        ecr = _ecr_client(server.url)
        ecr.create_repository(repositoryName="scale-seed")
        seed(server.host, server.authorization)
        layout = Layout()
        oci = Oci(server.host, server.authorization)
        stack.callback(oci.close)
        rng = random.Random(args.seed)
        for size in args.sizes:
            if time.monotonic() > deadline:
                log(f"{backend}: out of time before {size:,} images")
                break
            log(f"{backend}: filling to {size:,} images with {args.clients} clients")
            result = fill(
                layout,
                size,
                host=server.host,
                authorization=server.authorization,
                create_repository=lambda name: ecr.create_repository(repositoryName=name),
                clients=args.clients,
                deadline=deadline,
                log=log,
            )
            log(
                f"{backend}: {layout.total:,} images ({result.rate:.0f} images/s; {result.repositories_created} "
                f"repositories created in {result.seconds_creating:.1f} s)"
            )
            if result.stopped_early:
                log(f"{backend}: out of time while filling; measuring what is stored ({layout.total:,} images)")
            if database_url:
                _analyze(database_url)
            probes = Probes(layout, oci, ecr, rng)
            operations = {}
            for name, run in probes.operations().items():
                measured = measure_operation(name, run, requests=args.requests, warmup=args.warmup, root=server.pid)
                operations[name] = measured.as_json()
                log(f"  {name}: p50 {measured.p50_ms:.2f} ms, server CPU {measured.server_cpu_ms:.2f} ms")
            listings = [
                listing.as_json() for listing in full_listings(probes, root=server.pid, deadline=deadline + 600)
            ]
            for listing in listings:
                log(f"  {listing['name']}: {listing['items']:,} items in {listing['seconds']:.2f} s")
            database = _database_size(server, database_url)
            stages.append(
                {
                    "images": layout.total,
                    "target": size,
                    "repositories": len(layout.all_repositories()),
                    "big_repository_images": layout.big.count,
                    "fill": {
                        "images": result.images,
                        "seconds": result.seconds,
                        "rate": result.rate,
                        "repositories_created": result.repositories_created,
                        "seconds_creating_repositories": result.seconds_creating,
                        "stopped_early": result.stopped_early,
                    },
                    "operations": operations,
                    "listings": listings,
                    "database": database,
                    "bytes_per_image": database["database_bytes"] / layout.total,
                    # What each image added since the previous size: the empty schema's fixed cost left out.
                    "marginal_bytes_per_image": (
                        (database["database_bytes"] - stages[-1]["database"]["database_bytes"])
                        / (layout.total - stages[-1]["images"])
                        if stages and layout.total > stages[-1]["images"]
                        else None
                    ),
                    "load_average": os.getloadavg(),
                }
            )
            log(f"  database: {database['database_bytes'] / 1e6:.1f} MB, {stages[-1]['bytes_per_image']:.0f} B/image")
            save()
            if result.stopped_early:
                break


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not args.no_install:
        ensure_module("matplotlib", "matplotlib", "the scale plot")
    deadline = time.monotonic() + args.max_minutes * 60
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / f"scale-{stamp}.json"
    png_path = RESULTS / f"scale-{stamp}.png"
    record: dict[str, Any] = {
        "started": stamp,
        "label": args.label,
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "options": {
            "sizes": args.sizes,
            "requests": args.requests,
            "warmup": args.warmup,
            "clients": args.clients,
            "workers": args.workers,
            "durable": args.durable,
        },
        "durability": "every commit flushed" if args.durable else FILL_DURABILITY,
        "layout": "one repository holds half the images (at most 100,000); the rest fill repositories of 10, "
        "100 and 1000 images in turn",
        "backends": {backend: {"stages": []} for backend in args.backends},
    }

    def save() -> None:
        json_path.write_text(json.dumps(record, indent=2, default=str))
        if plot(record, png_path) and args.plot is not None:
            args.plot.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(png_path, args.plot)

    temporary = args.workdir is None
    memory = None if args.durable or not MEMORY_FOLDER.is_dir() else MEMORY_FOLDER
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ecrd-scale-", dir=memory))
    try:
        for position, backend in enumerate(args.backends):
            # Each back end gets an equal share of the time left, so a slow fill cannot starve the next one.
            share = (deadline - time.monotonic()) / (len(args.backends) - position)
            try:
                run_backend(backend, args, workdir, time.monotonic() + share, record, save)
            except Exception as error:
                log(f"{backend}: failed: {error!r}")
                record["backends"][backend]["error"] = repr(error)
            save()
    finally:
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)
    for backend in args.backends:
        print(backend_tables(backend, record["backends"][backend]["stages"]))
    print(f"JSON: {json_path}\nplot: {png_path if png_path.exists() else '(matplotlib missing)'}")
    return 0
