"""Request-level protections: same-site check for state-changing requests, Content-Security-Policy with
per-request nonces, the launch cookie, and local redirect targets. A few dictionary lookups per request."""
from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode, urlsplit

from flask import current_app, g, request

from .errors import NotAuthorized
from .i18n import gettext as _

TOOL_PREFIXES = ("/app/", "/consultations/")
# Cross-site by design: the platform's browser form posts of the OIDC login and the launch.
CROSS_SITE_OK = ("/lti/login", "/lti/launch")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ORIGINS_TTL = 10.0  # seconds the registered platforms' origins are cached per process


def local_target(value: str | None, default: str) -> str:
    """`value` when it is a path inside the tool (no scheme, no host, no `//` or backslash tricks), else `default`."""
    if not value or not isinstance(value, str) or len(value) > 2000:
        return default
    if "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith(TOOL_PREFIXES) or "/../" in parts.path:
        return default
    return value


def here() -> str:
    """This page's path and query with `lt` set to the current (renewed, or reference) token: the
    `next` of forms that come back to the page."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lt"]
    launch = g.get("launch")
    if launch is not None:
        args.insert(0, ("lt", launch.token))
    return request.path + ("?" + urlencode(args) if args else "")


def origin_of(url: str) -> str | None:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _check_same_site():
    """before_request: refuse a state-changing request another site's page made the browser send."""
    if request.method not in UNSAFE or request.path in CROSS_SITE_OK or request.path.startswith("/sandbox/"):
        return None
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        if fetch_site in ("same-origin", "none"):
            return None
        raise NotAuthorized(_("This form was sent from another site, so the tool did not act on it. Use the "
                              "tool's own pages inside your course."), code="cross_site_request")
    sent = request.headers.get("Origin")
    if sent is None:
        return None  # not a browser, or an old one: the launch token is still required
    if sent.lower() in (current_app.extensions["lms_bridge_origin"], request.host_url.rstrip("/").lower()):
        return None
    raise NotAuthorized(_("This form was sent from another site, so the tool did not act on it. Use the "
                          "tool's own pages inside your course."), code="cross_site_request")


def csp_nonce() -> str:
    """The nonce of this response's inline scripts (the auto-posting pages), made on first use."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


_origins_cache: dict[tuple[str, str], tuple[float, str, frozenset]] = {}


def invalidate_origins() -> None:
    """Call after adding or removing a platform so frame-ancestors follows at once in this process."""
    _origins_cache.clear()


def frame_ancestors() -> str:
    """'self' and every registered platform's origin (issuer and login URL), cached for ORIGINS_TTL, and
    read again at once when this request's launch comes from a platform the cache does not know yet."""
    # per app as well as per store: tests reuse a PostgreSQL database (same URL) with new platforms in it
    key = (current_app.config["DATABASE_URL"], current_app.extensions["lms_bridge_instance"])
    hit = _origins_cache.get(key)
    now = time.monotonic()
    launch = g.get("launch")
    if hit and now - hit[0] < ORIGINS_TTL and (launch is None or launch.platform_id in hit[2]):
        return hit[1]
    from .db import get_db
    from .db.lti import active_platform_origins

    origins, ids = set(), set()
    for row in active_platform_origins(get_db()):
        ids.add(row["id"])
        for url in (row["issuer"], row["auth_login_url"]):
            o = origin_of(url)
            if o and o != current_app.extensions["lms_bridge_origin"] and not any(c in o for c in " ;,'"):
                origins.add(o)
    value = " ".join(["'self'", *sorted(origins)])
    _origins_cache[key] = (now, value, frozenset(ids))
    return value


def _headers(resp):
    from .lti.context import set_launch_cookie

    set_launch_cookie(resp)
    # nosniff, no-referrer and no-store come with every response (lms_bridge.ToolResponse)
    if resp.headers.get("Content-Type", "").startswith("text/html"):
        if "Content-Security-Policy" not in resp.headers:
            nonce = g.get("csp_nonce")
            script = f"script-src 'self' 'nonce-{nonce}'" if nonce else "script-src 'self'"
            if request.path.startswith("/lti/register"):
                # shown inside the LMS before the platform exists; it holds nothing to click-jack
                ancestors = "*"
                invalidate_origins()
            else:
                try:
                    ancestors = frame_ancestors()
                except Exception:  # the store is down: still answer, framed by the tool only
                    ancestors = "'self'"
            resp.headers["Content-Security-Policy"] = (
                f"{script}; object-src 'none'; base-uri 'none'; frame-ancestors {ancestors}")
    return resp


def init_app(app) -> None:
    app.extensions["lms_bridge_origin"] = origin_of(app.config["TOOL_URL"]) or ""
    app.extensions["lms_bridge_instance"] = secrets.token_hex(8)
    app.before_request(_check_same_site)
    app.after_request(_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.globals["here"] = here
