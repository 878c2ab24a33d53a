"""Real proxy servers for the tests: squid, dante, microsocks, tinyproxy and
stunnel, each started on free loopback ports from a temporary directory and
stopped by handle."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence

import trustme


class ProxyUnavailable(RuntimeError):
    """The proxy binary is missing or the proxy did not start."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: str, name: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    details = ""
    if os.path.exists(log):
        with open(log, errors="replace") as file:
            details = file.read()[-3000:]
    process.kill()
    process.wait()
    raise ProxyUnavailable(f"{name} did not start on port {port}: {details}")


class ProxyProcess:
    """A proxy process and its temporary directory."""

    name = "proxy"

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix=f"requests-ws-{self.name}-", dir="/tmp")
        os.chmod(self.directory, 0o777)
        self.log = os.path.join(self.directory, "log.txt")
        self.processes: list[subprocess.Popen[bytes]] = []

    def _binary(self, *candidates: str) -> str:
        for candidate in candidates:
            path = shutil.which(candidate) or (candidate if os.path.exists(candidate) else None)
            if path:
                return path
        raise ProxyUnavailable(f"{self.name} is not installed (tried {', '.join(candidates)})")

    def _write(self, name: str, text: str, mode: int = 0o644) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "w") as file:
            file.write(text)
        os.chmod(path, mode)
        return path

    def _spawn(self, command: Sequence[str], ports: Sequence[int]) -> None:
        with open(self.log, "ab") as log:
            process = subprocess.Popen(
                list(command), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.processes.append(process)
        for port in ports:
            _wait_listening(port, process, self.log, self.name)

    def read_log(self) -> str:
        with open(self.log, errors="replace") as file:
            return file.read()

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


class Squid(ProxyProcess):
    """One squid playing four roles, by port: ``plain`` (CONNECT anywhere),
    ``auth`` (Basic proxy auth), ``strict`` (Debian's policy: CONNECT to 443
    only) and ``tls`` (an HTTPS proxy)."""

    name = "squid"
    user = "proxyuser"
    password = "proxy-pass"

    def __init__(self, cert: trustme.LeafCert) -> None:
        super().__init__()
        binary = self._binary("squid")
        self.plain, self.auth, self.strict, self.tls = (free_port() for _ in range(4))
        cert_path = os.path.join(self.directory, "cert.pem")
        key_path = os.path.join(self.directory, "key.pem")
        cert.cert_chain_pems[0].write_to_path(cert_path)
        cert.private_key_pem.write_to_path(key_path)
        os.chmod(cert_path, 0o644)
        os.chmod(key_path, 0o644)
        # htpasswd comes with apache2-utils, which .ci/install-system-packages installs.
        line = subprocess.run(
            [self._binary("htpasswd"), "-nbm", self.user, self.password],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        passwords = self._write("htpasswd", line + "\n")
        self.access_log = os.path.join(self.directory, "access.log")
        config = f"""
http_port 127.0.0.1:{self.plain} name=plain
http_port 127.0.0.1:{self.auth} name=auth
http_port 127.0.0.1:{self.strict} name=strict
https_port 127.0.0.1:{self.tls} tls-cert={cert_path} tls-key={key_path} name=tls
pid_filename none
cache deny all
shutdown_lifetime 0 seconds
pinger_enable off
coredump_dir {self.directory}
cache_log stdio:{self.log}
access_log stdio:{self.access_log}
auth_param basic program /usr/lib/squid/basic_ncsa_auth {passwords}
acl authed proxy_auth REQUIRED
acl p_auth myportname auth
acl p_strict myportname strict
acl SSL_ports port 443
acl CONNECT method CONNECT
http_access deny p_strict CONNECT !SSL_ports
http_access deny p_auth !authed
http_access allow localhost
http_access deny all
"""
        conf = self._write("squid.conf", config)
        self._spawn([binary, "-N", "-f", conf], [self.plain, self.auth, self.strict, self.tls])

    def access_lines(self) -> list[str]:
        if not os.path.exists(self.access_log):
            return []
        with open(self.access_log, errors="replace") as file:
            return file.read().splitlines()


class Dante(ProxyProcess):
    """SOCKS4 and SOCKS5 without authentication."""

    name = "dante"

    def __init__(self) -> None:
        super().__init__()
        binary = self._binary("danted", "/usr/sbin/danted")
        self.port = free_port()
        config = f"""
logoutput: {self.log}
internal: 127.0.0.1 port = {self.port}
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{
    from: 127.0.0.0/8 to: 0.0.0.0/0
}}
socks pass {{
    from: 127.0.0.0/8 to: 0.0.0.0/0
}}
"""
        conf = self._write("danted.conf", config)
        self._spawn([binary, "-f", conf], [self.port])


class Microsocks(ProxyProcess):
    """SOCKS5 with username/password."""

    name = "microsocks"
    user = "socksuser"
    password = "socks-pass"

    def __init__(self) -> None:
        super().__init__()
        binary = self._binary("microsocks")
        self.port = free_port()
        command = [binary, "-i", "127.0.0.1", "-p", str(self.port)]
        command += ["-u", self.user, "-P", self.password]
        self._spawn(command, [self.port])


class Tinyproxy(ProxyProcess):
    """A second HTTP proxy implementation, optionally with Basic auth."""

    name = "tinyproxy"

    def __init__(self, basic_auth: tuple[str, str] | None = None) -> None:
        super().__init__()
        binary = self._binary("tinyproxy")
        self.port = free_port()
        lines = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Allow 127.0.0.1",
            "Timeout 60",
            "MaxClients 50",
        ]
        if basic_auth is not None:
            lines.append(f"BasicAuth {basic_auth[0]} {basic_auth[1]}")
        conf = self._write("tinyproxy.conf", "\n".join(lines) + "\n")
        self._spawn([binary, "-d", "-c", conf], [self.port])


class Stunnel(ProxyProcess):
    """TLS in front of another proxy: an HTTPS proxy made of two programs."""

    name = "stunnel"

    def __init__(self, backend_port: int, cert: trustme.LeafCert) -> None:
        super().__init__()
        binary = self._binary("stunnel4", "stunnel")
        self.port = free_port()
        pem = os.path.join(self.directory, "stunnel.pem")
        with open(pem, "wb") as file:
            file.write(cert.private_key_pem.bytes() + cert.cert_chain_pems[0].bytes())
        config = f"""
foreground = yes
pid =
output = {self.log}
[https-proxy]
accept = 127.0.0.1:{self.port}
connect = 127.0.0.1:{backend_port}
cert = {pem}
"""
        conf = self._write("stunnel.conf", config)
        self._spawn([binary, conf], [self.port])
