"""Headers every answer carries, set by the app's response class rather than an after-request hook."""
from __future__ import annotations


def test_pages_carry_nosniff_no_referrer_and_stay_out_of_caches(client):
    resp = client.get("/")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"


def test_json_keeps_its_own_cache_policy_and_each_header_appears_once(client):
    resp = client.get("/.well-known/jwks.json")
    assert resp.headers["Cache-Control"] == "public, max-age=300"
    assert resp.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert resp.headers.getlist("Referrer-Policy") == ["no-referrer"]


def test_refusals_and_redirects_carry_them_too(client):
    refused = client.post("/lti/launch", data={})
    assert refused.status_code == 400 and refused.headers["Cache-Control"] == "no-store"
    assert refused.headers["X-Content-Type-Options"] == "nosniff"
    health = client.get("/healthz")
    assert health.headers["X-Content-Type-Options"] == "nosniff" and "no-store" not in health.headers.get(
        "Cache-Control", "")
