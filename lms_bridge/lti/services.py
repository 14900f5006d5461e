"""An AGS/NRPS client for a registered platform, its tokens shared through the database."""
from __future__ import annotations

from datetime import datetime, timezone

from ..clients.lti_services import ALL_SCOPES, LtiServiceClient
from ..db import lti as q


class DbTokenStore:
    """LtiServiceClient token store on the access_tokens table: one token per platform for every worker."""

    def __init__(self, db, platform_id: int):
        self.db, self.platform_id = db, platform_id

    def get(self, key: str):
        found = q.get_access_token(self.db, self.platform_id, key)
        return (found[0], found[1].timestamp()) if found else None

    def set(self, key: str, token: str, exp: float) -> None:
        q.set_access_token(self.db, self.platform_id, key, token, datetime.fromtimestamp(exp, timezone.utc))


def service_client(db, session, platform: dict, signer, *, scopes=ALL_SCOPES, timeout: float = 15):
    return LtiServiceClient(session, platform["client_id"], platform["auth_token_url"], signer, scopes=scopes,
                            audience=platform["auth_audience"], token_store=DbTokenStore(db, platform["id"]),
                            timeout=(5, timeout))
