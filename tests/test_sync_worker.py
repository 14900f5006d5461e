"""The worker against mocked AGS and Moodle endpoints: delivery, idempotency, retries and give-ups."""
from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import responses

from lms_bridge.db import connect, utcnow, write_transaction
from lms_bridge.db import lti as q
from lms_bridge.db import outbox as ob
from lms_bridge.db import sync as cache
from lms_bridge.sync.worker import backoff, deliver_due

LMS = "http://moodle.test"
LINEITEMS = f"{LMS}/mod/lti/services.php/2/lineitems?type_id=1"
ITEM = f"{LMS}/mod/lti/services.php/2/lineitems/7/lineitem?type_id=1"
SCORES = f"{LMS}/mod/lti/services.php/2/lineitems/7/lineitem/scores"
WS = f"{LMS}/webservice/rest/server.php"


@pytest.fixture
def sync_app(app):
    app.config.update(OUTBOX_CONCURRENCY=4, OUTBOX_BACKOFF_SECONDS=0, OUTBOX_MAX_ATTEMPTS=3)
    db = connect(app.config["DATABASE_URL"])
    app.pid = q.add_platform(db, issuer=LMS, client_id="c1", auth_login_url=f"{LMS}/mod/lti/auth.php",
                             auth_token_url=f"{LMS}/mod/lti/token.php", key_set_url=f"{LMS}/mod/lti/certs.php")
    q.set_moodle_ws(db, app.pid, LMS, "secret-ws-token", [])
    app.db = db
    yield app
    db.close()


def enqueue(app, kind, payload, **keys):
    with write_transaction(app.db):
        return ob.enqueue(app.db, platform_id=app.pid, kind=kind, payload=payload, **keys)


def score(app, user="5", given=80.0, stamp="2026-11-23T10:00:00.000001+00:00"):
    return enqueue(app, "ags_score", {
        "lineitems_url": LINEITEMS, "resource_id": "project_plan", "tag": "grade", "label": "Project plan",
        "score_maximum": 100, "user_id": user, "score_given": given, "comment": "ok", "timestamp": stamp,
        "grading_progress": "FullyGraded", "activity_progress": "Completed"},
        order_key=f"score:{app.pid}:2:project_plan:{user}")


def ws_calls(rsps, function):
    return [parse_qs(c.request.body) for c in rsps.calls
            if c.request.url.startswith(WS) and f"wsfunction={function}" in c.request.body]


def mock_ags(rsps, score_status=200, **score_kwargs):
    rsps.post(f"{LMS}/mod/lti/token.php", body=json.dumps({"access_token": "svc", "expires_in": 3600}),
              content_type="text/html")
    rsps.get(LINEITEMS.split("?")[0], json=[])
    rsps.post(LINEITEMS.split("?")[0], status=201, json={"id": ITEM, "label": "Project plan", "scoreMaximum": 100,
                                                          "resourceId": "project_plan", "tag": "grade"})
    return rsps.post(SCORES, status=score_status, **score_kwargs)


def state(app, job_id):
    return ob.get_job(app.db, job_id)


def test_a_score_creates_the_line_item_once_and_posts_in_order(sync_app):
    first = score(sync_app, given=60)
    second = score(sync_app, given=90, stamp="2026-11-23T10:00:00.500000+00:00")
    with responses.RequestsMock() as rsps:
        posted = mock_ags(rsps)
        stats = deliver_due(sync_app)
        bodies = [json.loads(c.request.body) for c in rsps.calls if c.request.url.startswith(SCORES)]
    assert stats.delivered == 2 and posted.call_count == 2
    assert [b["scoreGiven"] for b in bodies] == [60, 90]
    # Moodle compares timestamps to the second: the later job is moved one second on, not refused
    assert bodies[0]["timestamp"] == "2026-11-23T10:00:00.000Z" and bodies[1]["timestamp"] == "2026-11-23T10:00:01.000Z"
    assert state(sync_app, first)["state"] == state(sync_app, second)["state"] == "delivered"
    assert cache.get_lineitem(sync_app.db, sync_app.pid, LINEITEMS, "project_plan", "resource") == ITEM


