"""Attach Moodle web-service credentials to a platform, checked at once against the site."""
from __future__ import annotations

from ..clients import MoodleClient, MoodleError
from ..db import lti as q
from ..db import outbox as ob
from ..db import registration as reg

REQUIRED_FUNCTIONS = [
    "core_webservice_get_site_info",
    "core_course_get_course_module_by_instance",
    "core_grades_update_grades",
    "core_completion_override_activity_completion_status",
    "core_calendar_create_calendar_events",
    "core_calendar_delete_calendar_events",
    "core_calendar_get_calendar_events",
    "core_message_send_instant_messages",
]


class CredentialsError(Exception):
    """The platform is unknown or Moodle refused the token; the message never contains the token."""


def attach(db, session, *, issuer: str, url: str, token: str) -> list[str]:
    """Check the token with core_webservice_get_site_info, store it, and report missing functions."""
    sites = [p for p in q.list_platforms(db) if p["issuer"] == issuer.rstrip("/") or p["issuer"] == issuer]
    if not sites:
        known = ", ".join(sorted({p["issuer"] for p in q.list_platforms(db)})) or "none"
        raise CredentialsError(f"no platform with issuer {issuer} (registered: {known})")
    issuer = sites[0]["issuer"]
    client = MoodleClient(session, url, token)
    try:
        info = client.get_site_info()
        missing = client.missing_functions(REQUIRED_FUNCTIONS)
    except MoodleError as exc:
        hint = {"invalid_token": "the token is wrong, expired or for another site",
                "missing_capability": "the token's user lacks webservice/rest:use or the service is restricted",
                }.get(exc.kind, "check the URL (Moodle's wwwroot) and that REST is enabled")
        raise CredentialsError(f"Moodle at {url} refused the credentials: {exc.message} ({hint})") from None
    reg.set_site_ws(db, issuer, url, token, missing)
    woken = ob.wake_waiting(db, [p["id"] for p in sites])
    ids = ", ".join(str(p["id"]) for p in sites)
    lines = [f"Moodle site {issuer} (platforms {ids}): Moodle {info.get('release', '?')} at {info.get('siteurl', url)}, "
             f"web-service user {info.get('username', '?')}"]
    if missing:
        lines.append("missing functions (add them to the external service): " + ", ".join(missing))
    else:
        lines.append(f"all {len(REQUIRED_FUNCTIONS)} required functions are available")
    if woken:
        lines.append(f"{woken} waiting jobs go out now")
    return lines
