"""The course roster from LTI Names and Role Provisioning; launches fill it too, so NRPS is optional."""
from __future__ import annotations

from datetime import datetime, timezone

from ..clients.lti_services import SCOPE_NRPS, LtiServiceClient
from ..db import write_transaction
from ..db import lti as lq
from ..db import projects as q


class DbTokenStore:
    """LtiServiceClient token store backed by the access_tokens table (shared by every worker)."""

    def __init__(self, db, platform_id: int):
        self.db, self.platform_id = db, platform_id

    def get(self, key: str):
        found = lq.get_access_token(self.db, self.platform_id, key)
        return (found[0], found[1].timestamp()) if found else None

    def set(self, key: str, token: str, exp: float) -> None:
        lq.set_access_token(self.db, self.platform_id, key, token, datetime.fromtimestamp(exp, timezone.utc))


def role_from_nrps(roles: list) -> str:
    names = [str(r).rsplit("#", 1)[-1] for r in roles or []]
    if "Administrator" in names:
        return "admin"
    if any(n in ("Instructor", "TeachingAssistant", "ContentDeveloper", "Mentor") for n in names):
        return "facilitator"
    return "learner"


def sync_roster(db, scope, session, signer) -> int:
    """Fetch every member through NRPS and upsert them; returns how many members were read."""
    links = q.course_links(db, scope)
    if not links["memberships_url"]:
        raise LookupError("The platform did not offer Names and Role Provisioning for this course.")
    platform = lq.get_platform(db, scope[0])
    client = LtiServiceClient(session, platform["client_id"], platform["auth_token_url"], signer,
                              scopes=(SCOPE_NRPS,), audience=platform["auth_audience"],
                              token_store=DbTokenStore(db, scope[0]))
    container = client.get_members(links["memberships_url"])
    members = [m for m in container["members"] if m.get("status", "Active") == "Active"]
    with write_transaction(db):
        for m in members:
            q.upsert_member(db, scope, str(m["user_id"]), m.get("name") or "", m.get("email") or "",
                            role_from_nrps(m.get("roles")), from_launch=False)
    return len(members)
