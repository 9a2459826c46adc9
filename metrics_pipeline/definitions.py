"""The code location: assembles assets and resources; every piece is built elsewhere."""

from __future__ import annotations

import os

from dagster import Definitions, EnvVar

from metrics_pipeline.assets.health.collection_health import build_collection_health
from metrics_pipeline.assets.kpis.campaign_summaries import build_campaign_summaries
from metrics_pipeline.assets.kpis.checks import build_daily_kpi_checks
from metrics_pipeline.assets.kpis.daily_kpi_data import build_daily_kpi_data
from metrics_pipeline.assets.meta.checks import build_api_version_check, build_meta_insights_checks
from metrics_pipeline.assets.meta.meta_ad_objects import build_meta_ad_objects
from metrics_pipeline.assets.meta.meta_insights import build_meta_insights
from metrics_pipeline.assets.portfolio.checks import build_portfolio_checks
from metrics_pipeline.assets.portfolio.fx_rates import build_fx_rates
from metrics_pipeline.assets.portfolio.portfolio_kpis import build_portfolio_kpis
from metrics_pipeline.assets.serving.checks import build_serving_checks
from metrics_pipeline.assets.serving.client_kpi_rollups import build_client_kpi_rollups
from metrics_pipeline.assets.serving.current_week_cache import build_current_week_cache
from metrics_pipeline.automation.check_alerts import build_check_alert_sensor
from metrics_pipeline.automation.gaps import build_gap_sensor
from metrics_pipeline.automation.jobs import build_jobs
from metrics_pipeline.automation.notifier import AlertNotifier
from metrics_pipeline.automation.run_alerts import run_failure_alert_sensor
from metrics_pipeline.automation.schedules import build_schedules
from metrics_pipeline.catalog import Catalog, build_catalog
from metrics_pipeline.checks.settings import CheckSettings
from metrics_pipeline.clock import AS_OF_ENV, ClockResource
from metrics_pipeline.fx.resource import DEFAULT_RATES_URL, DEFAULT_REPORTING_CURRENCY, FxResource
from metrics_pipeline.meta.resource import DEFAULT_API_VERSION, DEFAULT_BASE_URL, MetaAdsResource
from metrics_pipeline.warehouse.resource import WarehouseResource


def build_assets(catalog: Catalog) -> tuple[list, list]:
    """The assets, and the checks that guard them."""
    meta_insights = build_meta_insights(catalog)
    daily_kpi_data = build_daily_kpi_data(catalog, meta_insights)
    weekly, monthly = build_campaign_summaries(catalog, daily_kpi_data)
    cache = build_current_week_cache(catalog, daily_kpi_data)
    rollups = build_client_kpi_rollups(catalog, daily_kpi_data)
    meta_ad_objects = build_meta_ad_objects(catalog)
    fx_rates = build_fx_rates(catalog)
    portfolio = build_portfolio_kpis(catalog, daily_kpi_data, fx_rates)
    assets = [
        build_collection_health(catalog),
        meta_ad_objects,
        meta_insights,
        daily_kpi_data,
        weekly,
        monthly,
        cache,
        rollups,
        fx_rates,
        portfolio,
    ]
    checks = [
        *build_api_version_check(meta_ad_objects),
        *build_meta_insights_checks(catalog, meta_insights),
        *build_daily_kpi_checks(catalog, daily_kpi_data),
        *build_serving_checks(catalog, weekly, monthly, cache, rollups),
        *build_portfolio_checks(catalog, fx_rates, portfolio),
    ]
    return assets, checks


def default_resources() -> dict:
    """Resources from the environment; secrets only through EnvVar, read at run time."""
    return {
        "meta": MetaAdsResource(
            access_token=EnvVar("META_ACCESS_TOKEN"),
            app_secret=EnvVar("META_APP_SECRET") if os.environ.get("META_APP_SECRET") else None,
            base_url=os.environ.get("META_API_BASE_URL", DEFAULT_BASE_URL),
            api_version=os.environ.get("META_API_VERSION", DEFAULT_API_VERSION),
            # How long a host that refuses connections is retried (throttling and 5xx keep
            # the long request budget).
            connect_budget_seconds=float(os.environ.get("META_CONNECT_BUDGET_SECONDS", "60")),
        ),
        # The URL (it may hold a password) is read from METRICS_WAREHOUSE_URL at run time,
        # so it never enters resource configuration or the UI.
        "warehouse": WarehouseResource(),
        "clock": ClockResource(as_of=os.environ.get(AS_OF_ENV, "")),
        "alerts": AlertNotifier(
            # The webhook's path is its credential: EnvVar keeps the value off the UI.
            webhook_url=EnvVar("METRICS_ALERT_WEBHOOK_URL")
            if os.environ.get("METRICS_ALERT_WEBHOOK_URL")
            else "",
            smtp_host=os.environ.get("METRICS_ALERT_SMTP_HOST", ""),
            smtp_port=int(os.environ.get("METRICS_ALERT_SMTP_PORT", "25")),
            smtp_ssl=os.environ.get("METRICS_ALERT_SMTP_SSL", "") == "true",
            smtp_require_tls=os.environ.get("METRICS_ALERT_SMTP_STARTTLS", "") == "true",
            smtp_ca_file=os.environ.get("METRICS_ALERT_SMTP_CA_FILE", ""),
            smtp_username=os.environ.get("METRICS_ALERT_SMTP_USERNAME", ""),
            smtp_password=EnvVar("METRICS_ALERT_SMTP_PASSWORD")
            if os.environ.get("METRICS_ALERT_SMTP_PASSWORD")
            else "",
            mail_from=os.environ.get("METRICS_ALERT_MAIL_FROM", "metrics-pipeline@localhost"),
            mail_to=os.environ.get("METRICS_ALERT_MAIL_TO", ""),
            retry_base_seconds=float(os.environ.get("METRICS_ALERT_RETRY_BASE_SECONDS", "60")),
            max_age_hours=float(os.environ.get("METRICS_ALERT_MAX_AGE_HOURS", "24")),
        ),
        "fx": FxResource(
            rates_url=os.environ.get("METRICS_FX_RATES_URL", DEFAULT_RATES_URL),
            reporting_currency=os.environ.get(
                "METRICS_REPORTING_CURRENCY", DEFAULT_REPORTING_CURRENCY
            ),
            max_move_pct=float(os.environ.get("METRICS_FX_MAX_MOVE_PCT", "5")),
        ),
        "checks": CheckSettings(
            completeness_days=int(os.environ.get("METRICS_COMPLETENESS_DAYS", "90")),
            daily_fresh_by_hour=int(os.environ.get("METRICS_DAILY_FRESH_BY_HOUR", "6")),
        ),
    }


def build_definitions(catalog: Catalog | None = None, resources: dict | None = None) -> Definitions:
    catalog = catalog or build_catalog()
    assets, checks = build_assets(catalog)
    collect_job, cache_job, health_job = build_jobs(catalog, checks)
    return Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[collect_job, cache_job, health_job],
        schedules=build_schedules(catalog, collect_job, cache_job, health_job),
        sensors=[
            build_gap_sensor(catalog, collect_job),
            build_check_alert_sensor([key for c in checks for key in c.check_keys]),
            run_failure_alert_sensor,
        ],
        resources=resources or default_resources(),
    )


defs = build_definitions()
