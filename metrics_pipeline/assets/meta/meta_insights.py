"""meta_insights: raw daily insights per (client, date, ad, country), as Meta returns them."""

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, asset

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.clock import ClockResource
from metrics_pipeline.config.clients import ClientConfig
from metrics_pipeline.domain.periods import local_today
from metrics_pipeline.meta.accounts import AccountInfo, resolve_account
from metrics_pipeline.meta.client import GraphApiClient
from metrics_pipeline.meta.errors import RETRYABLE, MetaApiError
from metrics_pipeline.meta.parsing import parse_insight_rows, summarize_problems
from metrics_pipeline.meta.resource import MetaAdsResource
from metrics_pipeline.partitions import contiguous_ranges, dates_by_client
from metrics_pipeline.steps.fan_out import QueuedLog, for_each_client
from metrics_pipeline.steps.freshness import DAILY_FRESHNESS
from metrics_pipeline.steps.partial import end_stopped, finish, not_retried_when_futile
from metrics_pipeline.steps.retries import META_POOL, meta_retry_policy
from metrics_pipeline.steps.table_metadata import column_schema, row_count
from metrics_pipeline.stopping import StopRequested, raise_if_stopped
from metrics_pipeline.warehouse.resource import WarehouseResource


@dataclass
class ClientCollection:
    written: list[tuple[str, date]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    retryable: bool = False
    rows: int = 0
    stopped: bool = False  # a stop was asked for: the chunks stored before it are whole

    def absorb(self, other: "ClientCollection") -> None:
        self.written += other.written
        self.failures += other.failures
        self.rows += other.rows


def collect_client(
    client: ClientConfig,
    days: list[date],
    api: GraphApiClient,
    warehouse: WarehouseResource,
    now: datetime,
    log: QueuedLog,
) -> ClientCollection:
    """Fetch, validate and store one client's days; a bad day is refused, the rest stored."""
    outcome = ClientCollection()
    try:
        raise_if_stopped(f"about to collect client {client.id!r}")
        account = resolve_account(api, client, warehouse, now)
        today = local_today(now, account.timezone)
        outcome.failures += [
            f"client {client.id!r}, date {d}: has not begun in {account.timezone}"
            for d in days
            if d > today
        ]
        days = [d for d in days if d <= today]
        for since, until in contiguous_ranges(days):
            # Each chunk of days is checked and stored before the next is read, so memory
            # stays bounded however long the range.
            for first, last, raw in api.insight_chunks(
                client.meta_ad_account_id, since, until, client.attribution_windows, client.id
            ):
                outcome.absorb(
                    store_chunk(client, account, raw, days, first, last, warehouse, now, log)
                )
    except MetaApiError as exc:
        outcome.failures.append(str(exc))
        outcome.retryable = exc.kind in RETRYABLE
    except StopRequested:
        outcome.stopped = True
    return outcome


def store_chunk(
    client: ClientConfig,
    account: AccountInfo,
    raw: list[dict[str, Any]],
    days: list[date],
    first: date,
    last: date,
    warehouse: WarehouseResource,
    now: datetime,
    log: QueuedLog,
) -> ClientCollection:
    """Validate one chunk of raw rows and store its good days in one transaction."""
    outcome = ClientCollection()
    span = {d for d in days if first <= d <= last}
    parsed = parse_insight_rows(
        raw,
        client_id=client.id,
        account_id=client.meta_ad_account_id,
        currency=account.currency,
        days=span,
        attribution_windows=client.attribution_windows,
        mapping=client.conversion_mapping,
        collected_at=now,
    )
    # Parsed: Meta's decoded rows (several times the size of the parsed ones) are dropped
    # before the write, so a chunk is never held twice. `raw` is this chunk's alone.
    raw.clear()
    bad = parsed.bad_days(span)
    outcome.failures += summarize_problems(parsed.problems)
    for ignored in parsed.ignored:
        log.warning(f"Row left out: {ignored}")
    good = sorted(span - bad)
    if not good:
        return outcome
    rows = [r for d in good for r in parsed.rows_by_day.get(d, [])]
    collections = [
        {
            "client_id": client.id,
            "date": d,
            "row_count": len(parsed.rows_by_day.get(d, [])),
            "currency": account.currency,
            "collected_at": now,
        }
        for d in good
    ]
    scope = [{"client_id": client.id, "date": good}]
    warehouse.replace_many(
        [
            ("meta_insights", scope, rows),
            ("meta_insight_collections", scope, collections),
        ]
    )
    outcome.rows += len(rows)
    outcome.written += [(client.id, d) for d in good]
    return outcome


def build_meta_insights(catalog: Catalog):
    @asset(
        name="meta_insights",
        partitions_def=catalog.partitions.daily,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="meta",
        metadata=column_schema("meta_insights"),
        kinds={"python", "sql"},
        pool=META_POOL,
        retry_policy=meta_retry_policy(),
        freshness_policy=DAILY_FRESHNESS,
        description="Ad-level daily insights by country for every status (deleted and archived "
        "included), with each action and action value as returned, per attribution window.",
    )
    def meta_insights(
        context: AssetExecutionContext,
        meta: MetaAdsResource,
        warehouse: WarehouseResource,
        clock: ClockResource,
    ) -> MaterializeResult:
        now = clock.now()
        days_by_client = dates_by_client(context.partition_keys)

        def collect(client_id: str, log: QueuedLog) -> ClientCollection:
            return collect_client(
                catalog.client(client_id),
                days_by_client[client_id],
                meta.client(log),
                warehouse,
                now,
                log,
            )

        with not_retried_when_futile():
            outcomes = for_each_client(
                list(days_by_client), collect, context.log, meta.max_parallel_accounts
            )
        written = [w for o in outcomes.values() for w in o.written]
        failures = [f for o in outcomes.values() for f in o.failures]
        retryable = any(o.retryable for o in outcomes.values())
        rows_by_client = {c: o.rows for c, o in outcomes.items() if o.rows}
        metadata = {
            "rows_by_client": rows_by_client,
            "rows": sum(rows_by_client.values()),
            "partitions": len(written),
            **row_count(sum(rows_by_client.values())),
        }
        if any(o.stopped for o in outcomes.values()):
            end_stopped(context, "collecting meta_insights", written, metadata)
        return finish(context, written, failures, metadata, retryable=retryable)

    return meta_insights
