"""The vulnerability database: importing OSV advisory data into the metadata store, its status, and the
advisory lookup scans read through.

Advisories live in the metadata store so every ``ecrd serve`` and worker process scans against the same data.
Imports stream: records are read one at a time from JSON files, JSON Lines files, folders, or the ``all.zip``
archives osv.dev publishes per ecosystem, and written in bounded batches, one transaction each. A record
replaces the stored one with the same id only when its ``modified`` time is newer, so importing the same data
twice changes nothing.

Look-ups are cached per process against the advisory generation (``ecrd.metadata.vulndb``), which every
transaction that changes advisory data bumps: a scan reads the generation once, when it starts
(``snapshot``), and uses only entries cached under that generation, so an import by any process or node is
seen by the next scan everywhere. A scan also learns whether the database holds any advisory at all: a scan
against an empty database finds nothing, and must not pass for a clean one.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

from sqlalchemy.exc import IntegrityError

from ecrd.domain.caches import BoundedCache
from ecrd.domain.progress import Progress, no_progress
from ecrd.errors import VulnerabilityDataInvalid
from ecrd.metadata import jobs as job_queries
from ecrd.metadata import vulndb as queries
from ecrd.metadata.inventories import continuous_scanning_configured
from ecrd.metadata.store import MetadataStore
from ecrd.metadata.vulndb import ImportRow, StoredAdvisory
from ecrd.scanner.advisories import OsvRecord, normalize_package_name, record_packages

DATA_SUFFIXES: Final = (".json", ".jsonl", ".zip")
BATCH_SIZE: Final = 500
# One record is a few KiB; a zip member far beyond that is not an OSV record (or is a zip bomb).
MAX_ZIP_MEMBER: Final = 64 * 1024 * 1024
MAX_REPORTED_ERRORS: Final = 20
MAX_ID_LENGTH: Final = 128
MAX_ECOSYSTEM_LENGTH: Final = 100
MAX_NAME_LENGTH: Final = 255
# (generation, ecosystem, package name) entries per process; those of older generations age out unused.
CACHE_ENTRIES: Final = 8192
# The job that re-matches the stored inventories of continuously scanned images, queued by every import that
# changed advisories (``ecrd.services.rematch``).
REMATCH_JOB: Final = "rematch-findings"


@dataclass(frozen=True)
class ImportReport:
    sources: tuple[str, ...]
    records: int  # records read
    inserted: int
    updated: int
    unchanged: int  # already stored with the same or a newer `modified`
    skipped: int  # unreadable or not OSV
    errors: tuple[str, ...]  # the first few reasons records were skipped
    seconds: float
    rematch_queued: bool = False  # the images under continuous scanning will be re-matched in the background


@dataclass(frozen=True)
class EcosystemCount:
    ecosystem: str
    records: int


@dataclass(frozen=True)
class VulnDbStatus:
    records: int
    ecosystems: tuple[EcosystemCount, ...]
    newest_modified: float | None  # epoch seconds of the most recently modified record
    last_import_at: float | None
    last_import_source: str | None

    @property
    def empty(self) -> bool:
        """No advisory stored: every scan finds nothing, whatever the image holds."""
        return self.records == 0


@dataclass
class _Tally:
    records: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(reason)


def parse_osv_time(value: Any) -> float:
    """RFC 3339 (``2023-11-03T16:28:41.53834Z``) → epoch seconds. Raises ValueError."""
    if not isinstance(value, str) or not value:
        raise ValueError("missing modified time")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"modified time {value!r} has no time zone")
    return parsed.timestamp()


def _stored(record: OsvRecord) -> StoredAdvisory:
    """The row of a record. Raises ValueError when it cannot be stored."""
    advisory_id = record.get("id")
    if not isinstance(advisory_id, str) or not advisory_id or len(advisory_id) > MAX_ID_LENGTH:
        raise ValueError("no usable id")
    modified = parse_osv_time(record.get("modified"))
    packages = frozenset(
        (ecosystem, name)
        for ecosystem, name in record_packages(record)
        if len(ecosystem) <= MAX_ECOSYSTEM_LENGTH and len(name) <= MAX_NAME_LENGTH
    )
    return StoredAdvisory(
        advisory_id,
        modified,
        bool(record.get("withdrawn")),
        json.dumps(record, ensure_ascii=False, separators=(",", ":")),
        packages,
    )


@dataclass(frozen=True)
class AdvisorySnapshot:
    """The advisory database as one scan sees it: the scanner's ``AdvisoryLookup`` at one generation."""

    generation: int
    newest_modified: float | None  # epoch seconds of the most recently modified record; None: no records
    database: VulnerabilityDatabase = field(repr=False, compare=False)

    @property
    def empty(self) -> bool:
        return self.newest_modified is None

    def lookup(self, ecosystem: str, names: Collection[str]) -> list[dict[str, Any]]:
        return self.database.lookup_at(self.generation, ecosystem, names)


