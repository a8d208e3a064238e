"""OSV advisory records as typed values, and the index that finds them by (ecosystem, package name).

The OSV schema (ossf.github.io/osv-schema): ``affected[]`` names a package in an ecosystem and the versions it
is vulnerable in, as ``ranges[]`` of ordered ``events`` (introduced, fixed, last_affected, limit) and an explicit
``versions[]`` list. Distribution records (Debian DSA/DLA, Alpine secdb) name CVEs in ``upstream``; others in
``aliases``. ``AdvisoryLookup`` is the seam the scanner reads advisories through: ``AdvisoryIndex`` holds records
in memory; ``ecrd.services.vulndb.VulnerabilityDatabase`` reads them from the metadata store.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
EVENT_KINDS: Final[tuple[EventKind, ...]] = ("introduced", "fixed", "last_affected", "limit")

_CVE: Final = re.compile(r"CVE-\d{4}-\d{4,}")
_PEP503_SEPARATORS: Final = re.compile(r"[-_.]+")

OSV_URL: Final = "https://osv.dev/vulnerability/"

OsvRecord = Mapping[str, Any]
"""One advisory in the OSV JSON shape, as parsed from JSON."""


class AdvisoryInvalid(ValueError):
    """A record that is not a usable OSV advisory (no id, malformed affected entries)."""


class AdvisoryLookup(Protocol):
    """Where the scanner reads advisories: every record with an ``affected`` entry for one of ``names`` in
    ``ecosystem`` (names as the package manager spells them; implementations normalize them)."""

    def lookup(self, ecosystem: str, names: Collection[str]) -> Sequence[OsvRecord]: ...


@dataclass(frozen=True)
class Event:
    kind: EventKind
    version: str


@dataclass(frozen=True)
class Range:
    type: str
    events: tuple[Event, ...]


@dataclass(frozen=True)
class AffectedPackage:
    ecosystem: str
    name: str
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]


@dataclass(frozen=True)
class Reference:
    type: str
    url: str


@dataclass(frozen=True)
class SeverityVector:
    """An entry of ``severity[]``: ``type`` is CVSS_V2, CVSS_V3 or CVSS_V4 and ``score`` the vector string."""

    type: str
    score: str


@dataclass(frozen=True)
class Advisory:
    id: str
    modified: str
    aliases: tuple[str, ...]
    upstream: tuple[str, ...]
    summary: str
    details: str
    severity: tuple[SeverityVector, ...]
    database_severity: str | None
    affected: tuple[AffectedPackage, ...]
    references: tuple[Reference, ...]
    withdrawn: str | None

    @property
    def cve_ids(self) -> tuple[str, ...]:
        """The CVE identifiers this advisory is about, from ``aliases`` then ``upstream``, without repeats."""
        seen: dict[str, None] = {}
        for alias in (*self.aliases, *self.upstream, self.id):
            if _CVE.fullmatch(alias):
                seen.setdefault(alias, None)
        return tuple(seen)

    @property
    def display_name(self) -> str:
        """What a finding is called: the CVE when the advisory is about exactly one (as ECR names findings),
        else the advisory's own id (a DSA fixing five CVEs stays DSA-…, rather than hide four of them)."""
        cves = self.cve_ids
        return cves[0] if len(cves) == 1 else self.id

    @property
    def uri(self) -> str:
        """The advisory's own page: its ADVISORY reference when it has one, else its osv.dev page."""
        for reference in self.references:
            if reference.type == "ADVISORY":
                return reference.url
        return OSV_URL + self.id

    @property
    def description(self) -> str:
        return self.details or self.summary


def base_ecosystem(ecosystem: str) -> str:
    """``Debian:11`` → ``Debian``; ``PyPI`` → ``PyPI``."""
    return ecosystem.split(":", 1)[0]


