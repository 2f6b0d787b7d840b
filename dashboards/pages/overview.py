"""Overview: headline KPIs and the planners' forecast."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import data

st.title("总览 Overview")

if data.published_version() is None:
    st.info(
        "还没有发布的数据仓库。Nothing has been published yet: run `make pipeline` "
        "(or `make demo`) and reload this page."
    )
    st.stop()

kpis = data.query(
    "select kpi, grain, period_start, scope_type, scope_id, value from marts.kpi_values "
    "where grain = 'month' order by period_start"
)
# compare complete months only: a month still being reported would look like a collapse
last_day = data.query("select max(biz_date) as d from marts.fct_sell_through").d.iloc[0]
complete = pd.Timestamp(last_day) + pd.Timedelta(days=1)
kpis = kpis[pd.to_datetime(kpis.period_start) + pd.offsets.MonthBegin(1) <= complete]
sales = (
    kpis[kpis.kpi == "sell_through_amount"].groupby("period_start", as_index=False)["value"].sum()
)
scan = kpis[kpis.kpi == "scan_rate"].sort_values("period_start")

cols = st.columns(3)
if len(sales) >= 2:
    last, prev = sales.iloc[-1], sales.iloc[-2]
    cols[0].metric(
        f"POS 销售额 Sell-through {last.period_start:%Y-%m}",
        f"¥{last.value / 1e4:,.1f} 万",
        f"{(last.value / prev.value - 1) * 100:+.1f}% vs {prev.period_start:%Y-%m}",
    )
if len(scan) >= 2:
    last, prev = scan.iloc[-1], scan.iloc[-2]
    cols[1].metric(
        f"扫码率 Scan rate {last.period_start:%Y-%m}",
        f"{last.value * 100:.1f}%",
        f"{(last.value - prev.value) * 100:+.1f} pt",
    )
scores = data.query(
    "select method, wape from ml.forecast_region_sku_week_scores "
    "where horizon is null order by wape"
)
if not scores.empty:
    model = scores.set_index("method")["wape"]
    cols[2].metric(
        "预测误差 Forecast WAPE (backtest)",
        f"{model['lightgbm'] * 100:.1f}%",
        f"{(model['lightgbm'] - model['seasonal_naive']) * 100:+.1f} pt vs seasonal naive",
        delta_color="inverse",
    )

st.subheader("区域 × 产品 周销量预测 Weekly forecast by region and SKU")
series = data.query(
    "select distinct f.region, f.sku_code, p.sku_name from ml.forecast_region_sku_week f "
    "left join marts.dim_product p using (sku_code) order by 1, 2"
)
left, right = st.columns(2)
region = left.selectbox("区域 Region", sorted(series.region.unique()))
options = series[series.region == region]
sku = right.selectbox(
    "产品 SKU",
    options.sku_code,
    format_func=lambda c: f"{c} {options.set_index('sku_code').sku_name.get(c, '')}",
)

actual = data.query(
    "select week_start, qty from marts.fct_sales_region_sku_week "
    "where region = ? and sku_code = ? order by week_start",
    (region, sku),
)
forecast = data.query(
    "select week_start, p10, p50, p90 from ml.forecast_region_sku_week "
    "where region = ? and sku_code = ? order by week_start",
    (region, sku),
)
actual = actual[actual.week_start < forecast.week_start.min()] if not forecast.empty else actual

band = (
    alt.Chart(forecast)
    .mark_area(opacity=0.25, color="#1f77b4")
    .encode(
        x=alt.X("week_start:T", title="周 week"), y=alt.Y("p10:Q", title="件 units"), y2="p90:Q"
    )
)
median = (
    alt.Chart(forecast)
    .mark_line(color="#1f77b4", strokeDash=[4, 3])
    .encode(x="week_start:T", y="p50:Q", tooltip=["week_start:T", "p10:Q", "p50:Q", "p90:Q"])
)
history = (
    alt.Chart(actual)
    .mark_line(color="#444")
    .encode(x="week_start:T", y="qty:Q", tooltip=["week_start:T", "qty:Q"])
)
st.altair_chart(band + median + history, width="stretch")
st.caption("实线: 实际周销量 actual weekly sell-through · 虚线: P50 · 阴影: P10–P90")

with st.expander("表格 Table"):
    st.dataframe(
        pd.concat([actual.assign(kind="actual"), forecast.assign(kind="forecast")]),
        hide_index=True,
        width="stretch",
    )
