"""The course roster from LTI Names and Role Provisioning; launches fill it too, so NRPS is optional."""
from __future__ import annotations

from ..clients.lti_services import SCOPE_NRPS
from ..db import write_transaction
from ..lti.identity import role_of
from ..lti.services import service_client
from ..db import lti as lq
from ..db import projects as q


def role_from_nrps(roles: list) -> str:
    """NRPS lists roles as short names (Moodle) or full URIs; the same course-role rules as a launch."""
    return role_of(roles)


def sync_roster(db, scope, session, signer) -> int:
    """Fetch every member through NRPS and upsert them; returns how many members were read."""
    links = q.course_links(db, scope)
    if not links["memberships_url"]:
        raise LookupError("The platform did not offer Names and Role Provisioning for this course.")
    platform = lq.get_platform(db, scope[0])
    client = service_client(db, session, platform, signer, scopes=(SCOPE_NRPS,))
    container = client.get_members(links["memberships_url"])
    members = [m for m in container["members"] if m.get("status", "Active") == "Active"]
    with write_transaction(db):
        for m in members:
            q.upsert_member(db, scope, str(m["user_id"]), m.get("name") or "", m.get("email") or "",
                            role_from_nrps(m.get("roles")), from_launch=False)
    return len(members)
