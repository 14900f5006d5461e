"""Headless Chromium: what a person on a shared computer and an attacker's page would see (issue 11)."""
from __future__ import annotations


def launch(context, app, user: str, rl: str = "1"):
    page = context.new_page()
    page.goto(f"{app.live_url}/sandbox/launch/{user}/{rl}")
    page.wait_for_url("**/app/projects/**")
    return page


def test_browser_drafts_are_kept_per_user_on_a_shared_computer(live_server, browser):
    context = browser.new_context(timezone_id="Asia/Jakarta")
    lina = launch(context, live_server, "5")
    lina.fill("#f_title", "Lina's unsaved title")
    lina.fill("#f_problem", "Lina's private notes")
    # A draft kept under the old per-course key (before drafts were per user) is dropped on load.
    lina.evaluate("localStorage.setItem('lms_bridge:draft:1:99:project_plan', JSON.stringify({title: 'old'}))")
    lina.close()

    teuea = launch(context, live_server, "6")  # the next learner, same browser
    assert teuea.input_value("#f_title") == "" and teuea.input_value("#f_problem") == ""
    assert teuea.evaluate("localStorage.getItem('lms_bridge:draft:1:99:project_plan')") is None
    teuea.close()

    again = launch(context, live_server, "5")  # Lina comes back: her draft is still there
    assert again.input_value("#f_title") == "Lina's unsaved title"
    context.close()


def test_launch_token_leaves_the_address_bar_and_reload_still_works(live_server, browser):
    from conftest import LtiActions

    context = browser.new_context()
    page = launch(context, live_server, "5")
    page.wait_for_function("!/[?&]lt=(?!c\\.)/.test(location.search)")
    lt = page.evaluate("new URL(location.href).searchParams.get('lt')")
    assert lt.startswith("c.")  # the cookie carries the session: the URL has a reference only
    page.reload()
    assert page.locator("#f_title").count() == 1
    # a copied address is of no use in another browser
    other = browser.new_context().new_page()
    other.goto(page.url)
    assert "no longer holds" in other.content()
    # and a full token (a browser that refused the cookie) is dropped from the address bar on load
    token = LtiActions(live_server.test_client()).launch(user="6")
    bare = browser.new_context().new_page()
    bare.goto(f"{live_server.live_url}/app/projects/?lt={token}")
    assert "lt=" not in bare.url and bare.locator("text=Your project").count() + 1
    context.close()


def _serve(context, origin: str, html: str) -> None:
    context.route(f"{origin}/**", lambda route: route.fulfill(status=200, content_type="text/html", body=html))


def _page_server(html: str):
    """A second web server on loopback: one page that frames the tool (an LMS, or an attacker's site)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_other_sites_cannot_frame_the_tool_but_registered_platforms_can(live_server, browser):
    from lms_bridge import security
    from lms_bridge.db import connect
    from lti_config.registrations import add_platform

    server = _page_server(f'<iframe id="f" src="{live_server.live_url}/"></iframe>')
    port = server.server_address[1]
    try:
        lms = f"http://127.0.0.1:{port}"  # a registered platform ...
        db = connect(live_server.config["DATABASE_URL"])
        add_platform(db, issuer=lms, client_id="c", auth_login_url=lms + "/auth", auth_token_url=lms + "/token",
                     key_set_url=lms + "/certs", deployment_id="1", allow_insecure=True)
        db.close()
        security.invalidate_origins()
        context = browser.new_context()
        page = context.new_page()
        page.goto(lms + "/")
        page.frame_locator("#f").locator("text=An LTI 1.3 tool").wait_for()
        evil = context.new_page()  # ... and the same page on an origin no platform has
        evil.goto(f"http://localhost:{port}/")
        evil.wait_for_timeout(800)
        assert "An LTI 1.3 tool" not in evil.frames[-1].content()
        context.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_form_another_site_submits_is_refused(live_server, browser):
    from conftest import LtiActions
    from lms_bridge.db import connect

    token = LtiActions(live_server.test_client()).launch(user="3")
    context = browser.new_context()
    _serve(context, "http://evil.test", f"""<form id="x" method="post" action="{live_server.live_url}/app/projects/deadlines">
      <input name="lt" value="{token}"><input name="stage" value="project_plan">
      <input name="due" value="2026-12-01T17:00"></form><script>document.getElementById('x').submit()</script>""")
    page = context.new_page()
    page.goto("http://evil.test/")
    page.wait_for_url(f"{live_server.live_url}/**")
    assert "another site" in page.content()
    db = connect(live_server.config["DATABASE_URL"])
    assert db.execute("SELECT count(*) FROM deadlines").fetchone()[0] == 0
    db.close()
    context.close()


def test_registration_close_button_works_under_the_policy(live_server, browser):
    """The Close button of the registration page (framed by the LMS) runs without inline handlers."""
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{live_server.live_url}/sandbox/admin/register")
    page.frame_locator("#registration").locator("#close").click()
    page.wait_for_selector("#status[data-status=closed]")
    assert not errors, errors
    context.close()
