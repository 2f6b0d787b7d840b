"""The KPI definitions (dbt_project/kpis.yml): labels, formulas, grains, targets.

One file feeds the docs page, the dashboards' labels and the check that the
warehouse's `kpi_values` holds exactly the defined KPIs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import yaml

from bclake.core.settings import DBT_PROJECT_DIR

KPI_FILE = DBT_PROJECT_DIR / "kpis.yml"


@dataclass(frozen=True)
class Kpi:
    name: str
    zh: str
    en: str
    side: str
    unit: str
    direction: str
    formula: str
    grains: tuple[str, ...]
    scopes: tuple[str, ...]
    sources: tuple[str, ...]
    target: float | None = None
    target_note: str | None = None


@cache
def load_kpis() -> dict[str, Kpi]:
    raw = yaml.safe_load(KPI_FILE.read_text(encoding="utf-8"))["kpis"]
    return {
        k["name"]: Kpi(
            **{
                **k,
                "grains": tuple(k["grains"]),
                "scopes": tuple(k["scopes"]),
                "sources": tuple(k["sources"]),
            }
        )
        for k in raw
    }


def render_markdown(kpis: dict[str, Kpi]) -> str:
    """docs/kpis.md: the metric definitions, grouped by side."""
    out = [
        "# KPI definitions",
        "",
        "Generated from `dbt_project/kpis.yml` by `bclake kpis`; do not edit by hand.",
        "Values live in `marts.kpi_values` (`kpi, grain, period_start, scope_type, scope_id,",
        "value`). Ratio KPIs are summed from their parts before dividing, so a month or a",
        "region is never an average of averages.",
        "",
    ]
    titles = {
        "B": "B side (channel)",
        "C": "C side (consumers)",
        "supply": "Supply",
        "overall": "Overall",
    }
    for side, title in titles.items():
        rows = [k for k in kpis.values() if k.side == side]
        if not rows:
            continue
        out += [
            f"## {title}",
            "",
            "| KPI | 中文 | formula | unit | better | grains | scopes | sources | plan target |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for k in rows:
            target = k.target_note or ""
            out.append(
                f"| `{k.name}` ({k.en}) | {k.zh} | {k.formula} | {k.unit} | {k.direction} | "
                f"{', '.join(k.grains)} | {', '.join(k.scopes)} | "
                f"{', '.join(f'`{s}`' for s in k.sources)} | {target} |"
            )
        out.append("")
    return "\n".join(out)
