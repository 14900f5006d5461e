"""Twin gradebook columns: line items the tool created beside an activity's own column (before grades went
to the column the launch names). Find them, say what to do, and re-send released grades to the right column."""
from __future__ import annotations

from dataclasses import dataclass

from ..db import outbox as ob
from ..db import sync as cache
from ..db import utcnow, write_transaction
from ..lti.services import service_client

TOOL_TAGS = ("lms_bridge_project", "lms_bridge")


@dataclass
class Twin:
    platform_id: int
    context_id: str
    activity: str
    own_url: str | None
    twin: dict
    results: int

    def line(self) -> str:
        own = self.own_url or "unknown (no launch has named it yet)"
        return (f"platform {self.platform_id} course {self.context_id} {self.activity}: twin column "
                f"{self.twin.get('label', '')!r} {self.twin['id']} ({self.results} grades); activity's own column {own}")


def find(db, session, signer, platform: dict) -> list[Twin]:
    """Columns carrying the tool's tag and an activity's resourceId that are not that activity's own column."""
    twins = []
    for course in cache.course_lineitems_urls(db, platform["id"]):
        client = service_client(db, session, platform, signer)
        own = cache.link_lineitems(db, platform["id"], course["context_id"])
        own_urls = {r["lineitem_url"] for r in own}
        by_activity = {r["activity"]: r["lineitem_url"] for r in own if r["activity"]}
        own_links = {r["resource_link_id"] for r in own}
        for item in client.list_line_items(course["lineitems_url"]):
            if item["id"] in own_urls or item.get("tag") not in TOOL_TAGS or not item.get("resourceId"):
                continue
            if item.get("resourceLinkId") and str(item["resourceLinkId"]) not in own_links:
                continue  # a deep-linked activity's own column no launch has named yet
            twins.append(Twin(platform["id"], course["context_id"], item["resourceId"],
                              by_activity.get(item["resourceId"]), item, len(client.get_results(item["id"]))))
    return twins


def resend(db, twins: list[Twin]) -> int:
    """Queue the latest released grade of every learner again for each affected activity; the worker sends it
    to the activity's own column. Returns the number of jobs queued."""
    queued = 0
    with write_transaction(db):
        for key in sorted({(t.platform_id, t.context_id, t.activity) for t in twins if t.own_url}):
            pid, context, activity = key
            for job in ob.latest_scores(db, pid, f"score:{pid}:{context}:{activity}:"):
                if job["payload"].get("score_given") is None:
                    continue
                payload = dict(job["payload"], context_id=context, timestamp=utcnow().isoformat())
                ob.enqueue(db, platform_id=pid, kind="ags_score", payload=payload, order_key=job["order_key"])
                queued += 1
    return queued
