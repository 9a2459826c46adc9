"""Materialise the whole graph for a window of days, as Dagster runs in an instance.

Used by the command line, the benchmark and the tests. Each layer is one run per
contiguous block of clients (a partition-key range), objects -> raw and daily -> exchange
rates -> weekly -> monthly -> cache and rollups -> portfolio (one run over all clients), so
the UI shows ordinary runs, the whole window costs a handful of runs however many days it
spans, and a failed layer stops the layers above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from dagster import (
    AssetKey,
    AssetSelection,
    ConfigurableResource,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    LoggerDefinition,
    MultiPartitionsDefinition,
    RunsFilter,
    define_asset_job,
)

from metrics_pipeline.automation.jobs import (
    AD_OBJECTS_JOB,
    CACHE_JOB,
    COLLECT_JOB,
    FX_RATES_JOB,
    MONTHLY_JOB,
    PORTFOLIO_JOB,
    REDERIVE_JOB,
    SERVING_JOB,
    WEEKLY_JOB,
)
from metrics_pipeline.catalog import Catalog
from metrics_pipeline.checks.names import history_check_keys
from metrics_pipeline.domain.periods import local_today, month_start, week_start
from metrics_pipeline.meta.accounts import client_zones
from metrics_pipeline.partitions import DATE, RANGE_END, RANGE_START, client_blocks
from metrics_pipeline.steps.failures import step_error
from metrics_pipeline.stopping import stop_requested

RAW_AND_DAILY = [AssetKey("meta_insights"), AssetKey("daily_kpi_data")]
DAILY_ONLY = [AssetKey("daily_kpi_data")]
WEEKLY = [AssetKey(["campaign_summaries", "weekly"])]
MONTHLY = [AssetKey(["campaign_summaries", "monthly"])]
SERVING = [AssetKey("current_week_cache"), AssetKey("client_kpi_rollups")]
OBJECTS = [AssetKey("meta_ad_objects")]
FX_RATES = [AssetKey("fx_rates")]
PORTFOLIO = [AssetKey("portfolio_kpis")]
# The job name each stage's runs carry, so the run list says what a run built.
STAGE_JOBS: dict[tuple[AssetKey, ...], str] = {
    tuple(OBJECTS): AD_OBJECTS_JOB,
    tuple(RAW_AND_DAILY): COLLECT_JOB,
    tuple(DAILY_ONLY): REDERIVE_JOB,
    tuple(WEEKLY): WEEKLY_JOB,
    tuple(MONTHLY): MONTHLY_JOB,
    tuple(SERVING): SERVING_JOB,
    tuple(SERVING[:1]): CACHE_JOB,
    tuple(FX_RATES): FX_RATES_JOB,
    tuple(PORTFOLIO): PORTFOLIO_JOB,
}
INVOCATION_TAG = "metrics_pipeline/invocation"


class WindowError(ValueError):
    """A request for days or clients the pipeline cannot serve."""


class WindowStopped(Exception):
    """A stop was requested and no further run started; the run in flight, if any, ended
    CANCELED, or SUCCESS when its last step had finished before the stop could end it."""

    def __init__(self, outcome: WindowOutcome) -> None:
        super().__init__("stopped on request")
        self.outcome = outcome


@dataclass
class StageOutcome:
    stage: str
    run_id: str
    success: bool
    errors: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)


@dataclass
class WindowOutcome:
    stages: list[StageOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(s.success for s in self.stages)

    @property
    def errors(self) -> list[str]:
        return [f"{s.stage}: {e}" for s in self.stages for e in s.errors]


def plan_client_ends(
    client_ids: Sequence[str], end: date, now: datetime, timezones: dict[str, str]
) -> dict[str, date]:
    """Each client's last day: `end`, or its local today when `end` has not begun there."""
    ends = {}
    for client_id in client_ids:
        tz = timezones.get(client_id)
        ends[client_id] = min(end, local_today(now, tz)) if tz else end
    return ends


def _days_of(partitions: MultiPartitionsDefinition, now: datetime) -> Sequence[str]:
    """The date keys (days, or periods' first days) of a store's partitions at `now`, in
    order: from the date dimension alone, not from a key per client and date."""
    return partitions.get_partitions_def_for_dimension(DATE).get_partition_keys(current_time=now)


