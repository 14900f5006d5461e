"""Several servers on one PostgreSQL database: each with its own data directory, the same secret, the same keys."""
from __future__ import annotations

import jwt
import pytest

from conftest import TEST_POSTGRES, LtiActions, fresh_database_url, make_app
from lms_bridge.db import connect
from lti_config import keys
from test_db_copy import drop_empty_databases, empty_pg_url  # noqa: F401  (the fixture drops them)

SECRET = "one-secret-for-every-server-" + "7" * 32

needs_postgres = pytest.mark.skipif(not TEST_POSTGRES, reason="PostgreSQL only: several servers share one "
                                    "PostgreSQL database (run under tests/pg_cluster.py)")


@pytest.fixture
def servers(tmp_path, monkeypatch):
    """Two apps on one database with separate data directories and the same LMS_BRIDGE_SECRET_KEY."""
    monkeypatch.setenv("LMS_BRIDGE_SECRET_KEY", SECRET)
    url = fresh_database_url()
    a = make_app(tmp_path / "a", DATABASE_URL=url)
    b = make_app(tmp_path / "b", DATABASE_URL=url)
    assert a.config["DATA_DIR"] != b.config["DATA_DIR"]
    return a, b


def verify(token: str, jwks: dict) -> dict:
    kid = jwt.get_unverified_header(token)["kid"]
    public = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key
    return jwt.decode(token, public, algorithms=["RS256"], audience="platform")


@needs_postgres
def test_a_launch_on_one_server_is_served_by_the_other(servers):
    a, b = servers
    token = LtiActions(a.test_client()).launch(user="5")
    page = b.test_client().get("/app/home", query_string={"lt": token})
    assert page.status_code == 200 and "Your course project" in page.get_data(as_text=True)
    forged = b.test_client().get("/app/home", query_string={"lt": token[:-2] + "xx"})
    assert forged.status_code in (401, 403)


@needs_postgres
def test_both_servers_publish_the_same_keys_and_sign_with_the_active_one(servers, tmp_path):
    a, b = servers
    jwks_a = a.test_client().get("/.well-known/jwks.json").get_json()
    assert jwks_a == b.test_client().get("/.well-known/jwks.json").get_json() and len(jwks_a["keys"]) == 1
    assert not (tmp_path / "a" / "data" / "keys").exists()  # the private key is in the database, sealed
    db = connect(a.config["DATABASE_URL"])
    try:
        signed_by_b = keys.sign(db, b.config["DATA_DIR"], {"aud": "platform", "sub": "b"})
        assert verify(signed_by_b, jwks_a)["sub"] == "b"
        sealed = db.execute("SELECT sealed FROM tool_private_keys").fetchone()[0]
        assert "PRIVATE KEY" not in sealed
    finally:
        db.close()


@needs_postgres
def test_a_rotation_on_one_server_is_what_the_other_signs_with(servers):
    a, b = servers
    db = connect(a.config["DATABASE_URL"])
    try:
        before = keys.sign(db, b.config["DATA_DIR"], {"aud": "platform", "sub": "before"})
        new_kid = keys.rotate(db, a.config["DATA_DIR"])
        after = keys.sign(db, b.config["DATA_DIR"], {"aud": "platform", "sub": "after"})
    finally:
        db.close()
    assert jwt.get_unverified_header(after)["kid"] == new_kid != jwt.get_unverified_header(before)["kid"]
    published = b.test_client().get("/.well-known/jwks.json").get_json()
    assert [k["kid"] for k in published["keys"]][0] == new_kid and len(published["keys"]) == 2
    assert verify(before, published)["sub"] == "before" and verify(after, published)["sub"] == "after"


@needs_postgres
def test_a_server_with_another_secret_says_so_instead_of_signing(servers, monkeypatch):
    a, _b = servers
    monkeypatch.setenv("LMS_BRIDGE_SECRET_KEY", "a-different-secret-" + "1" * 40)
    db = connect(a.config["DATABASE_URL"])
    try:
        with pytest.raises(keys.NoSigningKey, match="LMS_BRIDGE_SECRET_KEY must be the same on every server"):
            keys.sign(db, a.config["DATA_DIR"], {"aud": "platform"})
    finally:
        db.close()


@needs_postgres
def test_init_seals_the_key_files_of_an_install_copied_from_sqlite(tmp_path, monkeypatch):
    """`db copy` moves the key records; the first `init` with the old data directory seals the private keys."""
    from lms_bridge.db import copy as dbcopy

    monkeypatch.setenv("LMS_BRIDGE_SECRET_KEY", SECRET)
    old = make_app(tmp_path / "old", DATABASE_URL=f"sqlite:///{tmp_path / 'old.sqlite3'}")
    pem_kid = next((tmp_path / "old" / "data" / "keys").glob("*.pem")).stem
    url = empty_pg_url()
    assert dbcopy.copy(old.config["DATABASE_URL"], url).ok
    make_app(tmp_path / "old", DATABASE_URL=url)  # runs `prepare`, as `lms-bridge init` does
    other = make_app(tmp_path / "other", DATABASE_URL=url)  # a second server: no key files at all
    db = connect(url)
    try:
        kid, _key = keys.active_signing_key(db, other.config["DATA_DIR"])
    finally:
        db.close()
    assert kid == pem_kid
