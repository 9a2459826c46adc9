"""meta_ad_objects: every campaign, ad set and ad of each client's account, any status."""

from datetime import datetime
from typing import Any

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    asset,
)

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.config.clients import ClientConfig
from metrics_pipeline.domain.money import cents_to_decimal, minor_units_to_cents
from metrics_pipeline.meta.accounts import resolve_account
from metrics_pipeline.meta.client import CallSite, GraphApiClient
from metrics_pipeline.meta.errors import RETRYABLE, MetaApiError
from metrics_pipeline.meta.resource import MetaAdsResource
from metrics_pipeline.steps.fan_out import QueuedLog, for_each_client
from metrics_pipeline.steps.partial import end_stopped, finish, not_retried_when_futile
from metrics_pipeline.steps.retries import META_POOL, meta_retry_policy
from metrics_pipeline.steps.table_metadata import column_schema, row_count
from metrics_pipeline.stopping import StopRequested, raise_if_stopped
from metrics_pipeline.warehouse.resource import WarehouseResource


def _timestamp(value: str | None) -> datetime | None:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z") if value else None


def _budget(value: Any, currency: str):
    return None if value in (None, "") else cents_to_decimal(minor_units_to_cents(value, currency))


def collect_objects(
    client: ClientConfig, api: GraphApiClient, warehouse: WarehouseResource, now: datetime
) -> int:
    """Store one client's campaigns, ad sets and ads; returns how many objects."""
    raise_if_stopped(f"about to collect the ad objects of client {client.id!r}")
    account = resolve_account(api, client, warehouse, now)
    rows: list[dict[str, Any]] = []
    for edge, level in (("campaigns", "campaign"), ("adsets", "adset"), ("ads", "ad")):
        site = CallSite(client.id, client.meta_ad_account_id, edge)
        for obj in api.objects(client.meta_ad_account_id, edge, site):
            rows.append(
                {
                    "client_id": client.id,
                    "level": level,
                    "object_id": obj["id"],
                    "name": obj.get("name"),
                    "campaign_id": obj.get("campaign_id")
                    or (obj["id"] if level == "campaign" else None),
                    "adset_id": obj.get("adset_id") or (obj["id"] if level == "adset" else None),
                    "status": obj.get("status"),
                    "effective_status": obj.get("effective_status"),
                    "objective": obj.get("objective"),
                    "daily_budget": _budget(obj.get("daily_budget"), account.currency),
                    "lifetime_budget": _budget(obj.get("lifetime_budget"), account.currency),
                    "currency": account.currency,
                    "created_time": _timestamp(obj.get("created_time")),
                    "updated_time": _timestamp(obj.get("updated_time")),
                    "collected_at": now,
                }
            )
    return warehouse.replace("meta_ad_objects", [{"client_id": client.id}], rows)


def build_meta_ad_objects(catalog: Catalog):
    @asset(
        name="meta_ad_objects",
        partitions_def=catalog.partitions.clients,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="meta",
        metadata=column_schema("meta_ad_objects"),
        kinds={"python", "sql"},
        pool=META_POOL,
        retry_policy=meta_retry_policy(),
        description="Campaign -> ad set -> ad hierarchy of each client's ad account, deleted "
        "and archived objects included; budgets converted from minor units.",
    )
    def meta_ad_objects(
        context: AssetExecutionContext,
        meta: MetaAdsResource,
        warehouse: WarehouseResource,
        clock: ClockResource,
    ) -> MaterializeResult:
        now = clock.now()

        def collect(client_id: str, log: QueuedLog) -> int | MetaApiError | StopRequested:
            try:
                return collect_objects(catalog.client(client_id), meta.client(log), warehouse, now)
            except (MetaApiError, StopRequested) as exc:
                return exc

        with not_retried_when_futile():
            outcomes = for_each_client(
                list(context.partition_keys), collect, context.log, meta.max_parallel_accounts
            )
        counts = {c: n for c, n in outcomes.items() if isinstance(n, int)}
        errors = [e for e in outcomes.values() if isinstance(e, MetaApiError)]
        metadata = {
            "objects_by_client": counts,
            "objects": sum(counts.values()),
            **row_count(sum(counts.values())),
        }
        if any(isinstance(o, StopRequested) for o in outcomes.values()):
            # The clients written before the stop are whole and recorded.
            end_stopped(context, "collecting meta_ad_objects", list(counts), metadata)
        return finish(
            context,
            list(counts),
            [str(e) for e in errors],
            metadata,
            retryable=any(e.kind in RETRYABLE for e in errors),
        )

    return meta_ad_objects
