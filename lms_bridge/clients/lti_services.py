"""LTI Advantage service client for one platform registration: OAuth2 tokens, AGS and NRPS.

Moodle quirks handled here: the token endpoint answers JSON as text/html, AGS GETs need the exact
media type, and score errors explain themselves only in the HTTP reason phrase (kept in `reason`).
"""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests

from lms_bridge.clients.errors import LtiServiceError, parse_retry_after

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
ALL_SCOPES = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE, SCOPE_RESULT_READONLY, SCOPE_NRPS)

LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"
MEMBERSHIP_CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
EXPIRY_MARGIN = 60


class MemoryTokenStore:
    """Process-local token cache; pass a database-backed store with the same get/set to share tokens."""

    def __init__(self):
        self._tokens: dict[str, tuple[str, float]] = {}

    def get(self, key: str) -> tuple[str, float] | None:
        return self._tokens.get(key)

    def set(self, key: str, token: str, exp: float) -> None:
        self._tokens[key] = (token, exp)


def service_url(lineitem_url: str, suffix: str) -> str:
    """`.../lineitem?type_id=1` + `scores` -> `.../lineitem/scores?type_id=1` (suffix goes in the path)."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{suffix}"))


def with_query(url: str, **params) -> str:
    """Append the non-None params to the URL's existing query string, keeping what is there."""
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    if not extra:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