def test_a_409_counts_as_already_applied(sync_app):
    job = score(sync_app)
    with responses.RequestsMock() as rsps:
        mock_ags(rsps, score_status=409)
        stats = deliver_due(sync_app)
    assert stats.delivered == 1 and stats.already_applied == 1
    assert "already applied" in state(sync_app, job)["last_error"]


def test_transient_errors_are_retried_then_fail_visibly(sync_app):
    job = score(sync_app)
    with responses.RequestsMock() as rsps:
        posted = mock_ags(rsps, score_status=503)
        stats = deliver_due(sync_app)
    row = state(sync_app, job)
    assert posted.call_count == 3 and stats.failed == 1
    assert row["state"] == "failed" and row["last_error"].startswith("gave up after 3 tries")
    assert "503" in row["last_error"]


def test_retry_after_is_honoured(sync_app):
    sync_app.config["OUTBOX_MAX_ATTEMPTS"] = 5
    job = score(sync_app)
    with responses.RequestsMock() as rsps:
        mock_ags(rsps, score_status=429, headers={"Retry-After": "120"})
        stats = deliver_due(sync_app)
    row = state(sync_app, job)
    assert stats.retried == 1 and row["state"] == "pending" and row["attempts"] == 1
    from lms_bridge.db import parse_ts, utcnow
    assert 110 < (parse_ts(row["next_attempt_at"]) - utcnow()).total_seconds() <= 120


def test_backoff_grows_with_jitter_and_respects_retry_after():
    assert all(0.5 <= backoff(1, 1, 60) <= 1 for _ in range(50))
    assert all(4 <= backoff(4, 1, 60) <= 8 for _ in range(50))
    assert all(30 <= backoff(20, 1, 60) <= 60 for _ in range(50))
    assert backoff(1, 1, 60, retry_after=90) == 90


def test_a_bad_ws_token_waits_for_the_admin_without_leaking_it(sync_app):
    job = enqueue(sync_app, "ws_message", {"user_id": 5, "text": "Your grade is released"})
    with responses.RequestsMock() as rsps:
        rsps.post(WS, json={"exception": "moodle_exception", "errorcode": "invalidtoken",
                            "message": "Invalid token - token not found"})
        stats = deliver_due(sync_app)
    row = state(sync_app, job)
    # not a failure: the admin must fix the token; the job waits without using up tries
    assert stats.failed == 0 and stats.waiting == 1 and row["state"] == "pending" and row["attempts"] == 0
    assert row["last_error"].startswith("waiting for working web-service credentials")
    assert "lms-bridge platforms moodle-ws" in row["last_error"] and "secret-ws-token" not in row["last_error"]


def test_completion_maps_the_instance_to_the_cmid_once(sync_app):
    payload = {"course_id": 2, "lti_instance_id": "1", "user_id": 5, "completed": True}
    enqueue(sync_app, "ws_completion", payload)
    enqueue(sync_app, "ws_completion", dict(payload, user_id=6))
    with responses.RequestsMock() as rsps:
        def answer(request):
            fn = parse_qs(request.body)["wsfunction"][0]
            if fn == "core_course_get_course_module_by_instance":
                return 200, {}, json.dumps({"cm": {"id": 5, "course": 2, "instance": 1}, "warnings": []})
            return 200, {}, json.dumps({"status": True, "state": 1, "tracking": 2, "warnings": []})
        rsps.add_callback(responses.POST, WS, callback=answer)
        sync_app.config["OUTBOX_CONCURRENCY"] = 1
        stats = deliver_due(sync_app)
        lookups = ws_calls(rsps, "core_course_get_course_module_by_instance")
        overrides = ws_calls(rsps, "core_completion_override_activity_completion_status")
    assert stats.delivered == 2 and len(lookups) == 1
    assert sorted(o["userid"][0] for o in overrides) == ["5", "6"] and {o["cmid"][0] for o in overrides} == {"5"}


def calendar(app, timestart):
    return enqueue(app, "ws_calendar", {"course_id": 2, "key": "deadline:project_plan", "name": "Project plan due",
                                        "description": "Stage 1", "timestart": timestart, "timeduration": 0},
                   dedupe_key=f"calendar:{app.pid}:2:deadline:project_plan")


