"""Headless Chromium: the interface in the LMS user's language, right to left for Dhivehi, and the region's
scripts rendered with real fonts (no missing-glyph boxes)."""
from __future__ import annotations

from babel.dates import get_month_names

from lms_bridge.i18n import gettext


def open_as(browser, app, user: str, lang: str, rl: str = "1", viewport=None):
    context = browser.new_context(timezone_id="Asia/Jakarta", viewport=viewport or {"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{app.live_url}/sandbox/launch/{user}/{rl}?lang={lang}")
    page.wait_for_url("**/app/**")
    return context, page


def fonts_used(page, selector: str) -> set[str]:
    """The font families Chromium actually drew the element's text with (CSS.getPlatformFontsForNode)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    return {f["familyName"] for f in fonts if f["glyphCount"] > 0}


def test_launch_in_indonesian_shows_the_workspace_and_dates_in_indonesian(live_server, browser):
    fac = live_server.test_client()
    from tests.conftest import LtiActions

    token = LtiActions(fac).launch(user="3")
    assert fac.post("/app/projects/deadlines", data={"lt": token, "stage": "project_report", "due": "2027-03-15T17:00",
                                                     "cutoff": "", "tz": "Asia/Jakarta"}).status_code in (200, 303)
    ctx, page = open_as(browser, live_server, "5", "id", rl="5")
    page.goto(page.url.replace("/app/home", "/app/projects/"))
    page.wait_for_selector("#stages")
    assert page.evaluate("document.documentElement.lang") == "id"
    heading = gettext("Your course project", locale="id")
    assert heading != "Your course project" and heading in page.inner_text("h1")
    due = page.inner_text("tr[data-stage=project_report]")
    months = set(get_month_names("abbreviated", locale="id").values()) | set(get_month_names("wide", locale="id").values())
    assert any(m in due for m in months if m not in ("Mei",)) or "2027-03-15" in due, due
    ctx.close()


def test_dhivehi_pages_render_right_to_left(live_server, browser):
    ctx, page = open_as(browser, live_server, "5", "dv", rl="5")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    box = page.locator("h1").bounding_box()
    width = page.viewport_size["width"]
    assert box["x"] + box["width"] > width * 0.6  # the heading starts at the right edge
    assert fonts_used(page, "h1") & {"Noto Sans Thaana", "MV Boli"}
    ctx.close()
    ctx, page = open_as(browser, live_server, "5", "dv", viewport={"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
    ctx.close()


def test_sinhala_and_tamil_text_render_with_fonts_made_for_them(live_server, browser):
    for lang, family in (("si", "Noto Sans Sinhala"), ("ta", "Noto Sans Tamil"), ("bn", "Noto Sans Bengali"),
                         ("ne", "Noto Sans Devanagari"), ("ko", "Noto Sans CJK KR")):
        ctx, page = open_as(browser, live_server, "5", lang, rl="5")
        used = fonts_used(page, "h1")
        assert any(family.split(" CJK")[0] in f for f in used), (lang, used)
        assert not any("Last Resort" in f for f in used)
        ctx.close()
