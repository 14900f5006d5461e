"""Headless Chromium with the tool on another site than the LMS page that frames it (the LMS at
`localhost`, the tool at `127.0.0.1`, as Moodle and the tool are in production): the tool's cookie
(SameSite=Lax on plain http, or blocked third-party cookies) never comes back inside the frame, so pages
keep their launch through the token alone, also after they sent the browser's zone and showed themselves again."""
from __future__ import annotations

from lms_bridge.db import connect
from lms_bridge.db import lti as lq


def lms_on_another_site(live_server) -> str:
    """The sandbox LMS page as seen at http://localhost:PORT, registered so it may frame the tool."""
    lms = live_server.live_url.replace("127.0.0.1", "localhost")
    db = connect(live_server.config["DATABASE_URL"])
    lq.add_platform(db, issuer=lms, client_id="frame-test", auth_login_url=lms + "/auth",
                    auth_token_url=lms + "/token", key_set_url=lms + "/certs", deployment_ids=("1",))
    db.close()
    return lms


def test_zone_detection_keeps_the_launch_inside_a_cross_site_frame(live_server, browser):
    lms = lms_on_another_site(live_server)
    context = browser.new_context(timezone_id="Pacific/Tarawa")
    page = context.new_page()
    page.goto(f"{lms}/sandbox/")
    # a teacher on Moodle's default zone ("99"), launched inside the LMS page's frame
    page.evaluate("document.querySelector('iframe[name=tool]').src = '/sandbox/launch/3/1?tz=99'")
    tool = page.frame_locator('iframe[name="tool"]')
    tool.locator("#dashboard, [data-error]").first.wait_for(timeout=15000)
    db = connect(live_server.config["DATABASE_URL"])
    assert [r[0] for r in db.execute("SELECT timezone FROM launches WHERE user_id = '3'")] in (
        [None], ["Pacific/Tarawa"])
    frame = page.frame(name="tool")
    frame.wait_for_function("!document.querySelector('[data-tz-detect]')", timeout=15000)  # sent, shown again
    frame.wait_for_load_state()
    assert frame.locator("[data-error]").count() == 0, frame.inner_text("body")[:300]  # not "session expired"
    assert frame.locator("#dashboard").count() == 1
    assert [r[0] for r in db.execute("SELECT timezone FROM launches WHERE user_id = '3'")] == ["Pacific/Tarawa"]
    db.close()
    context.close()
