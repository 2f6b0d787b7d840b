"""bclake dashboards: the Streamlit entry point (`streamlit run bclake/dashboards/app.py`).

Visitors who have not signed in get the login page and nothing else. A signed-in
user gets the sidebar (language, filters, sign-out) and the pages; every query
they trigger goes through `dashboards.data`, which filters it to their scope.
Every rerun checks the session's user against the users file as it is now
(`auth.signed_in_user`): a removed or changed user is signed out there, and their
download files with them (`media.end_session`).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from bclake.dashboards import data, media, ui
from bclake.dashboards.auth import signed_in_user
from bclake.dashboards.i18n import LANGUAGES, t

PAGES = Path(__file__).parent / "views"  # not "pages": Streamlit would serve that folder unrouted

st.set_page_config(page_title="bclake", page_icon="📦", layout="wide")
# tables offer no CSV download or copy of their own: those would skip `core.xlsx`'s
# defusing of formula-like text; the pages' download buttons are the way out
st.set_option("client.disableDataExport", True)
st.session_state.setdefault("lang", "zh")


def _switch_language() -> None:
    # clicking the selected option again clears the control: keep the language then
    st.session_state.lang = st.session_state.lang_choice or st.session_state.lang


media.start_sweeper()
user = st.session_state.get("user")
if user is not None and signed_in_user(user) is None:
    ui.logout()
    media.end_session()
    st.session_state.session_ended = True
    user = None
# visitors get the switch above the sign-in form: on a phone the sidebar starts folded away
language_bar = st.sidebar if user is not None else st
language_bar.segmented_control(
    "语言 Language",
    LANGUAGES,
    default=st.session_state.lang,
    key="lang_choice",
    on_change=_switch_language,
    format_func=lambda code: {"zh": "中文", "en": "English"}[code],
    label_visibility="collapsed",
)

if user is None:
    if st.session_state.pop("session_ended", False):
        st.warning(t("login.ended"))
    st.navigation([st.Page(ui.login_page, title=t("login.title"), icon=":material/login:")]).run()
    st.stop()

st.sidebar.markdown(
    f"**{user.name}**  \n{t(f'role.{user.scope.role}')}: {user.scope.scope_id or t('role.all')}"
)
if st.sidebar.button(t("login.logout")):
    ui.logout()
    media.end_session()
    st.rerun()
ui.sidebar_status()
if data.published_version() is not None:
    ui.sidebar_filters()

navigation = st.navigation(
    [
        st.Page(
            PAGES / "overview.py",
            title=t("page.overview"),
            icon=":material/dashboard:",
            default=True,
        ),
        st.Page(PAGES / "channel.py", title=t("page.channel"), icon=":material/storefront:"),
        st.Page(
            PAGES / "channel_planning.py",
            title=t("page.channel_planning"),
            icon=":material/add_location_alt:",
        ),
        st.Page(PAGES / "market_order.py", title=t("page.market_order"), icon=":material/gavel:"),
        st.Page(PAGES / "incentives.py", title=t("page.incentives"), icon=":material/redeem:"),
        st.Page(PAGES / "marketing.py", title=t("page.marketing"), icon=":material/campaign:"),
        st.Page(PAGES / "consumers.py", title=t("page.consumers"), icon=":material/groups:"),
        st.Page(PAGES / "products.py", title=t("page.products"), icon=":material/inventory_2:"),
        st.Page(PAGES / "forecast.py", title=t("page.forecast"), icon=":material/trending_up:"),
        st.Page(PAGES / "supply.py", title=t("page.supply"), icon=":material/factory:"),
        st.Page(PAGES / "quality.py", title=t("page.quality"), icon=":material/fact_check:"),
        st.Page(PAGES / "downloads.py", title=t("page.downloads"), icon=":material/download:"),
    ],
    # every page listed: folded after ten, the last pages (downloads) hid behind "View more"
    expanded=True,
)
navigation.run()
