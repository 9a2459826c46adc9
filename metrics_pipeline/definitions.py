"""The code location: assembles assets and resources; every piece is built elsewhere."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import Definitions, definitions, in_process_executor

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
from metrics_pipeline.automation.derived import build_automation_sensor
from metrics_pipeline.automation.gaps import build_gap_sensor
from metrics_pipeline.automation.jobs import build_jobs
from metrics_pipeline.automation.notifier import REQUIRE_TLS_ENV, AlertNotifier
from metrics_pipeline.automation.run_alerts import run_failure_alert_sensor
from metrics_pipeline.automation.schedules import build_schedules
from metrics_pipeline.automation.status import AUTOMATION_ENV, SENSOR_INTERVAL_ENV
from metrics_pipeline.catalog import Catalog, build_catalog
from metrics_pipeline.checks.settings import CheckSettings
from metrics_pipeline.clock import AS_OF_ENV, ClockResource, as_of_problem
from metrics_pipeline.config.clients import CLIENTS_FILE_ENV
from metrics_pipeline.domain.fx import reporting_currency_problem
from metrics_pipeline.env_settings import (
    SettingError,
    ValueCheck,
    check_values,
    env_settings,
    file_path,
    folder_path,
    http_url,
    number,
    one_of,
    whole_number,
)
from metrics_pipeline.fx.resource import FxResource
from metrics_pipeline.meta.resource import MetaAdsResource
from metrics_pipeline.meta.versions import version_name_problem
from metrics_pipeline.partitions import HISTORY_START_ENV, history_start_problem
from metrics_pipeline.steps.retries import MAX_RETRIES_ENV, RETRY_DELAY_ENV
from metrics_pipeline.warehouse.resource import WAREHOUSE_URL_ENV, WarehouseResource, url_problem


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


# Field -> environment variable, per resource. Defaults live on the resources' fields;
# `env_settings` passes on only the variables that are set.
META_ENV = {
    "access_token": "META_ACCESS_TOKEN",
    "app_secret": "META_APP_SECRET",
    "base_url": "META_API_BASE_URL",
    "api_version": "META_API_VERSION",
    "connect_budget_seconds": "META_CONNECT_BUDGET_SECONDS",
}
WAREHOUSE_ENV = {"url": WAREHOUSE_URL_ENV}
CLOCK_ENV = {"as_of": AS_OF_ENV}
ALERTS_ENV = {
    "webhook_url": "METRICS_ALERT_WEBHOOK_URL",
    "smtp_host": "METRICS_ALERT_SMTP_HOST",
    "smtp_port": "METRICS_ALERT_SMTP_PORT",
    "smtp_ssl": "METRICS_ALERT_SMTP_SSL",
    "smtp_require_tls": REQUIRE_TLS_ENV,
    "smtp_ca_file": "METRICS_ALERT_SMTP_CA_FILE",
    "smtp_username": "METRICS_ALERT_SMTP_USERNAME",
    "smtp_password": "METRICS_ALERT_SMTP_PASSWORD",
    "mail_from": "METRICS_ALERT_MAIL_FROM",
    "mail_to": "METRICS_ALERT_MAIL_TO",
    "retry_base_seconds": "METRICS_ALERT_RETRY_BASE_SECONDS",
    "max_age_hours": "METRICS_ALERT_MAX_AGE_HOURS",
}
# Old variable name -> current one; the old one is read, with a deprecation line, while
# the current one is unset.
RENAMED_ENV = {"METRICS_ALERT_SMTP_STARTTLS": REQUIRE_TLS_ENV}  # it always meant "require TLS"
FX_ENV = {
    "rates_url": "METRICS_FX_RATES_URL",
    "reporting_currency": "METRICS_REPORTING_CURRENCY",
    "max_move_pct": "METRICS_FX_MAX_MOVE_PCT",
}
CHECKS_ENV = {
    "completeness_days": "METRICS_COMPLETENESS_DAYS",
    "daily_fresh_by_hour": "METRICS_DAILY_FRESH_BY_HOUR",
}


# Variable -> what its value must be, for the settings that numbers alone do not describe
# (env_settings checks those): a mistyped value stops the code location from loading, and
# the command line, before any work, with one line naming the variable, the value and what
# is accepted. Whether META_API_VERSION is still served depends on the date: the command
# line refuses an expired one, the api_version check fails on it.
VALUE_CHECKS: dict[str, ValueCheck] = {
    "DAGSTER_HOME": folder_path,
    CLIENTS_FILE_ENV: file_path,
    WAREHOUSE_URL_ENV: url_problem,
    META_ENV["base_url"]: http_url,
    META_ENV["api_version"]: version_name_problem,
    AS_OF_ENV: as_of_problem,
    HISTORY_START_ENV: history_start_problem,
    FX_ENV["rates_url"]: http_url,
    FX_ENV["reporting_currency"]: reporting_currency_problem,
    AUTOMATION_ENV: one_of("on", "off"),
    SENSOR_INTERVAL_ENV: whole_number(minimum=1),
    RETRY_DELAY_ENV: number(minimum=0),
    MAX_RETRIES_ENV: whole_number(minimum=0),
}


def check_settings(environ: Mapping[str, str]) -> None:
    """Every setting of `environ` this package reads, checked at once: a SettingError
    naming each variable that is set to a value it cannot use, on one line."""
    problems = check_values(VALUE_CHECKS, environ)
    try:
        default_resources(environ, resolve=True)  # numbers and true/false switches
    except SettingError as error:
        problems.append(str(error))
    if problems:
        raise SettingError("; ".join(problems))


def default_resources(environ: Mapping[str, str] | None = None, resolve: bool = False) -> dict:
    """Resources from the environment (`environ`, default the process's): strings and ints
    through EnvVar, so secrets and URLs are read at run time and never shown in the UI;
    `resolve` passes the values themselves (see `env_settings`)."""

    def settings(resource_type: type, variables: Mapping[str, str]) -> dict:
        return env_settings(resource_type, variables, environ, resolve, RENAMED_ENV)

    return {
        "meta": MetaAdsResource(**settings(MetaAdsResource, META_ENV)),
        "warehouse": WarehouseResource(**settings(WarehouseResource, WAREHOUSE_ENV)),
        "clock": ClockResource(**settings(ClockResource, CLOCK_ENV)),
        "alerts": AlertNotifier(**settings(AlertNotifier, ALERTS_ENV)),
        "fx": FxResource(**settings(FxResource, FX_ENV)),
        "checks": CheckSettings(**settings(CheckSettings, CHECKS_ENV)),
    }


def build_definitions(catalog: Catalog | None = None, resources: dict | None = None) -> Definitions:
    catalog = catalog or build_catalog()
    assets, checks = build_assets(catalog)
    collect_job, cache_job, health_job, rates_job = build_jobs(catalog, checks)
    return Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[collect_job, cache_job, health_job, rates_job],
        schedules=build_schedules(catalog, collect_job, cache_job, health_job),
        sensors=[
            build_gap_sensor(catalog, collect_job, rates_job),
            build_check_alert_sensor([key for c in checks for key in c.check_keys]),
            run_failure_alert_sensor,
            build_automation_sensor(),
        ],
        resources=resources or default_resources(),
        # A run is a few steps of one layer; a process per step would cost more start-up
        # than the steps themselves. Parallelism is across clients in a step and across runs.
        executor=in_process_executor,
    )


@definitions
def defs() -> Definitions:
    """The code location `dagster dev` and the UI load, from the environment: built when
    Dagster loads it, not on import, so importing this module reads no setting."""
    check_settings(os.environ)
    return build_definitions()
