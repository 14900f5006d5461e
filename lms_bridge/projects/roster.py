"""The course roster from LTI Names and Role Provisioning; launches fill it too, so NRPS is optional."""
from __future__ import annotations

from ..clients.lti_services import SCOPE_NRPS
from ..db import write_transaction
from ..lti.identity import role_of
from ..lti.services import service_client
from ..db import lti as lq
from ..db import projects as q


ROSTER_BATCH = 200  # members written per transaction by a roster sync


def role_from_nrps(roles: list) -> str:
    """NRPS lists roles as short names (Moodle) or full URIs; the same course-role rules as a launch."""
    return role_of(roles)


def sync_roster(db, scope, session, signer, actor: str = "nrps") -> dict:
    """Fetch every member through NRPS, upsert them and mark learners the LMS no longer lists as gone.

    Returns what changed: {"added": learners new to the list, "left": learners gone, "staff": staff
    members read (never listed as participants), "read": members read}."""
    links = q.course_links(db, scope)
    if not links["memberships_url"]:
        raise LookupError("The platform did not offer Names and Role Provisioning for this course.")
    platform = lq.get_platform(db, scope[0])
    client = service_client(db, session, platform, signer, scopes=(SCOPE_NRPS,))
    container = client.get_members(links["memberships_url"])
    members = [m for m in container["members"] if m.get("status", "Active") == "Active"]
    before = q.roster_state(db, scope)
    # Members are written ROSTER_BATCH at a time, each batch its own transaction: a launch never waits behind the
    # first sync of a large course, and on PostgreSQL the dashboard's counter rows do not pile up row versions
    # inside one long transaction (its cost grew with the square of the course size). Upserts are idempotent:
    # a sync that stops halfway is completed by the next one.
    for start in range(0, len(members), ROSTER_BATCH):
        with write_transaction(db):
            for m in members[start:start + ROSTER_BATCH]:
                role = role_from_nrps(m.get("roles"))
                if role == "learner" and lq.is_course_expert(
                        db, dict(zip(("platform_id", "deployment_id", "context_id"), scope), user_id=str(m["user_id"]))):
                    role = "expert"  # an expert of the course (Moodle's NRPS may call them Learner): not a participant
                q.upsert_member(db, scope, str(m["user_id"]), m.get("name") or "", m.get("email") or "", role,
                                from_launch=False, username=m.get("ext_user_username") or "")
    with write_transaction(db):
        present = {str(m["user_id"]) for m in members}
        gone = [uid for uid, (role, active) in before.items() if role == "learner" and active and uid not in present]
        q.deactivate_learners(db, scope, gone)
        after = q.roster_state(db, scope)
        added = [uid for uid in present if after[uid] == ("learner", 1) and before.get(uid) != ("learner", 1)]
        staff = [uid for uid in present if after[uid][0] != "learner"]
        q.audit(db, scope, actor, "roster_sync", added=len(added), left=len(gone), staff=len(staff))
    return {"added": len(added), "left": len(gone), "staff": len(staff), "read": len(members)}
