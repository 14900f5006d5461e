"""Request-level protections: same-site check for state-changing requests, Content-Security-Policy with
per-request nonces, and local redirect targets. Each costs a few dictionary lookups per request."""
from __future__ import annotations

from urllib.parse import urlsplit

TOOL_PREFIXES = ("/app/", "/consultations/")


def local_target(value: str | None, default: str) -> str:
    """`value` when it is a path inside the tool (no scheme, no host, no `//` or backslash tricks), else `default`."""
    if not value or not isinstance(value, str) or len(value) > 2000:
        return default
    if any(c in value for c in "\\\r\n\t") or any(ord(c) < 32 for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith(TOOL_PREFIXES) or "/../" in parts.path:
        return default
    return value
