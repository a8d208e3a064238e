"""The inventory of an image: its operating system and the packages installed in it, read from the files the
package managers leave behind (dpkg, apk, the RPM SQLite database, Python distribution metadata, npm modules).

``wanted_size`` tells the layer reader which files to keep and how large each may be; ``build_inventory`` turns
the kept files into an ``Inventory``. Each parser is a pure function of the file's bytes.
"""

from __future__ import annotations

import json
import shlex
import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from ecrd.scanner.layers import ImageFiles

KIB: Final = 1024
MIB: Final = 1024 * KIB

OS_RELEASE_PATHS: Final = ("etc/os-release", "usr/lib/os-release")
DPKG_STATUS: Final = "var/lib/dpkg/status"
DPKG_STATUS_DIR: Final = "var/lib/dpkg/status.d/"
APK_INSTALLED: Final = "lib/apk/db/installed"
RPMDB_SQLITE: Final = "var/lib/rpm/rpmdb.sqlite"

# Bounds on what is kept of each file. The package databases of large images are a few MiB; these leave room
# without letting a hostile layer fill the disk.
_LIMITS: Final = {
    "os-release": 64 * KIB,
    "dpkg": 256 * MIB,
    "apk": 256 * MIB,
    "rpmdb": 1024 * MIB,
    "python": 16 * MIB,
    "npm": 4 * MIB,
}


class PackageType(StrEnum):
    """Where a package came from, named as its Package URL type."""

    DEB = "deb"
    APK = "apk"
    RPM = "rpm"
    PYPI = "pypi"
    NPM = "npm"


@dataclass(frozen=True, order=True)
class OperatingSystem:
    """From os-release: ``name`` is its ``ID`` (``debian``, ``alpine``), the key advisories are filed under."""

    name: str
    version_id: str | None
    pretty_name: str | None = None
    id_like: tuple[str, ...] = ()


@dataclass(frozen=True, order=True)
class Package:
    """One installed package. ``source_name``/``source_version`` name what it was built from (dpkg's
    ``Source:``, apk's origin, the source RPM): distribution advisories are filed under those."""

    type: PackageType
    name: str
    version: str
    location: str
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None
    license: str | None = None


@dataclass(frozen=True)
class Inventory:
    os: OperatingSystem | None
    packages: tuple[Package, ...]
    notes: tuple[str, ...] = ()


def wanted_size(path: str) -> int | None:
    """How many bytes of ``path`` the inventory needs at most, or None when it needs none of it."""
    if path in OS_RELEASE_PATHS:
        return _LIMITS["os-release"]
    if path == DPKG_STATUS or (
        path.startswith(DPKG_STATUS_DIR) and "/" not in path[len(DPKG_STATUS_DIR) :] and not path.endswith(".md5sums")
    ):
        return _LIMITS["dpkg"]
    if path == APK_INSTALLED:
        return _LIMITS["apk"]
    if path == RPMDB_SQLITE:
        return _LIMITS["rpmdb"]
    if path.endswith(".dist-info/METADATA") or path.endswith(".egg-info/PKG-INFO") or path.endswith(".egg-info"):
        return _LIMITS["python"]
    if path.endswith("/package.json") and is_node_module_manifest(path):
        return _LIMITS["npm"]
    return None


def is_node_module_manifest(path: str) -> bool:
    """``…/node_modules/<name>/package.json`` or ``…/node_modules/@scope/<name>/package.json``: a module's own
    manifest, not one of the package.json files some modules keep in their subfolders."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[-3] == "node_modules" and not parts[-2].startswith("@"):
        return True
    return len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3].startswith("@")


def build_inventory(files: ImageFiles, scratch: Path) -> Inventory:
    notes: list[str] = [
        f"{path} ({size} bytes) is larger than the scanner reads; skipped" for path, size in files.oversized
    ]
    os_info: OperatingSystem | None = None
    for path in OS_RELEASE_PATHS:
        kept = files.get(path)
        if kept is not None:
            os_info = parse_os_release(kept.read_bytes().decode("utf-8", "replace"))
            break
    packages: list[Package] = []
    for path in files.paths():
        kept = files.get(path)
        if kept is None:
            continue
        if path == DPKG_STATUS or path.startswith(DPKG_STATUS_DIR):
            packages.extend(parse_dpkg_status(kept.read_bytes().decode("utf-8", "replace"), location=path))
        elif path == APK_INSTALLED:
            packages.extend(parse_apk_installed(kept.read_bytes().decode("utf-8", "replace"), location=path))
        elif path == RPMDB_SQLITE:
            try:
                packages.extend(parse_rpmdb_sqlite(kept.local_path(scratch), location=path))
            except (sqlite3.Error, RpmHeaderError) as exc:
                notes.append(f"{path} could not be read: {exc}")
        elif path.endswith((".dist-info/METADATA", ".egg-info/PKG-INFO", ".egg-info")):
            found = parse_python_metadata(kept.read_bytes(), location=path)
            if found is not None:
                packages.append(found)
        elif path.endswith("/package.json"):
            module = parse_package_json(kept.read_bytes(), location=path)
            if module is not None:
                packages.append(module)
    return Inventory(os=os_info, packages=tuple(sorted(set(packages))), notes=tuple(notes))


# -- os-release ------------------------------------------------------------------------------------------


def parse_os_release(text: str) -> OperatingSystem | None:
    """os-release(5): newline-separated ``KEY=value``, values optionally quoted shell-style."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            words = shlex.split(raw, comments=False, posix=True)
            value = " ".join(words)
        except ValueError:
            value = raw.strip("\"'")
        fields[key.strip()] = value
    os_id = fields.get("ID", "").lower()
    if not os_id:
        return None
    return OperatingSystem(
        name=os_id,
        version_id=fields.get("VERSION_ID") or None,
        pretty_name=fields.get("PRETTY_NAME") or None,
        id_like=tuple(fields.get("ID_LIKE", "").split()),
    )


