"""A real MIT Kerberos KDC for the tests: a throwaway realm in a temporary
directory (``kdb5_util create``), a user and an ``HTTP/localhost`` service
with a keytab (``kadmin.local``), ``krb5kdc -n`` on a free port, and the
user's ticket in a ``KRB5CCNAME`` file (``kinit``)."""

from __future__ import annotations

import os
import subprocess

from .proxies import ProxyProcess, ProxyUnavailable, free_port

REALM = "REQUESTS-WS.TEST"


class KDC(ProxyProcess):
    """The KDC process; :attr:`env` holds the variables its clients need."""

    name = "krb5kdc"
    user = "alice"
    password = "alice-pass"
    service = "HTTP/localhost"

    def __init__(self) -> None:
        super().__init__()
        kdb5_util = self._binary("kdb5_util", "/usr/sbin/kdb5_util")
        kadmin = self._binary("kadmin.local", "/usr/sbin/kadmin.local")
        krb5kdc = self._binary("krb5kdc", "/usr/sbin/krb5kdc")
        self.kinit = self._binary("kinit")
        self.port = free_port()
        d = self.directory
        self.krb5_conf = self._write(
            "krb5.conf",
            f"""[libdefaults]
 default_realm = {REALM}
 dns_lookup_realm = false
 dns_lookup_kdc = false
 dns_canonicalize_hostname = false
 rdns = false
 udp_preference_limit = 1
[realms]
 {REALM} = {{
  kdc = 127.0.0.1:{self.port}
 }}
[domain_realm]
 localhost = {REALM}
""",
        )
        self.kdc_conf = self._write(
            "kdc.conf",
            f"""[kdcdefaults]
 kdc_ports = {self.port}
 kdc_tcp_ports = {self.port}
[realms]
 {REALM} = {{
  database_name = {d}/principal
  key_stash_file = {d}/stash
  acl_file = {d}/kadm5.acl
 }}
[logging]
 kdc = FILE:{d}/kdc.log
""",
        )
        self.keytab = os.path.join(d, "http.keytab")
        self.ccache = os.path.join(d, "ccache")
        self.env = {
            "KRB5_CONFIG": self.krb5_conf,
            "KRB5_KDC_PROFILE": self.kdc_conf,
            "KRB5CCNAME": f"FILE:{self.ccache}",
        }
        self._run([kdb5_util, "-r", REALM, "create", "-s", "-P", "master-pass"])
        self._run([kadmin, "-r", REALM, "-q", f"addprinc -pw {self.password} {self.user}"])
        self._run([kadmin, "-r", REALM, "-q", f"addprinc -randkey {self.service}"])
        self._run([kadmin, "-r", REALM, "-q", f"ktadd -k {self.keytab} {self.service}"])
        os.chmod(self.keytab, 0o644)  # squid's helper runs as squid's user
        with open(self.log, "ab") as log:
            process = subprocess.Popen(
                [krb5kdc, "-n"],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.processes.append(process)
        from .proxies import _wait_listening

        _wait_listening(self.port, process, self.log, self.name)
        self.login()

    def _run(self, command: list[str], stdin: str | None = None) -> None:
        result = subprocess.run(
            command,
            env={**os.environ, **self.env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            self.stop()
            raise ProxyUnavailable(f"{command[0]} failed: {result.stdout} {result.stderr}")

    def login(self) -> None:
        """kinit: put the user's ticket into the ticket cache."""
        self._run([self.kinit, f"{self.user}@{REALM}"], stdin=self.password + "\n")

    def logout(self) -> None:
        if os.path.exists(self.ccache):
            os.remove(self.ccache)
