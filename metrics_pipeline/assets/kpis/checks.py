"""Checks on daily_kpi_data: quality per day, equality with the raw rows, completeness,
freshness."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.checks import names
from metrics_pipeline.checks.completeness import completeness_by_client, completeness_pct
from metrics_pipeline.checks.quality import judge_day
from metrics_pipeline.checks.report import result
from metrics_pipeline.checks.settings import CheckSettings
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.domain.periods import last_due_day
from metrics_pipeline.meta.accounts import client_timezone
from metrics_pipeline.partitions import dates_by_client
from metrics_pipeline.warehouse.resource import WarehouseResource


def build_daily_kpi_checks(catalog: Catalog, daily_kpi_data) -> list:
    @asset_check(
        asset=daily_kpi_data,
        name=names.QUALITY,
        blocking=True,
        description="Per client-day: numbers valid, clicks <= impressions, booking funnel "
        "ordered, CTR and CPC within the client's bounds, spend under its daily ceiling, spend "
        "present when there were impressions. Records a 0-100 quality score per day.",
    )
    def daily_kpi_quality(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
        verdicts = []
        covered = dates_by_client(context.partition_keys)
        for client_id, days in covered.items():
            quality = catalog.client(client_id).quality
            rows = warehouse.read("daily_kpi_data", {"client_id": client_id, "date": days})
            verdicts += [judge_day(row, quality) for row in rows.to_dict("records")]
        findings = [f.as_row() for v in verdicts for f in v.findings]
        scores = [v.score for v in verdicts]
        return result(
            not findings,
            findings,
            covered=covered,
            days_checked=len(verdicts),
            quality_score=min(scores) if scores else 100,
            mean_quality_score=round(sum(scores) / len(scores), 1) if scores else 100.0,
            days_below_100=MetadataValue.json(
                {f"{v.client_id}|{v.day}": v.score for v in verdicts if v.score < 100}
            ),
        )

    @asset_check(
        asset=daily_kpi_data,
        name=names.CONSISTENCY,
        blocking=True,
        description="Spend, impressions and clicks equal the database's sum of meta_insights "
        "for the same client and day, to the cent.",
    )
    def daily_kpi_consistency(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
        offending, compared = [], 0
        covered = dates_by_client(context.partition_keys)
        for client_id, days in covered.items():
            raw = warehouse.totals(
                "meta_insights",
                ("spend", "impressions", "clicks"),
                {"client_id": client_id, "date": days},
                group_by=("date",),
            )
            raw_by_day = {r["date"]: r for r in raw.to_dict("records")}
            daily = warehouse.read("daily_kpi_data", {"client_id": client_id, "date": days})
            for row in daily.to_dict("records"):
                compared += 1
                sums = raw_by_day.get(row["date"], {})
                for stored, summed in (
                    ("total_spend", "spend"),
                    ("total_impressions", "impressions"),
                    ("total_clicks", "clicks"),
                ):
                    expected = sums.get(summed) or 0
                    if row[stored] != expected:
                        offending.append(
                            {
                                "client": client_id,
                                "date": str(row["date"]),
                                "column": stored,
                                "daily": row[stored],
                                "sum_of_insights": expected,
                            }
                        )
        return result(not offending, offending, covered=covered, days_compared=compared)

    @asset_check(
        asset=daily_kpi_data,
        name=names.COMPLETENESS,
        description="Every configured client has a row for every day of the checked history "
        "up to its local yesterday; reports the completeness % and the missing pairs.",
    )
    def daily_kpi_completeness(
        warehouse: WarehouseResource, clock: ClockResource, checks: CheckSettings
    ):
        found = completeness_by_client(
            catalog.clients, warehouse, catalog.partitions.history_start, clock.now(), checks
        )
        expected = sum(len(c.due) for c in found.values())
        present = sum(c.present for c in found.values())
        missing = [
            {"client": client_id, "date": str(d)}
            for client_id, c in found.items()
            for d in c.missing
        ]
        covered = {client_id: c.due for client_id, c in found.items()}
        pct = completeness_pct(expected, present)
        return result(
            pct >= checks.completeness_target_pct,
            missing,
            covered=covered,
            completeness_pct=MetadataValue.float(pct),
            days_expected=expected,
            days_present=present,
            target_pct=checks.completeness_target_pct,
        )

    @asset_check(
        asset=daily_kpi_data,
        name=names.FRESHNESS,
        description="Each client's latest stored day is its local yesterday once the set hour "
        "after that day's end has passed (the day before until then).",
    )
    def daily_kpi_freshness(
        warehouse: WarehouseResource, clock: ClockResource, checks: CheckSettings
    ):
        now = clock.now()
        stale, covered = [], {}
        for client in catalog.clients:
            covered[client.id] = ["latest"]
            try:
                tz = client_timezone(client, warehouse)
            except ValueError:
                stale.append(
                    {"client": client.id, "date": "latest", "latest_date": "never", "due": "-"}
                )
                continue
            due = last_due_day(now, tz, checks.daily_fresh_by_hour)
            newest = warehouse.latest("daily_kpi_data", "date", {"client_id": client.id})
            if newest is None or newest < due:
                stale.append(
                    {
                        "client": client.id,
                        "date": "latest",
                        "latest_date": str(newest),
                        "due": str(due),
                    }
                )
        return result(
            not stale,
            stale,
            covered=covered,
            severity=AssetCheckSeverity.ERROR,
            clients_checked=len(catalog.clients),
        )

    return [daily_kpi_quality, daily_kpi_consistency, daily_kpi_completeness, daily_kpi_freshness]
