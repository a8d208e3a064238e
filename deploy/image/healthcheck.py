#!/usr/bin/python3
"""The container's health check: exits 0 when the ecrd beside it answers ``GET /healthz`` with 200.

It reads the port and TLS from the same ``ECRD_*`` variables as ``ecrd serve`` (the image's way of configuring
it) and asks the loopback address, so it works whatever name clients use. With TLS it does not verify the
certificate: it checks that the server answers, not who it is.
"""

import os
import ssl
import sys
import urllib.request

TIMEOUT_SECONDS = 4.0


def main() -> int:
    port = os.environ.get("ECRD_PORT", "5000")
    scheme = "https" if os.environ.get("ECRD_TLS_CERT") else "http"
    context = ssl._create_unverified_context() if scheme == "https" else None  # noqa: S323 - loopback liveness only
    try:
        with urllib.request.urlopen(  # noqa: S310 - a fixed http(s) URL on loopback
            f"{scheme}://127.0.0.1:{port}/healthz", timeout=TIMEOUT_SECONDS, context=context
        ) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"ecrd is not healthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
