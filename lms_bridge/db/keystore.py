"""The tool's private signing keys, sealed, for installs whose servers share only the database (PostgreSQL).

Each row is one key's PEM encrypted with a key derived from the install's secret (`lti_config.keys`): a
database dump alone signs nothing. SQLite installs keep their PEM files in the data directory instead.
"""
from __future__ import annotations

from . import migration_set, one, write_transaction
from .schema import ddl

migrations = migration_set("keystore")


@migrations()
def m001_sealed_private_keys(db):
    ddl(db, """
    CREATE TABLE tool_private_keys (
        kid TEXT PRIMARY KEY REFERENCES tool_keys(kid) ON DELETE CASCADE,
        sealed TEXT NOT NULL
    )
    """)


def sealed(db, kid: str) -> str | None:
    row = one(db, "SELECT sealed FROM tool_private_keys WHERE kid = ?", [kid])
    return row["sealed"] if row else None


def store(db, kid: str, token: str) -> None:
    """Keep (or replace) the sealed private key of `kid`, a key recorded in tool_keys."""
    with write_transaction(db):
        db.execute("INSERT INTO tool_private_keys (kid, sealed) VALUES (?, ?)"
                   " ON CONFLICT (kid) DO UPDATE SET sealed = excluded.sealed", [kid, token])


def kids(db) -> set[str]:
    return {r["kid"] for r in db.query("SELECT kid FROM tool_private_keys")}
