"""`lms-bridge db copy`: an install moves between stores without losing a row, or the target stays empty."""
from __future__ import annotations

import itertools
import os
import re

import pytest
from click.testing import CliRunner

from conftest import TEST_POSTGRES, _pg_admin, free_port, make_app, pg_database_url
from lms_bridge.cli import main
from lms_bridge.db import connect, copy as dbcopy
from lms_bridge.sandbox import seed_demo

needs_postgres = pytest.mark.skipif(not TEST_POSTGRES, reason="PostgreSQL only: needs LMS_BRIDGE_TEST_POSTGRES "
                                    "(run under tests/pg_cluster.py); the SQLite run copies SQLite to SQLite")
_names = itertools.count(1)
_empty: list[str] = []


def empty_pg_url() -> str:
    """A new PostgreSQL database with nothing in it, not even migrations (dropped when the test ends by
    `drop_empty_databases`: import that fixture where this is used)."""
    name = f"lb_copy_{os.getpid()}_{next(_names)}"
    _pg_admin(f"CREATE DATABASE {name}")
    _empty.append(name)
    return pg_database_url(name)


@pytest.fixture(autouse=True)
def drop_empty_databases():
    yield
    if _empty:
        from lms_bridge.db import pg

        pg.dispose_pools()
        while _empty:
            _pg_admin(f"DROP DATABASE IF EXISTS {_empty.pop()} WITH (FORCE)")


