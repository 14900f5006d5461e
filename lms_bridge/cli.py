"""`lms-bridge`: a thin command line over the library. Errors: one line on stderr, non-zero exit."""
from __future__ import annotations

import sys

import click

from . import create_app
from .db import connect, migrate


def _app(**overrides):
    try:
        return create_app(overrides or None)
    except Exception as e:  # configuration problems are the admin's to fix: say so in one line
        raise click.ClickException(f"{type(e).__name__}: {e}") from None


def _db(app):
    return connect(app.config["DATABASE_URL"])


def prepare(app) -> list[str]:
    """Migrate and make sure a signing key exists: what `init`, `serve` and `demo` all need first."""
    from lti_config import keys

    db = _db(app)
    try:
        applied = migrate(db)
        kid = keys.ensure_key(db, app.config["DATA_DIR"])
    finally:
        db.close()
    return applied + ([f"key:{kid}"] if kid else [])


@click.group()
def main():
    """lms_bridge: LTI 1.3 course project and consultation tool."""


@main.command()
def init():
    """Create or migrate the database and the first signing key (idempotent)."""
    app = _app()
    done = prepare(app)
    click.echo(f"database: {app.config['DATABASE_URL']}")
    click.echo("applied: " + (", ".join(done) if done else "nothing (already up to date)"))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
def serve(host, port, workers, threads):
    """Serve the tool with a production WSGI server (gunicorn)."""
    app = _app()
    prepare(app)
    from .server import run

    run(lambda: create_app(), host=host, port=port, workers=workers, threads=threads)


@main.command()
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
def demo(port):
    """The tool together with the sandbox LMS and a seeded demo course."""
    from .sandbox import seed_demo
    from .server import run

    overrides = {"TOOL_URL": f"http://127.0.0.1:{port}", "SANDBOX_ENABLED": True}
    app = _app(**overrides)
    prepare(app)
    with app.app_context():
        seed_demo(app)
    click.echo(f"lms_bridge demo with the sandbox LMS: open http://127.0.0.1:{port}/sandbox/")
    run(lambda: create_app(overrides), host="127.0.0.1", port=port, workers=1, threads=8,
        background_worker=True)


@main.command()
def config():
    """Print what an LMS admin pastes into the LMS."""
    from lti_config.tool import config_lines

    app = _app()
    for label, value in config_lines(app.config["TOOL_URL"]):
        click.echo(f"{label}: {value}")


@main.group()
def keys():
    """The tool's signing keys."""


@keys.command("list")
def keys_list():
    from lti_config.keys import jwks
    from .db import lti as q

    app = _app()
    db = _db(app)
    published = {k["kid"] for k in jwks(db, app.config["KEY_GRACE_DAYS"])["keys"]}
    for row in q.all_tool_keys(db):
        state = "active" if row["retired_at"] is None else ("published" if row["kid"] in published else "expired")
        click.echo(f"{row['kid']}\t{state}\tcreated {row['created_at']}" +
                   (f"\tretired {row['retired_at']}" if row["retired_at"] else ""))


@keys.command("rotate")
def keys_rotate():
    """New active key; the previous public key stays in the JWKS for KEY_GRACE_DAYS."""
    from lti_config.keys import rotate

    app = _app()
    prepare(app)
    kid = rotate(_db(app), app.config["DATA_DIR"])
    click.echo(f"new active key {kid}; previous keys stay published for {app.config['KEY_GRACE_DAYS']} days")


@main.group()
def platforms():
    """Registered platforms and deployments."""


@platforms.command("list")
def platforms_list():
    """Each client id with its Moodle site, status, deployments and last launch."""
    from .db import registration as reg

    app = _app()
    prepare(app)
    rows = reg.platforms_overview(_db(app))
    if not rows:
        click.echo("no platforms registered")
    for r in rows:
        click.echo(f"{r['id']}\t{r['status']}\t{r['issuer']}\tclient {r['client_id']}"
                   f"\tdeployments {','.join(r['deployments']) or '-'}\tlast launch {r['last_launch_at'] or 'never'}"
                   + (f"\t{r['name']}" if r["name"] else ""))
    if any(r["status"] == "pending" for r in rows):
        click.echo("pending registrations log nobody in until `lms-bridge platforms approve ID`", err=True)


