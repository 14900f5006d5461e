"""Platform public keys: cached in the database with a TTL, refetched once for an unknown kid."""
from __future__ import annotations

import functools
import json
from datetime import timedelta

import jwt
import requests

from ..db import lti as q
from ..db import parse_ts, utcnow
from ..errors import LaunchError

REFETCH_COOLDOWN = timedelta(seconds=30)


class PlatformKeys:
    """Key lookup for one platform, shared by every worker through the database cache."""

    def __init__(self, db, session: requests.Session, platform: dict, ttl_seconds: int, timeout: float = 10):
        self.db, self.session, self.platform = db, session, platform
        self.ttl, self.timeout = timedelta(seconds=ttl_seconds), timeout

    def key_for(self, kid: str | None):
        stored = q.cached_keyset_text(self.db, self.platform["id"])
        cached = (_parsed(stored[0]), _when(stored[1])) if stored else None
        fresh = cached and utcnow() - cached[1] < self.ttl
        key = _cached_key(stored[0], kid) if fresh else _find(self._fetch(stale=cached and cached[0]), kid)
        # Platforms rotate keys: one refetch for an unknown kid, but not more than once per cooldown.
        if key is None and fresh and utcnow() - cached[1] > REFETCH_COOLDOWN:
            key = _find(self._fetch(stale=cached[0]), kid)
        if key is None:
            raise LaunchError(f"The platform's key set has no key with kid {kid!r}; the signature cannot be "
                              "checked.", code="bad_signature")
        return key

    def _fetch(self, stale):
        url = self.platform["key_set_url"]
        try:
            resp = self.session.get(url, timeout=self.timeout, headers={"Accept": "application/json"})
            resp.raise_for_status()
            jwks = json.loads(resp.text)
            if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
                raise ValueError("no keys array")
        except (requests.RequestException, ValueError) as e:
            if stale:
                return stale  # a platform outage must not stop launches signed with known keys
            raise LaunchError(f"The platform's key set at {url} could not be fetched ({type(e).__name__}).",
                              code="keyset_unavailable", status=502) from None
        q.store_keyset(self.db, self.platform["id"], jwks)
        return jwks


@functools.lru_cache(maxsize=64)
def _parsed(jwks_text: str) -> dict:
    """The stored key set parsed once per text (per platform and fetch), not on every launch."""
    return json.loads(jwks_text)


@functools.lru_cache(maxsize=64)
def _when(fetched_at: str):
    return parse_ts(fetched_at)


@functools.lru_cache(maxsize=256)
def _cached_key(jwks_text: str, kid):
    return _find(_parsed(jwks_text), kid)


def _find(jwks: dict, kid):
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kty") == "RSA"]
    match = [k for k in keys if k.get("kid") == kid] if kid else keys[:1] if len(keys) == 1 else []
    return _public_key(json.dumps(match[0], sort_keys=True)) if match else None


@functools.lru_cache(maxsize=64)
def _public_key(jwk_json: str):
    """Parsing a JWK into a key object costs more than the signature check, so each worker keeps them."""
    try:
        return jwt.PyJWK(json.loads(jwk_json), algorithm="RS256").key
    except jwt.PyJWKError:
        return None
