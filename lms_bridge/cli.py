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
    """A connection for the running command, closed when the command ends (a caller may close it sooner)."""
    db = connect(app.config["DATABASE_URL"])
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(db.close)
    return db


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


def store_error(e: BaseException) -> str | None:
    """A one-line reason when `e` says the store cannot be reached (never a traceback for the admin)."""
    import sqlite3

    from .errors import store_unreachable

    if isinstance(e, sqlite3.OperationalError) and "unable to open database file" in str(e):
        return f"the SQLite store cannot be opened: {e} (check LMS_BRIDGE_DATABASE_URL and the directory's owner)"
    return store_unreachable(e)


class Commands(click.Group):
    """The top-level group: a store that cannot be reached ends any command with one line, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as e:
            reason = store_error(e)
            if reason is None:
                raise
            raise click.ClickException(reason) from None


@click.group(cls=Commands)
def main():
    """lms_bridge: LTI 1.3 course project and consultation tool."""


@main.command()
def init():
    """Create or migrate the database and the first signing key (idempotent)."""
    app = _app()
    done = prepare(app)
    click.echo(f"database: {app.config['DATABASE_URL']}")
    click.echo("applied: " + (", ".join(done) if done else "nothing (already up to date)"))


def ready_to_run(app, migrate: bool, command: str) -> None:
    """Refuse to run on a store with pending migrations (an upgrade without `init`), unless asked to migrate;
    then hold the install's running lock so `restore` waits for a stop. Logs go to stderr from here on."""
    import logging

    from .db import pending_migrations
    from .ops import backup, logs

    logs.configure(app.config)
    db = _db(app)
    try:
        pending = pending_migrations(db)
    finally:
        db.close()
    if pending and not migrate:
        logging.getLogger("lms_bridge").error("refusing to start: %d pending migrations", len(pending),
                                              extra={"kv": {"command": command, "pending": ",".join(pending)}})
        raise click.ClickException(
            f"the database needs {len(pending)} migrations ({', '.join(pending[:3])}"
            f"{', ...' if len(pending) > 3 else ''}): run `lms-bridge init` first (or `lms-bridge {command} --migrate`)")
    prepare(app)
    backup.hold_running_lock(app.config["DATA_DIR"])


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--migrate", is_flag=True, help="Apply pending migrations first instead of refusing to start.")
def serve(host, port, workers, threads, migrate):
    """Serve the tool with a production WSGI server (gunicorn)."""
    import logging

    app = _app()
    ready_to_run(app, migrate, "serve")
    from .server import run

    logging.getLogger("lms_bridge").info("serving %s on %s:%s", app.config["TOOL_URL"], host, port,
                                         extra={"kv": {"workers": workers, "threads": threads,
                                                       "access_log": bool(app.config["ACCESS_LOG"])}})
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
@click.option("--migrate", is_flag=True, help="Apply pending migrations first instead of refusing to start.")
def worker(once, migrate):
    """Deliver queued grade, completion, calendar and message jobs."""
    from .sync.worker import run_worker

    app = _app()
    ready_to_run(app, migrate, "worker")
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
        state = "waiting" if ob.is_waiting(r) else r["state"]  # for an admin's setup: not a failure
        click.echo(f"{r['id']}\t{state}\t{r['kind']}\ttries {r['attempts']}\t{r['last_error'] or ''}")


@outbox.command("retry")
@click.argument("job_id", type=click.IntRange(1, 2 ** 63 - 1))
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


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for monitoring.")
def doctor(as_json):
    """Check the install end to end: each check OK, WARN or FAIL with its fix; exit 1 when one fails."""
    import json

    from .ops.doctor import Doctor, lines, report

    app = _app()
    checks = Doctor(app.config, app.extensions["lms_bridge_http"]).run()
    if as_json:
        click.echo(json.dumps(report(checks), indent=2))
    else:
        for line in lines(checks):
            click.echo(line)
    if not report(checks)["ok"]:
        sys.exit(1)


