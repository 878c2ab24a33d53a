"""Squid as an enterprise proxy: Digest (``digest_file_auth``), NTLM
(``ntlm_fake_auth``, the real three-message exchange), Negotiate
(``negotiate_kerberos_auth`` against the test KDC), several schemes at once,
and, in a second instance, the same behind ``client_persistent_connections
off`` (squid then closes the connection after every 407).

One squid, one port per role (``auth_schemes`` picks the schemes a port
offers). Its access log names the client's port on every line, so a test can
count the requests each connection carried."""

from __future__ import annotations

import collections
import os
import subprocess
import time

import trustme

from .kdc import KDC, REALM
from .proxies import ProxyProcess, _wait_listening, free_port

HELPERS = "/usr/lib/squid"
ROLES = ("digest", "ntlm", "negotiate", "multi", "basic_digest", "tls", "tls_digest", "tls_ntlm")


class EnterpriseSquid(ProxyProcess):
    """Ports: ``digest``, ``ntlm``, ``negotiate``, ``multi`` (Negotiate, NTLM,
    Digest and Basic), ``basic_digest`` (Basic and Digest), ``tls`` (an HTTPS
    proxy offering all of them), ``tls_digest`` and ``tls_ntlm`` (HTTPS
    proxies with one scheme)."""

    name = "squid"
    user = "digestuser"
    password = "digest-pass"

    def __init__(self, kdc: KDC, cert: trustme.LeafCert, *, closing: bool = False) -> None:
        super().__init__()
        binary = self._binary("squid")
        for helper in ("digest_file_auth", "ntlm_fake_auth", "negotiate_kerberos_auth"):
            self._binary(os.path.join(HELPERS, helper))
        self.ports = {role: free_port() for role in ROLES}
        cert_path = os.path.join(self.directory, "cert.pem")
        key_path = os.path.join(self.directory, "key.pem")
        cert.cert_chain_pems[0].write_to_path(cert_path)
        cert.private_key_pem.write_to_path(key_path)
        os.chmod(cert_path, 0o644)
        os.chmod(key_path, 0o644)
        digest_file = self._write("digest.passwd", f"{self.user}:{self.password}\n")
        basic_line = subprocess.run(
            [self._binary("htpasswd"), "-nbm", self.user, self.password],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        basic_file = self._write("basic.passwd", basic_line + "\n")
        self.access_log = os.path.join(self.directory, "access.log")
        listen = []
        for role, port in self.ports.items():
            if role.startswith("tls"):
                listen.append(
                    f"https_port 127.0.0.1:{port} tls-cert={cert_path} tls-key={key_path} "
                    f"name={role}"
                )
            else:
                listen.append(f"http_port 127.0.0.1:{port} name={role}")
        acls = "\n".join(f"acl p_{role} myportname {role}" for role in ROLES)
        persistent = "off" if closing else "on"
        negotiate_helper = (
            f"{HELPERS}/negotiate_kerberos_auth -k {kdc.keytab} -s {kdc.service}@{REALM}"
        )
        config = f"""
{chr(10).join(listen)}
pid_filename none
cache deny all
shutdown_lifetime 0 seconds
pinger_enable off
client_persistent_connections {persistent}
coredump_dir {self.directory}
cache_log stdio:{self.log}
logformat conn %>a:%>p %Ss/%03>Hs %rm %ru %un
access_log stdio:{self.access_log} logformat=conn
auth_param negotiate program {negotiate_helper}
auth_param negotiate children 2
auth_param ntlm program {HELPERS}/ntlm_fake_auth
auth_param ntlm children 2
auth_param digest program {HELPERS}/digest_file_auth {digest_file}
auth_param digest realm requests-ws
auth_param digest children 2
auth_param basic program {HELPERS}/basic_ncsa_auth {basic_file}
auth_param basic realm requests-ws
auth_param basic children 2
{acls}
auth_schemes digest p_digest
auth_schemes ntlm p_ntlm
auth_schemes negotiate p_negotiate
auth_schemes basic,digest p_basic_digest
auth_schemes negotiate,ntlm,digest,basic p_multi
auth_schemes negotiate,ntlm,digest,basic p_tls
auth_schemes digest p_tls_digest
auth_schemes ntlm p_tls_ntlm
acl authed proxy_auth REQUIRED
http_access deny !authed
http_access allow localhost
http_access deny all
"""
        conf = self._write("squid.conf", config)
        env = {**os.environ, "KRB5_CONFIG": kdc.krb5_conf, "KRB5_KTNAME": kdc.keytab}
        with open(self.log, "ab") as log:
            process = subprocess.Popen(
                [binary, "-N", "-f", conf],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.processes.append(process)
        for port in self.ports.values():
            _wait_listening(port, process, self.log, self.name)

    def url(self, role: str, credentials: str = "") -> str:
        scheme = "https" if role.startswith("tls") else "http"
        host = "localhost" if role in ("tls", "negotiate", "multi") else "127.0.0.1"
        at = f"{credentials}@" if credentials else ""
        return f"{scheme}://{at}{host}:{self.ports[role]}"

    def access_lines(self) -> list[str]:
        if not os.path.exists(self.access_log):
            return []
        with open(self.access_log, errors="replace") as file:
            return file.read().splitlines()

    def connections(self, target_port: int, tunnels: int = 1) -> list[list[str]]:
        """The access-log lines for CONNECTs to ``target_port``, grouped by the
        client connection (client port) that carried them, once at least
        ``tunnels`` tunnels are logged (squid logs a tunnel when it ends)."""
        deadline = time.monotonic() + 5
        while True:
            lines = [
                line
                for line in self.access_lines()
                if " CONNECT " in line and f":{target_port} " in line
            ]
            done = sum(1 for line in lines if "/200 " in line)
            if done >= tunnels or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        grouped: dict[str, list[str]] = collections.defaultdict(list)
        for line in lines:
            grouped[line.split()[0]].append(line.split()[1])
        return list(grouped.values())
