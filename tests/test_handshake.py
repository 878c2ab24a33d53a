"""handshake: key, request headers, header grammars and response checks."""

from __future__ import annotations

import base64

import pytest
from requests.structures import CaseInsensitiveDict

from requests_ws.exceptions import InvalidHeader, InvalidUpgrade, NegotiationError
from requests_ws.extensions import ClientPerMessageDeflateFactory, PerMessageDeflate
from requests_ws.handshake import (
    accept_value,
    build_request_headers,
    check_response,
    generate_key,
    parse_extension_header,
    parse_token_list,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def response(**headers: str) -> CaseInsensitiveDict[str]:
    base = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": accept_value(KEY),
    }
    base.update({name.replace("_", "-"): value for name, value in headers.items()})
    return CaseInsensitiveDict({k: v for k, v in base.items() if v != "DROP"})


def test_rfc_6455_accept_example() -> None:
    assert accept_value(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_generated_keys_are_16_random_bytes() -> None:
    keys = {generate_key() for _ in range(10)}
    assert len(keys) == 10
    assert all(len(base64.b64decode(key)) == 16 for key in keys)


def test_request_headers() -> None:
    headers = build_request_headers(
        key=KEY,
        origin="https://example.com",
        extensions=[ClientPerMessageDeflateFactory()],
        subprotocols=["chat", "superchat"],
        additional_headers={"X-Token": "abc"},
        user_agent_header="agent/1",
    )
    assert headers == [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
        ("Origin", "https://example.com"),
        ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
        ("Sec-WebSocket-Protocol", "chat, superchat"),
        ("User-Agent", "agent/1"),
        ("X-Token", "abc"),
    ]


def test_additional_headers_replace_ours_and_are_validated() -> None:
    headers = build_request_headers(key=KEY, origin="a", additional_headers=[("origin", "b")])
    assert ("origin", "b") in headers and ("Origin", "a") not in headers
    with pytest.raises(ValueError, match="CR, LF"):
        build_request_headers(key=KEY, additional_headers={"X": "a\r\nInjected: yes"})
    with pytest.raises(ValueError, match="header name"):
        build_request_headers(key=KEY, additional_headers={"Bad Name": "x"})
    with pytest.raises(ValueError, match="subprotocol"):
        build_request_headers(key=KEY, subprotocols=["has space"])


def test_check_response_accepts_a_good_answer() -> None:
    assert check_response(response(Connection="keep-alive, Upgrade"), key=KEY) == ([], None)
    assert check_response(response(Upgrade="WebSocket"), key=KEY) == ([], None)


@pytest.mark.parametrize(
    ("headers", "error", "words"),
    [
        ({"Connection": "DROP"}, InvalidUpgrade, "missing Connection"),
        ({"Connection": "keep-alive"}, InvalidUpgrade, "invalid Connection"),
        ({"Upgrade": "DROP"}, InvalidUpgrade, "missing Upgrade"),
        ({"Upgrade": "h2c"}, InvalidUpgrade, "invalid Upgrade"),
        ({"Sec-WebSocket-Accept": "DROP"}, InvalidHeader, "missing Sec-WebSocket-Accept"),
        ({"Sec-WebSocket-Accept": "wrong"}, InvalidHeader, "expected s3pPLMBiTx"),
    ],
)
def test_check_response_rejects(headers: dict[str, str], error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        check_response(response(**{k.replace("-", "_"): v for k, v in headers.items()}), key=KEY)


def test_extension_negotiation() -> None:
    factory = ClientPerMessageDeflateFactory()
    extensions, _ = check_response(
        response(Sec_WebSocket_Extensions="permessage-deflate; server_max_window_bits=10"),
        key=KEY,
        extensions=[factory],
    )
    assert isinstance(extensions[0], PerMessageDeflate)
    assert extensions[0].remote_max_window_bits == 10
    with pytest.raises(NegotiationError, match="did not offer"):
        check_response(response(Sec_WebSocket_Extensions="x-custom"), key=KEY, extensions=[factory])
    with pytest.raises(NegotiationError, match="did not offer"):
        check_response(response(Sec_WebSocket_Extensions="permessage-deflate"), key=KEY)
    with pytest.raises(NegotiationError, match="twice"):
        check_response(
            response(Sec_WebSocket_Extensions="permessage-deflate, permessage-deflate"),
            key=KEY,
            extensions=[factory, ClientPerMessageDeflateFactory()],
        )


def test_subprotocol_negotiation() -> None:
    assert check_response(
        response(Sec_WebSocket_Protocol="chat"), key=KEY, subprotocols=["chat", "x"]
    ) == ([], "chat")
    with pytest.raises(NegotiationError, match="did not offer"):
        check_response(response(Sec_WebSocket_Protocol="other"), key=KEY, subprotocols=["chat"])
    with pytest.raises(NegotiationError, match="offered none"):
        check_response(response(Sec_WebSocket_Protocol="chat"), key=KEY)
    with pytest.raises(NegotiationError, match="several"):
        check_response(
            response(Sec_WebSocket_Protocol="chat, x"), key=KEY, subprotocols=["chat", "x"]
        )


def test_header_grammars() -> None:
    assert parse_token_list("Connection", " keep-alive ,, Upgrade ") == ["keep-alive", "Upgrade"]
    assert parse_extension_header(
        'permessage-deflate ; client_max_window_bits="10"; server_no_context_takeover, x-y'
    ) == [
        (
            "permessage-deflate",
            [("client_max_window_bits", "10"), ("server_no_context_takeover", None)],
        ),
        ("x-y", []),
    ]
    for bad in ["permessage-deflate; =1", "a b", 'x; y="unterminated', "x; y=@"]:
        with pytest.raises(InvalidHeader):
            parse_extension_header(bad)
