"""daily_kpi_data: one row per (client, date, platform), derived only from meta_insights."""

from datetime import date
from typing import Any

import pandas as pd
from dagster import AssetDep, AssetExecutionContext, BackfillPolicy, MaterializeResult, asset

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.domain.conversions import ConversionMapping, mapping_fingerprint
from metrics_pipeline.domain.insight_kpis import (
    FINGERPRINT_COLUMN,
    INPUT_COLUMNS,
    KEY_COLUMNS,
    SUMMED_COLUMNS,
    kpi_inputs,
    kpi_inputs_from_sums,
)
from metrics_pipeline.domain.kpis import PLATFORM, aggregate_kpis, totals_record
from metrics_pipeline.domain.summaries import (
    aggregate_campaigns,
    campaigns_json_by,
    campaigns_to_json,
)
from metrics_pipeline.partitions import dates_by_client, multi_key
from metrics_pipeline.steps.frames import DailyKpiFrameError, refuse_bad_daily_kpis
from metrics_pipeline.steps.freshness import DAILY_FRESHNESS
from metrics_pipeline.steps.kpi_metadata import kpi_metadata
from metrics_pipeline.steps.partial import end_if_stopped, finish
from metrics_pipeline.steps.table_metadata import column_schema, row_count
from metrics_pipeline.warehouse.resource import WarehouseResource

DATA_SOURCE = "meta_insights"
# Runs of more partitions than this record no per-partition KPIs: Dagster checks each
# partition's metadata against the run's whole range, so the cost grows with its square (a
# 20-client, 90-day backfill would spend about 20 s on it). The daily collections and the
# attribution lookback, far below it, record them again for the recent days.
KPI_METADATA_MAX_PARTITIONS = 500


def read_kpi_inputs(
    warehouse: WarehouseResource, client_id: str, days: list[date], mapping: ConversionMapping
) -> pd.DataFrame:
    """The client's KPI inputs for `days`, as sums per (date, campaign).

    Rows whose stored conversion metrics came from the client's current mapping are summed
    by the database; the others (stored under another mapping, or before the metrics were
    stored) are derived again from their actions by the same `conversion_metrics`.
    """
    fingerprint = mapping_fingerprint(mapping)
    scope = {"client_id": client_id, "date": days}
    current = warehouse.totals(
        "meta_insights",
        SUMMED_COLUMNS,
        scope,
        group_by=KEY_COLUMNS,
        where=lambda t: t.c[FINGERPRINT_COLUMN] == fingerprint,
    )
    stale = warehouse.read(
        "meta_insights",
        scope,
        columns=INPUT_COLUMNS,
        where=lambda t: t.c[FINGERPRINT_COLUMN].is_distinct_from(fingerprint),
    )
    summed, derived = kpi_inputs_from_sums(current), kpi_inputs(stale, mapping)
    parts = [frame for frame in (summed, derived) if not frame.empty]
    inputs = pd.concat(parts, ignore_index=True) if parts else summed
    # In key order, so a campaign named two ways in one day keeps the greater name.
    return inputs.sort_values(list(KEY_COLUMNS), kind="stable", ignore_index=True)


def daily_rows(
    client_id: str, inputs: pd.DataFrame, collections: pd.DataFrame
) -> list[dict[str, Any]]:
    """A row for every collected day, zeros for a day collected without delivery.

    Every day's totals and campaigns come from one grouped aggregation of the whole range,
    through the same `aggregate_kpis` every store uses.
    """
    totals_by_day = {
        row["date"]: row for row in aggregate_kpis(inputs, by=["date"]).to_dict("records")
    }
    no_delivery = aggregate_kpis(inputs.iloc[0:0]).iloc[0].to_dict()
    campaigns = aggregate_campaigns(inputs.assign(_order=0), within=["date"])
    campaigns_by_day = campaigns_json_by(campaigns, "date")
    no_campaigns = campaigns_to_json(campaigns.iloc[0:0])
    rows: list[dict[str, Any]] = []
    for collection in collections.sort_values("date").to_dict("records"):
        day: date = collection["date"]
        rows.append(
            {
                "client_id": client_id,
                "date": day,
                "platform": PLATFORM,
                **totals_record(totals_by_day.get(day, no_delivery)),
                "currency": collection["currency"],
                "campaign_data": campaigns_by_day.get(day, no_campaigns),
                "data_source": DATA_SOURCE,
                "collected_at": collection["collected_at"],
            }
        )
    return rows


def good_days(rows: list[dict[str, Any]], client_id: str) -> tuple[set[date], list[str]]:
    """The days whose rows meet DailyKpiFrame, and one line for each refused day (or for
    the whole frame, when a column itself is wrong): a bad day is never stored."""
    frame, refused = pd.DataFrame(rows), []
    while not frame.empty:
        try:
            return set(refuse_bad_daily_kpis(frame, client_id)["date"]), refused
        except DailyKpiFrameError as error:
            refused.append(f"daily_kpi_data: {error}")
            if error.day is None:
                break
            frame = frame[frame["date"] != error.day]
    return set(), refused


def build_daily_kpi_data(catalog: Catalog, meta_insights):
    @asset(
        name="daily_kpi_data",
        partitions_def=catalog.partitions.daily,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[AssetDep(meta_insights)],
        group_name="kpis",
        metadata=column_schema("daily_kpi_data"),
        kinds={"pandas", "sql"},
        freshness_policy=DAILY_FRESHNESS,
        description="Daily KPIs per client from meta_insights only: totals, conversion metrics "
        "from the client's action mapping, ratios of sums, per-campaign breakdown, lineage.",
    )
    def daily_kpi_data(
        context: AssetExecutionContext, warehouse: WarehouseResource, clock: ClockResource
    ) -> MaterializeResult:
        written: list[tuple[str, object]] = []
        failures: list[str] = []
        rows_written = 0
        plotted = len(context.partition_keys) <= KPI_METADATA_MAX_PARTITIONS
        for client_id, days in dates_by_client(context.partition_keys).items():
            # A stop ends the step here, between clients: each client's days are written in
            # one transaction, so what was written is whole and the rest untouched.
            end_if_stopped(
                context,
                f"deriving daily_kpi_data for client {client_id!r}",
                written,
                {"partitions": len(written), **row_count(rows_written)},
            )
            client = catalog.client(client_id)
            scope = {"client_id": client_id, "date": days}
            collections = warehouse.read("meta_insight_collections", scope)
            missing = sorted(set(days) - set(collections["date"]))
            failures += [
                f"client {client_id!r}, date {d}: meta_insights has not collected this day"
                for d in missing
            ]
            collected = sorted(set(collections["date"]))
            if not collected:
                continue
            inputs = read_kpi_inputs(warehouse, client_id, collected, client.conversion_mapping)
            rows = daily_rows(client_id, inputs, collections)
            good, refused = good_days(rows, client_id)
            failures += refused
            if not good:
                continue
            rows_written += warehouse.replace(
                "daily_kpi_data",
                [{"client_id": client_id, "date": sorted(good), "platform": PLATFORM}],
                [row for row in rows if row["date"] in good],
            )
            written += [(client_id, d) for d in sorted(good)]
            for row in rows:  # each partition's own KPIs, for the asset's plots
                if row["date"] in good and plotted:
                    context.add_asset_metadata(
                        kpi_metadata(row), partition_key=multi_key(client_id, row["date"])
                    )
        metadata = {"partitions": len(written), **row_count(rows_written)}
        return finish(context, written, failures, metadata)

    return daily_kpi_data
