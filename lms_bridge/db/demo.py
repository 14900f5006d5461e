"""Which demo seed functions have run, so `lms-bridge demo` adds each piece of demo content once."""
from __future__ import annotations

from . import migration_set, ts
from .schema import ddl

migrations = migration_set("demo")


@migrations()
def m001_demo_seeds(db):
    ddl(db, """
    CREATE TABLE demo_seeds (
        name TEXT PRIMARY KEY,
        done_at TEXT NOT NULL
    )
    """)


def seeded(db) -> set[str]:
    return {r["name"] for r in db.query("SELECT name FROM demo_seeds")}


def mark_seeded(db, name: str) -> None:
    db.execute("INSERT INTO demo_seeds (name, done_at) VALUES (?, ?) ON CONFLICT DO NOTHING", [name, ts()])
