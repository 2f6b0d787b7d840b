"""The lake's daily partitions: one per event date, in China time.

Lake assets of tables with an event date use them; a backfill over a range of days
re-ingests the landing files that fed those days (see `ingest.load.reingest_days`).
The first day is `Settings.partition_start` of the data root the definitions are built
for (`build_definitions`), read once.
"""

import dagster as dg

# a run tag that turns any partitioned run into a re-ingest of its days
REINGEST_TAG = "bclake/reingest"
# the tag Dagster puts on every run of a backfill launched from the UI or the daemon
BACKFILL_TAG = "dagster/backfill"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
TIMEZONE = "Asia/Shanghai"


def lake_partitions(start_date: str) -> dg.DailyPartitionsDefinition:
    """Daily partitions from `start_date` (YYYY-MM-DD) to yesterday, China time."""
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone=TIMEZONE)


def latest_partition(partitions: dg.PartitionsDefinition) -> str:
    """Yesterday in China time: the day a morning run is about.

    Raises ValueError when the partitions start in the future (none exist yet).
    """
    key = partitions.get_last_partition_key()
    if key is None:
        raise ValueError("BCLAKE_PARTITION_START lies in the future: no partitions yet")
    return key


def is_reingest(tags: dict[str, str]) -> bool:
    """Backfills rebuild their days; ordinary runs only load new files."""
    return BACKFILL_TAG in tags or tags.get(REINGEST_TAG) == "true"