class FakeCalendar:
    """Moodle's calendar functions over a dict, so a test can count the events that exist."""

    def __init__(self):
        self.events, self.next_id = {}, 1

    def __call__(self, request):
        form = parse_qs(request.body)
        fn = form["wsfunction"][0]
        if fn == "core_calendar_create_calendar_events":
            event = {"id": self.next_id, "name": form["events[0][name]"][0],
                     "timestart": int(form["events[0][timestart]"][0])}
            self.events[self.next_id] = event
            self.next_id += 1
            return 200, {}, json.dumps({"events": [event], "warnings": []})
        if fn == "core_calendar_delete_calendar_events":
            self.events.pop(int(form["events[0][eventid]"][0]), None)
            return 200, {}, "null"
        if fn == "core_calendar_get_calendar_events":
            return 200, {}, json.dumps({"events": list(self.events.values()), "warnings": []})
        raise AssertionError(fn)


def test_calendar_events_are_updated_in_place_and_never_duplicated(sync_app):
    fake = FakeCalendar()
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, WS, callback=fake)
        calendar(sync_app, 1796030007)
        deliver_due(sync_app)
        calendar(sync_app, 1796030007)  # the same event again: nothing to do
        deliver_due(sync_app)
        assert len(fake.events) == 1 and len(ws_calls(rsps, "core_calendar_create_calendar_events")) == 1
        calendar(sync_app, 1796116407)  # the deadline moved
        stats = deliver_due(sync_app)
    assert stats.delivered == 1
    assert [e["timestart"] for e in fake.events.values()] == [1796116407]


def test_a_crash_after_creating_an_event_adopts_it_on_retry(sync_app):
    fake = FakeCalendar()
    fake.events[9] = {"id": 9, "name": "Project plan due", "timestart": 1796030007}  # created, id never stored
    from lms_bridge.sync.handlers import _fingerprint
    payload = {"course_id": 2, "key": "deadline:project_plan", "name": "Project plan due", "description": "Stage 1",
               "timestart": 1796030007, "timeduration": 0}
    cache.mark_event_creating(sync_app.db, sync_app.pid, 2, "deadline:project_plan", _fingerprint(payload))
    calendar(sync_app, 1796030007)
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, WS, callback=fake)
        deliver_due(sync_app)
    assert list(fake.events) == [9]
    assert cache.get_event(sync_app.db, sync_app.pid, 2, "deadline:project_plan")["event_id"] == 9


def test_a_grade_falls_back_to_the_activity_grade_item(sync_app):
    enqueue(sync_app, "ws_grade", {"course_id": 2, "lti_instance_id": "1", "user_id": 7, "grade": 72.5})
    cache.set_cmid(sync_app.db, sync_app.pid, "1", 5, 2)
    with responses.RequestsMock() as rsps:
        rsps.post(WS, json=0)
        stats = deliver_due(sync_app)
        call = ws_calls(rsps, "core_grades_update_grades")[0]
    assert stats.delivered == 1
    assert call["activityid"] == ["5"] and call["grades[0][studentid]"] == ["7"]
    assert call["grades[0][grade]"] == ["72.5"]


def line_items_created(rsps):
    return [c for c in rsps.calls if c.request.method == "POST" and c.request.url.split("?")[0] == LINEITEMS.split("?")[0]]


def claims(app):
    return app.db.execute("SELECT count(*) FROM sync_lineitem_claims").fetchone()[0]


def test_a_line_item_another_process_is_creating_is_waited_for_not_created_twice(sync_app):
    key = (sync_app.pid, LINEITEMS, "project_plan", "resource")
    assert cache.claim_lineitem(sync_app.db, *key, stale_after=timedelta(minutes=2))  # the other process
    job = score(sync_app)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        posted = mock_ags(rsps)
        stats = deliver_due(sync_app)
        created = line_items_created(rsps)
    row = state(sync_app, job)
    assert stats.retried == 1 and row["state"] == "pending" and "another worker process" in row["last_error"]
    assert created == [] and posted.call_count == 0
    # the other process finished and recorded the item: the retry uses it without creating one
    cache.set_lineitem(sync_app.db, *key, ITEM)
    cache.release_lineitem(sync_app.db, *key)
    with write_transaction(sync_app.db):
        sync_app.db.execute("UPDATE outbox SET next_attempt_at = ? WHERE id = ?", ["2000-01-01T00:00:00+00:00", job])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        posted = mock_ags(rsps)
        deliver_due(sync_app)
        created = line_items_created(rsps)
    assert state(sync_app, job)["state"] == "delivered" and posted.call_count == 1 and created == []


