"""A small scripted CONNECT proxy for what squid cannot be made to do: Digest
with SHA-256 (squid has MD5 only), nonces that go stale, a scheme of the
caller's own (for the ``proxy_auth=`` hook), closing after every 407, and
NTLM that really checks the password (squid's ntlm_fake_auth takes anyone)
or closes in the middle of the exchange.

It checks Digest answers with its own computation (RFC 7616) and NTLM with
pyspnego's acceptor (accounts from ``NTLM_USER_FILE``), records each
request's ``Proxy-Authorization`` per connection, and relays the tunnel."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import threading
from dataclasses import dataclass, field

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


@dataclass
class Policy:
    """What the proxy offers and accepts."""

    user: str = "shauser"
    password: str = "sha-pass"
    realm: str = "scripted"
    offer: list[str] = field(default_factory=lambda: ["SHA-256", "MD5"])
    # The Digest algorithm it takes; or "token"; or "ntlm", or "negotiate" (NTLM
    # inside SPNEGO: pyspnego's acceptor has no Kerberos here).
    accept: str = "SHA-256"
    token: str = "secret-token"  # the custom scheme's expected credential
    stale_first: bool = False  # the first nonce it hands out is stale once used
    close_after_407: bool = False
    announce_close: bool = True  # False: close without "Connection: close"
    close_after_ntlm_challenge: bool = False  # close after sending NTLM's type 2


class AuthProxy:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.connections: list[list[str | None]] = []  # Proxy-Authorization per request
        self.errors: list[str] = []
        self.nonces: list[str] = []
        self.negotiated: list[str] = []  # the mechanism each NTLM/Negotiate tunnel used
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.sockets: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
        for thread in self.threads:
            thread.join(5)
        self.thread.join(5)

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.sockets.append(client)
                record: list[str | None] = []
                self.connections.append(record)
            thread = threading.Thread(target=self._handle, args=(client, record), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _new_nonce(self) -> str:
        nonce = os.urandom(8).hex()
        with self.lock:
            self.nonces.append(nonce)
        return nonce

    def _challenge(self, stale: bool) -> list[str]:
        policy = self.policy
        if policy.accept == "token":
            return ['Token realm="scripted"', f'Basic realm="{policy.realm}"']
        nonce = self._new_nonce()
        values = []
        for algorithm in policy.offer:
            value = (
                f'Digest realm="{policy.realm}", nonce="{nonce}", qop="auth", '
                f'algorithm={algorithm}, opaque="opaque-1"'
            )
            if stale:
                value += ", stale=true"
            values.append(value)
        return values

    def _handle(self, client: socket.socket, record: list[str | None]) -> None:
        if self.policy.accept in ("ntlm", "negotiate"):
            self._handle_ntlm(client, record)
            return
        used_stale = False
        with client:
            reader = client.makefile("rb")
            while True:
                try:
                    head = _read_head(reader)
                except OSError:
                    return
                if head is None:
                    return
                request_line, headers = head
                credentials = headers.get("proxy-authorization")
                record.append(credentials)
                verdict = self._check(request_line, credentials)
                if verdict == "stale" and not used_stale:
                    used_stale = True
                    self._respond_407(client, stale=True)
                elif verdict == "ok":
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    target = request_line.split()[1]
                    host, _, port = target.rpartition(":")
                    self._relay(client, reader, host.strip("[]"), int(port))
                    return
                else:
                    self._respond_407(client, stale=False)
                if self.policy.close_after_407:
                    return

    def _handle_ntlm(self, client: socket.socket, record: list[str | None]) -> None:
        import spnego

        protocol = self.policy.accept
        label = "NTLM" if protocol == "ntlm" else "Negotiate"
        acceptor = None
        with client:
            reader = client.makefile("rb")
            while True:
                try:
                    head = _read_head(reader)
                except OSError:
                    return
                if head is None:
                    return
                request_line, headers = head
                credentials = headers.get("proxy-authorization")
                record.append(credentials)
                token = None
                if credentials and credentials.startswith(label + " "):
                    token = base64.b64decode(credentials[len(label) + 1 :])
                if token is None:
                    self._send_407(client, [label])
                    continue
                if acceptor is None:
                    acceptor = spnego.server(protocol=protocol)
                try:
                    answer = acceptor.step(token)
                except Exception as exc:
                    self.errors.append(f"{label} rejected: {type(exc).__name__}")
                    acceptor = None
                    self._send_407(client, [label])
                    continue
                if not acceptor.complete:
                    assert answer is not None
                    self._send_407(client, [f"{label} " + base64.b64encode(answer).decode()])
                    if self.policy.close_after_ntlm_challenge:
                        return
                    continue
                with self.lock:
                    self.negotiated.append(str(acceptor.negotiated_protocol))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                host, _, port = request_line.split()[1].rpartition(":")
                self._relay(client, reader, host.strip("[]"), int(port))
                return

    def _send_407(self, client: socket.socket, challenges: list[str]) -> None:
        body = b"authentication required\n"
        lines = ["HTTP/1.1 407 Proxy Authentication Required"]
        lines += [f"Proxy-Authenticate: {value}" for value in challenges]
        lines.append(f"Content-Length: {len(body)}")
        client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _respond_407(self, client: socket.socket, stale: bool) -> None:
        body = b"authentication required\n"
        lines = ["HTTP/1.1 407 Proxy Authentication Required"]
        lines += [f"Proxy-Authenticate: {value}" for value in self._challenge(stale)]
        lines.append(f"Content-Length: {len(body)}")
        if self.policy.close_after_407 and self.policy.announce_close:
            lines.append("Connection: close")
        client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _check(self, request_line: str, credentials: str | None) -> str:
        policy = self.policy
        if credentials is None:
            return "missing"
        if policy.accept == "token":
            return "ok" if credentials == f"Token {policy.token}" else "bad"
        if not credentials.startswith("Digest "):
            self.errors.append(f"not Digest: {credentials.split()[0]}")
            return "bad"
        fields: dict[str, str] = {}
        for name, quoted, bare in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', credentials):
            fields[name] = quoted or bare
        algorithm = fields.get("algorithm", "MD5")
        if algorithm != policy.accept:
            return "bad"
        function = ALGORITHMS[algorithm]

        def h(text: str) -> str:
            return function(text.encode()).hexdigest()

        method, uri = request_line.split()[:2]
        if fields.get("uri") != uri:
            self.errors.append(f"uri {fields.get('uri')!r} != {uri!r}")
            return "bad"
        ha1 = h(f"{fields.get('username')}:{policy.realm}:{policy.password}")
        ha2 = h(f"{method}:{uri}")
        nonce = fields.get("nonce", "")
        expected = h(
            f"{ha1}:{nonce}:{fields.get('nc')}:{fields.get('cnonce')}:{fields.get('qop')}:{ha2}"
        )
        if fields.get("response") != expected or fields.get("opaque") != "opaque-1":
            return "bad"
        with self.lock:
            known = nonce in self.nonces
            first = self.nonces[:1] == [nonce]
        if not known:
            return "bad"
        if policy.stale_first and first:
            return "stale"
        return "ok"

    def _relay(self, client: socket.socket, reader: object, host: str, port: int) -> None:
        try:
            upstream = socket.create_connection((host, port), timeout=5)
        except OSError:
            return
        upstream.settimeout(None)
        with self.lock:
            self.sockets.append(upstream)

        def pump(source: socket.socket, sink: socket.socket) -> None:
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream)
        back.join(10)
        upstream.close()


def _read_head(reader: object) -> tuple[str, dict[str, str]] | None:
    lines = []
    while True:
        line = reader.readline(65536)  # type: ignore[attr-defined]
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        lines.append(line.decode("latin-1").rstrip("\r\n"))
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers
