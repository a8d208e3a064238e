"""The server's master key: encrypts stored secrets (AES-256-GCM) and derives signing keys (HKDF).

The key lives in a file of the data directory readable only by its owner, so every process sharing the data
directory (and only those) can read secrets and verify tokens; the database alone reveals nothing. Nodes of a
cluster, each with a data directory of its own, are given the one key (``--master-key``/``--master-key-file``);
the metadata store records its fingerprint, so a node with any other key is refused at start.
"""

from __future__ import annotations

import base64
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ecrd.domain.registries import DEPLOYMENT
from ecrd.metadata.iam import lock_identity
from ecrd.metadata.repositories import get_registry_setting, set_registry_setting
from ecrd.metadata.store import MetadataStore

MASTER_KEY_FILE = "keys/master.key"
# The registry setting holding the fingerprint of the master key the metadata store is sealed with.
MASTER_KEY_FINGERPRINT = "master_key_fingerprint"


class SecretBox:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._aead = AESGCM(self._derive(master_key, b"ecrd secret encryption v1"))
        self._master = master_key

    @staticmethod
    def _derive(master: bytes, purpose: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)

    def derive_key(self, purpose: str) -> bytes:
        """A key for one purpose (e.g. signing registry tokens), independent of every other purpose."""
        return self._derive(self._master, purpose.encode())

    def fingerprint(self) -> str:
        """Names this master key without revealing it (a one-way derivation): equal for equal keys only."""
        return self.derive_key("ecrd master key fingerprint v1").hex()

    def seal(self, plaintext: str, *, context: str) -> str:
        """Encrypt ``plaintext``; ``context`` (e.g. the access key id) is bound as associated data."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, token: str, *, context: str) -> str:
        raw = base64.b64decode(token)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise ValueError("stored secret does not decrypt with this master key") from None

    @classmethod
    def load(cls, *, data_dir: Path, master_key: str = "", master_key_file: str = "") -> SecretBox:
        """The operator's master key (given directly, or in a file), else the data directory's own."""
        if master_key:
            return cls(base64.b64decode(master_key))
        if master_key_file:
            return cls(base64.b64decode(Path(master_key_file).read_bytes().strip()))
        return cls.from_data_dir(data_dir)

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> SecretBox:
        """Load the master key, creating it (mode 0600, written atomically) on first start."""
        path = data_dir / MASTER_KEY_FILE
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            temp = path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, base64.b64encode(os.urandom(32)))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(temp, path)  # fails if another process created it first: theirs wins
            except FileExistsError:
                pass
            finally:
                temp.unlink()
        return cls(base64.b64decode(path.read_bytes()))


class MasterKeyMismatch(Exception):
    """This process's master key is not the one the metadata store's secrets and keys are sealed with."""


def check_master_key(store: MetadataStore, box: SecretBox) -> None:
    """The first server on a metadata store records its master key's fingerprint; every later one must have that key.

    Every process of a registry shares the one master key: it seals the stored secrets and wraps every data key.
    A node that made a key of its own (a data directory of its own, no ``--master-key``) could read none of them
    and would seal what it writes (a configured root secret first of all) where the others cannot read it, so it
    is refused before it writes anything.
    """
    fingerprint = box.fingerprint()
    with store.write() as conn:
        lock_identity(conn)
        recorded = get_registry_setting(conn, DEPLOYMENT, MASTER_KEY_FINGERPRINT)
        if recorded is None:
            set_registry_setting(conn, DEPLOYMENT, MASTER_KEY_FINGERPRINT, fingerprint)
            return
    if not hmac.compare_digest(recorded, fingerprint):
        raise MasterKeyMismatch(
            "this master key is not the one the metadata store was set up with: give every process of the "
            "registry the same master key (--master-key or --master-key-file)"
        )
