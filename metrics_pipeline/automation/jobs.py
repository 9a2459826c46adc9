"""Jobs the schedules and sensors launch."""

from dagster import AssetKey, AssetSelection, define_asset_job

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.checks.names import history_check_keys


def build_jobs(catalog: Catalog, checks: list):
    history = AssetSelection.checks(*history_check_keys(checks))
    collect_job = define_asset_job(
        "collect_job",
        selection=AssetSelection.assets(AssetKey("meta_insights"), AssetKey("daily_kpi_data"))
        - history,
        description="Collect raw insights and derive daily KPIs for (client, day) partitions.",
    )
    cache_job = define_asset_job(
        "current_week_cache_job",
        selection=AssetSelection.assets(AssetKey("current_week_cache")) - history,
        description="Refresh the current-week cache of the selected clients.",
    )
    health_job = define_asset_job(
        "health_checks_job",
        selection=history | AssetSelection.assets(AssetKey("collection_health")),
        description="Completeness and freshness checks, and the collection_health table.",
    )
    return collect_job, cache_job, health_job