def normalize_package_name(ecosystem: str, name: str) -> str:
    """The form names are indexed and looked up in. PyPI names compare as PEP 503 normalizes them
    (``Foo_Bar.baz`` is ``foo-bar-baz``); other ecosystems' names compare exactly."""
    if base_ecosystem(ecosystem) == "PyPI":
        return _PEP503_SEPARATORS.sub("-", name).lower()
    return name


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_advisory(record: OsvRecord) -> Advisory:
    """The typed advisory of an OSV record. Unknown fields are ignored; malformed ranges or events are dropped
    (a range that cannot be read can only be guessed at)."""
    advisory_id = record.get("id")
    if not isinstance(advisory_id, str) or not advisory_id:
        raise AdvisoryInvalid("an OSV record must have a string id")
    affected = tuple(_parse_affected(entry) for entry in record.get("affected") or () if isinstance(entry, dict))
    database_specific = record.get("database_specific")
    database_severity = database_specific.get("severity") if isinstance(database_specific, dict) else None
    return Advisory(
        id=advisory_id,
        modified=_text(record.get("modified")),
        aliases=_strings(record.get("aliases")),
        upstream=_strings(record.get("upstream")),
        summary=_text(record.get("summary")),
        details=_text(record.get("details")),
        severity=tuple(
            SeverityVector(entry["type"], entry["score"])
            for entry in record.get("severity") or ()
            if isinstance(entry, dict) and isinstance(entry.get("type"), str) and isinstance(entry.get("score"), str)
        ),
        database_severity=database_severity if isinstance(database_severity, str) else None,
        affected=tuple(entry for entry in affected if entry is not None),
        references=tuple(
            Reference(_text(entry.get("type")), entry["url"])
            for entry in record.get("references") or ()
            if isinstance(entry, dict) and isinstance(entry.get("url"), str)
        ),
        withdrawn=record.get("withdrawn") if isinstance(record.get("withdrawn"), str) else None,
    )


def _parse_affected(entry: Mapping[str, Any]) -> AffectedPackage | None:
    package = entry.get("package")
    if not isinstance(package, dict):
        return None
    ecosystem, name = package.get("ecosystem"), package.get("name")
    if not isinstance(ecosystem, str) or not isinstance(name, str):
        return None
    ranges: list[Range] = []
    for raw in entry.get("ranges") or ():
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            continue
        events: list[Event] = []
        for event in raw.get("events") or ():
            if not isinstance(event, dict):
                continue
            for kind in EVENT_KINDS:
                if isinstance(event.get(kind), str):
                    events.append(Event(kind, event[kind]))
        ranges.append(Range(raw["type"], tuple(events)))
    return AffectedPackage(ecosystem, name, tuple(ranges), _strings(entry.get("versions")))


def record_packages(record: OsvRecord) -> set[tuple[str, str]]:
    """The (ecosystem, normalized name) pairs a record is filed under."""
    keys: set[tuple[str, str]] = set()
    for entry in record.get("affected") or ():
        package = entry.get("package") if isinstance(entry, dict) else None
        if isinstance(package, dict):
            ecosystem, name = package.get("ecosystem"), package.get("name")
            if isinstance(ecosystem, str) and isinstance(name, str) and ecosystem and name:
                keys.add((ecosystem, normalize_package_name(ecosystem, name)))
    return keys


class AdvisoryIndex:
    """Advisory records held in memory, found by (ecosystem, package name). Used by tests and by callers that
    have a handful of records; the metadata store's ``VulnerabilityDatabase`` answers the same protocol."""

    def __init__(self, records: Iterable[OsvRecord] = ()) -> None:
        self._by_id: dict[str, OsvRecord] = {}
        self._by_package: dict[tuple[str, str], set[str]] = defaultdict(set)
        for record in records:
            self.add(record)

    def add(self, record: OsvRecord) -> None:
        advisory_id = record.get("id")
        if not isinstance(advisory_id, str):
            raise AdvisoryInvalid("an OSV record must have a string id")
        self._by_id[advisory_id] = record
        for key in record_packages(record):
            self._by_package[key].add(advisory_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def lookup(self, ecosystem: str, names: Collection[str]) -> Sequence[OsvRecord]:
        ids: set[str] = set()
        for name in names:
            ids |= self._by_package.get((ecosystem, normalize_package_name(ecosystem, name)), set())
        return [self._by_id[advisory_id] for advisory_id in sorted(ids)]
