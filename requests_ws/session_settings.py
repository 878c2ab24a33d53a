"""A session's settings applied to the upgrade request, exactly as requests
applies them, for less CPU: ``Session.prepare_request`` and
``Session.merge_environment_settings``.

Both are requests' own logic; when a session's class overrides either
method, that method is called instead, unchanged.

:func:`prepare_request` is ``requests.Session.prepare_request`` (cookies of
the request and the session, netrc, headers, params, auth and hooks merged,
then ``PreparedRequest.prepare``), with the merge of two mappings done
directly instead of through ``requests.utils.to_key_val_list``, whose
``isinstance`` against a runtime-checkable ``Protocol`` costs more than the
rest of the merge before Python 3.12, and with empty params passed as
``None`` (no query string either way).

:func:`environment_settings` is ``merge_environment_settings``, remembered
while the environment stays the same. requests reads the proxy variables by
walking all of ``os.environ`` twice per call
(``urllib.request.getproxies_environment``, once for the proxies and once for
``no_proxy``); with a few dozen variables that is most of the CPU an opening
costs. It returns exactly what the session's own method returns, and calls it
again whenever anything that answer depends on differs:

* the environment: every variable, compared as the raw strings
  ``os.environ`` holds (so ``HTTP_PROXY``, ``NO_PROXY``,
  ``REQUESTS_CA_BUNDLE``... set, changed or removed between two calls are
  seen at once);
* the URL's scheme, host and port (all requests' proxy selection and
  ``no_proxy`` matching look at);
* the call's ``proxies``, ``verify`` and ``cert``, and the session's
  ``trust_env``, ``proxies``, ``stream``, ``verify`` and ``cert``.

It calls the session's method every time (nothing remembered) when the
session's class overrides ``merge_environment_settings``, when the platform's
proxy lookup reads more than the environment (the Windows registry, macOS
system settings), when ``os.environ`` does not expose its raw mapping, or
when a setting is not hashable.

Concurrency: the remembered answers live in one :class:`_Generation` (the
environment they were computed in, and a dict of answers), replaced as a
whole when the environment changes; module state is only ever swapped by one
assignment, and dict reads and writes are atomic, so no lock is needed. An
answer is stored only if the environment is still the one its generation
was made for after it was computed, so an answer computed while another
thread changed the environment is not kept. Each returned value is a fresh
copy: callers may change it.
"""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from http.cookiejar import CookieJar
from typing import Any

import requests
import requests.utils
from requests.cookies import RequestsCookieJar, cookiejar_from_dict, merge_cookies
from requests.sessions import merge_hooks, merge_setting
from requests.structures import CaseInsensitiveDict

__all__ = ["environment_settings", "prepare_request"]

_MAX_REMEMBERED = 64


class _Generation:
    """The answers computed while the environment was ``environ``."""

    __slots__ = ("answers", "environ")

    def __init__(self, environ: dict[Any, Any]) -> None:
        self.environ = environ
        self.answers: dict[Hashable, dict[str, Any]] = {}


_current: _Generation | None = None


def _raw_environ() -> dict[Any, Any] | None:
    """``os.environ``'s own mapping of raw keys to raw values (CPython and
    PyPy keep one as ``_data``), compared without decoding every variable."""
    data = getattr(os.environ, "_data", None)
    return data if isinstance(data, dict) else None


def _environment_only() -> bool:
    """True when requests' proxy lookup reads nothing but the environment
    (Linux and other POSIX systems but macOS)."""
    environment_lookup = getattr(urllib.request, "getproxies_environment", None)
    environment_bypass = getattr(urllib.request, "proxy_bypass_environment", None)
    return (
        environment_lookup is not None
        and environment_bypass is not None
        and getattr(requests.utils, "getproxies", None) is environment_lookup
        and getattr(requests.utils, "proxy_bypass", None) is environment_bypass
    )


_CACHEABLE_PLATFORM = _environment_only()


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(value.items())
    return value


