"""mitmproxy's ``mitmdump`` as a TLS-intercepting proxy, its CA made in a
temporary confdir. mitmproxy pins many dependencies, so it lives in its own
virtual environment, ``.tools/mitmproxy/`` (made by
``.ci/install-system-packages``), not in the project's."""

from __future__ import annotations

import os
import time

from .proxies import ProxyProcess, ProxyUnavailable, _wait_listening, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MITMDUMP = os.path.join(ROOT, ".tools", "mitmproxy", "bin", "mitmdump")


class Mitmdump(ProxyProcess):
    """An intercepting HTTP proxy on :attr:`port`; :attr:`ca_path` is its CA
    certificate. ``upstream_ca`` is the CA it trusts for the real servers."""

    name = "mitmdump"

    def __init__(self, upstream_ca: str) -> None:
        super().__init__()
        binary = self._binary(MITMDUMP, "mitmdump")
        self.port = free_port()
        confdir = os.path.join(self.directory, "conf")
        os.makedirs(confdir)
        self._spawn(
            [
                binary,
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                str(self.port),
                "--set",
                f"confdir={confdir}",
                "--set",
                f"ssl_verify_upstream_trusted_ca={upstream_ca}",
                "--quiet",
            ],
            [],
        )
        self.ca_path = os.path.join(confdir, "mitmproxy-ca-cert.pem")
        deadline = time.monotonic() + 30
        while not os.path.exists(self.ca_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not os.path.exists(self.ca_path):
            self.stop()
            raise ProxyUnavailable("mitmdump made no CA certificate")
        _wait_listening(self.port, self.processes[0], self.log, self.name)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
