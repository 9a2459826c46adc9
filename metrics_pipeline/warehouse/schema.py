"""The warehouse tables, one per store, in SQLAlchemy Core (works on SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)

from metrics_pipeline.domain.insight_kpis import FINGERPRINT_COLUMN, STORED_CONVERSION_COLUMNS
from metrics_pipeline.domain.metrics import METRICS, MetricRegistry

SCHEMA_VERSION = 3

metadata = MetaData()

MONEY = Numeric(18, 2)
RATIO = Numeric(18, 6)


# How each kind of registry metric is stored.
_KPI_COLUMN_TYPES = {"count": BigInteger, "money": MONEY, "ratio": RATIO}


def kpi_columns(metrics: MetricRegistry = METRICS) -> list[Column]:
    """The KPI columns shared by every store above the raw insights, one per metric in
    registry order; a ratio is NULL when there is nothing to divide by."""
    return [
        Column(m.name, _KPI_COLUMN_TYPES[m.kind], nullable=m.kind == "ratio")
        for m in metrics.metrics
    ]


def _stored_conversion_columns() -> list[Column]:
    """A raw row's conversion metrics as computed when it was stored, and the fingerprint
    of the mapping that computed them (NULL on rows stored before schema version 2)."""
    kinds = {m.name: m.kind for m in METRICS.metrics}
    return [
        *(Column(name, _KPI_COLUMN_TYPES[kinds[name]]) for name in STORED_CONVERSION_COLUMNS),
        Column(FINGERPRINT_COLUMN, String(16)),
    ]


# Columns added by each schema version, for the migrations in `versioning`.
ADDED_COLUMNS: dict[int, dict[str, tuple[str, ...]]] = {
    2: {"meta_insights": tuple(c.name for c in _stored_conversion_columns())},
}


schema_info = Table(
    "warehouse_schema",
    metadata,
    Column("component", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
)

meta_ad_accounts = Table(
    "meta_ad_accounts",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("account_id", String(32), nullable=False),
    Column("name", Text),
    Column("currency", String(3), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("account_status", Integer),
    Column("collected_at", DateTime(timezone=True), nullable=False),
)

meta_ad_objects = Table(
    "meta_ad_objects",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("level", String(16), primary_key=True),  # campaign | adset | ad
    Column("object_id", String(32), primary_key=True),
    Column("name", Text),
    Column("campaign_id", String(32)),
    Column("adset_id", String(32)),
    Column("status", String(32)),
    Column("effective_status", String(32)),
    Column("objective", String(64)),
    Column("daily_budget", MONEY),
    Column("lifetime_budget", MONEY),
    Column("currency", String(3)),
    Column("created_time", DateTime(timezone=True)),
    Column("updated_time", DateTime(timezone=True)),
    Column("collected_at", DateTime(timezone=True), nullable=False),
)

meta_insights = Table(
    "meta_insights",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("date", Date, primary_key=True),
    Column("ad_id", String(32), primary_key=True),
    Column("country", String(8), primary_key=True),
    Column("account_id", String(32), nullable=False),
    Column("campaign_id", String(32)),
    Column("campaign_name", Text),
    Column("adset_id", String(32)),
    Column("adset_name", Text),
    Column("ad_name", Text),
    Column("currency", String(3), nullable=False),
    Column("spend", MONEY, nullable=False),
    Column("impressions", BigInteger, nullable=False),
    Column("clicks", BigInteger, nullable=False),
    # NULL when Meta leaves reach out (breakdown queries starting over 13 months back).
    Column("reach", BigInteger),
    # As returned by the API: JSON arrays of {action_type, value, <window>: ...}.
    Column("actions", Text, nullable=False),
    Column("action_values", Text, nullable=False),
    Column("attribution_windows", Text, nullable=False),
    Column("collected_at", DateTime(timezone=True), nullable=False),
    *_stored_conversion_columns(),
)

# One row per collected (client, day), written with that day's insights: tells a day that
# was collected and had no delivery apart from a day that was never collected.
meta_insight_collections = Table(
    "meta_insight_collections",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("date", Date, primary_key=True),
    Column("row_count", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("collected_at", DateTime(timezone=True), nullable=False),
)

daily_kpi_data = Table(
    "daily_kpi_data",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("date", Date, primary_key=True),
    Column("platform", String(16), primary_key=True),
    *kpi_columns(),
    Column("currency", String(3), nullable=False),
    Column("campaign_data", Text, nullable=False),
    Column("data_source", String(64), nullable=False),
    Column("collected_at", DateTime(timezone=True), nullable=False),
)

campaign_summaries = Table(
    "campaign_summaries",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("summary_type", String(16), primary_key=True),  # weekly | monthly
    Column("summary_date", Date, primary_key=True),  # first day of the period
    Column("platform", String(16), primary_key=True),
    Column("period_end", Date, nullable=False),
    Column("days_in_period", Integer, nullable=False),
    Column("days_with_data", Integer, nullable=False),
    *kpi_columns(),
    Column("currency", String(3)),
    Column("campaign_data", Text, nullable=False),
    Column("data_source", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

current_week_cache = Table(
    "current_week_cache",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("platform", String(16), primary_key=True),
    Column("week_start", Date, nullable=False),
    Column("date_range_start", Date, nullable=False),
    Column("date_range_end", Date, nullable=False),
    Column("days_with_data", Integer, nullable=False),
    Column("is_provisional", Boolean, nullable=False),
    Column("provisional_date", Date),
    *kpi_columns(),
    Column("currency", String(3)),
    Column("campaign_data", Text, nullable=False),
    Column("last_updated", DateTime(timezone=True), nullable=False),
)

client_kpi_rollups = Table(
    "client_kpi_rollups",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("platform", String(16), primary_key=True),
    # month_to_date | last_7_days | last_14_days | last_30_days | previous_month
    Column("rollup_window", String(32), primary_key=True),
    Column("as_of_date", Date, nullable=False),
    Column("window_start", Date, nullable=False),
    Column("window_end", Date, nullable=False),
    Column("days_with_data", Integer, nullable=False),
    *kpi_columns(),
    Column("currency", String(3)),
    # Pacing, on the month_to_date row only.
    Column("days_elapsed", Integer),
    Column("days_in_month", Integer),
    Column("projected_spend", MONEY),
    Column("projected_conversions", RATIO),
    Column("projected_reservations", RATIO),
    Column("monthly_budget", MONEY),
    Column("budget_progress_pct", RATIO),
    Column("expected_progress_pct", RATIO),
    Column("conversion_target", BigInteger),
    Column("conversion_progress_pct", RATIO),
    Column("reservation_target", BigInteger),
    Column("reservation_progress_pct", RATIO),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


collection_health = Table(
    "collection_health",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("client_name", Text),
    Column("successful_days", Integer, nullable=False),
    Column("failed_days", Integer, nullable=False),
    Column("missing_days", Integer, nullable=False),
    Column("missing_dates", Text, nullable=False),
    Column("completeness_pct", Numeric(7, 2), nullable=False),
    Column("last_collected_at", DateTime(timezone=True)),
    Column("next_collection_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


# One row per (day, currency): the euro reference rate in force that day. A day without a
# publication (weekend, TARGET holiday) carries the last rate published before it.
fx_rates = Table(
    "fx_rates",
    metadata,
    Column("date", Date, primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("rate_per_eur", Numeric(18, 6), nullable=False),  # units of currency per 1 EUR
    Column("published_date", Date, nullable=False),
    Column("source", String(16), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Every client's numbers in the reporting currency, per day, ISO week, month and month to
# date; client_id '*' is the total over all clients.
portfolio_kpis = Table(
    "portfolio_kpis",
    metadata,
    Column("period_type", String(16), primary_key=True),  # day | week | month | month_to_date
    Column("period_start", Date, primary_key=True),
    Column("client_id", String(64), primary_key=True),
    Column("period_end", Date, nullable=False),
    Column("days_with_data", Integer, nullable=False),
    *kpi_columns(),
    Column("currency", String(3), nullable=False),  # the reporting currency
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
