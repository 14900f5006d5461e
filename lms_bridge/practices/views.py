"""The library in the LMS frame (search, entries, consent, curation) and, when enabled, on a public URL."""
from __future__ import annotations

import csv
import io
import json
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, send_file, url_for

from .. import activities
from ..db import get_db
from ..db import practices as q
from ..db import projects as pq
from ..errors import BridgeError, NotFound
from ..i18n import current_locale, gettext
from ..lti.context import current_launch, requires_launch
from ..projects import service as project_service
from ..projects import workflow
from ..projects.forms import COUNTRIES, HRBA_PRINCIPLES, SDGS
from . import rules, service

bp = Blueprint("practices", __name__, url_prefix="/library")
PER_PAGE = 20
STAFF = ("facilitator", "admin")


def _labels() -> dict:
    return {"countries": COUNTRIES, "hrba": HRBA_PRINCIPLES, "sdgs": SDGS, "themes": rules.THEMES,
            "orgs": rules.ORG_TYPES, "states": rules.STATE_LABELS, "consents": rules.CONSENT_CHOICES,
            "report_labels": workflow.STATUS_LABELS}


def _page() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) <= 6 else 1


def _search(issuer: str | None):
    filters = rules.clean_filters(request.args)
    text = request.args.get("q", "")[:200]
    page = _page()
    entries, total = q.search(get_db(), issuer, query=rules.fts_query(text), filters=filters,
                              limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))
    args = {k: v for k, v in request.args.items() if k != "page"}
    return {"entries": entries, "total": total, "page": min(page, pages), "pages": pages, "filters": filters,
            "query_string": urlencode(args), "page_query": lambda n: urlencode({**args, "page": n}),
            "text": text, "facets": {k: q.facet_values(get_db(), issuer, k) for k in ("country", "year")}}


def _entry_view(entry: dict) -> dict:
    db = get_db()
    atts = {str(a["id"]): a for stage in ("project_plan", "project_report", "final_presentation")
            for a in pq.attachments(db, entry["project_id"], stage)}
    return {"entry": entry, "authors": service.authorship(db, entry),
            "files": [atts[a] for a in entry["attachments"] if a in atts]}


def _public_on() -> None:
    if not current_app.config["LIBRARY_PUBLIC"]:
        abort(404)


@bp.after_request
def _robots(resp):
    if not current_app.config["LIBRARY_INDEXABLE"]:
        resp.headers["X-Robots-Tag"] = "noindex, nofollow"
    return resp


# --- inside the LMS: every course of the same site --------------------------------------------

@bp.get("/")
@requires_launch()
def index():
    launch = current_launch()
    found = _search(service.site_of(get_db(), launch))
    return render_template("practices/index.html", launch=launch, public=False, **found, **_labels())


@bp.get("/e/<public_id>")
@requires_launch()
def entry(public_id):
    launch = current_launch()
    e = service.visible_entry(get_db(), service.site_of(get_db(), launch), public_id)
    return render_template("practices/entry.html", launch=launch, public=False, **_entry_view(e), **_labels())


@bp.get("/e/<public_id>/file/<int:attachment_id>")
@requires_launch()
def entry_file(public_id, attachment_id):
    e = service.visible_entry(get_db(), service.site_of(get_db(), current_launch()), public_id)
    return _send_published_file(e, attachment_id)


@bp.get("/collection")
@requires_launch()
def collection():
    launch = current_launch()
    issuer = service.site_of(get_db(), launch)
    entries, _total = q.search(get_db(), issuer, query=rules.fts_query(request.args.get("q", "")[:200]),
                               filters=rules.clean_filters(request.args), limit=500)
    views = [_entry_view(e) for e in entries]
    return render_template("practices/collection.html", launch=launch, views=views, public=False,
                           licence=current_app.config["LIBRARY_LICENCE"], **_labels())


@bp.get("/export.<fmt>")
@requires_launch()
def export(fmt):
    issuer = service.site_of(get_db(), current_launch())
    return _export(issuer, fmt)


# --- the public read-only library (off by default) --------------------------------------------

@bp.get("/public/")
def public_index():
    _public_on()
    return render_template("practices/index.html", launch=None, public=True, **_search(None), **_labels())


@bp.get("/public/e/<public_id>")
def public_entry(public_id):
    _public_on()
    e = service.visible_entry(get_db(), None, public_id)
    return render_template("practices/entry.html", launch=None, public=True, **_entry_view(e), **_labels())


@bp.get("/public/e/<public_id>/file/<int:attachment_id>")
def public_file(public_id, attachment_id):
    _public_on()
    return _send_published_file(service.visible_entry(get_db(), None, public_id), attachment_id)


@bp.get("/public/export.<fmt>")
def public_export(fmt):
    _public_on()
    return _export(None, fmt)


def _send_published_file(e: dict, attachment_id: int):
    if str(attachment_id) not in e["attachments"]:
        raise NotFound(gettext("This file is not published with the entry."))
    att = pq.attachment(get_db(), attachment_id)
    if att is None or att["project_id"] != e["project_id"]:
        raise NotFound(gettext("This file is not published with the entry."))
    path = project_service.upload_path(current_app.config["DATA_DIR"], att["storage_name"])
    if not path.is_file():
        raise NotFound(gettext("The file is no longer stored."))
    return send_file(path, as_attachment=True, download_name=att["display_name"])


