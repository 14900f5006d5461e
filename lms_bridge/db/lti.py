"""Queries for platforms, deployments, keys, login state, nonces, launches and access tokens."""
from __future__ import annotations

import contextlib
import json
from datetime import timedelta

from . import IntegrityError
from . import execute_write as _write, returning_id
from . import one, parse_ts, row_transaction, ts, utcnow, write_transaction


class DuplicatePlatform(Exception):
    """The (issuer, client id) pair is registered already."""


# --- platforms and deployments ------------------------------------------------------------
def add_platform(db, *, issuer, client_id, auth_login_url, auth_token_url, key_set_url,
                 name="", auth_audience=None, deployment_ids=()) -> int:
    with write_transaction(db):
        try:
            cur = db.execute(
                "INSERT INTO platforms (issuer, client_id, name, auth_login_url, auth_token_url,"
                " auth_audience, key_set_url, created_at) VALUES (?,?,?,?,?,?,?,?)" + returning_id(db),
                [issuer, client_id, name, auth_login_url, auth_token_url, auth_audience, key_set_url, ts()])
        except IntegrityError:
            raise DuplicatePlatform(f"a platform with issuer {issuer} and client id {client_id} exists") from None
        platform_id = cur.lastrowid
        for dep in deployment_ids:
            add_deployment(db, platform_id, dep)
    return platform_id


def add_deployment(db, platform_id: int, deployment_id: str) -> bool:
    """Idempotent: returns False when the deployment was known."""
    cur = _write(db, "INSERT INTO deployments (platform_id, deployment_id, created_at) VALUES (?,?,?)"
                     " ON CONFLICT DO NOTHING",
                     [platform_id, deployment_id, ts()])
    return cur.rowcount == 1


def list_platforms(db) -> list[dict]:
    rows = [dict(r) for r in db.query("SELECT * FROM platforms ORDER BY id")]
    for r in rows:
        r["deployments"] = [d["deployment_id"] for d in db.query(
            "SELECT deployment_id FROM deployments WHERE platform_id = ? ORDER BY id", [r["id"]])]
    return rows


def get_platform(db, platform_id: int) -> dict | None:
    return one(db, "SELECT * FROM platforms WHERE id = ?", [platform_id])


def find_platform(db, issuer: str, client_id: str | None = None, deployment_id: str | None = None) -> dict | None:
    """By issuer and client id; by issuer alone only when the issuer has a single client.

    With `deployment_id`, the row also says whether that deployment is registered (`deployment_known`),
    so a login or launch needs one query for both.
    """
    known = ", EXISTS (SELECT 1 FROM deployments d WHERE d.platform_id = p.id AND d.deployment_id = ?)" \
            " AS deployment_known" if deployment_id is not None else ""
    params = [deployment_id] if deployment_id is not None else []
    if client_id is not None:
        return one(db, f"SELECT p.*{known} FROM platforms p WHERE issuer = ? AND client_id = ?",
                   params + [issuer, client_id])
    rows = list(db.query(f"SELECT p.*{known} FROM platforms p WHERE issuer = ? AND status != 'retired' LIMIT 2",
                         params + [issuer]))
    return rows[0] if len(rows) == 1 else None


def active_platform_origins(db) -> list[dict]:
    """id, issuer and login URL of every active platform: the pages' frame-ancestors (pending and retired
    registrations may not frame the tool)."""
    return [dict(r) for r in db.query("SELECT id, issuer, auth_login_url FROM platforms WHERE status = 'active'"
                                      " ORDER BY id")]


def issuer_known(db, issuer: str) -> bool:
    return one(db, "SELECT 1 AS known FROM platforms WHERE issuer = ? LIMIT 1", [issuer]) is not None


def has_deployment(db, platform_id: int, deployment_id: str) -> bool:
    return one(db, "SELECT 1 AS known FROM deployments WHERE platform_id = ? AND deployment_id = ?",
               [platform_id, deployment_id]) is not None


# --- platform key sets --------------------------------------------------------------------
def cached_keyset_text(db, platform_id: int) -> tuple[str, str] | None:
    """The cached key set as stored (JSON text, fetched-at timestamp): parsed by the caller once per text."""
    row = one(db, "SELECT jwks, fetched_at FROM platform_keysets WHERE platform_id = ?", [platform_id])
    return (row["jwks"], row["fetched_at"]) if row else None


def store_keyset(db, platform_id: int, jwks: dict) -> None:
    _write(db, "INSERT INTO platform_keysets (platform_id, jwks, fetched_at) VALUES (?,?,?)"
               " ON CONFLICT(platform_id) DO UPDATE SET jwks = excluded.jwks, fetched_at = excluded.fetched_at",
               [platform_id, json.dumps(jwks), ts()])



# --- the tool's signing keys --------------------------------------------------------------
def add_tool_key(db, kid: str, public_jwk: dict) -> None:
    """A new key becomes the active one; the previous active key starts its grace period."""
    with write_transaction(db):
        db.execute("UPDATE tool_keys SET retired_at = ? WHERE retired_at IS NULL", [ts()])
        db.execute("INSERT INTO tool_keys (kid, public_jwk, created_at) VALUES (?,?,?)",
                   [kid, json.dumps(public_jwk), ts()])


def active_tool_key(db) -> dict | None:
    return one(db, "SELECT * FROM tool_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1")