def sqlite_url(path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def demo(tmp_path):
    """The `lms-bridge demo` course in a SQLite install (on the PostgreSQL run too: it is the source)."""
    app = make_app(tmp_path, DATABASE_URL=sqlite_url(tmp_path / "demo.sqlite3"))
    with app.app_context():
        assert seed_demo(app)
    return app


def run(*args):
    return CliRunner().invoke(main, list(args))


def one_line_error(result) -> str:
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def row_counts(url: str) -> dict:
    db = connect(url)
    try:
        return {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in dbcopy.data_tables(db)}
    finally:
        db.close()


def assert_same(a: str, b: str) -> None:
    differing = [t for t in dbcopy.compare(a, b) if not t.ok]
    assert not differing, differing


def test_sqlite_copy_of_the_demo_keeps_every_row_and_serves_a_launch(demo, tmp_path):
    target = sqlite_url(tmp_path / "copy" / "lms.sqlite3")
    result = run("db", "copy", "--from", demo.config["DATABASE_URL"], "--to", target)
    assert result.exit_code == 0, result.output
    assert re.search(r"^projects\s+31\s+31\s+[0-9a-f]{16}\s+ok$", result.output, re.M)
    assert re.search(r"^dash_facets\s+(\d+)\s+\1\s+\S+\s+ok\s+\(rebuilt by the target\)$", result.output, re.M)
    assert "practices_fts_" not in result.output and "_sqlite_migrations" not in result.output
    assert_same(demo.config["DATABASE_URL"], target)

    copy_app = make_app(tmp_path, DATABASE_URL=target)
    client = copy_app.test_client()
    from conftest import LtiActions

    token = LtiActions(client).launch(user="5")
    page = client.get("/app/projects/", query_string={"lt": token}).get_data(as_text=True)
    assert "93.33" in page  # Lina's released grade, from the copy


@needs_postgres
def test_demo_round_trip_sqlite_postgresql_sqlite_has_identical_checksums(demo, tmp_path):
    source = demo.config["DATABASE_URL"]
    pg_url = empty_pg_url()
    there = dbcopy.copy(source, pg_url, batch=7)  # small batches: every table crosses batch boundaries
    assert there.ok and there.committed
    back_url = sqlite_url(tmp_path / "back.sqlite3")
    back = dbcopy.copy(pg_url, back_url, batch=7)
    assert back.ok
    sums = lambda report: {t.table: (t.target_rows, t.target_sum) for t in report.tables}  # noqa: E731
    assert sums(there) == sums(back)
    assert sums(there)["eval_marks"][0] == 864 and sums(there)["practices_fts"][0] == 4
    assert_same(source, back_url)
    assert_same(source, pg_url)
    db = connect(pg_url)  # the dashboard's triggers work again on the copy
    try:
        db.execute("INSERT INTO roster (platform_id, deployment_id, context_id, user_id, name, email, role, active,"
                   " updated_at) SELECT platform_id, deployment_id, context_id, 'new', 'New Learner', '', 'learner', 1,"
                   " updated_at FROM roster LIMIT 1")
        assert db.execute("SELECT count(*) FROM dash_facets WHERE user_id = 'new'").fetchone()[0] > 0
    finally:
        db.close()


@needs_postgres
def test_copied_postgresql_install_serves_launches_and_the_dashboard(demo, tmp_path):
    source = demo.config["DATABASE_URL"]
    src = connect(source)
    highest = src.execute("SELECT max(id) FROM sb_quiz_attempts").fetchone()[0]
    src.execute("DELETE FROM sb_quiz_attempts WHERE id = ?", [highest])  # an id given once is never given again
    src.conn.commit()
    src.close()
    pg_url = empty_pg_url()
    assert run("db", "copy", "--from", source, "--to", pg_url).exit_code == 0

    app = make_app(tmp_path, DATABASE_URL=pg_url)  # same data directory: the same signing keys and uploads
    client = app.test_client()
    from conftest import LtiActions

    lti = LtiActions(client)
    fac = lti.launch(user="3")
    page = client.get("/app/projects/dashboard", query_string={"lt": fac}).get_data(as_text=True)
    assert 'data-user="5"' in page and 'data-user="6"' in page
    lina = lti.launch(user="5")
    assert "93.33" in client.get("/app/projects/", query_string={"lt": lina}).get_data(as_text=True)
    found = client.get("/library/", query_string={"lt": lina, "q": "water"})
    assert found.status_code == 200 and "water" in found.get_data(as_text=True).lower()
    db = connect(pg_url)
    try:
        new_id = db.execute("INSERT INTO sb_quiz_attempts (quiz, userid, attempt, state, timestart, timefinish, marks)"
                            " VALUES (1, '5', 99, 'finished', 0, 0, '[]') RETURNING id").lastrowid
    finally:
        db.close()
    assert new_id == highest + 1


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_refuses_a_target_that_holds_data_and_changes_nothing(demo, tmp_path, store):
    if store == "postgresql" and not TEST_POSTGRES:
        pytest.skip("PostgreSQL only: needs LMS_BRIDGE_TEST_POSTGRES (run under tests/pg_cluster.py)")
    target = empty_pg_url() if store == "postgresql" else sqlite_url(tmp_path / "t.sqlite3")
    assert run("db", "copy", "--from", demo.config["DATABASE_URL"], "--to", target).exit_code == 0
    before = row_counts(target)
    line = one_line_error(run("db", "copy", "--from", demo.config["DATABASE_URL"], "--to", target))
    assert "already holds data" in line and "empty database" in line
    assert row_counts(target) == before


def test_refuses_a_source_with_pending_migrations(tmp_path):
    old = tmp_path / "old.sqlite3"
    import sqlite3

    conn = sqlite3.connect(old)
    conn.execute("CREATE TABLE platforms (id INTEGER PRIMARY KEY)")
    conn.close()
    target = tmp_path / "new.sqlite3"
    line = one_line_error(run("db", "copy", "--from", sqlite_url(old), "--to", sqlite_url(target)))
    assert "pending migrations" in line and "lms-bridge init" in line
    assert not target.exists()


def test_missing_source_file_is_a_one_line_error(tmp_path):
    line = one_line_error(run("db", "copy", "--from", sqlite_url(tmp_path / "nowhere.sqlite3"),
                              "--to", sqlite_url(tmp_path / "t.sqlite3")))
    assert "no SQLite database at" in line


def test_unreachable_postgresql_target_is_a_one_line_error(demo):
    closed = f"postgresql://lms@127.0.0.1:{free_port()}/lms"
    line = one_line_error(run("db", "copy", "--from", demo.config["DATABASE_URL"], "--to", closed))
    assert "unreachable" in line and "Connection refused" in line


def test_a_copy_that_does_not_verify_is_rolled_back(demo, tmp_path, monkeypatch):
    real = dbcopy._copy_table

    def change_a_title(src, dst, table, cols, batch):
        read = real(src, dst, table, cols, batch)
        if table == "projects":
            dst.execute("UPDATE projects SET title = title || '!' WHERE id = (SELECT max(id) FROM projects)")
        return read

    monkeypatch.setattr(dbcopy, "_copy_table", change_a_title)
    target = sqlite_url(tmp_path / "t.sqlite3")
    result = run("db", "copy", "--from", demo.config["DATABASE_URL"], "--to", target)
    assert result.exit_code == 1
    assert re.search(r"^projects\s+31\s+31\s+[0-9a-f]{7}!=[0-9a-f]{7}\s+DIFFERS$", result.output, re.M)
    assert "the target was left empty" in result.output
    counts = row_counts(target)
    assert counts["projects"] == 0 and counts["roster"] == 0 and counts["dash_facets"] == 0


def test_a_copy_that_fails_halfway_leaves_the_target_empty(demo, tmp_path, monkeypatch):
    real = dbcopy._copy_table

    def fail_on_submissions(src, dst, table, cols, batch):
        if table == "submissions":
            raise OSError("disk full")
        return real(src, dst, table, cols, batch)

    monkeypatch.setattr(dbcopy, "_copy_table", fail_on_submissions)
    target = empty_pg_url() if TEST_POSTGRES else sqlite_url(tmp_path / "t.sqlite3")
    with pytest.raises(OSError):
        dbcopy.copy(demo.config["DATABASE_URL"], target)
    assert not any(row_counts(target)[t] for t in ("platforms", "roster", "projects", "tool_keys"))
    monkeypatch.setattr(dbcopy, "_copy_table", real)
    assert dbcopy.copy(demo.config["DATABASE_URL"], target).ok  # and it is still a valid, empty target


def test_copy_order_puts_parents_first_and_the_dashboard_stages_before_the_roster():
    order = dbcopy.copy_order(["submissions", "projects", "roster", "dash_stages", "platforms", "deployments"],
                              {"submissions": {"projects"}, "deployments": {"platforms"}, "projects": {"projects"}})
    assert order[0] == "dash_stages"
    assert order.index("projects") < order.index("submissions")
    assert order.index("platforms") < order.index("deployments")
    with pytest.raises(dbcopy.CopyError, match="cycle"):
        dbcopy.copy_order(["a", "b"], {"a": {"b"}, "b": {"a"}})


def test_checksum_tells_types_apart_and_ignores_row_order():
    a, b, c = dbcopy.RowDigest(), dbcopy.RowDigest(), dbcopy.RowDigest()
    for row in [(1, "x", None), (2, "y", 1.5)]:
        a.add(row)
    for row in [(2, "y", 1.5), (1, "x", None)]:
        b.add(row)
    for row in [("1", "x", None), (2, "y", 1.5)]:
        c.add(row)
    assert a.hexdigest() == b.hexdigest() != c.hexdigest()


@needs_postgres
def test_a_value_postgresql_refuses_is_a_one_line_error_and_the_target_stays_empty(demo):
    src = connect(demo.config["DATABASE_URL"])
    src.execute("UPDATE roster SET active = 'yes' WHERE user_id = '5'")  # SQLite keeps text in an INTEGER column
    src.conn.commit()
    src.close()
    target = empty_pg_url()
    line = one_line_error(run("db", "copy", "--from", demo.config["DATABASE_URL"], "--to", target))
    assert line.startswith("Error: copying roster failed: invalid input syntax for type bigint")
    assert "the target was left empty" in line
    seeded = dbcopy._seeded_tables()  # what the migrations themselves write (the sandbox's fixtures)
    assert not any(n for t, n in row_counts(target).items() if t not in seeded)