@main.command()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="A new or empty directory for the backup.")
def backup(out):
    """Consistent copy of the install while it runs: store, uploads, keys, manifest with checksums."""
    from .config import ConfigError
    from .ops.backup import BackupError, backup as take

    app = _app()
    try:
        manifest = take(app.config, out)
    except (BackupError, ConfigError, OSError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"backup in {out}: database ({manifest['database']['size']} bytes) and {len(manifest['files'])} "
               "files, checksums in manifest.json")


@main.command()
@click.argument("source", type=click.Path(file_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Replace an install that already has a database.")
def restore(source, force):
    """Put a backup back onto a stopped install, after checking every checksum."""
    from .config import ConfigError
    from .ops.backup import BackupError, restore as put_back

    app = _app()
    try:
        for line in put_back(app.config, source, force=force):
            click.echo(line)
    except (BackupError, ConfigError, OSError) as e:
        raise click.ClickException(str(e)) from None


@main.command("install-service")
@click.option("--print", "just_print", is_flag=True, help="Print the files instead of writing them.")
@click.option("--root", default="/", show_default=True, type=click.Path(file_okay=False),
              help="Write under this directory instead of / (staging, packaging).")
@click.option("--user", default=None, help="The service user (default: the user running this command).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
def install_service(just_print, root, user, host, port, workers):
    """Write systemd units for `serve` and `worker`, their environment file and reverse-proxy examples."""
    import os

    from .ops import service

    app = _app()
    try:
        install = service.current_install(app.config, user=user, host=host, port=port, workers=workers)
    except KeyError:
        raise click.ClickException(f"no such user: {user}") from None
    if just_print:
        for path, (content, _mode) in service.files(install).items():
            click.echo(f"# ---- {path}")
            click.echo(content)
        return
    if root == "/" and os.geteuid() != 0:
        raise click.ClickException("writing to /etc needs root: run as root, or use --print or --root DIR")
    for path in service.write(install, root):
        click.echo(f"wrote {path}")
    if os.stat(app.config["DATA_DIR"]).st_uid != _uid(install.user):
        click.echo(f"the data directory must belong to {install.user}: chown -R {install.user}: "
                   f"{app.config['DATA_DIR']}")
    from .config import is_postgres

    if is_postgres(app.config["DATABASE_URL"]) and "LMS_BRIDGE_SECRET_KEY" not in os.environ:
        click.echo(f"several servers on one database: set the same LMS_BRIDGE_SECRET_KEY in {service.ENV_FILE} on "
                   "each (see the README, \"PostgreSQL and several servers\")")
    click.echo(service.NEXT_STEPS)


@main.group("db")
def db_group():
    """The store: move an install between SQLite and PostgreSQL."""


@db_group.command("copy")
@click.option("--from", "source", required=True, metavar="URL",
              help="The install to copy: sqlite:///PATH or postgresql://USER:PASS@HOST:PORT/DB (it stays as it is).")
@click.option("--to", "target", required=True, metavar="URL", help="A new, empty database (it is migrated first).")
def db_copy(source, target):
    """Copy every table into an empty store and compare counts and checksums; nothing is kept if they differ."""
    from .config import ConfigError
    from .db.copy import CopyError, copy

    try:
        result = copy(source, target)
    except (CopyError, ConfigError) as e:
        raise click.ClickException(str(e)) from None
    for line in result.lines():
        click.echo(line)
    if not result.ok:
        bad = [t.table for t in result.tables if not t.ok]
        raise click.ClickException(f"the copy differs from the source in {', '.join(bad)}: the target was left "
                                   "empty (nothing committed)")
    click.echo(f"copied {sum(t.target_rows for t in result.tables if not t.note)} rows in {len(result.tables)} "
               "tables; every count and checksum matches", err=True)


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


if __name__ == "__main__":
    sys.exit(main())


from .privacy.cli import privacy as _privacy  # noqa: E402  (its own module: the group is large)

main.add_command(_privacy)
