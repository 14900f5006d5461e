"""Store upkeep the worker does each pass: expired launch data purged in bounded batches, statistics kept fresh."""
from __future__ import annotations

from . import dialect, migration_set, ts, utcnow, write_transaction
from .schema import ddl

migrations = migration_set("upkeep")

# Every row a launch leaves behind, and the column that says when it is no longer needed.
EXPIRING = ("oidc_states", "used_nonces", "launches", "access_tokens")
PURGE_BATCH = 2000  # rows per write transaction: short enough that launches never wait long for the lock
PURGE_MAX_BATCHES = 100  # per table and pass: a pass ends even if a backlog of expired rows is huge


@migrations()
def m001_expiry_indexes(db):
    ddl(db, """
    CREATE INDEX IF NOT EXISTS used_nonces_expiry ON used_nonces(expires_at);
    CREATE INDEX IF NOT EXISTS access_tokens_expiry ON access_tokens(expires_at)
    """)


def purge_expired(db, now=None, *, batch: int = PURGE_BATCH, max_batches: int = PURGE_MAX_BATCHES) -> dict:
    """Delete expired login states, nonces, launches and access tokens, `batch` rows per transaction.

    A nonce is kept until the id_token it came with has expired, so a replay is still refused until then.
    Returns the number of rows deleted per table."""
    cutoff = ts(now or utcnow())
    deleted = {}
    row = "ctid" if dialect(db) == "postgresql" else "rowid"  # each store's physical row address
    for table in EXPIRING:
        total = 0
        for _ in range(max_batches):
            with write_transaction(db):
                cur = db.execute(f"DELETE FROM {table} WHERE {row} IN (SELECT {row} FROM {table}"
                                 f" WHERE expires_at < ? LIMIT ?)", [cutoff, batch])
            total += cur.rowcount
            if cur.rowcount < batch:
                break
        deleted[table] = total
    return deleted


def expired_counts(db, now=None) -> dict:
    """How many expired rows each table still holds (what the purge has not reached yet)."""
    cutoff = ts(now or utcnow())
    return {t: db.execute(f"SELECT COUNT(*) FROM {t} WHERE expires_at < ?", [cutoff]).fetchone()[0]
            for t in EXPIRING}


def optimize(db) -> None:
    """`PRAGMA optimize`: SQLite re-gathers the statistics its planner needs for tables that changed.
    PostgreSQL's autovacuum does this by itself."""
    if dialect(db) == "postgresql":
        return
    db.execute("PRAGMA analysis_limit = 1000")  # approximate statistics: bounded cost on big tables
    db.execute("PRAGMA optimize = 65538")  # 0x10002: every table, not only those this connection used


def analyze(db) -> None:
    """Full statistics, e.g. after migrations created or changed indexes."""
    if dialect(db) == "sqlite":
        db.execute("PRAGMA analysis_limit = 1000")
    db.execute("ANALYZE")