@platforms.command("invite")
@click.option("--hours", default=24.0, show_default=True, type=click.FloatRange(0.1, 24 * 30),
              help="How long the URL stays usable.")
def platforms_invite(hours):
    """Print a one-time registration URL to paste into the LMS; a registration through it is active at once."""
    import secrets

    from .db import registration as reg

    app = _app()
    prepare(app)
    code = secrets.token_urlsafe(24)
    expires = reg.add_invite(_db(app), code, hours)
    click.echo(f"{app.config['TOOL_URL']}/lti/register/{code}")
    click.echo(f"paste it into Moodle's Manage tools > Tool URL > Add LTI Advantage; usable once, until {expires}",
               err=True)


def _platform_id(db, platform_id: int) -> dict:
    from .db import lti as q

    row = q.get_platform(db, platform_id)
    if row is None:
        raise click.ClickException(f"no platform {platform_id} (see `lms-bridge platforms list`)")
    return row


@platforms.command("approve")
@click.argument("platform_id", type=click.IntRange(1, 2**62))
def platforms_approve(platform_id):
    """Activate a pending registration (one made through plain /lti/register)."""
    from .db import registration as reg

    app = _app()
    prepare(app)
    db = _db(app)
    row = _platform_id(db, platform_id)
    if row["status"] == "active":
        click.echo(f"platform {platform_id} is active already")
        return
    reg.set_status(db, platform_id, "active")
    click.echo(f"platform {platform_id} ({row['issuer']}, client {row['client_id']}) is active")


@platforms.command("remove")
@click.argument("platform_id", type=click.IntRange(1, 2**62))
def platforms_remove(platform_id):
    """Retire a registration: nobody logs in through it any more (e.g. after deleting it in Moodle)."""
    from .db import registration as reg

    app = _app()
    prepare(app)
    db = _db(app)
    row = _platform_id(db, platform_id)
    outcome = reg.remove_platform(db, platform_id)
    click.echo(f"platform {platform_id} ({row['issuer']}, client {row['client_id']}) "
               + ("deleted (it never launched)" if outcome == "deleted" else
                  "retired: its courses' data stays, nobody logs in through it"))


@platforms.command("add")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--auth-login-url", required=True)
@click.option("--auth-token-url", required=True)
@click.option("--key-set-url", required=True)
@click.option("--deployment-id", required=True)
@click.option("--name", default="")
def platforms_add(issuer, client_id, auth_login_url, auth_token_url, key_set_url, deployment_id, name):
    """Manual registration (Moodle: the values shown after 'Configure a tool manually')."""
    from lti_config.registrations import InvalidRegistration, add_platform

    app = _app()
    prepare(app)
    try:
        pid = add_platform(_db(app), issuer=issuer, client_id=client_id, auth_login_url=auth_login_url,
                           auth_token_url=auth_token_url, key_set_url=key_set_url, deployment_id=deployment_id,
                           name=name, allow_insecure=app.config["ALLOW_INSECURE_PLATFORMS"])
    except InvalidRegistration as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"platform {pid}: {issuer} client {client_id} deployment {deployment_id}")


@platforms.command("moodle-ws")
@click.option("--issuer", required=True, help="The Moodle site; the credentials serve every client id it has.")
@click.option("--url", required=True, help="Moodle's wwwroot")
@click.option("--token", required=True)
def platforms_moodle_ws(issuer, url, token):
    """Attach Moodle web-service credentials to a Moodle site (all its registrations) and check them at once."""
    from .sync.credentials import CredentialsError, attach

    app = _app()
    prepare(app)
    try:
        report = attach(_db(app), app.extensions["lms_bridge_http"], issuer=issuer, url=url, token=token)
    except CredentialsError as e:
        raise click.ClickException(str(e)) from None
    for line in report:
        click.echo(line)


@main.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
def worker(once):
    """Deliver queued grade, completion, calendar and message jobs."""
    from .sync.worker import run_worker

    app = _app()
    prepare(app)
    run_worker(app, once=once, echo=click.echo)


@main.group(invoke_without_command=True)
@click.option("--failed", is_flag=True, help="Only jobs that gave up.")
@click.pass_context
def outbox(ctx, failed):
    """Inspect outbound jobs."""
    if ctx.invoked_subcommand:
        return
    from .db import outbox as ob

    app = _app()
    prepare(app)
    rows = ob.list_jobs(_db(app), failed_only=failed)
    if not rows:
        click.echo("no failed jobs" if failed else "outbox empty")
    for r in rows:
        click.echo(f"{r['id']}\t{r['state']}\t{r['kind']}\ttries {r['attempts']}\t{r['last_error'] or ''}")


