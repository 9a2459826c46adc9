"""The automation-condition sensor: summaries, cache, rollups and the portfolio refresh by
themselves once the days below them changed and passed their blocking checks; the exchange
rates of the last week are read again after each ECB publication.

Defined here rather than left to Dagster's `default_automation_condition_sensor`, which a
deployment creates switched off: this one follows `METRICS_AUTOMATION` like the others.
"""

from dagster import AssetKey, AssetSelection, AutomationConditionSensorDefinition

from metrics_pipeline.automation.status import sensor_interval, sensor_status

AUTOMATION_SENSOR = "derived_stores_automation_sensor"
# The assets whose automation condition the sensor evaluates: add an asset here (with an
# `automation_condition`) and it refreshes by itself.
AUTOMATED_ASSETS = [
    AssetKey(["campaign_summaries", "weekly"]),
    AssetKey(["campaign_summaries", "monthly"]),
    AssetKey("current_week_cache"),
    AssetKey("client_kpi_rollups"),
    AssetKey("fx_rates"),
    AssetKey("portfolio_kpis"),
]


def build_automation_sensor(
    assets: list[AssetKey] = AUTOMATED_ASSETS,
) -> AutomationConditionSensorDefinition:
    return AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=AssetSelection.assets(*assets),
        default_status=sensor_status(),
        minimum_interval_seconds=sensor_interval(30),
        description="Every 30 seconds: rebuilds the summaries, cache, rollups and portfolio "
        "whose days in daily_kpi_data (or rates) changed, once those passed their blocking "
        "checks; re-reads the last week's exchange rates daily after the ECB publishes.",
    )