EXPORT_FIELDS = ("id", "title", "summary", "problem", "approach", "results", "lessons", "challenges", "what_next",
                 "authors", "city", "country", "sdgs", "targets", "hrba", "themes", "cohort_year",
                 "organisation_type", "published_at", "licence", "url")


def _export_rows(issuer):
    db = get_db()
    entries, _ = q.search(db, issuer, filters=rules.clean_filters(request.args),
                          query=rules.fts_query(request.args.get("q", "")[:200]), limit=10_000)
    base = current_app.config["TOOL_URL"]
    for e in entries:
        authors = service.authorship(db, e)
        yield {"id": e["public_id"], **{k: e[k] for k in rules.TEXT_LIMITS if k != "city"},
               "authors": list(authors.names), "city": e["city"], "country": COUNTRIES.get(e["country"], ""),
               "sdgs": e["sdgs"], "targets": e["targets"], "hrba": e["hrba"], "themes": e["themes"],
               "cohort_year": e["cohort_year"], "organisation_type": e["org_type"],
               "published_at": e["published_at"], "licence": current_app.config["LIBRARY_LICENCE"],
               "url": f"{base}/library/public/e/{e['public_id']}"}


def _export(issuer, fmt):
    rows = list(_export_rows(issuer))
    if fmt == "json":
        body = json.dumps({"licence": current_app.config["LIBRARY_LICENCE"], "entries": rows}, ensure_ascii=False)
        return Response(body, mimetype="application/json")
    if fmt != "csv":
        raise NotFound(gettext("Export as csv or json."))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "; ".join(map(str, v)) if isinstance(v, list) else _cell(v) for k, v in row.items()})
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=promising-practices.csv"})


def _cell(value):
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- the participant: consent and the entry's review -------------------------------------------

@bp.route("/mine", methods=["GET", "POST"])
@requires_launch("learner")
def mine():
    launch, db = current_launch(), get_db()
    project = pq.project_of(db, launch.scope, launch.user_id)
    errors, saved = {}, request.args.get("saved")
    if request.method == "POST" and project:
        try:
            if "consent" in request.form:
                service.record_consent(db, launch, project["id"], request.form.get("consent"), current_locale())
            else:
                service.participant_review(db, launch, request.form.get("action", ""), request.form.get("comment", ""))
            return redirect(url_for(".mine", lt=launch.token, saved=1), 303)
        except rules.EntryInvalid as e:
            errors = e.errors
        except rules.LibraryRefused as e:
            raise BridgeError(str(e), code="library_refused", status=409) from None
    mine_consent = q.consents(db, project["id"]).get(launch.user_id) if project else None
    e = q.entry_for_project(db, project["id"]) if project else None
    return render_template("practices/mine.html", launch=launch, project=project, consent=mine_consent,
                           view=_entry_view(e) if e else None, errors=errors, saved=saved,
                           wording=gettext(rules.CONSENT_WORDING), form=request.form, **_labels()), 400 if errors else 200


# --- facilitators: curation -----------------------------------------------------------------

@bp.get("/curate")
@requires_launch(*STAFF)
def curate():
    launch = current_launch()
    return render_template("practices/curate.html", launch=launch, rows=service.candidates(get_db(), launch.scope),
                           **_labels())


@bp.post("/curate/<int:project_id>/start")
@requires_launch(*STAFF)
def start(project_id):
    launch = current_launch()
    try:
        e = service.start_entry(get_db(), launch, project_id)
    except rules.LibraryRefused as err:
        raise BridgeError(str(err), code="library_refused", status=409) from None
    return redirect(url_for(".edit", entry_id=e["id"], lt=launch.token), 303)


@bp.route("/curate/entry/<int:entry_id>", methods=["GET", "POST"])
@requires_launch(*STAFF)
def edit(entry_id):
    launch, db = current_launch(), get_db()
    errors, form = {}, None
    if request.method == "POST":
        form = request.form.to_dict()
        for key in ("hrba", "sdgs", "themes"):
            form[key] = request.form.getlist(key)
        try:
            service.save_entry(db, launch, entry_id, form, request.form.getlist("attachments"),
                               request.form.get("action") or None)
            return redirect(url_for(".edit", entry_id=entry_id, lt=launch.token, saved=1), 303)
        except rules.EntryInvalid as e:
            errors = e.errors
        except rules.LibraryRefused as e:
            errors = {"_": str(e)}
    e = service._course_entry(db, launch, entry_id)
    if form is None:
        form = dict(e, targets=", ".join(e["targets"]), cohort_year=e["cohort_year"] or "")
    files = [a for stage in ("project_plan", "project_report", "final_presentation")
             for a in pq.attachments(db, e["project_id"], stage)]
    return render_template("practices/edit.html", launch=launch, entry=e, form=form, errors=errors, files=files,
                           authors=service.authorship(db, e), saved=request.args.get("saved"),
                           **_labels()), 400 if errors else 200


def init_app(app):
    app.register_blueprint(bp)
    activities.register("practices_library", "practices.index")