@outbox.command("retry")
@click.argument("job_id", type=int)
def outbox_retry(job_id):
    """Put a failed job back in the queue."""
    from .db import outbox as ob

    app = _app()
    if not ob.retry(_db(app), job_id):
        raise click.ClickException(f"job {job_id} does not exist or is not failed")
    click.echo(f"job {job_id} queued again")


@main.group()
def package():
    """The course content package."""


@package.command("build")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True))
@click.option("--tool-url", default=None, help="Defaults to LMS_BRIDGE_URL.")
def package_build(out, tool_url):
    """Build the course as an IMS Common Cartridge 1.1 (.imscc)."""
    from content_packages import ContentError, build_cartridge

    app = _app()
    try:
        path = build_cartridge(out, tool_url or app.config["TOOL_URL"])
    except (ContentError, ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {path}")


def _chosen_platforms(db, issuer: str | None, client_id: str | None) -> list[dict]:
    """Every platform, or those of one issuer, or the one with that client id; unknown ones are an error."""
    from .db import lti as q

    rows = [r for r in q.list_platforms(db) if (issuer is None or r["issuer"] == issuer)
            and (client_id is None or r["client_id"] == client_id)]
    if not rows and (issuer or client_id):
        raise click.ClickException(f"no platform with issuer {issuer or 'any'} and client id {client_id or 'any'}")
    return rows


@main.group()
def lineitems():
    """The tool's gradebook columns in the LMS."""


@lineitems.command("twins")
@click.option("--issuer", default=None, help="Only this platform (Moodle site).")
@click.option("--client-id", default=None, help="Only this registration of the issuer.")
@click.option("--resend", is_flag=True, help="Queue the released grades again for the activities' own columns.")
def lineitems_twins(issuer, client_id, resend):
    """Find second gradebook columns the tool created beside an activity's own column, and say what to do."""
    from lti_config.keys import signer

    from .clients import LtiServiceError
    from .sync import twins as tw

    app = _app()
    prepare(app)
    db = _db(app)
    found = []
    try:
        for platform in _chosen_platforms(db, issuer, client_id):
            found += tw.find(db, app.extensions["lms_bridge_http"], signer(db, app.config["DATA_DIR"]), platform)
    except LtiServiceError as e:
        raise click.ClickException(str(e)) from None
    if not found:
        click.echo("no twin columns: every grade goes to its activity's own column")
        return
    for twin in found:
        click.echo(twin.line())
    if resend:
        click.echo(f"queued {tw.resend(db, found)} grades for the activities' own columns; run the worker, check "
                   "them in the gradebook, then delete each twin column in Moodle (Grades > Gradebook setup > "
                   "the column's Edit menu > Delete)")
    else:
        click.echo("to repair: `lms-bridge lineitems twins --resend` queues the released grades for each activity's "
                   "own column; once the worker has sent them, delete each twin column in Moodle (Grades > "
                   "Gradebook setup > the column's Edit menu > Delete). A twin whose activity has no own column yet "
                   "is repaired after a learner or teacher opens that activity once.")


@main.command()
@click.option("--issuer", required=True)
@click.option("--client-id", default=None, help="Which registration, when the issuer has several.")
@click.option("--context", "context_id", required=True, help="The LTI context (Moodle course) id.")
def reconcile(issuer, client_id, context_id):
    """Report grades in the LMS gradebook that differ from the tool's released grades (changes nothing)."""
    from lti_config.keys import signer

    from .clients import LtiServiceError
    from .sync.reconcile import ReconcileError, reconcile as compare

    app = _app()
    prepare(app)
    db = _db(app)
    try:
        differences = compare(db, app.extensions["lms_bridge_http"], signer(db, app.config["DATA_DIR"]),
                              issuer=issuer, client_id=client_id, context_id=context_id)
    except (ReconcileError, LtiServiceError) as e:
        raise click.ClickException(str(e)) from None
    if not differences:
        click.echo("the LMS gradebook matches every released grade")
    for d in differences:
        click.echo(d.line())


if __name__ == "__main__":
    sys.exit(main())
