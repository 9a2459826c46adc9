"""Checks on the Meta layer: the raw rows are sane before anything is derived from them, and
the configured Marketing API version is one Meta still serves as itself."""

from dagster import AssetCheckExecutionContext, AssetCheckSeverity, asset_check

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.checks import names
from metrics_pipeline.checks.quality import judge_insight_rows, suspect_insight_rows
from metrics_pipeline.checks.report import result
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.meta.resource import MetaAdsResource
from metrics_pipeline.meta.versions import VERSIONS, VersionStatus, version_status
from metrics_pipeline.partitions import dates_by_client
from metrics_pipeline.warehouse.resource import WarehouseResource


def build_meta_insights_checks(catalog: Catalog, meta_insights) -> list:
    @asset_check(
        asset=meta_insights,
        name=names.QUALITY,
        blocking=True,
        description="No negative or non-numeric metric; clicks never above impressions. "
        "Blocks daily_kpi_data in the same run when it fails.",
    )
    def meta_insights_quality(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
        findings, rows_checked = [], 0
        covered = dates_by_client(context.partition_keys)
        for client_id, days in covered.items():
            scope = {"client_id": client_id, "date": days}
            rows_checked += warehouse.count("meta_insights", scope)
            # The database picks the rows that might break a rule; the rules judge them.
            suspects = warehouse.read("meta_insights", scope, where=suspect_insight_rows)
            findings += judge_insight_rows(suspects.to_dict("records"))
        return result(
            not findings, [f.as_row() for f in findings], covered=covered, rows_checked=rows_checked
        )

    return [meta_insights_quality]


def build_api_version_check(meta_ad_objects) -> list:
    @asset_check(
        asset=meta_ad_objects,
        name=names.API_VERSION,
        blocking=False,
        description="The configured META_API_VERSION: passes while Meta supports it, warns "
        "within 30 days of its expiry or when it is not in meta/versions.py, fails once expired "
        "(Meta then silently answers as a newer version).",
    )
    def meta_api_version(
        context: AssetCheckExecutionContext, meta: MetaAdsResource, clock: ClockResource
    ):
        today = clock.now().date()
        report = version_status(meta.api_version, today)
        clients = sorted(context.partition_keys)
        # Each row is dated by the expiry (today when unknown), so the alert is sent once per
        # version and client, and moving to a supported version covers it as recovered.
        day = str(report.expires or today)
        offending = (
            []
            if report.status is VersionStatus.SUPPORTED
            else [
                {
                    "client": client_id,
                    "date": day,
                    "version": report.version,
                    "status": report.status.value,
                    "expires": str(report.expires) if report.expires else "",
                }
                for client_id in clients
            ]
        )
        known_days = sorted({str(v.expires) for v in VERSIONS if v.expires} | {day})
        return result(
            report.status is VersionStatus.SUPPORTED,
            offending,
            covered={client_id: known_days for client_id in clients},
            severity=AssetCheckSeverity.ERROR
            if report.status is VersionStatus.EXPIRED
            else AssetCheckSeverity.WARN,
            description=report.describe(),
            api_version=report.version,
            version_status=report.status.value,
        )

    return [meta_api_version]
