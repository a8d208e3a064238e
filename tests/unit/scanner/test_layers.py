"""Reading layers: compression by magic bytes, whiteouts in layer order, only wanted files kept, bounded."""

from __future__ import annotations

import gzip
import io
import lzma
import random
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest
import zstandard

from ecrd.errors import LayerUnreadable
from ecrd.scanner.layers import SPILL_THRESHOLD, Compression, ImageFiles, collect_files, detect_compression
from tests.support.layers import (
    directory,
    file,
    hardlink,
    layer,
    opaque,
    openers,
    symlink,
    tar_bytes,
    whiteout,
)


def want_everything(_path: str) -> int | None:
    return 10 * SPILL_THRESHOLD


def collect(tmp_path: Path, *blobs: bytes, wanted: Callable[[str], int | None] = want_everything) -> ImageFiles:
    return collect_files(openers(*blobs), wanted, tmp_path)


def contents(files: ImageFiles) -> dict[str, bytes]:
    return {path: kept.read_bytes() for path, kept in sorted(files.files.items())}


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (b"\x1f\x8b\x08\x00", Compression.GZIP),
        (b"\x28\xb5\x2f\xfd\x00", Compression.ZSTD),
        (b"\x50\x2a\x4d\x18\x00", Compression.ZSTD),  # a skippable frame first, as zstd:chunked writes
        (b"etc/\x00\x00\x00", Compression.NONE),
        (b"", Compression.NONE),
    ],
)
def test_compression_is_detected_from_the_first_bytes(prefix: bytes, expected: Compression) -> None:
    assert detect_compression(prefix) is expected


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_each_supported_compression_reads_the_same_files(tmp_path: Path, compression: str) -> None:
    blob = layer(file("etc/os-release", "ID=debian\n"), file("./usr/bin/x", b"\x7fELF"), compression=compression)  # type: ignore[arg-type]

    files = collect(tmp_path, blob)

    assert contents(files) == {"etc/os-release": b"ID=debian\n", "usr/bin/x": b"\x7fELF"}


def test_the_media_type_does_not_decide_a_zstd_blob_is_read_as_zstd(tmp_path: Path) -> None:
    # Given a zstd blob written in several frames (as zstd:chunked layers are)
    tar = tar_bytes([file("a", b"A" * 5000), file("b", b"B")])
    blob = b"".join(zstandard.ZstdCompressor().compress(tar[i : i + 2048]) for i in range(0, len(tar), 2048))

    assert contents(collect(tmp_path, blob)) == {"a": b"A" * 5000, "b": b"B"}


def test_a_multi_member_gzip_blob_is_read_whole(tmp_path: Path) -> None:
    tar = tar_bytes([file("a", b"A" * 3000), file("b", b"B")])
    blob = gzip.compress(tar[:1024]) + gzip.compress(tar[1024:])

    assert contents(collect(tmp_path, blob)) == {"a": b"A" * 3000, "b": b"B"}


def test_only_wanted_files_are_kept(tmp_path: Path) -> None:
    blob = layer(file("etc/os-release", "ID=alpine"), file("etc/passwd", "root:x:0:0"))

    files = collect(tmp_path, blob, wanted=lambda path: 100 if path == "etc/os-release" else None)

    assert list(files.files) == ["etc/os-release"]


def test_a_file_larger_than_its_bound_is_skipped_and_noted(tmp_path: Path) -> None:
    blob = layer(file("var/lib/dpkg/status", b"x" * 101))

    files = collect(tmp_path, blob, wanted=lambda _path: 100)

    assert files.files == {}
    assert files.oversized == [("var/lib/dpkg/status", 101)]


def test_large_kept_files_are_spilled_to_the_scratch_folder(tmp_path: Path) -> None:
    big = b"r" * (SPILL_THRESHOLD + 1)

    files = collect(tmp_path, layer(file("var/lib/rpm/rpmdb.sqlite", big)))

    kept = files.files["var/lib/rpm/rpmdb.sqlite"]
    assert kept.data is None and kept.spilled is not None and kept.spilled.parent == tmp_path
    assert kept.read_bytes() == big


def test_an_upper_layer_file_replaces_the_lower_one(tmp_path: Path) -> None:
    lower = layer(file("lib/apk/db/installed", "old"))
    upper = layer(file("lib/apk/db/installed", "new"))

    assert contents(collect(tmp_path, lower, upper)) == {"lib/apk/db/installed": b"new"}


def test_a_whiteout_deletes_the_file_from_lower_layers(tmp_path: Path) -> None:
    lower = layer(file("app/node_modules/lodash/package.json", "{}"), file("app/keep", "k"))
    upper = layer(whiteout("app/node_modules/lodash/package.json"))

    assert contents(collect(tmp_path, lower, upper)) == {"app/keep": b"k"}


def test_a_whiteout_of_a_directory_deletes_everything_under_it(tmp_path: Path) -> None:
    lower = layer(
        file("usr/lib/python3/site-packages/pip-23.2.1.dist-info/METADATA", "m"),
        file("usr/lib/python3/site-packages/other/METADATA", "o"),
        file("usr/lib/python3/site-packages-extra", "e"),
    )
    upper = layer(whiteout("usr/lib/python3/site-packages"))

    assert contents(collect(tmp_path, lower, upper)) == {"usr/lib/python3/site-packages-extra": b"e"}


def test_a_file_added_again_after_its_whiteout_is_present(tmp_path: Path) -> None:
    first = layer(file("etc/os-release", "ID=debian"))
    second = layer(whiteout("etc/os-release"))
    third = layer(file("etc/os-release", "ID=alpine"))

    assert contents(collect(tmp_path, first, second, third)) == {"etc/os-release": b"ID=alpine"}


