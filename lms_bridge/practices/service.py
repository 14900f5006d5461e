"""Library operations over the store: consent, curation, publication and search, each in one transaction."""
from __future__ import annotations

from ..db import practices as q
from ..db import projects as pq
from ..db import write_transaction
from ..errors import NotAuthorized, NotFound
from ..i18n import gettext
from ..projects import workflow
from ..projects.forms import COUNTRIES
from . import rules


def site_of(db, launch) -> str:
    issuer = q.issuer_of(db, launch.platform_id)
    if issuer is None:
        raise NotFound(gettext("This course's LMS is no longer registered with the tool."))
    return issuer


def project_consent(db, project_id: int) -> str:
    entry = q.entry_for_project(db, project_id)
    if entry and entry.get("retained_at"):
        return rules.ANONYMOUS  # its course passed retention: the people are gone, the practice stays
    members = pq.members(db, project_id)
    chosen = q.consents(db, project_id)
    return rules.effective_consent([chosen[m["user_id"]]["choice"] if m["user_id"] in chosen else rules.NONE
                                    for m in members])


def _refresh(db, entry: dict) -> None:
    """Apply the members' consent to an entry at once: withdrawn -> deleted, else re-indexed if published."""
    consent = project_consent(db, entry["project_id"])
    if consent == rules.NONE:
        q.delete_entry(db, entry["id"])
    elif entry["state"] == rules.PUBLISHED:
        q.index_entry(db, entry, rules.tags(entry), _place(entry))


def _place(entry: dict) -> str:
    return f"{entry['city']} {COUNTRIES.get(entry['country'], '')}".strip()


def record_consent(db, launch, project_id: int, choice: str, locale: str) -> None:
    """The participant's choice with the wording they saw and its date; a withdrawal removes the entry."""
    choice = rules.clean_consent(choice)
    with write_transaction(db):
        member_ids = {m["user_id"] for m in pq.members(db, project_id)}
        if launch.user_id not in member_ids:
            raise NotAuthorized(gettext("Only the project's authors can decide whether it is shared."))
        q.set_consent(db, launch.scope, project_id, launch.user_id, choice,
                      gettext(rules.CONSENT_WORDING, locale=locale), locale)
        pq.audit(db, launch.scope, launch.user_id, "library_consent", project_id=project_id, choice=choice)
        entry = q.entry_for_project(db, project_id)
        if entry:
            _refresh(db, entry)


def candidates(db, scope) -> list[dict]:
    """The course's projects with their report status, the members' consent and any entry."""
    out = []
    for project in q.course_projects(db, scope):
        report = pq.submission(db, project["id"], "project_report")
        entry = q.entry_for_project(db, project["id"])
        out.append({"project": project, "report_status": report["status"] if report else workflow.NOT_STARTED,
                    "consent": project_consent(db, project["id"]), "entry": entry,
                    "members": pq.members(db, project["id"])})
    return out


def _curatable(db, scope, project_id: int) -> dict:
    project = pq.get_project(db, scope, project_id)
    if project is None:
        raise NotFound(gettext("No such project in this course."))
    if project_consent(db, project_id) == rules.NONE:
        raise rules.LibraryRefused(gettext("The participants have not agreed to share this project."))
    report = pq.submission(db, project_id, "project_report")
    if not report or report["status"] != workflow.GRADED:
        raise rules.LibraryRefused(gettext("Only graded projects can become library entries."))
    return project


def start_entry(db, launch, project_id: int) -> dict:
    """The project's entry, drafted from its plan and report the first time a facilitator opens it."""
    with write_transaction(db):
        _curatable(db, launch.scope, project_id)
        entry = q.entry_for_project(db, project_id)
        if entry:
            return entry
        subs = pq.submissions(db, project_id)
        plan = subs.get("project_plan", {}).get("data", {}) if subs.get("project_plan") else {}
        report = subs["project_report"]
        updates = [subs["progress_update"]["data"]] if subs.get("progress_update") else []
        year = int(report["submitted_at"][:4]) if report.get("submitted_at") else None
        fields = rules.draft_from_project(plan, report["data"], updates, year=year)
        entry_id = q.create_entry(db, site_of(db, launch), launch.scope, project_id, fields, launch.user_id)
        pq.audit(db, launch.scope, launch.user_id, "library_draft", project_id=project_id)
        return q.entry(db, entry_id)


def _course_entry(db, launch, entry_id: int) -> dict:
    entry = q.entry(db, entry_id)
    if entry is None or (entry["platform_id"], entry["deployment_id"], entry["context_id"]) != launch.scope:
        raise NotFound(gettext("No such library entry in this course."))
    return entry


def save_entry(db, launch, entry_id: int, form: dict, attachments: list[str], action: str | None) -> dict:
    """Save the facilitator's edits, then optionally `send` to the participant, `publish` or `unpublish`."""
    with write_transaction(db):
        entry = _course_entry(db, launch, entry_id)
        _curatable(db, launch.scope, entry["project_id"])
        fields = rules.clean_entry(form, for_send=action in ("send", "publish"))
        allowed = {str(a["id"]) for stage in ("project_report", "final_presentation", "project_plan")
                   for a in pq.attachments(db, entry["project_id"], stage)}
        fields["attachments"] = [a for a in attachments if a in allowed]
        q.update_entry(db, entry_id, fields)
        if action:
            state = rules.transition(entry["state"], "facilitator", action)
            q.set_state(db, entry_id, state)
            entry = q.entry(db, entry_id)
            if state == rules.PUBLISHED:
                q.index_entry(db, entry, rules.tags(entry), _place(entry))
            elif action == "unpublish":
                q.unindex_entry(db, entry_id)
        elif entry["state"] == rules.PUBLISHED:
            entry = q.entry(db, entry_id)
            q.index_entry(db, entry, rules.tags(entry), _place(entry))
        pq.audit(db, launch.scope, launch.user_id, "library_" + (action or "save"), project_id=entry["project_id"])
        return q.entry(db, entry_id)


def participant_review(db, launch, action: str, comment: str) -> dict:
    """The participant approves their entry or asks for changes (which takes a published entry down)."""
    with write_transaction(db):
        project = pq.project_of(db, launch.scope, launch.user_id)
        entry = q.entry_for_project(db, project["id"]) if project else None
        if entry is None:
            raise NotFound(gettext("Your project has no library entry yet."))
        if action not in ("approve", "ask_changes"):
            raise rules.LibraryRefused(gettext("Choose to approve the entry or to ask for changes."))
        comment = (comment or "").strip()[:2000]
        if action == "ask_changes" and not comment:
            raise rules.EntryInvalid({"comment": gettext("Say what should change.")})
        state = rules.transition(entry["state"], "participant", action)
        q.set_state(db, entry["id"], state, change_request=comment if action == "ask_changes" else "")
        if entry["state"] == rules.PUBLISHED:
            q.unindex_entry(db, entry["id"])
        pq.audit(db, launch.scope, launch.user_id, "library_" + action, project_id=project["id"])
        return q.entry(db, entry["id"])


def authorship(db, entry: dict) -> rules.Authorship:
    members = pq.members(db, entry["project_id"])
    return rules.authorship(project_consent(db, entry["project_id"]), [m["name"] for m in members])


def visible_entry(db, issuer: str | None, public_id: str) -> dict:
    """A published entry of the site (any site for the public page), or NotFound."""
    entry = q.entry_by_public_id(db, public_id)
    if entry is None or entry["state"] != rules.PUBLISHED or (issuer is not None and entry["issuer"] != issuer):
        raise NotFound(gettext("No such entry in the library."))
    return entry
