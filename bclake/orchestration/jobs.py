"""Jobs: the whole flow as one asset job."""

import dagster as dg

PIPELINE_JOB = "bclake_pipeline"

pipeline_job = dg.define_asset_job(
    PIPELINE_JOB,
    selection=dg.AssetSelection.all(),
    description="Landing -> lake -> warehouse -> models -> publish -> planner files.",
)
