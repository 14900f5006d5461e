"""A requests transport that hands calls for the tool's own URL to the WSGI app in-process.

Tests use it so the tool talks to the sandbox LMS through real `requests` calls without a server.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from werkzeug.test import Client


class WSGIAdapter(BaseAdapter):
    def __init__(self, app_getter):
        super().__init__()
        self.app_getter = app_getter

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = urlsplit(request.url)
        client = Client(self.app_getter())
        body = request.body.encode() if isinstance(request.body, str) else request.body
        resp = client.open(parts.path, method=request.method, query_string=parts.query,
                           headers=dict(request.headers), data=body or None,
                           base_url=f"{parts.scheme}://{parts.netloc}")
        out = requests.Response()
        out.status_code = resp.status_code
        out.reason = resp.status.split(" ", 1)[1] if " " in resp.status else ""
        out.headers = requests.structures.CaseInsensitiveDict(resp.headers)
        out._content = resp.get_data()
        out._content_consumed = True  # no raw stream: iter_content serves the body read here
        out.url = request.url
        out.request = request
        out.encoding = resp.mimetype_params.get("charset")
        resp.close()
        return out

    def close(self):
        pass


def session_for(app_getter, base_url: str) -> requests.Session:
    session = requests.Session()
    session.mount(base_url.rstrip("/") + "/", WSGIAdapter(app_getter))
    return session
