"""Compare the LMS gradebook (AGS results) with the grades the tool released; report, never overwrite."""
from __future__ import annotations

from dataclasses import dataclass


from ..db import lti as q
from ..db import outbox as ob
from ..db import sync as cache
from ..lti.services import service_client


class ReconcileError(Exception):
    """The platform or course is unknown to the tool."""


@dataclass
class Difference:
    user_id: str
    resource_id: str
    released: float | None
    in_lms: float | None
    score_maximum: float
    job_state: str

    def line(self) -> str:
        lms = "no grade" if self.in_lms is None else f"{self.in_lms:g}"
        rel = "no grade" if self.released is None else f"{self.released:g}"
        return (f"user {self.user_id}\t{self.resource_id}\ttool {rel}/{self.score_maximum:g}\tLMS {lms}"
                f"\t(job {self.job_state})")


def _scaled(result: dict, maximum: float) -> float | None:
    """Moodle omits resultScore for a grade of 0, and reports it on resultMaximum's scale."""
    if "resultScore" not in result:
        return 0.0 if result.get("resultMaximum") is not None else None
    result_max = float(result.get("resultMaximum") or maximum)
    return round(float(result["resultScore"]) * maximum / result_max, 5)


def activity_column(db, client, platform_id: int, job: dict, context_id: str) -> str | None:
    """The same column the score job writes to (the one the activity's launches name), never a twin."""
    p, link = job["payload"], job["payload"].get("resource_link_id")
    url = (cache.own_lineitem(db, platform_id, p.get("context_id") or context_id, link, p["resource_id"])
           or cache.get_lineitem(db, platform_id, p["lineitems_url"], p["resource_id"],
                                 f"link:{link}" if link else "resource"))
    if url is None:
        if link:
            items = [i for i in client.list_line_items(p["lineitems_url"], resource_link_id=str(link))
                     if str(i.get("resourceLinkId") or "") == str(link)]
            pick = items[0] if len(items) == 1 else next((i for i in items if i.get("resourceId") == p["resource_id"]),
                                                         None)
        else:
            items = [i for i in client.list_line_items(p["lineitems_url"], resource_id=p["resource_id"])
                     if i.get("resourceId") == p["resource_id"]]
            pick = next((i for i in items if i.get("resourceLinkId")), items[0] if items else None)
        url = pick["id"] if pick else None
    return url


def reconcile(db, session, signer, *, issuer: str, context_id: str, client_id: str | None = None) -> list[Difference]:
    platform = q.find_platform(db, issuer, client_id)
    if platform is None:
        clients = [p["client_id"] for p in q.list_platforms(db) if p["issuer"] == issuer]
        if len(clients) > 1 and client_id is None:
            raise ReconcileError(f"the issuer {issuer} has several client ids ({', '.join(clients)}): "
                                 "choose one with --client-id")
        raise ReconcileError(f"no platform with issuer {issuer}" + (f" and client id {client_id}" if client_id else ""))
    released = ob.latest_scores(db, platform["id"], f"score:{platform['id']}:{context_id}:")
    client = service_client(db, session, platform, signer)
    results_by_item: dict[str, dict[str, dict]] = {}
    differences = []
    for job in released:
        p = job["payload"]
        url = activity_column(db, client, platform["id"], job, context_id)
        results = {}
        if url is not None:
            if url not in results_by_item:
                results_by_item[url] = {str(r["userId"]): r for r in client.get_results(url)}
            results = results_by_item[url]
        found = results.get(str(p["user_id"]))
        in_lms = _scaled(found, float(p["score_maximum"])) if found else None
        given = p.get("score_given")
        if in_lms is None and given is None:
            continue
        if in_lms is None or given is None or abs(float(given) - in_lms) > 1e-4:
            differences.append(Difference(str(p["user_id"]), p["resource_id"], given, in_lms,
                                          float(p["score_maximum"]), job["state"]))
    return differences