class VulnerabilityDatabase:
    """Imports advisory data and answers the scanner's ``AdvisoryLookup`` from the metadata store."""

    def __init__(
        self, store: MetadataStore, *, clock: Callable[[], float] = time.time, batch_size: int = BATCH_SIZE
    ) -> None:
        self._store = store
        self._clock = clock
        self._batch_size = batch_size
        self._cache: BoundedCache[tuple[int, str, str], tuple[dict[str, Any], ...]] = BoundedCache(CACHE_ENTRIES)

    # -- import ------------------------------------------------------------------------------------------

    def import_paths(self, paths: Iterable[str | Path], progress: Progress = no_progress) -> ImportReport:
        """Import every record under ``paths``. Raises ``VulnerabilityDataInvalid`` for a path that does not
        exist or a file that is not .json, .jsonl or .zip (before anything is written). ``progress`` hears of
        the records read ("records", no total known ahead: archives are read as they stream)."""
        started = time.monotonic()
        sources = [Path(p) for p in paths]
        for source in sources:
            if not source.exists():
                raise VulnerabilityDataInvalid(f"{source}: no such file or folder")
            if source.is_file() and not source.name.lower().endswith(DATA_SUFFIXES):
                raise VulnerabilityDataInvalid(f"{source}: not an OSV .json, .jsonl or .zip file")
        tally = _Tally()
        rematch_queued = False
        batch: dict[str, StoredAdvisory] = {}
        seen = 0
        progress("records", seen, None)
        for origin, item in self._read(sources):
            seen += 1
            progress("records", seen, None)
            if isinstance(item, str):
                tally.skip(f"{origin}: {item}")
                continue
            tally.records += 1
            try:
                advisory = _stored(item)
            except ValueError as exc:
                tally.skip(f"{origin}: {exc}")
                continue
            earlier = batch.get(advisory.id)
            if earlier is not None:
                # The same id twice in one batch: the newer wins here as it would across batches.
                tally.unchanged += 1
                if earlier.modified >= advisory.modified:
                    continue
            batch[advisory.id] = advisory
            if len(batch) >= self._batch_size:
                self._flush(batch, tally)
                batch = {}
        self._flush(batch, tally)
        with self._store.write() as conn:
            if (tally.inserted or tally.updated) and continuous_scanning_configured(conn):
                # Queued with the import's record, so a crash cannot lose it: the images under continuous
                # scanning are re-matched in the background, in batches, by whichever process claims the job.
                job_queries.enqueue(conn, REMATCH_JOB, {"after": None}, self._clock())
                rematch_queued = True
            queries.record_import(
                conn,
                ImportRow(
                    source=", ".join(str(s) for s in sources),
                    imported_at=self._clock(),
                    records=tally.records,
                    inserted=tally.inserted,
                    updated=tally.updated,
                    unchanged=tally.unchanged,
                    skipped=tally.skipped,
                ),
            )
        return ImportReport(
            tuple(str(s) for s in sources),
            tally.records,
            tally.inserted,
            tally.updated,
            tally.unchanged,
            tally.skipped,
            tuple(tally.errors),
            time.monotonic() - started,
            rematch_queued,
        )

    def _flush(self, batch: dict[str, StoredAdvisory], tally: _Tally) -> None:
        if not batch:
            return
        for attempt in range(2):
            try:
                with self._store.write() as conn:
                    stored = queries.modified_times(conn, batch.keys())
                    new = [a for a in batch.values() if a.id not in stored]
                    newer = [a for a in batch.values() if a.id in stored and a.modified > stored[a.id]]
                    queries.insert_advisories(conn, new)
                    queries.replace_advisories(conn, newer)
                    if new or newer:
                        queries.bump_generation(conn)
            except IntegrityError:
                # Another import inserted one of these ids since we looked; look again.
                if attempt == 1:
                    raise
                continue
            tally.inserted += len(new)
            tally.updated += len(newer)
            tally.unchanged += len(batch) - len(new) - len(newer)
            return

    def _read(self, sources: list[Path]) -> Iterator[tuple[str, dict[str, Any] | str]]:
        """(where, record) for every record, or (where, why not) for what is not one; one at a time."""
        for source in sources:
            if source.is_dir():
                for child in sorted(source.rglob("*")):
                    if child.is_file() and child.name.lower().endswith(DATA_SUFFIXES):
                        yield from self._read_file(child)
            else:
                yield from self._read_file(source)

    def _read_file(self, path: Path) -> Iterator[tuple[str, dict[str, Any] | str]]:
        name = path.name.lower()
        if name.endswith(".zip"):
            try:
                archive = zipfile.ZipFile(path)
            except zipfile.BadZipFile as exc:
                yield str(path), f"not a zip archive ({exc})"
                return
            with archive:
                for info in archive.infolist():
                    origin = f"{path}!{info.filename}"
                    if info.is_dir() or not info.filename.lower().endswith(".json"):
                        continue
                    if info.file_size > MAX_ZIP_MEMBER:
                        yield origin, f"larger than {MAX_ZIP_MEMBER} bytes"
                        continue
                    with archive.open(info) as member:
                        yield from _json_document(origin, member)
        elif name.endswith(".jsonl"):
            with path.open("rb") as lines:
                for number, line in enumerate(lines, 1):
                    if line.strip():
                        yield from _json_document(f"{path}:{number}", line)
        else:
            with path.open("rb") as document:
                yield from _json_document(str(path), document)

    # -- status ------------------------------------------------------------------------------------------

    def status(self) -> VulnDbStatus:
        with self._store.read() as conn:
            total = queries.count_records(conn)
            ecosystems = queries.records_per_ecosystem(conn)
            newest = queries.newest_modified(conn)
            last = queries.last_import(conn)
        return VulnDbStatus(
            records=total,
            ecosystems=tuple(EcosystemCount(ecosystem, count) for ecosystem, count in ecosystems),
            newest_modified=newest,
            last_import_at=last.imported_at if last else None,
            last_import_source=last.source if last else None,
        )

    # -- the scanner's AdvisoryLookup --------------------------------------------------------------------

    def snapshot(self) -> AdvisorySnapshot:
        """The database as a scan starting now sees it. The newest record's time is read before the
        generation: the data of that generation includes everything the time was read from, so a snapshot
        never claims newer data (or more data) than its look-ups use."""
        with self._store.read() as conn:
            newest = queries.newest_modified(conn)
            generation = queries.generation(conn)
        return AdvisorySnapshot(generation, newest, self)

    def lookup(self, ecosystem: str, names: Collection[str]) -> list[dict[str, Any]]:
        """``lookup_at`` the current generation (one query for it): for callers outside a scan."""
        with self._store.read() as conn:
            generation = queries.generation(conn)
        return self.lookup_at(generation, ecosystem, names)

    def lookup_at(self, generation: int, ecosystem: str, names: Collection[str]) -> list[dict[str, Any]]:
        """Every stored record filed under one of ``names`` in ``ecosystem``, each once, by id. ``generation``
        was read before this call: what a concurrent import changes meanwhile is then filed under the older
        generation, which no later scan uses. The records are shared with the cache: callers read them and
        must not change them."""
        wanted = {normalize_package_name(ecosystem, name) for name in names}
        found: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for name in wanted:
            cached = self._cache.get((generation, ecosystem, name))
            if cached is None:
                missing.append(name)
            else:
                found.update((record["id"], record) for record in cached)
        if missing:
            with self._store.read() as conn:
                texts = queries.records_for(conn, ecosystem, missing)
            parsed: dict[str, dict[str, Any]] = {}
            for name, records in texts.items():
                loaded = []
                for text in records:
                    record = json.loads(text)
                    record = parsed.setdefault(record["id"], record)
                    loaded.append(record)
                    found[record["id"]] = record
                # Empty answers are cached too: most packages have no advisory, and the generation, not a
                # timeout, decides when "none" stops being true.
                self._cache.put((generation, ecosystem, name), tuple(loaded))
        return [found[advisory_id] for advisory_id in sorted(found)]


def _json_document(origin: str, source: IO[bytes] | bytes) -> Iterator[tuple[str, dict[str, Any] | str]]:
    """The records of one JSON text: a record object, or a list of them."""
    try:
        document = json.loads(source) if isinstance(source, bytes) else json.load(source)
    except (ValueError, UnicodeDecodeError) as exc:
        yield origin, f"not JSON ({exc})"
        return
    items = document if isinstance(document, list) else [document]
    for index, item in enumerate(items):
        where = origin if len(items) == 1 else f"{origin}[{index}]"
        if isinstance(item, dict):
            yield where, item
        else:
            yield where, "not a JSON object"
