"""The pieces every real-browser test shares: Chromium and its fixtures (`browser`,
`shots`), signing in, the sidebar on a phone, opening one page as a user at desktop or
phone width, the phone-width check and whole-page screenshots.

`NO_BROWSER` is why the browser tests cannot run here ("" when they can: playwright is
installed and Chromium found); the test modules skip on it. A module using the fixtures
imports `browser_fixture` and `shots_fixture`, and asks for `browser` and `shots`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("BCLAKE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
DEMO_USERS = {
    "hq": "hq-demo",
    "huabei": "huabei-demo",
    "d0004": "d0004-demo",
    "s000006": "s000006-demo",
}
USERS = {**DEMO_USERS, "dist": "dist-test-password"}  # `dist`: test_browser's users file
PHONE = {"width": 390, "height": 844}  # px, a common phone's viewport
DESKTOP = {"width": 1400, "height": 900}

try:
    from playwright import sync_api as playwright_api
except ImportError:
    playwright_api = None
if playwright_api is None:
    NO_BROWSER = "playwright is not installed"
elif not Path(CHROMIUM).exists():
    NO_BROWSER = (
        f"no Chromium at {CHROMIUM}: run `make system-tools` (apt-get install chromium "
        "fonts-noto-cjk) or set BCLAKE_CHROMIUM"
    )
else:
    NO_BROWSER = ""

# widths in px of the main block (its content, its box) and of the whole document
WIDTHS_JS = (
    "(() => { const m = document.querySelector('[data-testid=stMain]');"
    " return [m.scrollWidth, m.clientWidth, document.documentElement.scrollWidth]; })()"
)


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[object]:
    """Headless Chromium, one per test module."""
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield b
        b.close()


@pytest.fixture(scope="module", name="shots")
def shots_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: `BCLAKE_SCREENSHOTS`, else a temporary folder."""
    folder = Path(os.environ.get("BCLAKE_SCREENSHOTS") or tmp_path_factory.mktemp("screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_for_run(page) -> None:
    """Until the script has finished and the charts have drawn."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
    page.wait_for_timeout(600)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")


def sign_in(page, url: str, user: str, phone: bool = False) -> None:
    """Sign in from the login page; on a phone the sidebar (and its navigation) starts folded."""
    page.goto(url)
    wait_for_run(page)
    page.get_by_label("用户名").fill(user)
    page.get_by_label("密码").fill(USERS[user])
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("[data-testid='stSidebarNav']", state="attached" if phone else "visible")
    wait_for_run(page)


def open_sidebar(page) -> None:
    """On a phone the sidebar starts folded behind the » button."""
    button = page.locator("[data-testid=stExpandSidebarButton][aria-expanded=false]")
    if button.count() and button.is_visible():
        button.click()
        page.wait_for_timeout(400)


def close_sidebar(page) -> None:
    box = page.locator("[data-testid=stSidebar]").bounding_box()
    if box and box["x"] >= 0 and box["width"] > 50:
        page.locator("[data-testid=stSidebarCollapseButton] button").click(force=True)
        page.wait_for_timeout(400)


def go_to(page, nav_title: str, phone: bool) -> str:
    """Click `nav_title` in the sidebar's navigation (unfolding the sidebar on a phone and
    folding it again), wait for the run; returns the main block's text."""
    if phone:
        open_sidebar(page)
    page.locator("[data-testid='stSidebarNav']").get_by_role(
        "link", name=nav_title, exact=True
    ).click()
    page.wait_for_timeout(300)
    wait_for_run(page)
    if phone:
        close_sidebar(page)
    return page.locator("[data-testid='stMain']").inner_text()


def open_page(browser, url: str, user: str, nav_title: str, phone: bool) -> tuple:
    """A new browser context (`PHONE` with touch, or `DESKTOP`; zh-CN) signed in as `user`
    at `url`, on the page `nav_title` of the navigation. Returns (context, page, the main
    block's text, the list the page's script errors are appended to); close the context."""
    context = browser.new_context(
        viewport=PHONE if phone else DESKTOP, locale="zh-CN", has_touch=phone
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, url, user, phone=phone)
    body = go_to(page, nav_title, phone)
    return context, page, body, errors


def assert_fits_phone(page, what: str) -> None:
    """Nothing on the page is wider than the phone: the main block's content fits its box
    and the document does not scroll sideways (`what` names the page in the message)."""
    widths = page.evaluate(WIDTHS_JS)
    assert widths[0] <= widths[1] + 1, f"{what}: wider than the phone {widths}"
    assert widths[2] <= PHONE["width"] + 1, f"{what}: scrolls sideways {widths}"


def phone_screenshot(page, path: Path) -> None:
    """The whole page at phone width (the main block scrolls, so grow the window to fit)."""
    height = page.evaluate(
        "document.querySelector('[data-testid=stMainBlockContainer]').scrollHeight"
    )
    page.set_viewport_size({"width": PHONE["width"], "height": max(PHONE["height"], height + 120)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path))
    page.set_viewport_size(PHONE)


def desktop_screenshot(page, path: Path, width: int = DESKTOP["width"]) -> None:
    """The whole page at `width` px (the main block scrolls, so grow the window to fit)."""
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": width, "height": max(900, int(height))})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": width, "height": 900})


def check_both_widths(
    browser,
    url: str,
    user: str,
    nav_title: str,
    shots: Path,
    stem: str,
    check: Callable[[object, str], None],
    width: int = DESKTOP["width"],
) -> None:
    """The page `nav_title` as `user` at desktop and at phone width: it renders without a
    script error or an exception box, `check(page, main block's text)` holds, and on the
    phone nothing is wider than the screen. Whole-page screenshots `user`_`stem`.png
    (`width` px) and phone_`user`_`stem`.png go to `shots`."""
    for phone in (False, True):
        context, page, body, errors = open_page(browser, url, user, nav_title, phone)
        try:
            assert nav_title in body and "Traceback" not in body, body[:500]
            assert not page.locator("[data-testid='stException']").count(), f"{user}: raised"
            check(page, body)
            if phone:
                assert_fits_phone(page, user)
                phone_screenshot(page, shots / f"phone_{user}_{stem}.png")
            else:
                desktop_screenshot(page, shots / f"{user}_{stem}.png", width=width)
            assert not errors, f"{user}: browser errors {errors[:3]}"
        finally:
            context.close()
