"""End-to-end tests of ClientConnection against real peers over real sockets."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

import requests_ws
from requests_ws import (
    ConcurrencyError,
    ConnectionClosedError,
    ConnectionClosedOK,
    PayloadTooBig,
    ProtocolError,
)
from requests_ws.protocol import InvalidState

from .peers.raw_peer import RawPeer, close_payload, frame_bytes

# -- the basics against a well-behaved peer --------------------------------------


def test_send_and_recv_text_and_binary(no_leaks: None, ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri) as ws:
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send(b"\x00\xff")
        assert ws.recv() == b"\x00\xff"
        ws.send(bytearray(b"ba"))
        assert ws.recv() == b"ba"
        ws.send(memoryview(b"mv"))
        assert ws.recv() == b"mv"
        ws.send("forced binary", text=False)
        assert ws.recv() == b"forced binary"
        ws.send(b"forced text", text=True)
        assert ws.recv() == "forced text"


def test_recv_decode_option(ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri) as ws:
        ws.send("text")
        assert ws.recv(decode=False) == b"text"
        ws.send(b"bytes")
        assert ws.recv(decode=True) == "bytes"


def test_fragmented_send_from_iterables(ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri) as ws:
        ws.send(["a", "b", "c"])
        assert ws.recv() == "abc"
        ws.send(iter([b"x", bytearray(b"y"), memoryview(b"z")]))
        assert ws.recv() == b"xyz"
        ws.send([])  # nothing is sent
        ws.send("after")
        assert ws.recv() == "after"


def test_fragmented_send_with_mixed_types_fails(ws_server: Any) -> None:
    server = ws_server()
    ws = requests_ws.connect(server.uri)
    with pytest.raises(TypeError, match="all str or all bytes"):
        ws.send(["a", b"b"])
    with pytest.raises(ConnectionClosedError):
        ws.send("x")
    ws.close()


def test_send_rejects_bad_types(ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri) as ws:
        with pytest.raises(TypeError, match="mapping"):
            ws.send({"a": 1})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="int"):
            ws.send(42)  # type: ignore[arg-type]
        ws.send("still open")
        assert ws.recv() == "still open"


def test_recv_timeout_loses_nothing(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        peer.send_frame(0x1, b"first ", fin=False)
        time.sleep(0.5)
        peer.send_frame(0x0, b"second")
        peer.expect_close()

    server = raw_server(script)
    with requests_ws.connect(server.uri, compression=None) as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.1)
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0)
        assert ws.recv(timeout=5) == "first second"


def test_recv_timeout_zero_returns_queued_message(ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri) as ws:
        ws.send("queued")
        deadline = time.monotonic() + 5
        while True:
            try:
                assert ws.recv(timeout=0) == "queued"
                break
            except TimeoutError:
                assert time.monotonic() < deadline
                time.sleep(0.01)


def test_recv_streaming_yields_fragments(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        peer.send_frame(0x1, b"one ", fin=False)
        peer.send_frame(0x0, b"two ", fin=False)
        peer.send_frame(0x0, b"three")
        peer.send_frame(0x2, b"bin")
        peer.expect_close()

    server = raw_server(script)
    with requests_ws.connect(server.uri, compression=None) as ws:
        assert list(ws.recv_streaming()) == ["one ", "two ", "three"]
        assert list(ws.recv_streaming(decode=True)) == ["bin"]


def test_second_concurrent_reader_gets_concurrency_error(ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri) as ws:
        started = threading.Event()

        def reader() -> None:
            started.set()
            try:
                ws.recv()
            except ConnectionClosedOK:
                pass

        thread = threading.Thread(target=reader)
        thread.start()
        started.wait()
        time.sleep(0.1)
        with pytest.raises(ConcurrencyError):
            ws.recv()
    thread.join(5)
    assert not thread.is_alive()


def test_ping_returns_round_trip_time(ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri) as ws:
        latency = ws.ping()
        assert 0 < latency < 1
        assert 0 < ws.ping(b"payload", timeout=5) < 1
        ws.pong(b"unsolicited")
        ws.send("still fine")
        assert ws.recv() == "still fine"


def test_ping_timeout_when_peer_never_answers(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        assert peer.recv_frame().opcode == 0x9  # never answered
        peer.expect_close()

    server = raw_server(script)
    with requests_ws.connect(server.uri, compression=None) as ws:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            ws.ping(timeout=0.3)
        assert time.monotonic() - started < 2


def test_iteration_ends_on_normal_closure(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        for i in range(3):
            peer.send_frame(0x1, str(i).encode())
        peer.send_close(1000, "done")
        peer.expect_close()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    assert list(ws) == ["0", "1", "2"]
    assert ws.close_code == 1000
    assert ws.close_reason == "done"
    ws.close()


def test_iteration_raises_on_error_closure(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        peer.send_frame(0x1, b"m")
        peer.send_close(1011, "server broke")
        peer.expect_close()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    received = []
    with pytest.raises(ConnectionClosedError) as info:
        for message in ws:
            received.append(message)
    assert received == ["m"]
    assert info.value.code == 1011
    assert info.value.reason == "server broke"


def test_properties(ws_server: Any) -> None:
    server = ws_server(subprotocols=["chat"])
    with requests_ws.connect(server.uri, subprotocols=["chat", "other"]) as ws:
        assert ws.subprotocol == "chat"
        assert ws.remote_address[1] == server.port
        assert ws.local_address[0] == "127.0.0.1"
        assert ws.id.version == 4
        assert ws.latency == 0
        assert ws.response.status_code == 101
        assert ws.request.headers["Sec-WebSocket-Protocol"] == "chat, other"
        assert not ws.closed
        assert ws.close_code is None
    assert ws.closed
    assert ws.close_code == 1000


def test_logger_logs_frames_at_debug(ws_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    server = ws_server()
    caplog.set_level(logging.DEBUG, logger="requests_ws.client")
    with requests_ws.connect(server.uri) as ws:
        ws.send("logged")
        ws.recv()
    text = caplog.text
    assert "> TEXT" in text
    assert "< TEXT 'logged'" in text
    assert "CLOSE" in text


def test_create_connection_subclass(ws_server: Any) -> None:
    class Custom(requests_ws.ClientConnection):
        marker = "custom"

    server = ws_server()
    with requests_ws.connect(server.uri, create_connection=Custom) as ws:
        assert isinstance(ws, Custom)
        ws.send("x")
        assert ws.recv() == "x"


# -- threads and flow control -------------------------------------------------


def test_server_pings_are_answered_while_not_reading(raw_server: Any) -> None:
    answered = threading.Event()

    def script(peer: RawPeer) -> None:
        peer.send_frame(0x9, b"are you there")
        frame = peer.recv_frame(timeout=2)
        assert frame.opcode == 0xA and frame.payload == b"are you there"
        assert frame.masked
        answered.set()
        peer.expect_close()

    server = raw_server(script)
    with requests_ws.connect(server.uri, compression=None):
        assert answered.wait(3), "pong not sent while the application was not reading"


def test_keepalive_pings_and_latency(raw_server: Any) -> None:
    pings = []

    def script(peer: RawPeer) -> None:
        for _ in range(2):
            frame = peer.recv_frame(timeout=3)
            assert frame.opcode == 0x9
            pings.append(time.monotonic())
            peer.send_frame(0xA, frame.payload)
        peer.expect_close()

    server = raw_server(script)
    with requests_ws.connect(server.uri, compression=None, ping_interval=0.2) as ws:
        deadline = time.monotonic() + 3
        while len(pings) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        assert len(pings) == 2
        assert ws.latency > 0


def test_keepalive_timeout_fails_with_1011(raw_server: Any) -> None:
    close_codes = []

    def script(peer: RawPeer) -> None:
        assert peer.recv_frame(timeout=3).opcode == 0x9  # ignored
        close_codes.append(peer.expect_close(timeout=3)[0])

    server = raw_server(script)
    ws = requests_ws.connect(
        server.uri, compression=None, ping_interval=0.2, ping_timeout=0.3, close_timeout=1
    )
    with pytest.raises(ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert close_codes == [1011]
    assert info.value.sent is not None and info.value.sent.code == 1011
    assert isinstance(info.value.__cause__, TimeoutError)
    ws.close()


def test_max_queue_stops_reading(raw_server: Any) -> None:
    sent = []
    blocked = threading.Event()

    def script(peer: RawPeer) -> None:
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        peer.sock.settimeout(1)
        payload = b"x" * 60000
        try:
            for i in range(2000):
                peer.send_frame(0x2, payload)
                sent.append(i)
        except TimeoutError:
            blocked.set()
        peer.sock.settimeout(10)
        peer.sock.sendall(b"")
        peer.expect_close(timeout=10)

    server = raw_server(script)
    with requests_ws.connect(server.uri, compression=None, max_queue=4, max_size=None) as ws:
        assert blocked.wait(8), "the client kept reading although nobody consumed messages"
        assert len(ws._queue) <= 16
        received = 0
        while received < len(sent):
            ws.recv(timeout=5)
            received += 1


def test_max_size_closes_with_1009(raw_server: Any) -> None:
    codes = []

    def script(peer: RawPeer) -> None:
        peer.send_frame(0x2, b"x" * 2000)
        codes.append(peer.expect_close()[0])
        peer.send_close(1009)

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, max_size=1000)
    with pytest.raises(ConnectionClosedError) as info:
        ws.recv()
    assert isinstance(info.value.__cause__, PayloadTooBig)
    assert codes == [1009]


def test_concurrent_senders_never_interleave(ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri, compression=None) as ws:

        def sender(tag: str) -> None:
            for i in range(30):
                ws.send([f"{tag}{i}-"] * 20)

        threads = [threading.Thread(target=sender, args=(tag,)) for tag in "abcd"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for _ in range(120):
            message = ws.recv(timeout=5)
            assert isinstance(message, str)
            parts = message.split("-")[:-1]
            assert len(parts) == 20 and len(set(parts)) == 1


def test_send_timeout_mid_frame_fails_the_connection(raw_server: Any) -> None:
    received = []

    def script(peer: RawPeer) -> None:
        time.sleep(3)  # not reading: the client's send blocks
        peer.sock.settimeout(5)
        try:
            while chunk := peer.sock.recv(65536):
                received.append(len(chunk))
        except OSError:
            pass

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, max_size=None)
    with pytest.raises(TimeoutError):
        ws.send(b"x" * (64 * 2**20), timeout=1.5)
    with pytest.raises(ConnectionClosedError):
        ws.send("next")
    ws.close()
    server.done.wait(10)
    assert 0 < sum(received) < 64 * 2**20


def test_send_timeout_before_writing_keeps_connection(ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri) as ws:
        # Another thread is inside a send: it holds the message lock.
        held, done = threading.Event(), threading.Event()

        def other_sender() -> None:
            with ws._writer.message_lock:
                held.set()
                done.wait(10)

        thread = threading.Thread(target=other_sender)
        thread.start()
        try:
            assert held.wait(10)
            with pytest.raises(TimeoutError):
                ws.send("blocked", timeout=0.1)
        finally:
            done.set()
            thread.join()
        ws.send("after")
        assert ws.recv() == "after"


# -- order is preserved ---------------------------------------------------------


@pytest.mark.parametrize(
    ("violation", "code"),
    [
        (frame_bytes(0x3, b""), 1002),
        (frame_bytes(0x1, b"\xff"), 1007),
        (frame_bytes(0x9, b"", fin=False), 1002),
        (frame_bytes(0x0, b"x"), 1002),
    ],
    ids=["reserved-opcode", "bad-utf8", "fragmented-ping", "orphan-continuation"],
)
def test_messages_before_a_violation_come_first(
    raw_server: Any, violation: bytes, code: int
) -> None:
    seen: list[Any] = []

    def script(peer: RawPeer) -> None:
        peer.send_raw(b"".join(frame_bytes(0x1, f"m{i}".encode()) for i in range(3)) + violation)
        for _ in range(3):
            seen.append(peer.recv_message().payload)
        seen.append(peer.expect_close())

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, close_timeout=1)
    time.sleep(0.3)  # everything has arrived before the application reads
    for i in range(3):
        message = ws.recv()
        assert message == f"m{i}"
        ws.send(f"reply to {message}")
    with pytest.raises(ConnectionClosedError) as info:
        ws.recv()
    server.done.wait(5)
    assert seen[:3] == [b"reply to m0", b"reply to m1", b"reply to m2"]
    assert seen[3][0] == code
    cause = info.value.__cause__
    assert isinstance(cause, (ProtocolError, UnicodeDecodeError))
    ws.close()


def test_close_frame_is_answered_after_earlier_messages(raw_server: Any) -> None:
    seen: list[Any] = []

    def script(peer: RawPeer) -> None:
        peer.send_raw(frame_bytes(0x1, b"last words") + frame_bytes(0x8, close_payload(1000)))
        seen.append(peer.recv_message().payload)
        seen.append(peer.expect_close())

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    time.sleep(0.2)
    assert ws.recv() == "last words"
    ws.send("ack")
    with pytest.raises(ConnectionClosedOK):
        ws.recv()
    server.done.wait(5)
    assert seen == [b"ack", (1000, "")]


# -- closing never stalls -----------------------------------------------------


def test_close_is_idempotent_and_from_any_thread(no_leaks: None, ws_server: Any) -> None:
    server = ws_server()
    ws = requests_ws.connect(server.uri)
    outcome: list[BaseException] = []

    def reader() -> None:
        try:
            ws.recv()
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.1)
    ws.close()
    ws.close()
    thread.join(5)
    assert isinstance(outcome[0], ConnectionClosedOK)
    with pytest.raises(ConnectionClosedOK):
        ws.send("closed")


def test_invalid_close_code_leaves_connection_usable(ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri) as ws:
        for code in (1005, 1006, 1015, 999, 5000):
            with pytest.raises(ProtocolError):
                ws.close(code)
        ws.send("usable")
        assert ws.recv() == "usable"


def test_close_returns_within_close_timeout_when_peer_never_answers(
    no_leaks: None, raw_server: Any
) -> None:
    def script(peer: RawPeer) -> None:
        peer.expect_close()
        time.sleep(3)  # never answers, never closes

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, close_timeout=0.5)
    started = time.monotonic()
    ws.close()
    assert time.monotonic() - started < 1.5
    assert ws.closed
    assert ws.close_code == 1006


def test_peer_dropping_tcp_gives_1006(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        peer.send_frame(0x1, b"bye")
        peer.sock.close()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    assert ws.recv() == "bye"
    with pytest.raises(ConnectionClosedError) as info:
        ws.recv()
    assert info.value.code == 1006
    assert info.value.rcvd is None
    ws.close()


def test_tls_close_does_not_wait_for_close_timeout(
    no_leaks: None, ws_server: Any, tls: Any
) -> None:
    server = ws_server(ssl_context=tls.server_context)
    for _ in range(10):
        ws = requests_ws.connect(server.uri, ssl=tls.client_context, close_timeout=5)
        ws.send("x")
        assert ws.recv() == "x"
        started = time.monotonic()
        ws.close()
        assert time.monotonic() - started < 1


# -- handshake details handled by the connection -------------------------------


def test_first_frame_in_the_same_segment_as_the_101(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        peer.expect_close()

    server = raw_server(script, first_bytes=frame_bytes(0x1, b"early bird"))
    with requests_ws.connect(server.uri, compression=None) as ws:
        assert ws.recv(timeout=2) == "early bird"


def test_first_frame_with_101_over_tls(raw_server: Any, tls: Any) -> None:
    def script(peer: RawPeer) -> None:
        peer.expect_close()

    server = raw_server(
        script, ssl_context=tls.server_context, first_bytes=frame_bytes(0x1, b"early tls")
    )
    with requests_ws.connect(server.uri, compression=None, verify=tls.ca_path) as ws:
        assert ws.recv(timeout=2) == "early tls"


def test_unix_connect(no_leaks: None, ws_server: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "ws.sock")
    ws_server(unix_path=path)
    with requests_ws.unix_connect(path) as ws:
        ws.send("over unix")
        assert ws.recv() == "over unix"


def test_given_socket(ws_server: Any) -> None:
    server = ws_server()
    sock = socket.create_connection(("127.0.0.1", server.port))
    with requests_ws.connect("ws://example.invalid/", sock=sock) as ws:
        ws.send("over sock")
        assert ws.recv() == "over sock"


def test_wss_with_ssl_context_and_verify(ws_server: Any, tls: Any) -> None:
    server = ws_server(ssl_context=tls.server_context)
    with requests_ws.connect(server.uri, ssl=tls.client_context) as ws:
        ws.send("ssl=")
        assert ws.recv() == "ssl="
    with requests_ws.connect(server.uri, verify=tls.ca_path) as ws:
        ws.send("verify=")
        assert ws.recv() == "verify="
    uri = server.uri.replace("localhost", "127.0.0.1")
    with requests_ws.connect(uri, ssl=tls.client_context, server_hostname="localhost") as ws:
        ws.send("server_hostname")
        assert ws.recv() == "server_hostname"
    import requests

    with pytest.raises(requests.exceptions.SSLError):
        requests_ws.connect(server.uri)


# -- compression against the reference server ------------------------------------


def _deflate_server(ws_server: Any, **params: Any) -> Any:
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

    return ws_server(extensions=[ServerPerMessageDeflateFactory(**params)])


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"server_no_context_takeover": True},
        {"client_no_context_takeover": True},
        {"server_max_window_bits": 9},
        {"client_max_window_bits": 10},
        {"client_max_window_bits": 8},
        {
            "server_max_window_bits": 10,
            "client_max_window_bits": 11,
            "server_no_context_takeover": True,
            "client_no_context_takeover": True,
        },
        {"require_client_max_window_bits": True, "client_max_window_bits": 12},
    ],
    ids=lambda params: ",".join(f"{k}={v}" for k, v in params.items()) or "defaults",
)
def test_compression_with_server_demands(ws_server: Any, params: dict[str, Any]) -> None:
    server = _deflate_server(ws_server, **params)
    with requests_ws.connect(server.uri) as ws:
        assert ws.protocol.extensions, "permessage-deflate was not negotiated"
        for i in range(5):
            text = f'{{"id": {i}, "payload": "{"abc" * 500}"}}'
            ws.send(text)
            assert ws.recv() == text
        ws.send(os.urandom(100000))
        assert len(ws.recv()) == 100000
        ws.send(["frag", "mented"])
        assert ws.recv() == "fragmented"


def test_compression_off(ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri, compression=None) as ws:
        assert ws.protocol.extensions == []
        assert "Sec-WebSocket-Extensions" not in ws.request.headers


def test_large_message_round_trip(ws_server: Any) -> None:
    server = ws_server()
    data = os.urandom(8 * 2**20)
    with requests_ws.connect(server.uri, max_size=None, compression=None) as ws:
        ws.send(data)
        assert ws.recv() == data


def test_server_closes_with_code(ws_server: Any) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("bye")
        await ws.close(4000, "custom")

    server = ws_server(handler)
    ws = requests_ws.connect(server.uri)
    assert ws.recv() == "bye"
    with pytest.raises(ConnectionClosedError) as info:
        ws.recv()
    assert (info.value.code, info.value.reason) == (4000, "custom")
    ws.close()
    asyncio.get_event_loop_policy()


def test_send_after_close_raises_connection_closed(ws_server: Any) -> None:
    server = ws_server()
    ws = requests_ws.connect(server.uri)
    ws.close()
    with pytest.raises(ConnectionClosedOK):
        ws.send("x")
    with pytest.raises(ConnectionClosedOK):
        ws.recv()
    with pytest.raises(ConnectionClosedOK):
        ws.ping()
    assert not isinstance(ConnectionClosedOK(None, None), InvalidState)


def test_decompression_bomb_fails_with_1009(raw_server: Any) -> None:
    import zlib

    compressor = zlib.compressobj(wbits=-15)
    bomb = compressor.compress(b"\0" * (64 * 2**20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    codes = []

    def script(peer: RawPeer) -> None:
        peer.send_frame(0x2, bomb[:-4], rsv=0x40)
        codes.append(peer.expect_close()[0])

    server = raw_server(script, headers={"Sec-WebSocket-Extensions": "permessage-deflate"})
    ws = requests_ws.connect(server.uri, max_size=2**20)
    with pytest.raises(ConnectionClosedError) as info:
        ws.recv(timeout=10)
    assert isinstance(info.value.__cause__, PayloadTooBig)
    server.done.wait(5)
    assert codes == [1009]
    ws.close()