def _key(
    session: requests.Session,
    url: str,
    proxies: Mapping[str, str] | None,
    verify: Any,
    cert: Any,
) -> Hashable | None:
    parts = urllib.parse.urlsplit(url)
    try:
        key = (
            type(session),
            parts.scheme.lower(),
            parts.hostname,
            parts.port,
            _frozen(proxies),
            verify,
            cert,
            bool(session.trust_env),
            _frozen(session.proxies),
            session.stream,
            session.verify,
            session.cert,
        )
        hash(key)
    except (TypeError, ValueError):  # an unhashable setting, or a bad port
        return None
    return key


def _copy(settings: Mapping[str, Any]) -> dict[str, Any]:
    copied = dict(settings)
    proxies = copied.get("proxies")
    if isinstance(proxies, Mapping):
        copied["proxies"] = type(proxies)(proxies) if isinstance(proxies, dict) else dict(proxies)
    return copied


def _merged(
    session: requests.Session,
    url: str,
    proxies: Mapping[str, str] | None,
    verify: Any,
    cert: Any,
) -> dict[str, Any]:
    # A copy of ``proxies``: requests adds the environment's to the dict it gets.
    return dict(session.merge_environment_settings(url, dict(proxies or {}), True, verify, cert))


def environment_settings(
    session: requests.Session,
    url: str,
    proxies: Mapping[str, str] | None,
    verify: Any,
    cert: Any,
) -> dict[str, Any]:
    """``session.merge_environment_settings(url, dict(proxies or {}), True,
    verify, cert)``: the proxies, ``stream``, ``verify`` and ``cert`` to
    send ``url`` (an ``http(s)://`` URL) with."""
    global _current
    environ = _raw_environ()
    key = None
    if (
        environ is not None
        and _CACHEABLE_PLATFORM
        and type(session).merge_environment_settings is requests.Session.merge_environment_settings
    ):
        key = _key(session, url, proxies, verify, cert)
    if key is None or environ is None:
        return _merged(session, url, proxies, verify, cert)
    generation = _current
    if generation is None or generation.environ != environ:
        generation = _Generation(dict(environ))
        _current = generation
    found = generation.answers.get(key)
    if found is not None:
        return _copy(found)
    settings = _merged(session, url, proxies, verify, cert)
    if generation.environ == environ:
        if len(generation.answers) >= _MAX_REMEMBERED:
            generation.answers.clear()
        generation.answers[key] = _copy(settings)
    return settings


def _merged_mappings(
    request_setting: Any, session_setting: Any, dict_class: Callable[[Any], Any]
) -> Any:
    """``requests.sessions.merge_setting``: the request's setting over the
    session's, keys set to None removed; a setting that is not a mapping wins
    as it is."""
    if session_setting is None:
        return request_setting
    if request_setting is None:
        return session_setting
    if not (isinstance(session_setting, Mapping) and isinstance(request_setting, Mapping)):
        return request_setting
    merged = dict_class(())
    removed = []  # keys set to None at some point: dropped if None in the end
    for setting in (session_setting, request_setting):
        for key, value in setting.items():
            merged[key] = value
            if value is None:
                removed.append(key)
    for key in removed:
        if key in merged and merged[key] is None:
            del merged[key]
    return merged


def prepare_request(
    session: requests.Session, request: requests.Request
) -> requests.PreparedRequest:
    """``session.prepare_request(request)``."""
    if type(session).prepare_request is not requests.Session.prepare_request:
        return session.prepare_request(request)
    url: Any = request.url
    merged_cookies = merge_cookies(RequestsCookieJar(), session.cookies)
    cookies: Any = request.cookies
    if cookies:  # merging no cookies adds none
        if not isinstance(cookies, CookieJar):
            cookies = cookiejar_from_dict(cookies)
        merged_cookies = merge_cookies(merged_cookies, cookies)
    auth = request.auth
    if session.trust_env and not auth and not session.auth:
        auth = requests.utils.get_netrc_auth(url)
    params = _merged_mappings(request.params, session.params, OrderedDict)
    hooks: Any = merge_hooks(request.hooks, session.hooks)
    prepared = requests.PreparedRequest()
    prepared.prepare(
        method=str(request.method).upper(),
        url=url,
        files=request.files,
        data=request.data,
        json=request.json,
        headers=_merged_mappings(request.headers, session.headers, CaseInsensitiveDict),
        params=params or None,
        auth=merge_setting(auth, session.auth),
        cookies=merged_cookies,
        hooks=hooks,
    )
    return prepared
