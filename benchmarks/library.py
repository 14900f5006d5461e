"""Library of promising practices: search over 10,000 published entries, rendered through the app.

Run: .venv/bin/python benchmarks/library.py [--entries N] [--runs R] [--store sqlite|postgresql|both]
Prints the median time of a full results page for a text query, a filter, both, and no criteria, plus the
time of the bare store query, at N and at N/10 entries (the cost should not grow with the library).
Target: median under 100 ms at 10,000 entries. `--store postgresql` runs the same on a throwaway PostgreSQL
cluster on 127.0.0.1 (tests/pg_cluster.py, started and stopped here); `both` prints the two side by side.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from lms_bridge import create_app  # noqa: E402
from lms_bridge.cli import prepare  # noqa: E402
from lms_bridge.db import connect, returning_id, ts, utcnow, write_transaction  # noqa: E402
from lms_bridge.db import lti as lq  # noqa: E402
from lms_bridge.db import practices as pq  # noqa: E402
from lms_bridge.lti.context import issue_token  # noqa: E402
from lms_bridge.practices import rules  # noqa: E402
from lms_bridge.projects.forms import COUNTRIES, HRBA_PRINCIPLES, SDGS  # noqa: E402

SCOPE = (1, "1", "2")
WORDS = ("water sanitation ramps disability budget participation child labour pledge school climate flood "
         "adaptation housing market vendors gender violence youth council transparency open data health clinic "
         "migrants registration elderly pension indigenous land forest fisheries waste recycling transport").split()
# Entry text drawn from a Zipf-like vocabulary: the domain words above among 3,000 others, as in real prose.
VOCABULARY = WORDS + [f"w{i}" for i in range(3000)]
WEIGHTS = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
CITIES = ("Jakarta", "Surabaya", "Thakurgaon", "Kathmandu", "Pokhara", "Quezon City", "Davao", "Colombo",
          "Male", "Tarawa", "Gwangju", "Penang", "Dhaka", "Bandung", "Iloilo")


def seed(db, issuer: str, n: int, rng: random.Random) -> None:
    now = utcnow()
    for start in range(0, n, 100):  # a transaction per hundred: PostgreSQL's statement savepoints stay few
        with write_transaction(db):
            _seed_batch(db, issuer, range(start, min(n, start + 100)), rng, now)
    db.execute("ANALYZE")


def _seed_batch(db, issuer: str, numbers, rng: random.Random, now) -> None:
    for i in numbers:
        cur = db.execute("INSERT INTO projects (platform_id, deployment_id, context_id, owner_id, title, country,"
                         " created_at) VALUES (?,?,?,?,?,?,?)" + returning_id(db),
                         [*SCOPE, str(10_000 + i), f"P{i}", "ID", ts(now)])
        text = lambda k: " ".join(rng.choices(VOCABULARY, WEIGHTS, k=k))  # noqa: E731
        sdgs = sorted(rng.sample(list(SDGS), rng.randint(1, 3)), key=int)
        fields = {"title": text(5).capitalize(), "summary": text(30), "problem": text(60), "approach": text(60),
                  "results": text(40), "lessons": text(40), "challenges": text(20), "what_next": text(10),
                  "hrba": rng.sample(list(HRBA_PRINCIPLES), rng.randint(1, 3)), "sdgs": sdgs,
                  "targets": [f"{sdgs[0]}.{rng.randint(1, 9)}"], "themes": rng.sample(list(rules.THEMES), 2),
                  "country": rng.choice(list(COUNTRIES)[:-1]), "city": rng.choice(CITIES),
                  "cohort_year": rng.randint(2018, 2026), "org_type": rng.choice(list(rules.ORG_TYPES))}
        entry_id = pq.create_entry(db, issuer, SCOPE, cur.lastrowid, fields, "3")
        db.execute("UPDATE practices SET state = 'published', published_at = ? WHERE id = ?",
                   [ts(now - timedelta(minutes=i)), entry_id])
        e = pq.entry(db, entry_id)
        pq.index_entry(db, e, rules.tags(e), f"{e['city']} {COUNTRIES[e['country']]}")


def learner_token(app, db) -> str:
    now = utcnow()
    lq.save_launch(db, {"id": "bench-library", "platform_id": 1, "deployment_id": "1", "context_id": "9",
                        "context_title": "Next cohort", "user_id": "77", "user_name": "Reader", "user_email": "",
                        "role": "learner", "message_type": "LtiResourceLinkRequest", "resource_link_id": "6",
                        "activity": "practices_library", "timezone": "Asia/Jakarta", "claims": {},
                        "created_at": ts(now), "expires_at": ts(now + timedelta(hours=8))})
    db.conn.commit()
    with app.test_request_context():
        return issue_token("bench-library")


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


QUERIES = (("text 'water budget'", {"q": "water budget"}), ("filter sdg=6", {"sdg": "6"}),
           ("text 'water' (in most entries)", {"q": "water"}),
           ("text 'child labour' + sdg=8 + country=BD", {"q": "child labour", "sdg": "8", "country": "BD"}),
           ("no criteria, page 3", {"page": "3"}), ("prefix 'sanit'", {"q": "sanit"}))


def create_database(admin_url: str, name: str) -> str:
    import psycopg

    from lms_bridge.db.pg import dsn

    with psycopg.connect(dsn(admin_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return admin_url.rsplit("/", 1)[0] + "/" + name


def run(size: int, runs: int, admin_url: str | None = None) -> dict[str, tuple[float, float, int]]:
    """One library of `size` entries: on SQLite in a temporary folder, or in a new database of the PostgreSQL
    cluster at `admin_url`."""
    with tempfile.TemporaryDirectory() as tmp:
        config = {"DATA_DIR": tmp, "TOOL_URL": "http://localhost", "SANDBOX_ENABLED": True}
        if admin_url:
            config["DATABASE_URL"] = create_database(admin_url, f"lms_bridge_library_{size}")
        app = create_app(config)
        prepare(app)
        db = connect(app.config["DATABASE_URL"])
        issuer = db.execute("SELECT issuer FROM platforms WHERE id = 1").fetchone()[0]
        seed(db, issuer, size, random.Random(11))
        token = learner_token(app, db)
        client = app.test_client()
        out = {}
        for label, args in QUERIES:
            filters = rules.clean_filters(args)
            found = pq.search(db, issuer, query=rules.fts_query(args.get("q", "")), filters=filters, limit=20)[1]
            store = timed(lambda: pq.search(db, issuer, query=rules.fts_query(args.get("q", "")), filters=filters,
                                            limit=20), runs)

            def page():
                resp = client.get("/library/", query_string={"lt": token, **args})
                assert resp.status_code == 200, resp.status_code

            out[label] = (timed(page, runs), store, found)
        db.close()
        if admin_url:
            from lms_bridge.db import pg

            pg.dispose_pools()
        return out


def measure(entries: int, runs: int, admin_url: str | None = None) -> tuple[dict, dict]:
    return run(max(1, entries // 10), runs, admin_url), run(entries, runs, admin_url)


def report(name: str, entries: int, small: dict, large: dict) -> float:
    worst = 0.0
    print(f"-- {name}")
    for label, _ in QUERIES:
        page, store, found = large[label]
        small_page = small[label][0]
        worst = max(worst, page)
        print(f"{label:40} {entries} entries: page {page:6.1f} ms (store {store:5.1f} ms, {found} found); "
              f"{entries // 10} entries: page {small_page:6.1f} ms; x{page / small_page:.2f}")
    print(f"{name}: worst median {worst:.1f} ms (target < 100 ms): {'OK' if worst < 100 else 'TOO SLOW'}")
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="sqlite")
    args = parser.parse_args(argv)
    results = {}
    if args.store in ("sqlite", "both"):
        results["SQLite"] = measure(args.entries, args.runs)
    if args.store in ("postgresql", "both"):
        from pg_cluster import cluster

        with cluster() as admin_url:
            results["PostgreSQL"] = measure(args.entries, args.runs, admin_url)
    worst = {name: report(name, args.entries, *r) for name, r in results.items()}
    if len(results) == 2:
        for label, _ in QUERIES:
            sq, pg_ = results["SQLite"][1][label][0], results["PostgreSQL"][1][label][0]
            print(f"{label:40} PostgreSQL/SQLite page median: x{pg_ / sq:.2f} ({pg_:.1f} / {sq:.1f} ms)")
        print(f"worst median: SQLite {worst['SQLite']:.1f} ms, PostgreSQL {worst['PostgreSQL']:.1f} ms")
    return 0 if all(w < 100 for w in worst.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