def validate_window(
    catalog: Catalog, start: date, end: date, client_ids: Sequence[str], now: datetime
) -> None:
    unknown = [c for c in client_ids if c not in catalog.client_ids]
    if unknown:
        raise WindowError(
            f"unknown client id(s) {', '.join(map(repr, unknown))}; configured: "
            f"{', '.join(catalog.client_ids)}"
        )
    if start > end:
        raise WindowError(f"--start {start} is after --end {end}")
    first = catalog.partitions.history_start
    if start < first:
        raise WindowError(
            f"--start {start} is before the history start {first} (METRICS_HISTORY_START)"
        )
    oldest_served = date(now.year - 3, now.month, 1)  # Meta serves 37 months back
    if start < oldest_served:
        raise WindowError(
            f"--start {start}: Meta does not serve data older than 37 months "
            f"(oldest {oldest_served})"
        )
    last = date.fromisoformat(_days_of(catalog.partitions.daily, now)[-1])
    if end > last:
        raise WindowError(f"--end {end} is in the future (the last day is {last})")


def cancel_unfinished(instance: DagsterInstance, run_ids: list[str], force: bool = False) -> None:
    """Record these runs CANCELED: those still in flight, and with `force` those a stop
    ended as failures (their steps failed because they were asked to stop)."""
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        if run is None or run.status == DagsterRunStatus.CANCELED:
            continue
        if not run.is_finished or (force and run.status == DagsterRunStatus.FAILURE):
            instance.report_run_canceled(run, message="Stopped on request")


@dataclass
class RunAtStop:
    """One run of a stopped command, as the instance records it after the stop."""

    run_id: str
    job_name: str
    status: str
    in_flight: bool  # not ended when the stop came (or started after it)
    stored: dict[str, int]  # asset -> partitions the run recorded as materialized (0: whole)

    def stored_text(self) -> str:
        if not self.stored:
            return "nothing"
        return ", ".join(
            f"{asset} ({count} partition{'s' if count != 1 else ''})" if count else asset
            for asset, count in self.stored.items()
        )


@dataclass
class StopReport:
    """What a stop did, read back from the instance's run records: the runs in flight when
    it came (ended since, CANCELED or SUCCESS), and those that had finished before it."""

    runs: list[RunAtStop]

    @property
    def in_flight(self) -> list[RunAtStop]:
        return [r for r in self.runs if r.in_flight]

    @property
    def finished_before(self) -> list[RunAtStop]:
        return [r for r in self.runs if not r.in_flight]

    def describe(self) -> str:
        parts = []
        for run in self.in_flight:
            if run.status == DagsterRunStatus.CANCELED.value:
                parts.append(
                    f"run {run.run_id} ({run.job_name}) is recorded CANCELED; "
                    f"before the stop it stored {run.stored_text()}"
                )
            elif run.status == DagsterRunStatus.SUCCESS.value:
                parts.append(
                    f"the step in flight finished before it could stop: run {run.run_id} "
                    f"({run.job_name}) is recorded SUCCESS and kept; it stored "
                    f"{run.stored_text()}"
                )
            else:
                parts.append(
                    f"run {run.run_id} ({run.job_name}) is recorded {run.status}; "
                    f"it stored {run.stored_text()}"
                )
        if not parts:
            parts.append("no run was in flight when the stop came; none is recorded CANCELED")
        parts.append("no further run started")
        if self.finished_before:
            done = [
                r.job_name
                if r.status == DagsterRunStatus.SUCCESS.value
                else f"{r.job_name} ({r.status})"
                for r in self.finished_before
            ]
            parts.append(f"finished before the stop: {', '.join(done)}")
        return "; ".join(parts)


def stored_by_asset(instance: DagsterInstance, run_id: str) -> dict[str, int]:
    """Asset -> how many partitions the run recorded as materialized (0: unpartitioned)."""
    return {
        asset.to_user_string(): len(keys)
        for asset, keys in materialized_by_asset(instance, run_id).items()
    }


def stop_report(instance: DagsterInstance, invocation: str, stopped_at: float) -> StopReport:
    """The runs of one command (`INVOCATION_TAG`), as the instance records them after a stop
    requested at `stopped_at` (seconds since the epoch): a run that had not ended by then was
    in flight."""
    records = instance.get_run_records(
        RunsFilter(tags={INVOCATION_TAG: invocation}), ascending=True
    )
    return StopReport(
        [
            RunAtStop(
                run_id=record.dagster_run.run_id,
                job_name=record.dagster_run.job_name,
                status=record.dagster_run.status.value,
                in_flight=record.end_time is None or record.end_time >= stopped_at,
                stored=stored_by_asset(instance, record.dagster_run.run_id),
            )
            for record in records
        ]
    )


