"""`lms-bridge privacy export|erase|retention`: answer a person's request, keep data no longer than needed."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import NotFound


def _open():
    from ..cli import _app, _db

    app = _app()
    return app, _db(app)


@click.group()
def privacy():
    """A person's data: export, erase, and retention of finished courses."""


@privacy.command("export")
@click.option("--issuer", required=True, help="The LMS site (its issuer), e.g. https://moodle.example.org")
@click.option("--user", "sub", required=True, help="The person's LMS user id (the launch's sub).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="A new or empty folder.")
def export_cmd(issuer, sub, out):
    """Write everything the tool holds about one person: JSON per area, their files, summary.html."""
    from . import service

    target = Path(out)
    if target.exists() and any(target.iterdir()):
        raise click.ClickException(f"{out} is not empty")
    app, db = _open()
    try:
        result = service.export(db, issuer, sub, target, app.config["DATA_DIR"])
    except NotFound as e:
        raise click.ClickException(e.message) from None
    finally:
        db.close()
    click.echo(f"exported to {result['out']}: " + ", ".join(f"{a} {n}" for a, n in result["areas"].items())
               + f", {result['files']} files")


@privacy.command("erase")
@click.option("--issuer", required=True)
@click.option("--user", "sub", required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_cmd(issuer, sub, yes):
    """Delete or anonymise one person's data everywhere in the tool, and say what was done."""
    from . import service

    if not yes:
        click.confirm(f"Erase every trace of user {sub} of {issuer} from lms_bridge?", abort=True)
    app, db = _open()
    try:
        report = service.erase(db, issuer, sub, app.config["DATA_DIR"])
    except NotFound as e:
        raise click.ClickException(e.message) from None
    finally:
        db.close()
    for what, n in report["done"].items():
        click.echo(f"{what}: {n}")
    click.echo(report["note"])


@privacy.command("retention")
@click.option("--apply", "apply_", is_flag=True, help="Remove what has expired now (the worker does it daily).")
@click.option("--json", "as_json", is_flag=True)
def retention_cmd(apply_, as_json):
    """Show which finished courses the next retention pass removes (RETENTION_DAYS after their last activity)."""
    from . import service

    app, db = _open()
    try:
        days = app.config["RETENTION_DAYS"]
        result = (service.apply_retention(db, days, app.config["DATA_DIR"]) if apply_
                  else service.retention_plan(db, days))
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    if not result:
        click.echo(f"no course has been inactive for {days} days")
    for course in result:
        scope = course.get("course") or [course["platform_id"], course["deployment_id"], course["context_id"]]
        counts = course.get("removed") or course.get("counts")
        click.echo(f"course {scope[2]} (platform {scope[0]}, deployment {scope[1]}), last activity "
                   f"{course['last_activity'][:10]}: {'removed' if apply_ else 'to remove'} "
                   + ", ".join(f"{k} {v}" for k, v in counts.items()))
