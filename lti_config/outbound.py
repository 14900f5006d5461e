"""Outbound calls a caller can aim (dynamic registration): no redirects, no private addresses, bounded size
and time, and JSON that cannot exhaust the parser. The remote body is never shown to anyone."""
from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

MAX_BYTES = 64 * 1024
MAX_DEPTH = 32


class OutboundRefused(Exception):
    """The call was not made, or its answer was not usable; the message is safe to show."""


@dataclass
class Policy:
    """Where calls may go. `allow_private`: insecure mode. `trusted_origins`: loopback/private origins that are
    allowed anyway (the configured test platform, e.g. a Moodle on 127.0.0.1)."""

    allow_private: bool = False
    trusted_origins: frozenset = frozenset()
    allow_loopback: bool = False  # a trial install on loopback may register the LMS beside it, on any port
    max_bytes: int = MAX_BYTES
    deadline: float = 15.0


def origin(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}".lower()


def _plain(ip: ipaddress._BaseAddress) -> ipaddress._BaseAddress:
    """An IPv4 address written as IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address it is."""
    return ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip


def _blocked(ip: ipaddress._BaseAddress) -> bool:
    ip = _plain(ip)
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or getattr(ip, "is_site_local", False))


def resolve(host: str, port: int) -> list[ipaddress._BaseAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise OutboundRefused(f"the host {host} does not resolve") from None
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def check_destination(url: str, policy: Policy, resolver=None) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused(f"{url!r} is not an absolute http(s) URL")
    if policy.allow_private or origin(url) in policy.trusted_origins:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundRefused(f"{url!r} has an invalid port") from None
    for ip in (resolver or resolve)(parts.hostname, port):
        if policy.allow_loopback and _plain(ip).is_loopback:
            continue
        if _blocked(ip):
            raise OutboundRefused(f"{parts.hostname} resolves to a loopback, private or link-local address "
                                  f"({ip}); the tool does not call such addresses")


def _depth(text: str) -> int:
    """Deepest nesting of brackets outside strings: checked before json.loads ever recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(body: bytes, what: str):
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise OutboundRefused(f"{what} is not UTF-8 text") from None
    if _depth(text) > MAX_DEPTH:
        raise OutboundRefused(f"{what} is nested too deeply")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise OutboundRefused(f"{what} is not JSON") from None


def _shutdown(resp: requests.Response) -> None:
    """Wake a read blocked in another thread: shutting the socket down ends it at once (closing may not)."""
    sock = getattr(getattr(getattr(getattr(resp.raw, "_fp", None), "fp", None), "raw", None), "_sock", None)
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        else:
            resp.close()
    except (OSError, AttributeError):
        pass


@dataclass
class Answer:
    status: int
    body: bytes


def call(session: requests.Session, method: str, url: str, policy: Policy, *, what: str, resolver=None,
         clock=time.monotonic, **kwargs) -> Answer:
    """One request under `policy`: destination checked after DNS resolution, redirects refused, at most
    `max_bytes` read, and the whole call (connect, headers, body) bounded by `deadline` seconds."""
    check_destination(url, policy, resolver)
    started = clock()
    try:
        resp = session.request(method, url, allow_redirects=False, stream=True,
                               timeout=(min(5.0, policy.deadline), policy.deadline), **kwargs)
    except requests.RequestException as e:
        raise OutboundRefused(f"{what} did not answer ({type(e).__name__})") from None
    timer = None
    try:
        if 300 <= resp.status_code < 400:
            raise OutboundRefused(f"{what} answered with a redirect (HTTP {resp.status_code}); redirects are not "
                                  "followed: give the final URL")
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > policy.max_bytes:
            raise OutboundRefused(f"{what} is larger than {policy.max_bytes // 1024} KiB")
        remaining = policy.deadline - (clock() - started)
        if remaining <= 0:
            raise OutboundRefused(f"{what} took longer than {policy.deadline:g} s")
        expired = threading.Event()

        def cut():  # a body dripping in byte by byte is cut off at the deadline, not per gap
            expired.set()
            _shutdown(resp)

        timer = threading.Timer(remaining, cut)
        timer.daemon = True
        timer.start()
        chunks, size = [], 0
        try:
            for chunk in resp.iter_content(4096):
                size += len(chunk)
                if size > policy.max_bytes:
                    raise OutboundRefused(f"{what} is larger than {policy.max_bytes // 1024} KiB")
                chunks.append(chunk)
                if expired.is_set() or clock() - started > policy.deadline:
                    raise OutboundRefused(f"{what} took longer than {policy.deadline:g} s")
        except (requests.RequestException, OSError, AttributeError, ValueError):
            if expired.is_set():
                raise OutboundRefused(f"{what} took longer than {policy.deadline:g} s") from None
            raise OutboundRefused(f"{what} broke off") from None
        if expired.is_set():
            raise OutboundRefused(f"{what} took longer than {policy.deadline:g} s")
        return Answer(resp.status_code, b"".join(chunks))
    finally:
        if timer is not None:
            timer.cancel()
        resp.close()
