"""The administrators' privacy page: export or erase one person of their own LMS site, see retention."""
from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from flask import Blueprint, current_app, render_template, request, send_file

from ..db import get_db
from ..db import practices as pq
from ..errors import BridgeError
from ..i18n import gettext
from ..lti.context import current_launch, requires_launch
from . import service

bp = Blueprint("privacy", __name__, url_prefix="/admin/privacy")


def _person() -> str:
    sub = (request.form.get("user") or "").strip()
    if not sub or len(sub) > 255:
        raise BridgeError(gettext("Give the person's LMS user id."), code="user_required")
    return sub


@bp.get("/")
@requires_launch("admin")
def page():
    launch, db = current_launch(), get_db()
    days = current_app.config["RETENTION_DAYS"]
    return render_template("privacy/admin.html", launch=launch, issuer=pq.issuer_of(db, launch.platform_id),
                           plan=service.retention_plan(db, days), days=days, report=None)


@bp.post("/export")
@requires_launch("admin")
def export():
    launch, db = current_launch(), get_db()
    sub = _person()
    issuer = pq.issuer_of(db, launch.platform_id)
    with tempfile.TemporaryDirectory() as tmp:
        service.export(db, issuer, sub, Path(tmp) / "export", current_app.config["DATA_DIR"])
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted((Path(tmp) / "export").rglob("*")):
                if path.is_file():
                    z.write(path, path.relative_to(Path(tmp) / "export"))
    buf.seek(0)
    return send_file(buf, mimetype="application/zip", as_attachment=True,
                     download_name=f"lms-bridge-personal-data-{sub}.zip")


@bp.post("/erase")
@requires_launch("admin")
def erase():
    launch, db = current_launch(), get_db()
    sub = _person()
    if request.form.get("confirm") != sub:
        raise BridgeError(gettext("Type the user id again to confirm the erasure."), code="confirm_required")
    issuer = pq.issuer_of(db, launch.platform_id)
    report = service.erase(db, issuer, sub, current_app.config["DATA_DIR"])
    days = current_app.config["RETENTION_DAYS"]
    return render_template("privacy/admin.html", launch=launch, issuer=issuer, report=report,
                           plan=service.retention_plan(db, days), days=days)


def init_app(app):
    app.register_blueprint(bp)
