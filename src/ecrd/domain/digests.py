"""Content digests: parsing ``algorithm:encoded`` and hashing that streams."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ecrd.errors import DigestInvalid, UnsupportedOperation

# OCI image spec, descriptor digests: algorithm-component ([a-z0-9]+) joined by [+._-], then ':' and an
# encoded part of [a-zA-Z0-9=_-]+. Registered algorithms pin the encoded form further.
_DIGEST = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
_ENCODED = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    encoded: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse and validate a digest string; unknown algorithms are refused as unsupported."""
        match = _DIGEST.fullmatch(text)
        if match is None:
            raise DigestInvalid(f"invalid digest {text[:200]!r}", detail={"digest": text[:200]})
        algorithm, encoded = match.groups()
        pattern = _ENCODED.get(algorithm)
        if pattern is None:
            raise UnsupportedOperation(
                f"unsupported digest algorithm {algorithm!r}: use sha256 or sha512", detail={"digest": text[:200]}
            )
        if pattern.fullmatch(encoded) is None:
            raise DigestInvalid(f"invalid {algorithm} digest {text[:200]!r}", detail={"digest": text[:200]})
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)


def is_digest(text: str) -> bool:
    return _DIGEST.fullmatch(text) is not None and ":" in text


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