def materialized_by_asset(instance: DagsterInstance, run_id: str) -> dict[AssetKey, set[str]]:
    """Asset -> the partition keys the run recorded as materialized (all of a ranged
    success; none for an unpartitioned asset)."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=1_000_000
    ).records
    found: dict[AssetKey, set[str]] = {}
    for record in records:
        event = record.event_log_entry.dagster_event
        keys = found.setdefault(event.asset_key, set())
        if event.partition is not None:
            keys.add(str(event.partition))
    return found


def materialized_partitions(
    instance: DagsterInstance, run_id: str, asset_key: AssetKey
) -> set[str]:
    """Partition keys of `asset_key` that the run materialized (all of a ranged success)."""
    return materialized_by_asset(instance, run_id).get(asset_key, set())


def run_stage(
    defs: Definitions,
    instance: DagsterInstance,
    stage: str,
    selection: list[AssetKey],
    first_key: str | None,
    last_key: str | None,
    tags: dict[str, str],
    log_level: str,
    checks_of: list[AssetKey] | None = None,
    loggers: dict[str, LoggerDefinition] | None = None,
) -> StageOutcome:
    # The asset's partition-aware checks run with it; history-wide checks (completeness,
    # freshness) run on their own schedule.
    history_checks = [
        key
        for key in history_check_keys(list(defs.asset_checks or []))
        if key.asset_key in selection or key.asset_key in (checks_of or [])
    ]
    targets = AssetSelection.assets(*selection)
    if checks_of:
        # Upstream checks run again in the same run, so their blocking still holds.
        targets = targets | AssetSelection.checks_for_assets(*checks_of)
    targets = targets - AssetSelection.checks(*history_checks)
    # What `materialize()` does, with the caller's loggers (the command line prints one line
    # per warning instead of Dagster's stack traces).
    job_name = STAGE_JOBS.get(
        tuple(selection), "materialize_" + "_".join(k.path[-1] for k in selection)
    )
    stage_defs = Definitions(
        jobs=[define_asset_job(job_name, selection=targets)],
        assets=list(defs.assets or []),
        asset_checks=list(defs.asset_checks or []),
        resources=defs.resources,
        loggers=loggers,
    )
    logger_names = list(loggers or {"console": None})
    result = stage_defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        # An unpartitioned selection (first_key None) runs without a range.
        tags={**tags, RANGE_START: first_key, RANGE_END: last_key} if first_key else tags,
        run_config={
            "loggers": {name: {"config": {"log_level": log_level}} for name in logger_names}
        },
        raise_on_error=False,
    )
    errors = [step_error(event) for event in result.get_step_failure_events()]
    failed_steps = [event.step_key for event in result.get_step_failure_events()]
    return StageOutcome(stage, result.run_id, result.success, errors, failed_steps)


def _collect_block(stage, instance, outcome, block, start: date, last: date) -> set[str]:
    """Raw and daily layers for neighbouring clients; returns the clients that passed.

    One ranged run covers the block. A failed step or blocking check fails the whole run,
    so after a failure each client that stored raw days gets a daily run of its own: one
    client's bad data never holds back the others. The raw quality check runs again in
    that run and still blocks; a failed check is never bypassed.
    """
    days = [start + timedelta(days=n) for n in range((last - start).days + 1)]

    def keys(client_id: str) -> set[str]:
        return {f"{client_id}|{day}" for day in days}

    first_key, last_key = f"{block[0]}|{start}", f"{block[-1]}|{last}"
    if stage("meta_insights + daily_kpi_data", RAW_AND_DAILY, first_key, last_key):
        return set(block)
    stored = materialized_partitions(instance, outcome.stages[-1].run_id, RAW_AND_DAILY[0])
    passed = set()
    for client_id in block:
        if not keys(client_id) & stored:
            continue
        if stage(
            "daily_kpi_data (days that were stored)",
            DAILY_ONLY,
            f"{client_id}|{start}",
            f"{client_id}|{last}",
            checks_of=[RAW_AND_DAILY[0]],
        ) and keys(client_id) <= materialized_partitions(
            instance, outcome.stages[-1].run_id, DAILY_ONLY[0]
        ):
            passed.add(client_id)
    return passed


@contextmanager
def _as_a_run_sees_it(resource: object) -> Iterator[object]:
    """A resource with its `EnvVar` fields read from the environment, for the few reads
    this process makes between runs; the definitions keep the variables' names only.
    Initialised in a context Dagster closes again on this thread."""
    if isinstance(resource, ConfigurableResource):
        with resource.process_config_and_initialize_cm() as initialised:
            yield initialised
    else:
        yield resource


def materialize_window(
    defs: Definitions,
    catalog: Catalog,
    instance: DagsterInstance,
    start: date,
    end: date,
    client_ids: Sequence[str] | None = None,
    now: datetime | None = None,
    timezones: dict[str, str] | None = None,
    echo: Callable[[str], None] = lambda _: None,
    log_level: str = "INFO",
    loggers: dict[str, LoggerDefinition] | None = None,
    tags: dict[str, str] | None = None,
) -> WindowOutcome:
    """Materialise every layer for [start, end] (account-local days) and the given clients.

    When a stop is requested (`metrics_pipeline.stopping`), the run in flight ends at its
    step's next stop point and is recorded CANCELED (or stays SUCCESS if its steps had
    finished), and WindowStopped is raised instead of starting the next run."""
    from metrics_pipeline.clock import ClockResource  # the definitions' clock decides "now"

    with _as_a_run_sees_it((defs.resources or {}).get("clock")) as clock:
        now = now or (clock.now() if isinstance(clock, ClockResource) else datetime.now())
    client_ids = list(client_ids or catalog.client_ids)
    validate_window(catalog, start, end, client_ids, now)
    outcome = WindowOutcome()
    tags = {"metrics_pipeline/window": f"{start}..{end}", **(tags or {})}

    def stage(
        name: str,
        selection: list[AssetKey],
        first: str | None,
        last: str | None,
        checks_of: list[AssetKey] | None = None,
    ) -> bool:
        if stop_requested():
            raise WindowStopped(outcome)
        echo(f"{name}: {first} .. {last}" if first else name)
        # Printing can block (a terminal paused with Ctrl-S): a stop asked for meanwhile
        # starts no run.
        if stop_requested():
            raise WindowStopped(outcome)
        result = run_stage(
            defs, instance, name, selection, first, last, tags, log_level, checks_of, loggers
        )
        outcome.stages.append(result)
        if stop_requested():
            # The steps end at their next stop point and fail; a run whose steps had all
            # finished stays SUCCESS.
            cancel_unfinished(instance, [result.run_id], force=True)
            raise WindowStopped(outcome)
        return result.success

    # One run per layer and block of neighbouring clients: the Meta-calling steps read the
    # clients' accounts in parallel and keep each client's failure to itself, so a revoked
    # token or bad data holds back only that client's layers above.
    reachable: set[str] = set()
    for block in client_blocks(catalog.client_ids, set(client_ids)):
        stage("meta_ad_objects", OBJECTS, block[0], block[-1])
        reachable |= materialized_partitions(instance, outcome.stages[-1].run_id, OBJECTS[0])
    # Timezones not in the clients file were read from the ad accounts just now.
    with _as_a_run_sees_it(defs.resources["warehouse"]) as warehouse:
        zones = {**client_zones(catalog.clients, warehouse), **(timezones or {})}
    ends = plan_client_ends(sorted(reachable), end, now, zones)
    for client_id, last in ends.items():
        if last < end:
            outcome.notes.append(
                f"{client_id}: {end} has not begun in {zones[client_id]}; collecting to {last}"
            )
    collected: set[str] = set()
    for last in sorted(set(ends.values())):
        if last < start:
            continue
        same_end = {c for c, e in ends.items() if e == last}
        for block in client_blocks(catalog.client_ids, same_end):
            collected |= _collect_block(stage, instance, outcome, block, start, last)
    # The rates of every collected day, checked against the days clients spent on.
    rates_ok = bool(collected) and stage(
        "fx_rates", FX_RATES, start.isoformat(), max(ends[c] for c in collected).isoformat()
    )
    blocks = client_blocks(catalog.client_ids, collected)
    for name, selection, partitions, period_start in (
        ("campaign_summaries/weekly", WEEKLY, catalog.partitions.weekly, week_start),
        ("campaign_summaries/monthly", MONTHLY, catalog.partitions.monthly, month_start),
    ):
        since = period_start(start)
        wanted = [k for k in _days_of(partitions, now) if since <= date.fromisoformat(k) <= end]
        if not wanted:
            continue
        for block in blocks:
            if not stage(name, selection, f"{block[0]}|{wanted[0]}", f"{block[-1]}|{wanted[-1]}"):
                return outcome
    for block in blocks:
        if not stage("current_week_cache + client_kpi_rollups", SERVING, block[0], block[-1]):
            return outcome
    if rates_ok:
        stage("portfolio_kpis", PORTFOLIO, None, None)
    return outcome
