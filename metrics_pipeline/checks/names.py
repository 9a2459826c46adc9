"""Check names, shared by the checks, the alerts and the tests."""

from dagster import AssetCheckKey

QUALITY = "quality"
COMPLETENESS = "completeness"
CONSISTENCY = "consistency"
FRESHNESS = "freshness"
API_VERSION = "api_version"
RATES = "rates"
PACING = "pacing"
CONVERSION_TRACKING = "conversion_tracking"
KPI_ANOMALIES = "kpi_anomalies"
HISTORY_CHECKS = (COMPLETENESS, FRESHNESS)


def history_check_keys(checks: list) -> list[AssetCheckKey]:
    """Checks over a client's whole history, run on their own schedule, not per partition."""
    return [key for c in checks for key in c.check_keys if key.name in HISTORY_CHECKS]
