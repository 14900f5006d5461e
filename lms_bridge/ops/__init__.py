"""Operating an install: structured logs, `doctor`, service files, backups."""
from __future__ import annotations


def init_app(app) -> None:
    """Request ids, the optional access log, trusted proxy headers and the /healthz identity probe."""
    from . import logs

    logs.init_app(app)