def test_a_dead_workers_line_item_claim_is_taken_over_and_claims_are_released(sync_app):
    with write_transaction(sync_app.db):
        sync_app.db.execute("INSERT INTO sync_lineitem_claims (platform_id, lineitems_url, resource_id, tag,"
                            " claimed_at) VALUES (?, ?, 'project_plan', 'resource', ?)",
                            [sync_app.pid, LINEITEMS, "2026-01-01T00:00:00+00:00"])
    job = score(sync_app)
    with responses.RequestsMock() as rsps:
        mock_ags(rsps)
        deliver_due(sync_app)
    assert state(sync_app, job)["state"] == "delivered" and claims(sync_app) == 0
    # a failing find-or-create releases its claim too, so the retry is not blocked by it
    cache.forget_lineitem(sync_app.db, sync_app.pid, ITEM)
    again = score(sync_app, user="6")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(f"{LMS}/mod/lti/token.php", body=json.dumps({"access_token": "svc", "expires_in": 3600}),
                  content_type="text/html")
        rsps.get(LINEITEMS.split("?")[0], status=503)
        deliver_due(sync_app)
    assert state(sync_app, again)["state"] == "failed" and claims(sync_app) == 0


def test_a_line_item_claim_of_a_killed_worker_ends_with_its_outbox_lease_not_after_two_minutes(sync_app):
    """Worker A took job 1's lease (30 s) and the column's claim, then was killed mid-create."""
    key = (sync_app.pid, LINEITEMS, "project_plan", "grade")
    first, second = score(sync_app, user="5"), score(sync_app, user="6")
    start = utcnow()
    (a_job,) = ob.claim(sync_app.db, "worker-a", limit=1, lease_seconds=30, now=start)
    assert a_job["id"] == first
    assert cache.claim_lineitem(sync_app.db, *key, stale_after=timedelta(minutes=2), job_id=first,
                                worker_id="worker-a", now=start)
    # while A's lease holds, worker B (delivering another grade of the same column) must wait
    (b_job,) = ob.claim(sync_app.db, "worker-b", limit=1, lease_seconds=30, now=start)
    assert b_job["id"] == second
    assert not cache.claim_lineitem(sync_app.db, *key, stale_after=timedelta(minutes=2), job_id=second,
                                    worker_id="worker-b", now=start + timedelta(seconds=29))
    # 31 s later the lease has run out: the claim is taken over at once, not two minutes after it was made
    later = start + timedelta(seconds=31)
    assert cache.claim_lineitem(sync_app.db, *key, stale_after=timedelta(minutes=2), job_id=second,
                                worker_id="worker-b", now=later)
    row = sync_app.db.execute("SELECT job_id, worker_id FROM sync_lineitem_claims").fetchone()
    assert tuple(row) == (second, "worker-b") and claims(sync_app) == 1


def test_a_line_item_claim_of_a_job_whose_lease_was_taken_by_another_worker_is_taken_over(sync_app):
    key = (sync_app.pid, LINEITEMS, "project_plan", "grade")
    job = score(sync_app)
    start = utcnow()
    ob.claim(sync_app.db, "worker-a", limit=1, lease_seconds=30, now=start)
    assert cache.claim_lineitem(sync_app.db, *key, stale_after=timedelta(minutes=2), job_id=job,
                                worker_id="worker-a", now=start)
    # A is gone; B claims the same job after the lease and must be able to create the column
    later = start + timedelta(seconds=31)
    assert [j["id"] for j in ob.claim(sync_app.db, "worker-b", limit=1, lease_seconds=30, now=later)] == [job]
    assert cache.claim_lineitem(sync_app.db, *key, stale_after=timedelta(minutes=2), job_id=job,
                                worker_id="worker-b", now=later + timedelta(seconds=1))
