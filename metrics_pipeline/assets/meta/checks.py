"""Checks on meta_insights: the raw rows are sane before anything is derived from them."""

from dagster import AssetCheckExecutionContext, asset_check

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.checks import names
from metrics_pipeline.checks.quality import judge_insight_rows, suspect_insight_rows
from metrics_pipeline.checks.report import result
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
