"""Jobs, named after what they build: schedules, sensors and the command line launch them,
so the UI's run list says what each run did."""

from dagster import AssetKey, AssetSelection, define_asset_job

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.checks.names import history_check_keys

# One name per kind of run; the command line's runs carry the same names.
AD_OBJECTS_JOB = "ad_objects"
COLLECT_JOB = "collect_and_derive"
REDERIVE_JOB = "rederive_daily_kpis"
WEEKLY_JOB = "weekly_summaries"
MONTHLY_JOB = "monthly_summaries"
SERVING_JOB = "serving"
CACHE_JOB = "current_week_cache_refresh"
HEALTH_JOB = "health_checks"
FX_RATES_JOB = "exchange_rates"
PORTFOLIO_JOB = "portfolio"
LAYER_TAG = "metrics_pipeline/layer"


def build_jobs(catalog: Catalog, checks: list):
    history = AssetSelection.checks(*history_check_keys(checks))
    collect_job = define_asset_job(
        COLLECT_JOB,
        selection=AssetSelection.assets(AssetKey("meta_insights"), AssetKey("daily_kpi_data"))
        - history,
        description="Collect raw insights and derive daily KPIs for (client, day) partitions.",
        # dagster.yaml runs one collection at a time by this tag (see there why).
        tags={LAYER_TAG: "collect"},
    )
    cache_job = define_asset_job(
        CACHE_JOB,
        selection=AssetSelection.assets(AssetKey("current_week_cache")) - history,
        description="Refresh the current-week cache of the selected clients.",
    )
    rates_job = define_asset_job(
        FX_RATES_JOB,
        selection=AssetSelection.assets(AssetKey("fx_rates")),
        description="Read the exchange rates of the selected days (with the rates check).",
    )
    health_job = define_asset_job(
        HEALTH_JOB,
        selection=history | AssetSelection.assets(AssetKey("collection_health")),
        description="Completeness and freshness checks, and the collection_health table.",
    )
    return collect_job, cache_job, health_job, rates_job
