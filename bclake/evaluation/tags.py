"""How well the warehouse's tags agree with the tags the simulated world deserves.

Reads the simulator's truth, so it lives outside the pipeline and runs only from
`bclake evaluate`. Each tag is compared at the truth's as-of date against the
newest warehouse as-of date on or before it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

TAG_TABLES = ("channel_tags", "user_tags", "product_tags")


def warehouse_tags(published_db: Path, as_of: object) -> pl.DataFrame:
    """entity_id, tag at the newest as-of date <= `as_of`, per table."""
    frames = []
    with duckdb.connect(str(published_db), read_only=True) as con:
        for table in TAG_TABLES:
            frames.append(
                con.sql(
                    f"""
                    select entity_id, tag from marts.{table}
                    where as_of_date = (
                        select max(as_of_date) from marts.{table} where as_of_date <= ?
                    )
                    """,
                    params=[as_of],
                ).pl()
            )
    return pl.concat(frames)


def evaluate_tags(truth_dir: Path, published_db: Path) -> list[dict]:
    """Precision, recall and counts per tag (truth tags with no warehouse rule included).

    A consumer without profile consent (as the warehouse's `dim_consumer` holds it) gets
    no user tag by design, so the user tags they deserve are left out of the recall."""
    truth = pl.read_parquet(truth_dir / "deserved_tags.parquet")
    with duckdb.connect(str(published_db), read_only=True) as con:
        profiled = con.sql("select consumer_id from marts.dim_consumer where consent_profile").pl()
    truth = truth.filter(
        (pl.col("entity_type") != "user") | pl.col("entity_id").is_in(profiled["consumer_id"])
    )
    as_of = truth["as_of_date"].max()
    predicted = warehouse_tags(published_db, as_of)
    rows = []
    for tag in sorted(set(truth["tag"].unique()) | set(predicted["tag"].unique())):
        deserved = set(truth.filter(pl.col("tag") == tag)["entity_id"])
        given = set(predicted.filter(pl.col("tag") == tag)["entity_id"])
        hits = len(deserved & given)
        rows.append(
            {
                "tag": tag,
                "deserved": len(deserved),
                "tagged": len(given),
                "precision": round(hits / len(given), 3) if given else None,
                "recall": round(hits / len(deserved), 3) if deserved else None,
            }
        )
    return rows
