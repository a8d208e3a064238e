"""Online garbage collection over a large registry, through the service as ``ecrd gc`` runs it: keyset batches of
the blobs table, the locks and re-checks of each batch, object deletion, then the listing of the store for
orphans. Prints throughput and the peak of Python allocations for several sizes, so that growth per blob (flat:
one batch at a time, never the whole table) can be read off.

    python bench/gc.py                        # 2,500 / 5,000 / 10,000 images (12,500 … 50,000 blobs) on SQLite
    python bench/gc.py --database postgresql://127.0.0.1/postgres --sizes 10000

A benchmark, not a test: it asserts nothing about timings. The registry is seeded with rows and small objects
directly (five blobs of its own per image, one of 100 shared base layers each; half the images deleted, so half
the blobs are garbage), since what is measured is the collection.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ecrd.app import Registry, build_registry
from ecrd.config import Settings
from ecrd.metadata.tables import blobs, manifest_references, manifests, repository_blobs
from ecrd.storage.blob_store import blob_name

BLOBS_PER_IMAGE = 5
BASE_LAYERS = 100
BATCH = 2000
OBJECT = b"\0" * 64
FIGURES = ("images", "blobs", "freed", "seconds", "blobs_per_second", "peak_mib", "peak_bytes_per_blob")


def _digest(*parts: object) -> str:
    return "sha256:" + hashlib.sha256(repr(parts).encode()).hexdigest()


def seed(registry: Registry, repository_id: int, images: int, label: str) -> int:
    """Rows and objects for ``images`` images, every other one deleted (its blobs stay, referenced by nothing);
    how many blobs."""
    old = time.time() - 86400.0
    data_dir = registry.settings.data_dir
    rows: dict[str, list[dict[str, Any]]] = {"blobs": [], "links": [], "manifests": [], "references": []}
    bases = [_digest(label, "base", n) for n in range(BASE_LAYERS)]
    count = 0

    def blob(digest: str) -> None:
        nonlocal count
        rows["blobs"].append({"digest": digest, "size": 1000, "created_at": old})
        rows["links"].append({"repository_id": repository_id, "digest": digest, "created_at": old})
        path = data_dir / blob_name(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(OBJECT)
        count += 1

    with registry.store.write() as conn:
        for digest in bases:
            blob(digest)
        for n in range(images):
            own = [_digest(label, n, b) for b in range(BLOBS_PER_IMAGE)]
            for digest in own:
                blob(digest)
            if n % 2 == 0:
                manifest = _digest(label, n, "manifest")
                rows["manifests"].append(
                    {
                        "repository_id": repository_id,
                        "digest": manifest,
                        "media_type": "application/vnd.oci.image.manifest.v1+json",
                        "payload": b"-",
                        "size": 1,
                        "image_size": 1000,
                        "pushed_at": old,
                        "registry_attached": False,
                    }
                )
                for target in [*own, bases[n % BASE_LAYERS]]:
                    rows["references"].append(
                        {
                            "repository_id": repository_id,
                            "manifest_digest": manifest,
                            "target_digest": target,
                            "kind": "blob",
                        }
                    )
            if len(rows["references"]) >= BATCH:
                _flush(conn, rows)
        _flush(conn, rows)
    return count


def _flush(conn: Any, rows: dict[str, list[dict[str, Any]]]) -> None:
    for table, key in (
        (blobs, "blobs"),
        (repository_blobs, "links"),
        (manifests, "manifests"),
        (manifest_references, "references"),
    ):
        if rows[key]:
            conn.execute(insert(table), rows[key])
            rows[key].clear()


def measure(settings: Settings, images: int) -> dict[str, float]:
    registry = build_registry(settings)
    try:
        figures: dict[str, float] = {"images": images}
        for traced in (False, True):
            # Memory in a pass of its own, on a fresh seed: tracing every allocation slows the run several times.
            label = uuid.uuid4().hex[:6]
            repository = registry.registry.create_repository(f"bench-{images}-{label}")
            figures["blobs"] = seed(registry, repository.id, images, label)
            if traced:
                tracemalloc.start()
            began = time.perf_counter()
            report = registry.gc.collect()
            seconds = time.perf_counter() - began
            if traced:
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                figures["peak_mib"] = round(peak / 2**20, 2)
                figures["peak_bytes_per_blob"] = round(peak / figures["blobs"])
            else:
                figures["freed"] = report.blobs
                figures["seconds"] = round(seconds, 3)
                figures["blobs_per_second"] = round(figures["blobs"] / seconds)
        return figures
    finally:
        registry.close()


def _fresh_postgresql(url: str) -> str:
    """A database of its own on the server of ``url``, dropped never (a benchmark leaves its data for a look)."""
    name = f"ecrd_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return str(make_url(url).set(database=name).render_as_string(hide_password=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/gc.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2500,5000,10000", help="numbers of images, comma-separated")
    parser.add_argument("--database", default="", help="a PostgreSQL URL (default: SQLite in a temporary directory)")
    args = parser.parse_args(argv)
    results = []
    for size in args.sizes.split(","):
        # A registry per size: the listing for orphans walks the whole store, which must hold this size only.
        with tempfile.TemporaryDirectory(prefix="ecrd-gc-bench-") as workdir:
            database_url = _fresh_postgresql(args.database) if args.database else ""
            settings = Settings(data_dir=Path(workdir) / "data", database_url=database_url, gc_grace_minutes=60)
            results.append(measure(settings, int(size)))
    print("| images | blobs | freed | seconds | blobs/s | peak MiB | peak bytes/blob |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print("| " + " | ".join(str(r[key]) for key in FIGURES) + " |")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