# -- dpkg ------------------------------------------------------------------------------------------------

# dpkg's Status field is "want flag status"; these states mean the package's files are not (all) on disk.
_DPKG_ABSENT: Final = frozenset({"not-installed", "config-files", "half-installed"})


def _paragraphs(text: str) -> Iterator[dict[str, str]]:
    """Debian control-file paragraphs (also apk's installed db): ``Key: value`` lines, continuation lines
    starting with whitespace (ignored here: no field we read spans lines), paragraphs split by blank lines."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
                fields = {}
            continue
        if line[0] in " \t":
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    if fields:
        yield fields


def parse_dpkg_status(text: str, *, location: str) -> list[Package]:
    packages: list[Package] = []
    for fields in _paragraphs(text):
        name, version = fields.get("Package"), fields.get("Version")
        if not name or not version:
            continue
        # Distroless images keep one paragraph per file in status.d/, some of them without a Status field.
        status = fields.get("Status", "install ok installed").split()
        if status and status[-1] in _DPKG_ABSENT:
            continue
        source_name, source_version = name, version
        if source := fields.get("Source"):
            # "Source: openssl (1.1.1n-0+deb11u3)" when the source version differs (binNMUs), else just the name.
            source_name, _, rest = source.partition(" ")
            rest = rest.strip()
            if rest.startswith("(") and rest.endswith(")"):
                source_version = rest[1:-1].strip()
        packages.append(
            Package(
                PackageType.DEB, name, version, location, source_name, source_version, fields.get("Architecture"), None
            )
        )
    return packages


# -- apk -------------------------------------------------------------------------------------------------


def parse_apk_installed(text: str, *, location: str) -> list[Package]:
    """apk's installed database: paragraphs of one-letter keys; P name, V version, A arch, o origin (the source
    package secdb files advisories under), L license."""
    packages: list[Package] = []
    for fields in _paragraphs(text):
        name, version = fields.get("P"), fields.get("V")
        if not name or not version:
            continue
        packages.append(
            Package(
                PackageType.APK,
                name,
                version,
                location,
                fields.get("o") or name,
                version,
                fields.get("A"),
                fields.get("L"),
            )
        )
    return packages


# -- rpm -------------------------------------------------------------------------------------------------
#
# rpmdb.sqlite (rpm ≥ 4.16) keeps each package's header, as rpm's headerExport writes it, in Packages.blob. The
# format (rpm's lib/header.c and "Package header structure" in the RPM file-format docs): a big-endian int32
# count of index entries, an int32 size of the data store, then the entries (tag, type, offset, count; four
# big-endian int32 each), then the data store the offsets point into. It is small and stable, so it is read
# here rather than through a library: the Python RPM bindings need librpm, and the pure-Python packages read
# .rpm files, not database blobs.


class RpmHeaderError(ValueError):
    """A header blob that does not follow the format."""


RPMTAG_NAME: Final = 1000
RPMTAG_VERSION: Final = 1001
RPMTAG_RELEASE: Final = 1002
RPMTAG_EPOCH: Final = 1003
RPMTAG_LICENSE: Final = 1014
RPMTAG_ARCH: Final = 1022
RPMTAG_SOURCERPM: Final = 1044

_RPM_INT32: Final = 4
_RPM_STRING: Final = 6
_RPM_STRING_ARRAY: Final = 8
_RPM_I18NSTRING: Final = 9
_RPM_WANTED_TAGS: Final = frozenset(
    {RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE, RPMTAG_EPOCH, RPMTAG_LICENSE, RPMTAG_ARCH, RPMTAG_SOURCERPM}
)
_RPM_MAX_ENTRIES: Final = 0xFFFF
_RPM_MAX_DATA: Final = 256 * MIB


def parse_rpm_header(blob: bytes) -> dict[int, str | int]:
    """The string and int32 tags of a header blob that the inventory uses, by tag number."""
    if len(blob) < 8:
        raise RpmHeaderError("header blob is shorter than its preamble")
    count, data_size = struct.unpack_from(">II", blob, 0)
    if count > _RPM_MAX_ENTRIES or data_size > _RPM_MAX_DATA:
        raise RpmHeaderError("header blob declares an implausible size")
    store_start = 8 + 16 * count
    if store_start + data_size > len(blob):
        raise RpmHeaderError("header blob is truncated")
    store = blob[store_start : store_start + data_size]
    tags: dict[int, str | int] = {}
    for i in range(count):
        tag, kind, offset, n = struct.unpack_from(">iIII", blob, 8 + 16 * i)
        if tag not in _RPM_WANTED_TAGS or n == 0:
            continue
        if offset >= len(store):
            raise RpmHeaderError(f"tag {tag} points outside the data store")
        if kind == _RPM_INT32:
            if offset + 4 > len(store):
                raise RpmHeaderError(f"tag {tag} points outside the data store")
            tags[tag] = struct.unpack_from(">i", store, offset)[0]
        elif kind in (_RPM_STRING, _RPM_STRING_ARRAY, _RPM_I18NSTRING):
            # Arrays are NUL-separated; the first element is the untranslated (C locale) string.
            end = store.find(b"\0", offset)
            if end < 0:
                raise RpmHeaderError(f"tag {tag} string is not terminated")
            tags[tag] = store[offset:end].decode("utf-8", "replace")
    return tags


def parse_rpmdb_sqlite(path: Path, *, location: str) -> list[Package]:
    # immutable=1: the file is a private copy nobody writes, so sqlite3 takes no locks and writes no journal.
    uri = path.resolve().as_uri() + "?mode=ro&immutable=1"
    connection = sqlite3.connect(uri, uri=True)
    try:
        rows = connection.execute("SELECT blob FROM Packages").fetchall()
    finally:
        connection.close()
    packages: list[Package] = []
    for (blob,) in rows:
        tags = parse_rpm_header(bytes(blob))
        name, version, release = tags.get(RPMTAG_NAME), tags.get(RPMTAG_VERSION), tags.get(RPMTAG_RELEASE)
        # gpg-pubkey "packages" are the imported signing keys, not software.
        if not isinstance(name, str) or not isinstance(version, str) or name == "gpg-pubkey":
            continue
        epoch = tags.get(RPMTAG_EPOCH)
        evr = f"{epoch}:" if isinstance(epoch, int) and epoch > 0 else ""
        evr += version if not isinstance(release, str) else f"{version}-{release}"
        source_name, source_version = name, evr
        sourcerpm = tags.get(RPMTAG_SOURCERPM)
        if isinstance(sourcerpm, str) and sourcerpm.endswith(".src.rpm"):
            # "openssl-3.0.7-16.el9.src.rpm": name-version-release, the name itself may hold dashes.
            pieces = sourcerpm.removesuffix(".src.rpm").rsplit("-", 2)
            if len(pieces) == 3:
                source_name = pieces[0]
                source_version = (
                    f"{epoch}:" if isinstance(epoch, int) and epoch > 0 else ""
                ) + f"{pieces[1]}-{pieces[2]}"
        arch, license_ = tags.get(RPMTAG_ARCH), tags.get(RPMTAG_LICENSE)
        packages.append(
            Package(
                PackageType.RPM,
                name,
                evr,
                location,
                source_name,
                source_version,
                arch if isinstance(arch, str) else None,
                license_ if isinstance(license_, str) else None,
            )
        )
    return packages


# -- Python ----------------------------------------------------------------------------------------------


def parse_python_metadata(data: bytes, *, location: str) -> Package | None:
    """Core metadata (``METADATA`` of a wheel install, ``PKG-INFO`` of an egg): RFC 822 headers before the
    first blank line; the long description after it is not read."""
    headers: dict[str, str] = {}
    key = ""
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break
        if line[0] in " \t":
            # A folded header continues the previous one (a multi-line License).
            if key:
                headers[key] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            key = ""
            continue
        key = key.strip().lower()
        if key in headers:
            key = ""  # repeated headers (Classifier, Requires-Dist) are not read; keep the first of the rest
            continue
        headers[key] = value.strip()
    name, version = headers.get("name"), headers.get("version")
    if not name or not version:
        return None
    license_ = headers.get("license-expression") or headers.get("license")
    # Some projects paste their whole licence text here; that is not a licence name.
    if not license_ or license_ == "UNKNOWN" or "\n" in license_ or len(license_) > 200:
        license_ = None
    return Package(PackageType.PYPI, name, version, location, license=license_)


# -- npm -------------------------------------------------------------------------------------------------


def parse_package_json(data: bytes, *, location: str) -> Package | None:
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(manifest, dict):
        return None
    name, version = manifest.get("name"), manifest.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    # "name" is the package whose code this is, also when it was installed under an alias folder
    # (`npm install foo@npm:bar` puts bar in node_modules/foo): advisories are about that code.
    license_ = manifest.get("license")
    if isinstance(license_, dict):
        license_ = license_.get("type")
    return Package(PackageType.NPM, name, version, location, license=license_ if isinstance(license_, str) else None)