def test_an_opaque_directory_hides_only_what_lower_layers_put_there(tmp_path: Path) -> None:
    lower = layer(
        file("var/lib/dpkg/status", "lower"), file("var/lib/dpkg/status.d/base", "lower"), file("var/lib/other", "kept")
    )
    # The opaque marker may come after the layer's own files in the same directory; they stay.
    upper = layer(directory("var/lib/dpkg"), file("var/lib/dpkg/status.d/libc6", "upper"), opaque("var/lib/dpkg"))

    assert contents(collect(tmp_path, lower, upper)) == {
        "var/lib/dpkg/status.d/libc6": b"upper",
        "var/lib/other": b"kept",
    }


def test_a_whiteout_does_not_delete_a_file_of_its_own_layer(tmp_path: Path) -> None:
    # OCI image spec: whiteouts apply to lower layers only.
    blob = layer(file("etc/os-release", "ID=debian"), whiteout("etc/os-release"))

    assert contents(collect(tmp_path, blob)) == {"etc/os-release": b"ID=debian"}


def test_a_directory_entry_in_an_upper_layer_merges_with_the_lower_directory(tmp_path: Path) -> None:
    lower = layer(file("etc/os-release", "ID=debian"))
    upper = layer(directory("etc"), file("etc/hostname", "h"))

    assert contents(collect(tmp_path, lower, upper)) == {"etc/hostname": b"h", "etc/os-release": b"ID=debian"}


def test_a_file_replacing_a_directory_hides_its_lower_contents(tmp_path: Path) -> None:
    lower = layer(file("opt/app/node_modules/a/package.json", "{}"))
    upper = layer(file("opt/app", "now a file"))

    assert contents(collect(tmp_path, lower, upper)) == {"opt/app": b"now a file"}


def test_a_relative_symlink_is_followed_among_kept_files(tmp_path: Path) -> None:
    blob = layer(file("usr/lib/os-release", "ID=debian"), symlink("etc/os-release", "../usr/lib/os-release"))

    kept = collect(tmp_path, blob).get("etc/os-release")

    assert kept is not None and kept.read_bytes() == b"ID=debian"


def test_an_absolute_symlink_is_resolved_from_the_image_root(tmp_path: Path) -> None:
    blob = layer(file("usr/lib/os-release", "ID=debian"), symlink("etc/os-release", "/usr/lib/os-release"))

    kept = collect(tmp_path, blob).get("etc/os-release")

    assert kept is not None and kept.read_bytes() == b"ID=debian"


def test_a_symlink_loop_resolves_to_nothing(tmp_path: Path) -> None:
    blob = layer(symlink("etc/os-release", "os-release2"), symlink("etc/os-release2", "os-release"))

    assert collect(tmp_path, blob).get("etc/os-release") is None


def test_a_hard_link_to_a_kept_file_reads_its_bytes(tmp_path: Path) -> None:
    blob = layer(file("usr/lib/os-release", "ID=debian"), hardlink("etc/os-release", "usr/lib/os-release"))

    kept = collect(tmp_path, blob).get("etc/os-release")

    assert kept is not None and kept.read_bytes() == b"ID=debian"


def test_paths_that_climb_out_of_the_root_are_ignored(tmp_path: Path) -> None:
    blob = layer(file("../../etc/os-release", "ID=evil"), file("/etc/hostname", "h"))

    assert contents(collect(tmp_path, blob)) == {"etc/hostname": b"h"}


def test_an_empty_blob_is_an_empty_layer(tmp_path: Path) -> None:
    files = collect(tmp_path, b"", layer(file("a", "1")))

    assert contents(files) == {"a": b"1"}
    assert files.layers_read == 2


def test_an_xz_layer_is_refused_with_the_reason(tmp_path: Path) -> None:
    blob = lzma.compress(tar_bytes([file("a", "1")]))

    with pytest.raises(LayerUnreadable, match=r"layer 1: .*xz"):
        collect(tmp_path, blob)


@pytest.mark.parametrize(
    "blob",
    [
        b"this is not a tar archive" * 40,
        gzip.compress(tar_bytes([file("a", random.Random(1).randbytes(4000))]))[:2000],  # truncated
        b"\x28\xb5\x2f\xfd" + b"\xff" * 64,  # a zstd magic with garbage behind it
    ],
    ids=["not-tar", "truncated-gzip", "corrupt-zstd"],
)
def test_an_unreadable_layer_fails_naming_the_layer(tmp_path: Path, blob: bytes) -> None:
    with pytest.raises(LayerUnreadable, match="layer 2"):
        collect(tmp_path, layer(file("a", "1")), blob)


def test_layers_are_opened_lazily_in_order_and_closed(tmp_path: Path) -> None:
    events: list[str] = []

    class Tracked(io.BytesIO):
        def __init__(self, name: str, data: bytes) -> None:
            super().__init__(data)
            self.name = name

        def close(self) -> None:
            events.append(f"close {self.name}")
            super().close()

    def opener(name: str, data: bytes) -> Callable[[], BinaryIO]:
        def open_blob() -> BinaryIO:
            events.append(f"open {name}")
            return Tracked(name, data)

        return open_blob

    collect_files(
        [opener("one", layer(file("a", "1"))), opener("two", layer(file("b", "2")))], want_everything, tmp_path
    )

    assert events == ["open one", "close one", "open two", "close two"]
