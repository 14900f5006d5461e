"""The PostgreSQL store behind the database interface: placeholders, statement rollback, pooled connections."""
from __future__ import annotations

import pytest

from lms_bridge.db import IntegrityError, connect, write_transaction
from lms_bridge.db.pg import translate

from conftest import TEST_POSTGRES, fresh_database_url

needs_pg = pytest.mark.skipif(not TEST_POSTGRES, reason="needs PostgreSQL (make test-postgres)")


def test_placeholders_become_psycopg_ones_outside_quotes_and_casts():
    assert translate("SELECT * FROM t WHERE a = ? AND b = :name") == "SELECT * FROM t WHERE a = %s AND b = %(name)s"
    assert translate("SELECT 'a?b:c' || ? FROM t") == "SELECT 'a?b:c' || %s FROM t"
    assert translate("SELECT x::text, 'it''s ?' FROM t WHERE y LIKE 'user:%'") == \
        "SELECT x::text, 'it''s ?' FROM t WHERE y LIKE 'user:%%'"
    assert translate("SELECT 10 % 3") == "SELECT 10 %% 3"


@needs_pg
def test_a_refused_write_inside_a_transaction_rolls_back_only_itself():
    db = connect(fresh_database_url())
    try:
        with write_transaction(db):
            db.execute("INSERT INTO tool_keys (kid, public_jwk, created_at) VALUES ('k1', '{}', 'now')")
            with pytest.raises(IntegrityError):
                db.execute("INSERT INTO tool_keys (kid, public_jwk, created_at) VALUES ('k1', '{}', 'again')")
            db.execute("INSERT INTO tool_keys (kid, public_jwk, created_at) VALUES ('k2', '{}', 'now')")
        assert [r["kid"] for r in db.query("SELECT kid FROM tool_keys WHERE kid LIKE 'k_' ORDER BY kid")] == ["k1", "k2"]
    finally:
        db.close()


@needs_pg
def test_untyped_parameters_compare_like_sqlite_and_numeric_sums_come_back_as_numbers():
    db = connect(fresh_database_url())
    try:
        assert db.execute("SELECT count(*) FROM tool_keys WHERE kid = ?", [5]).fetchone()[0] == 0  # text = 5
        assert db.execute("SELECT sum(x) FROM (VALUES (1), (2)) v(x)").fetchone()[0] == 3
        assert db.execute("SELECT avg(x) FROM (VALUES (1), (2)) v(x)").fetchone()[0] == 1.5
    finally:
        db.close()


@needs_pg
def test_a_pooled_connection_the_server_dropped_is_replaced_not_handed_out(monkeypatch):
    from lms_bridge.db import pg

    url = fresh_database_url()
    first = pg.pooled(url)
    pid = first.execute("SELECT pg_backend_pid()").fetchone()[0]
    first.close()  # back to the pool
    admin = connect(url)
    try:
        admin.execute("SELECT pg_terminate_backend(?)", [pid])
    finally:
        admin.close()
    monkeypatch.setattr(pg, "PING_AFTER_IDLE", 0.0)  # as if it had sat idle: checkout pings it
    again = pg.pooled(url)
    try:
        assert again.execute("SELECT pg_backend_pid()").fetchone()[0] != pid
    finally:
        again.close()


def test_an_unreachable_server_is_one_readable_line():
    from lms_bridge.db import pg

    with pytest.raises(pg.Unreachable) as refused:
        pg.connect("postgresql://nobody@127.0.0.1:9/none")
    assert "127.0.0.1:9/none is unreachable" in str(refused.value)
    assert "\n" not in str(refused.value)