def iso_timestamp(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds, the shape Moodle recorded (`2026-11-23T09:12:05.161Z`)."""
    if moment.tzinfo is None:
        raise ValueError("score timestamp must be timezone-aware")
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LtiServiceClient:
    """Calls a platform's AGS and NRPS endpoints with tokens from its OAuth2 token endpoint."""

    def __init__(self, session: requests.Session, client_id: str, token_url: str,
                 signer: Callable[[dict], str], *, scopes=ALL_SCOPES, audience: str | None = None,
                 token_store=None, timeout=(5, 30), clock: Callable[[], float] = time.time):
        self.session, self.client_id, self.token_url, self.signer = session, client_id, token_url, signer
        self.scopes, self.audience = tuple(scopes), audience or token_url
        self.token_store = token_store if token_store is not None else MemoryTokenStore()
        self.timeout, self.clock = timeout, clock

    def __repr__(self) -> str:
        return f"LtiServiceClient({self.client_id!r}, {self.token_url!r})"

    def _fail(self, message: str, response: requests.Response, **extra) -> LtiServiceError:
        return LtiServiceError(message, url=response.url, status=response.status_code, reason=response.reason,
                               body=response.text, retry_after=parse_retry_after(response.headers.get("Retry-After")),
                               **extra)

    def _send(self, method: str, url: str, **kwargs) -> requests.Response:
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise LtiServiceError(f"{method} failed: {type(exc).__name__}: {exc}", url=url) from None

    def token_key(self, scopes) -> str:
        """Cache key: platform token endpoint, client id and the sorted scopes."""
        return f"{self.token_url}|{self.client_id}|{' '.join(sorted(scopes))}"

    def access_token(self, scopes=None, *, refresh: bool = False) -> str:
        """A bearer token for `scopes` (default: the client's), from the store unless near expiry."""
        scopes = tuple(scopes or self.scopes)
        key, now = self.token_key(scopes), self.clock()
        cached = None if refresh else self.token_store.get(key)
        if cached and cached[1] - EXPIRY_MARGIN > now:
            return cached[0]
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.audience,
                  "iat": int(now), "exp": int(now) + 300, "jti": str(uuid.uuid4())}
        response = self._send("POST", self.token_url, headers={"Accept": "application/json"}, data={
            "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.signer(claims), "scope": " ".join(scopes)})
        try:
            body = json.loads(response.text)  # Moodle labels this JSON text/html
        except ValueError:
            body = None
        if not isinstance(body, dict) or response.status_code != 200 or not body.get("access_token"):
            error = body.get("error") if isinstance(body, dict) else None
            raise self._fail(f"token request refused: {error or 'no access_token in answer'}", response, error=error)
        exp = now + float(body.get("expires_in") or 3600)
        self.token_store.set(key, body["access_token"], exp)
        return body["access_token"]

    def _call(self, method: str, url: str, *, accept: str | None = None, content_type: str | None = None,
              payload=None, ok=(200,), already_applied_on=()) -> requests.Response:
        """Send with a bearer token; on 401 fetch a fresh token once (it may have been revoked)."""
        headers = {**({"Accept": accept} if accept else {}), **({"Content-Type": content_type} if content_type else {})}
        data = json.dumps(payload) if payload is not None else None
        for attempt in (0, 1):
            token = self.access_token(refresh=attempt == 1)
            response = self._send(method, url, headers={**headers, "Authorization": f"Bearer {token}"}, data=data)
            if response.status_code != 401:
                break
        if response.status_code not in ok:
            raise self._fail(f"{method} {urlsplit(url).path} refused", response,
                             already_applied=response.status_code in already_applied_on)
        return response

    def _json(self, response: requests.Response):
        try:
            return response.json()
        except ValueError:
            raise self._fail("answer is not JSON", response) from None

    def _paged(self, url: str, accept: str) -> list:
        """GET every page, following `Link: <...>; rel="next"`, returning the page bodies."""
        pages = []
        while url:
            response = self._call("GET", url, accept=accept)
            pages.append(self._json(response))
            url = response.links.get("next", {}).get("url")
        return pages

    # Assignment and Grade Services

    def list_line_items(self, lineitems_url: str, resource_id: str | None = None, tag: str | None = None,
                        resource_link_id: str | None = None, limit: int | None = None) -> list[dict]:
        url = with_query(lineitems_url, resource_id=resource_id, tag=tag, resource_link_id=resource_link_id,
                         limit=limit)
        return [item for page in self._paged(url, LINEITEM_CONTAINER) for item in page]

    def get_line_item(self, lineitem_url: str) -> dict:
        return self._json(self._call("GET", lineitem_url, accept=LINEITEM))

    def create_line_item(self, lineitems_url: str, label: str, score_maximum: float, resource_id: str,
                         tag: str, resource_link_id: str | None = None) -> dict:
        item = {"label": label, "scoreMaximum": score_maximum, "resourceId": resource_id, "tag": tag}
        if resource_link_id is not None:
            item["resourceLinkId"] = str(resource_link_id)
        return self._json(self._call("POST", lineitems_url, accept=LINEITEM, content_type=LINEITEM,
                                     payload=item, ok=(200, 201)))

    def update_line_item(self, lineitem_url: str, item: dict) -> dict:
        return self._json(self._call("PUT", lineitem_url, accept=LINEITEM, content_type=LINEITEM, payload=item))

    def find_or_create_line_item(self, lineitems_url: str, label: str, score_maximum: float, resource_id: str,
                                 tag: str, resource_link_id: str | None = None) -> dict:
        """The line item with this resourceId and tag (and link, if given); created when absent."""
        for item in self.list_line_items(lineitems_url, resource_id=resource_id):
            if (item.get("resourceId") == resource_id and item.get("tag") == tag
                    and (resource_link_id is None or item.get("resourceLinkId") == str(resource_link_id))):
                return item
        return self.create_line_item(lineitems_url, label, score_maximum, resource_id, tag, resource_link_id)

    def find_or_create_activity_line_item(self, lineitems_url: str, label: str, score_maximum: float,
                                          resource_id: str, resource_link_id: str | None, tag: str) -> dict:
        """The activity's own column: matched on what identifies it, its resource link and resourceId, never
        on a tag (a platform's column for an activity need not carry ours). Created only when there is none."""
        if resource_link_id:
            items = [i for i in self.list_line_items(lineitems_url, resource_link_id=str(resource_link_id))
                     if str(i.get("resourceLinkId") or i.get("ltiLinkId") or "") == str(resource_link_id)]
            if len(items) == 1:
                return items[0]
            if items:
                return next((i for i in items if i.get("resourceId") == resource_id), items[0])
        else:
            items = [i for i in self.list_line_items(lineitems_url, resource_id=resource_id)
                     if i.get("resourceId") == resource_id]
            if items:
                return next((i for i in items if i.get("resourceLinkId")), items[0])
        return self.create_line_item(lineitems_url, label, score_maximum, resource_id, tag, resource_link_id)

    def post_score(self, lineitem_url: str, user_id, score_given: float | None, score_maximum: float,
                   timestamp: datetime, grading_progress: str = "FullyGraded",
                   activity_progress: str = "Completed", comment: str | None = None) -> None:
        """Publish a score. Moodle deletes a stored grade on any progress but FullyGraded, and answers
        409 (`already_applied`) when the timestamp is not later, to the second, than the stored one."""
        score = {"userId": str(user_id)}
        if grading_progress == "FullyGraded":
            if score_given is None:
                raise ValueError("a FullyGraded score needs score_given")
            score["scoreGiven"] = score_given
        score["scoreMaximum"] = score_maximum
        if comment is not None:
            score["comment"] = comment
        score.update(activityProgress=activity_progress, gradingProgress=grading_progress,
                     timestamp=iso_timestamp(timestamp))
        self._call("POST", service_url(lineitem_url, "scores"), content_type=SCORE, payload=score,
                   ok=(200, 201, 204), already_applied_on=(409,))

    def get_results(self, lineitem_url: str, user_id=None) -> list[dict]:
        url = with_query(service_url(lineitem_url, "results"), user_id=user_id)
        return [result for page in self._paged(url, RESULT_CONTAINER) for result in page]

    # Names and Role Provisioning Services

    def get_members(self, context_memberships_url: str, role: str | None = None, rlid: str | None = None,
                    limit: int | None = None) -> dict:
        """The membership container (`id`, `context`) with `members` gathered from every page."""
        url = with_query(context_memberships_url, role=role, rlid=rlid, limit=limit)
        pages = self._paged(url, MEMBERSHIP_CONTAINER)
        return {**pages[0], "members": [member for page in pages for member in page.get("members", [])]}
