"""Lifecycle evaluation of one large repository, through the service as a scheduled run does it: rows streamed
from the store, folded into units, evaluated, planned. Prints throughput and the peak of Python allocations for
several repository sizes, so that growth per image (flat: one small record per image) can be read off.

    python bench/lifecycle.py                        # 2,500 / 5,000 / 10,000 images on SQLite
    python bench/lifecycle.py --database postgresql://127.0.0.1/postgres --sizes 10000

A benchmark, not a test: it asserts nothing about timings. The repository is seeded with rows directly (half
the images tagged, a few indexes with children and referrers), since what is measured is the evaluation.
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

from ecrd.app import build_registry
from ecrd.config import Settings
from ecrd.metadata.tables import manifest_references, manifests, tags

POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "untagged older than a day",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": "keep 500 releases",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["release-*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 500,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 3,
                "description": "everything else: keep 2000",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2000},
                "action": {"type": "expire"},
            },
        ]
    }
)
BATCH = 2000
FIGURES = ("images", "seconds", "images_per_second", "peak_mib", "peak_bytes_per_image", "actions")
FIGURES = ("images", "seconds", "images_per_second", "peak_mib", "peak_bytes_per_image", "actions")


def _digest(*parts: object) -> str:
    return "sha256:" + hashlib.sha256(repr(parts).encode()).hexdigest()


def seed(conn: Any, repository_id: int, count: int, now: float) -> None:
    """``count`` images: every other one tagged ``release-N``, every 50th an index of two untagged children, every
    100th with a referrer."""
    rows: list[dict[str, Any]] = []
    tag_rows: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []

    def manifest(digest: str, pushed_at: float, subject: str | None = None) -> None:
        rows.append(
            {
                "repository_id": repository_id,
                "digest": digest,
                "media_type": "application/vnd.oci.image.manifest.v1+json",
                "subject_digest": subject,
                "payload": b"-",
                "size": 1,
                "image_size": 1000,
                "pushed_at": pushed_at,
                "registry_attached": False,
            }
        )

    for n in range(count):
        pushed_at = now - (count - n) * 60.0
        digest = _digest(repository_id, n)
        manifest(digest, pushed_at)
        if n % 2 == 0:
            tag_rows.append(
                {
                    "repository_id": repository_id,
                    "name": f"release-{n}",
                    "manifest_digest": digest,
                    "updated_at": pushed_at,
                }
            )
        if n % 50 == 0:
            for child in range(2):
                child_digest = _digest(repository_id, n, "child", child)
                manifest(child_digest, pushed_at)
                references.append(
                    {
                        "repository_id": repository_id,
                        "manifest_digest": digest,
                        "target_digest": child_digest,
                        "kind": "manifest",
                    }
                )
        if n % 100 == 0:
            manifest(_digest(repository_id, n, "signature"), pushed_at, subject=digest)
        if len(rows) >= BATCH:
            _flush(conn, rows, tag_rows, references)
    _flush(conn, rows, tag_rows, references)


def _flush(conn: Any, *batches: list[dict[str, Any]]) -> None:
    for table, batch in zip((manifests, tags, manifest_references), batches, strict=True):
        if batch:
            conn.execute(insert(table), batch)
            batch.clear()


def measure(settings: Settings, size: int) -> dict[str, float]:
    registry = build_registry(settings)
    try:
        name = f"bench-{size}-{uuid.uuid4().hex[:6]}"
        repository = registry.registry.create_repository(name)
        with registry.store.write() as conn:
            seed(conn, repository.id, size, time.time())
        registry.lifecycle.put_policy(repository, POLICY)
        registry.lifecycle.plan(repository, POLICY)  # warm: imports, statement compilation, pool
        began = time.perf_counter()
        planned = registry.lifecycle.plan(repository, POLICY)
        seconds = time.perf_counter() - began
        # Memory in a pass of its own: tracing every allocation slows the run several times over.
        tracemalloc.start()
        registry.lifecycle.plan(repository, POLICY)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {
            "images": size,
            "seconds": round(seconds, 3),
            "images_per_second": round(size / seconds),
            "peak_mib": round(peak / 2**20, 2),
            "peak_bytes_per_image": round(peak / size),
            "actions": len(planned),
        }
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
    parser = argparse.ArgumentParser(prog="python bench/lifecycle.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2500,5000,10000", help="repository sizes, comma-separated")
    parser.add_argument("--database", default="", help="a PostgreSQL URL (default: SQLite in a temporary directory)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ecrd-lifecycle-bench-") as workdir:
        database_url = _fresh_postgresql(args.database) if args.database else ""
        settings = Settings(data_dir=Path(workdir) / "data", database_url=database_url)
        results = [measure(settings, int(size)) for size in args.sizes.split(",")]
    print("| images | seconds | images/s | peak MiB | peak bytes/image | actions |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print("| " + " | ".join(str(r[key]) for key in FIGURES) + " |")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
