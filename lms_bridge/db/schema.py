"""Named, ordered migrations. Append new functions; never edit one that has shipped."""
import sqlite3

from . import migration_set

core = migration_set("core")


def ddl(db, script: str) -> None:
    """Run statements one by one: executescript() would COMMIT the migration's transaction."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):  # keeps trigger bodies (BEGIN ...; END) whole
            if pending.strip(" \n;"):
                db.execute(pending)
            pending = ""
    if pending.strip(" \n;"):
        db.execute(pending)


@core()
def m001_lti_core(db):
    ddl(db, """
    CREATE TABLE platforms (
        id INTEGER PRIMARY KEY,
        issuer TEXT NOT NULL,
        client_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        auth_login_url TEXT NOT NULL,
        auth_token_url TEXT NOT NULL,
        auth_audience TEXT,
        key_set_url TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (issuer, client_id)
    );
    CREATE TABLE deployments (
        id INTEGER PRIMARY KEY,
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (platform_id, deployment_id)
    );
    CREATE TABLE platform_keysets (
        platform_id INTEGER PRIMARY KEY REFERENCES platforms(id) ON DELETE CASCADE,
        jwks TEXT NOT NULL,
        fetched_at TEXT NOT NULL
    );
    CREATE TABLE tool_keys (
        kid TEXT PRIMARY KEY,
        public_jwk TEXT NOT NULL,
        created_at TEXT NOT NULL,
        retired_at TEXT
    );
    CREATE TABLE oidc_states (
        state TEXT PRIMARY KEY,
        nonce TEXT NOT NULL,
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        target_link_uri TEXT NOT NULL,
        storage_target TEXT,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT
    );
    CREATE INDEX oidc_states_expiry ON oidc_states(expires_at);
    CREATE TABLE used_nonces (
        issuer TEXT NOT NULL,
        nonce TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        PRIMARY KEY (issuer, nonce)
    );
    CREATE TABLE launches (
        id TEXT PRIMARY KEY,
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        deployment_id TEXT NOT NULL,
        context_id TEXT NOT NULL,
        context_title TEXT NOT NULL DEFAULT '',
        user_id TEXT NOT NULL,
        user_name TEXT NOT NULL DEFAULT '',
        user_email TEXT NOT NULL DEFAULT '',
        role TEXT NOT NULL,
        message_type TEXT NOT NULL,
        resource_link_id TEXT,
        activity TEXT,
        timezone TEXT,
        claims TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE INDEX launches_expiry ON launches(expires_at);
    CREATE TABLE access_tokens (
        platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
        scopes TEXT NOT NULL,
        token TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        PRIMARY KEY (platform_id, scopes)
    );
    CREATE TABLE platform_ws (
        platform_id INTEGER PRIMARY KEY REFERENCES platforms(id) ON DELETE CASCADE,
        url TEXT NOT NULL,
        token TEXT NOT NULL,
        checked_at TEXT,
        missing_functions TEXT NOT NULL DEFAULT '[]'
    );
    """)
