"""Upstream registries for pull-through cache tests: CNCF distribution behind htpasswd auth and TLS (standing in
for Docker Hub), pushed to over its own API, with its access log to count the requests it served."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import requests

from tests.support.clients import Credentials, OciHttp, bound_in_time
from tests.support.oci import Blob
from tests.support.registry_process import DistributionProcess, http_answers
from tests.support.tls import TlsFiles, make_ca_and_server_cert

USER = Credentials("upstream-user", "upstream-password")

_TLS = """\
  tls:
    certificate: {cert}
    key: {key}
"""
_HTPASSWD = """\
auth:
  htpasswd:
    realm: upstream
    path: {htpasswd}
"""


def _bcrypt(password: str) -> str:
    """distribution's htpasswd reads bcrypt hashes only; the C library's crypt makes them (cheapest cost)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt as c_crypt

        return c_crypt.crypt(password, c_crypt.mksalt(c_crypt.METHOD_BLOWFISH, rounds=16))


class SecuredDistribution(DistributionProcess):
    """distribution over HTTPS (a CA the test made) with one htpasswd user."""

    kind = "upstream"
    scheme = "https"

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        super().__init__(workdir, port=port)
        self.tls: TlsFiles = make_ca_and_server_cert(workdir / "tls")
        self.ca_file = str(self.tls.ca_cert)
        self.htpasswd = workdir / "htpasswd"
        self.htpasswd.write_text(f"{USER.username}:{_bcrypt(USER.password)}\n")

    def config_sections(self) -> tuple[str, str]:
        return _TLS.format(cert=self.tls.server_cert, key=self.tls.server_key), _HTPASSWD.format(htpasswd=self.htpasswd)

    def start(self) -> None:
        # Unauthenticated, /v2/ answers 401: that it answers at all says it is ready.
        self._server = self.spawn()
        try:
            self._server.wait_until(
                http_answers(self.url + "/v2/", 401, verify=self.ca_file), timeout=30.0, what="answering on /v2/"
            )
        except BaseException:
            self._server.stop()
            raise

    def client(self) -> OciHttp:
        session = bound_in_time(requests.Session())
        session.auth = (USER.username, USER.password)
        session.verify = self.ca_file
        # requests would let REQUESTS_CA_BUNDLE override the session's CA.
        session.trust_env = False
        return OciHttp(session, self.url)

    def push(self, name: str, blobs: list[Blob], manifest: bytes, media_type: str, tag: str) -> None:
        http = self.client()
        for blob in blobs:
            http.push_blob(name, blob.data, blob.digest)
        response = http.put_manifest(name, tag, manifest, media_type)
        assert response.status_code == 201, response.text

    def blob_gets(self, digest: str) -> int:
        """How many GETs of the blob ``digest`` the upstream has answered (from its access log)."""
        pattern = re.compile(rf'method=GET .*uri="?/v2/[^ ]*/blobs/{re.escape(digest)}')
        return sum(
            1
            for line in self.log_path.read_text().splitlines()
            if "response completed" in line and pattern.search(line)
        )
