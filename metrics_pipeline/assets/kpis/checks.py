"""Checks on daily_kpi_data: quality per day, equality with the raw rows, completeness,
freshness, broken conversion tracking and KPI anomalies."""

from collections.abc import Callable
from datetime import date, datetime

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.checks import names
from metrics_pipeline.checks.completeness import completeness_by_client, completeness_pct
from metrics_pipeline.checks.kpi_watch import anomaly_findings, tracking_findings
from metrics_pipeline.checks.quality import judge_day
from metrics_pipeline.checks.report import result
from metrics_pipeline.checks.settings import CheckSettings
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.config.clients import AnomaliesConfig, ClientConfig, TrackingConfig
from metrics_pipeline.domain.periods import last_due_day, local_today
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
            daily = warehouse.read(
                "daily_kpi_data",
                {"client_id": client_id, "date": days},
                # Not the campaign breakdowns: the largest column, and not compared here.
                columns=["date", "total_spend", "total_impressions", "total_clicks"],
            )
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

    def _watched(
        context: AssetCheckExecutionContext,
        warehouse: WarehouseResource,
        now: datetime,
        switch: Callable[[ClientConfig], TrackingConfig | AnomaliesConfig],
    ) -> tuple[list[tuple[ClientConfig, date, list[date]]], dict[str, str]]:
        """(client, its local today, its days in this run) for each client of the run whose
        watch `switch` is on; the others with the reason they were skipped."""
        watched, skipped = [], {}
        for client_id, days in dates_by_client(context.partition_keys).items():
            client = catalog.client(client_id)
            if not switch(client).enabled:
                skipped[client_id] = "switched off in the clients file"
                continue
            try:
                today = local_today(now, client_timezone(client, warehouse))
            except ValueError as exc:
                skipped[client_id] = str(exc)
                continue
            watched.append((client, today, days))
        return watched, skipped

    @asset_check(
        asset=daily_kpi_data,
        name=names.CONVERSION_TRACKING,
        description="Per client of the run, over its last complete days: warns when it spends "
        "as usual while its tracked conversions (reservations unless the clients file says "
        "otherwise) fall to 10 % or less of what its same weekdays brought, on days that "
        "should have brought at least 10 between them. Recovers when tracking comes back.",
    )
    def daily_kpi_conversion_tracking(
        context: AssetCheckExecutionContext, warehouse: WarehouseResource, clock: ClockResource
    ):
        watched, skipped = _watched(context, warehouse, clock.now(), lambda c: c.tracking)
        offending, covered = [], {}
        for client, today, _ in watched:
            found, days_judged = tracking_findings(client, warehouse, today)
            offending += found
            # Every day judged: an ended break's first day is among them, so it recovers.
            covered[client.id] = days_judged
        return result(
            not offending,
            offending,
            covered=covered,
            severity=AssetCheckSeverity.WARN,
            skipped=MetadataValue.json(skipped),
        )

    @asset_check(
        asset=daily_kpi_data,
        name=names.KPI_ANOMALIES,
        description="Per complete day of the run: spend, CPA and ROAS inside the robust band "
        "of the client's 28 days before (median x/÷ exp(12 x MAD), on the logarithms; at "
        "least x/÷ 1.25). CPA and ROAS only for clients with at least 5 conversions "
        "(reservations) a day.",
    )
    def daily_kpi_anomalies(
        context: AssetCheckExecutionContext, warehouse: WarehouseResource, clock: ClockResource
    ):
        watched, skipped = _watched(context, warehouse, clock.now(), lambda c: c.anomalies)
        offending, covered = [], {}
        for client, today, days in watched:
            found, judged = anomaly_findings(client, warehouse, days, today)
            offending += found
            covered[client.id] = judged
        return result(
            not offending,
            offending,
            covered=covered,
            severity=AssetCheckSeverity.WARN,
            skipped=MetadataValue.json(skipped),
        )

    return [
        daily_kpi_quality,
        daily_kpi_consistency,
        daily_kpi_completeness,
        daily_kpi_freshness,
        daily_kpi_conversion_tracking,
        daily_kpi_anomalies,
    ]
