"""The dashboards in a real browser: every demo user signs in, visits every page, and a
distributor downloads only its own rows. Screenshots of every page land in
`BCLAKE_SCREENSHOTS` (default: the test's temporary folder) for a person to look at.

Needs Debian's chromium (`make system-tools`); skips with the reason when it is missing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml
from browser_page import (
    DEMO_USERS,
    NO_BROWSER,
    PHONE,
    USERS,
    assert_fits_phone,
    browser_fixture,  # noqa: F401 (the `browser` fixture)
    close_sidebar,
    desktop_screenshot,
    open_page,
    open_sidebar,
    phone_screenshot,
    shots_fixture,  # noqa: F401 (the `shots` fixture)
    sign_in,
    wait_for_run,
)
from streamlit_server import serve

PAGES = {  # url path -> title in the Chinese navigation
    "overview": "总览",
    "channel": "渠道",
    "channel_planning": "渠道优化",
    "market_order": "市场秩序",
    "incentives": "激励",
    "marketing": "精准营销",
    "consumers": "消费者",
    "products": "产品",
    "forecast": "预测与补货",
    "quality": "数据质量",
    "downloads": "下载",
}

if NO_BROWSER:
    pytest.skip(NO_BROWSER, allow_module_level=True)


@pytest.fixture(scope="module")
def busiest_distributor(tiny_home: Path) -> str:
    """The distributor with the most suggested store orders in this world."""
    path = tiny_home / "warehouse" / "published.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "select distributor_code from ml.replenishment_store_sku "
            "group by 1 order by count(*) desc, 1 limit 1"
        ).fetchone()[0]


@pytest.fixture(scope="module")
def d0004_codes(tiny_home: Path) -> set[str]:
    """The distributor codes D0004 may see: its own, and the origin of every market-order
    alert about goods that turned up in its territory (those alerts name who sent them)."""
    path = tiny_home / "warehouse" / "published.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        origins = con.execute(
            "select distinct distributor_code from marts.fct_market_order_alerts "
            "where distributor_code is not null "
            "and list_contains(string_split(coalesce(destination_distributors, ''), ','), 'D0004')"
        ).fetchall()
    return {"D0004"} | {r[0] for r in origins}


@pytest.fixture(scope="module")
def users_file(busiest_distributor: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo users plus `dist` for the distributor with the most rows: which distributors
    have stores that report sell-through depends on the simulated world, not on the demo file."""
    from bclake.dashboards.auth import USERS_FILE, hash_password

    users = yaml.safe_load(USERS_FILE.read_text(encoding="utf-8"))
    users["users"]["dist"] = {
        "name": f"Distributor {busiest_distributor}",
        "role": "distributor",
        "scope": busiest_distributor,
        "password": hash_password(USERS["dist"]),
    }
    path = tmp_path_factory.mktemp("users") / "users.yml"
    path.write_text(yaml.safe_dump(users, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def app_url(tiny_home: Path, users_file: Path) -> Iterator[str]:
    """`streamlit run` over the tiny world, as `make serve` starts it."""
    with serve({"BCLAKE_HOME": str(tiny_home), "BCLAKE_USERS": str(users_file)}) as url:
        yield url


@pytest.mark.parametrize("user", list(DEMO_USERS))
def test_every_page_for_every_demo_user(
    browser, app_url: str, shots: Path, d0004_codes: set[str], user: str
) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, app_url, user)
    for slug, title in PAGES.items():
        page.locator("[data-testid='stSidebarNav']").get_by_role(
            "link", name=title, exact=True
        ).click()
        page.wait_for_url(re.compile(rf"/{slug}$") if slug != "overview" else re.compile(".*"))
        wait_for_run(page)
        body = page.locator("[data-testid='stMain']").inner_text()
        assert title in body, f"{user}: {slug} did not render its title"
        assert "Traceback" not in body, f"{user}: {slug} shows a traceback"
        assert not page.locator("[data-testid='stException']").count(), f"{user}: {slug} raised"
        if user == "d0004":  # no other distributor's code on screen but alerts' origins
            allowed = d0004_codes if slug in ("market_order", "downloads") else {"D0004"}
            assert set(re.findall(r"D\d{4}", body)) <= allowed, f"{slug}: {body[:500]}"
        desktop_screenshot(page, shots / f"{user}_{slug}.png", 1440)
    assert not errors, f"{user}: browser errors {errors[:3]}"
    context.close()


def test_a_distributor_downloads_only_its_own_rows(
    browser, app_url: str, busiest_distributor: str
) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = context.new_page()
    sign_in(page, app_url, "dist")
    page.locator("[data-testid='stSidebarNav']").get_by_role("link", name="下载").click()
    wait_for_run(page)
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "store_orders.csv" in body
    assert set(re.findall(r"D\d{4}", body)) <= {busiest_distributor}, body
    row = page.locator("[data-testid='stHorizontalBlock']").filter(has_text="store_orders.csv")
    with page.expect_download() as info:
        row.get_by_role("button", name="下载").click()
    data = Path(info.value.path()).read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(data)))
    assert rows, "the distributor's store orders file is empty"
    assert {r["distributor_code"] for r in rows} == {busiest_distributor}
    context.close()