def published_tool_keys(db, grace: timedelta) -> list[dict]:
    cutoff = ts(utcnow() - grace)
    return [dict(r) for r in db.query(
        "SELECT * FROM tool_keys WHERE retired_at IS NULL OR retired_at > ? ORDER BY created_at DESC", [cutoff])]


def all_tool_keys(db) -> list[dict]:
    return [dict(r) for r in db.query("SELECT * FROM tool_keys ORDER BY created_at")]


# --- OIDC login state and nonces ----------------------------------------------------------
def save_state(db, *, state, nonce, platform_id, target_link_uri, storage_target, ttl_seconds) -> None:
    now = utcnow()
    _write(db, "INSERT INTO oidc_states (state, nonce, platform_id, target_link_uri, storage_target, created_at,"
               " expires_at) VALUES (?,?,?,?,?,?,?)",
               [state, nonce, platform_id, target_link_uri, storage_target, ts(now),
                ts(now + timedelta(seconds=ttl_seconds))])



def get_state(db, state: str) -> dict | None:
    return one(db, "SELECT * FROM oidc_states WHERE state = ?", [state])


@contextlib.contextmanager
def launch_transaction(db):
    """The one transaction a launch commits in: state used, nonce burnt, launch stored.

    The database decides a race, not Python: the state row's `used_at IS NULL` condition (a second UPDATE of
    the row waits for the first transaction and then finds it used) and the nonce's primary key (a second
    INSERT waits and then violates it). SQLite takes its write lock up front (BEGIN IMMEDIATE) as every write
    there does; PostgreSQL needs no store-wide lock, so launches on any number of servers run side by side.
    """
    with row_transaction(db):
        yield db


def consume_state(db, state: str) -> bool:
    """Single use: only the first launch that presents this state may proceed."""
    now = ts()
    cur = _write(db, "UPDATE oidc_states SET used_at = ? WHERE state = ? AND used_at IS NULL AND expires_at > ?",
                     [now, state, now])
    return cur.rowcount == 1


def use_nonce(db, issuer: str, nonce: str, expires_at) -> bool:
    """False when the nonce was seen before: a replayed id_token."""
    try:
        _write(db, "INSERT INTO used_nonces (issuer, nonce, expires_at) VALUES (?,?,?)", [issuer, nonce, ts(expires_at)])
    except IntegrityError:
        return False
    return True


# --- launches -----------------------------------------------------------------------------
def save_launch(db, launch: dict) -> None:
    from ..lti.identity import clean_email, clean_name

    row = dict(launch, claims=json.dumps(launch["claims"]), user_email=clean_email(launch.get("user_email")),
               user_name=clean_name(launch.get("user_name")), context_title=clean_name(launch.get("context_title")))
    if row["role"] not in ("facilitator", "admin") and is_course_expert(db, row):
        row["role"] = launch["role"] = "expert"  # a facilitator made this member an expert of the course
    cols = ", ".join(row)
    _write(db, f"INSERT INTO launches ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values()))



def is_course_expert(db, launch: dict) -> bool:
    """An active expert of the launch's course (booking_experts: unique per course and user)."""
    return one(db, "SELECT 1 AS yes FROM booking_experts WHERE platform_id = ? AND deployment_id = ?"
                   " AND context_id = ? AND user_id = ? AND active = 1",
               [launch["platform_id"], launch["deployment_id"], launch["context_id"], launch["user_id"]]) is not None


def get_launch(db, launch_id: str) -> dict | None:
    row = one(db, "SELECT * FROM launches WHERE id = ? AND expires_at > ?", [launch_id, ts()])
    if row:
        row = dict(row, claims=json.loads(row["claims"]))
    return row


def touch_launch(db, launch_id: str, expires_at: str) -> None:
    """An active launch lives on (idle lifetime); never shortened."""
    _write(db, "UPDATE launches SET expires_at = ? WHERE id = ? AND expires_at < ?", [expires_at, launch_id, expires_at])


def set_launch_timezone(db, launch_id: str, tz: str) -> None:
    _write(db, "UPDATE launches SET timezone = ? WHERE id = ?", [tz, launch_id])



# --- service access tokens ----------------------------------------------------------------
def get_access_token(db, platform_id: int, scopes: str):
    row = one(db, "SELECT token, expires_at FROM access_tokens WHERE platform_id = ? AND scopes = ?"
                        " AND expires_at > ?", [platform_id, scopes, ts()])
    return (row["token"], parse_ts(row["expires_at"])) if row else None


def set_access_token(db, platform_id: int, scopes: str, token: str, expires_at) -> None:
    _write(db, "INSERT INTO access_tokens (platform_id, scopes, token, expires_at) VALUES (?,?,?,?)"
               " ON CONFLICT(platform_id, scopes) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at",
               [platform_id, scopes, token, ts(expires_at)])



# --- Moodle web-service credentials -------------------------------------------------------
# They belong to the Moodle site (the issuer), shared by every client id registered for it: see
# db.registration.site_ws. These two keep the platform-id interface the callers use.
def set_moodle_ws(db, platform_id: int, url: str, token: str, missing: list[str]) -> None:
    from .registration import set_site_ws

    set_site_ws(db, get_platform(db, platform_id)["issuer"], url, token, missing)


def get_moodle_ws(db, platform_id: int) -> dict | None:
    return one(db, "SELECT w.* FROM site_ws w JOIN platforms p ON p.issuer = w.issuer WHERE p.id = ?", [platform_id])