def test_the_english_switch(browser, app_url: str, shots: Path) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    sign_in(page, app_url, "huabei")
    page.locator("[data-testid=stSidebar]").get_by_text("English", exact=True).click()
    wait_for_run(page)
    nav = page.locator("[data-testid='stSidebarNav']").inner_text()
    assert "Overview" in nav and "Forecast and replenishment" in nav
    desktop_screenshot(page, shots / "huabei_overview_en.png", 1440)
    context.close()


@pytest.mark.parametrize("user", ["s000006", "dist"])
def test_every_page_fits_a_phone(browser, app_url: str, shots: Path, user: str) -> None:
    """390 px wide: nothing wider than the screen, sign-in and language switch in reach,
    and the sidebar says when the data was published."""
    context = browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(app_url)
    wait_for_run(page)
    # the language switch sits above the form, not in the folded sidebar
    assert page.locator("[data-testid=stMain]").get_by_text("English", exact=True).is_visible()
    page.get_by_label("用户名").fill(user)
    page.get_by_label("密码").fill(USERS[user])
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("[data-testid='stSidebarNav']", state="attached")
    wait_for_run(page)
    open_sidebar(page)
    sidebar = page.locator("[data-testid=stSidebar]").inner_text()
    assert "数据发布于" in sidebar and "北京时间" in sidebar, sidebar
    assert page.locator("[data-testid=stSidebar]").get_by_text("English", exact=True).is_visible()
    page.screenshot(path=str(shots / f"phone_{user}_sidebar.png"))
    for slug, title in PAGES.items():
        open_sidebar(page)
        page.locator("[data-testid='stSidebarNav']").get_by_role(
            "link", name=title, exact=True
        ).click()
        page.wait_for_timeout(300)
        wait_for_run(page)
        close_sidebar(page)
        body = page.locator("[data-testid='stMain']").inner_text()
        assert title in body, f"{user}: {slug} did not render its title"
        assert not page.locator("[data-testid='stException']").count(), f"{user}: {slug} raised"
        assert_fits_phone(page, f"{user}: {slug}")
        phone_screenshot(page, shots / f"phone_{user}_{slug}.png")
    assert not errors, f"{user}: browser errors {errors[:3]}"
    context.close()


@pytest.mark.parametrize("user", list(DEMO_USERS))
def test_the_market_order_page_on_a_phone(browser, app_url: str, shots: Path, user: str) -> None:
    """The market-order page at 390 px for every demo user: it renders (a store gets its
    note), nothing is wider than the screen, and HQ and regions reach the review form."""
    context, page, body, errors = open_page(browser, app_url, user, "市场秩序", phone=True)
    assert "市场秩序" in body and "Traceback" not in body, body[:500]
    assert not page.locator("[data-testid='stException']").count(), f"{user}: the page raised"
    if user == "s000006":
        assert "门店账号没有可查看的预警" in body, body[:500]
    assert_fits_phone(page, user)
    has_alerts = "预警列表" in body
    if has_alerts:
        assert ("提交审核" in body) == (user in ("hq", "huabei")), f"{user}: review form"
    phone_screenshot(page, shots / f"phone_{user}_market_order.png")
    assert not errors, f"{user}: browser errors {errors[:3]}"
    context.close()
