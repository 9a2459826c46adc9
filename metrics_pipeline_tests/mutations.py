"""The mutation check: plant each known defect in a copy of the project and see a test fail.

    python -m metrics_pipeline_tests.mutations            # every row
    python -m metrics_pipeline_tests.mutations --list     # the rows' names
    python -m metrics_pipeline_tests.mutations --only upsert_by_key --only no_locks

Each row is one exact text replacement in one file of a temporary copy of the working tree;
the copy's tests run with the current interpreter and the copy first on PYTHONPATH, so the
copy's `metrics_pipeline` is the one imported, also by the `metrics-pipeline` console script
the CLI tests start (subprocesses inherit PYTHONPATH). A row whose old text is gone says so
and fails, so the table never silently stops planting anything. The selected tests first
run once on the unmutated copy: a defect "caught" by a test that already fails proves
nothing. Slow (it runs the pipeline end to end many times); not part of the default run.
Exit code 0 only if every row is caught.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Not part of the project: environments, history, caches, local data and outputs.
IGNORED = shutil.ignore_patterns(
    ".venv",
    ".git",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
    ".metrics_pipeline",
    ".tmp_dagster_home_*",
    "build",
    "artifacts",
)
# One process: a row runs a few tests, where starting workers would cost more than it saves.
PYTEST = ("-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-n", "0")
ROW_TIMEOUT_SECONDS = 1800
T = "metrics_pipeline_tests/"

# The test that proves a partition write replaces the partition: a re-read with fewer rows.
REPLACE_NOT_UPSERT_TESTS: tuple[str, ...] = (
    T + "test_replace_not_upsert.py::test_days_re_read_with_fewer_rows_lose_them_in_every_table"
    "[sqlite]",
)


@dataclass(frozen=True)
class Mutation:
    name: str
    defect: str
    path: str  # relative to the project root
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments: node ids, files, "-k" and its expression


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "insert_only",
        "partition write inserts without deleting the old rows",
        "metrics_pipeline/warehouse/resource.py",
        """            for table, scopes, _ in prepared:
                with self._bounded(table.name, _clients_of(scopes)):
                    for scope in scopes:
                        connection.execute(table.delete().where(_where(table, scope)))""",
        "",
        REPLACE_NOT_UPSERT_TESTS,
    ),
    Mutation(
        "upsert_by_key",
        "partition write upserts by primary key (deletes only the keys it writes again)",
        "metrics_pipeline/warehouse/resource.py",
        """            for table, scopes, _ in prepared:
                with self._bounded(table.name, _clients_of(scopes)):
                    for scope in scopes:
                        connection.execute(table.delete().where(_where(table, scope)))""",
        """            from sqlalchemy import bindparam

            for table, _, records in prepared:
                keys = [c.name for c in table.primary_key.columns]
                if records:
                    connection.execute(
                        table.delete().where(
                            and_(*(table.c[k] == bindparam(f"pk_{k}") for k in keys))
                        ),
                        [{f"pk_{k}": r[k] for k in keys} for r in records],
                    )""",
        REPLACE_NOT_UPSERT_TESTS,
    ),
    Mutation(
        "non_atomic_replace",
        "replace_many: delete committed first, then one transaction per row",
        "metrics_pipeline/warehouse/resource.py",
        """        with self._connection(read_only=False) as connection:
            lock_partitions(
                connection,
                [(t.name, scopes) for t, scopes, _ in prepared],
                self.lock_timeout_seconds,
                self.statement_timeout_seconds,
            )
            for table, scopes, _ in prepared:
                with self._bounded(table.name, _clients_of(scopes)):
                    for scope in scopes:
                        connection.execute(table.delete().where(_where(table, scope)))
            # Old rows deleted, new ones not yet inserted, nothing committed.
            _write_probe([t.name for t, _, _ in prepared])
            for table, scopes, records in prepared:
                with self._bounded(table.name, _clients_of(scopes)):
                    insert_rows(connection, table, records)""",
        # Each transaction still takes the lock, so only atomicity is missing.
        """        limits = (self.lock_timeout_seconds, self.statement_timeout_seconds)
        for table, scopes, _ in prepared:
            with self._connection(read_only=False) as connection:
                lock_partitions(connection, [(table.name, scopes)], *limits)
                for scope in scopes:
                    connection.execute(table.delete().where(_where(table, scope)))
        _write_probe([t.name for t, _, _ in prepared])
        for table, scopes, records in prepared:
            for record in records:
                with self._connection(read_only=False) as connection:
                    lock_partitions(connection, [(table.name, scopes)], *limits)
                    insert_rows(connection, table, [record])""",
        (
            T + "test_crash_and_concurrency.py::"
            "test_sigkill_inside_a_partition_write_leaves_each_partition_old_or_new[sqlite]",
        ),
    ),
    Mutation(
        "no_locks",
        "advisory locks removed (lock_partitions returns at once)",
        "metrics_pipeline/warehouse/locks.py",
        """    if connection.dialect.name != "postgresql":
        return
    targets = lock_targets(writes)""",
        """    return
    targets = lock_targets(writes)""",
        (
            T + "test_crash_and_concurrency.py::"
            "test_two_writers_of_the_same_partitions_wait_on_each_other_and_leave_one_copy"
            "[postgresql]",
        ),
    ),
    Mutation(
        "lookback_key_without_day",
        "lookback schedule's run key without the day",
        "metrics_pipeline/automation/schedules.py",
        'run_key=f"lookback:{client_id}:{day}",',
        'run_key=f"lookback:{client_id}",',
        (T + "test_automation.py::test_lookback_runs_again_each_day_and_once_within_a_day",),
    ),
    Mutation(
        "cache_on_utc_days",
        "current-week cache on UTC days, not the account's local days",
        "metrics_pipeline/assets/serving/current_week_cache.py",
        "today = local_today(now, client_timezone(client, warehouse))",
        'today = local_today(now, "UTC")',
        (
            T + "test_end_to_end.py::test_current_week_cache_is_week_to_date_with_today_"
            "provisional[utc-2000-sqlite]",
        ),
    ),
    Mutation(
        "synonyms_reversed",
        "purchase synonyms read in reverse priority",
        "metrics_pipeline/domain/conversions.py",
        "return parse(present[0], values[present[0]])",
        "return parse(present[-1], values[present[-1]])",
        (T + "test_kpi_rules.py::test_purchase_synonyms_are_read_once_in_priority_order",),
    ),
    Mutation(
        "summaries_from_raw_rows",
        "weekly/monthly summaries from meta_insights, not daily_kpi_data",
        "metrics_pipeline/assets/kpis/campaign_summaries.py",
        "                daily = read_daily_kpis(warehouse, client_id, days)",
        """                import pandas as pd

                from metrics_pipeline.assets.kpis.daily_kpi_data import (
                    daily_rows,
                    read_kpi_inputs,
                )

                collections = warehouse.read(
                    "meta_insight_collections", {"client_id": client_id, "date": days}
                )
                inputs = read_kpi_inputs(
                    warehouse,
                    client_id,
                    sorted(set(collections["date"])),
                    catalog.client(client_id).conversion_mapping,
                )
                daily = pd.DataFrame(
                    daily_rows(client_id, inputs, collections),
                    columns=[c.name for c in warehouse.table("daily_kpi_data").columns],
                )""",
        (
            T + "test_summary_lineage.py::test_stores_above_daily_follow_daily_kpi_data_not_"
            "the_raw_rows[sqlite]",
        ),
    ),
    Mutation(
        "projection_off_by_one_day",
        "projected conversions and reservations off by one day",
        "metrics_pipeline/domain/pacing.py",
        """        "projected_conversions": ratio(conversions * month.length, elapsed),
        "projected_reservations": ratio(reservations * month.length, elapsed),""",
        """        "projected_conversions": ratio(conversions * month.length, elapsed + 1),
        "projected_reservations": ratio(reservations * month.length, elapsed + 1),""",
        (
            T + "test_end_to_end.py::test_rollups_equal_their_windows_and_pace_against_"
            "budget[utc-2000-sqlite]",
        ),
    ),
    Mutation(
        "ratios_averaged",
        "ratios averaged per group, not ratios of sums",
        "metrics_pipeline/domain/kpis.py",
        "    ratios = [derive_ratios(row) for row in sums[list(ADDITIVE_METRICS)]"
        '.to_dict("records")]',
        """    groups = [g for _, g in frame.groupby(by, sort=True, dropna=False)]
    groups = groups if by else [frame]
    ratios = []
    for group in groups:
        each = [derive_ratios(r) for r in group[list(ADDITIVE_METRICS)].to_dict("records")]
        ratios.append(
            {
                n: sum(v) / len(v) if (v := [r[n] for r in each if r[n] is not None]) else None
                for n in RATIO_METRICS
            }
        )""",
        (T + "test_kpi_rules.py::test_ratios_of_each_group_are_ratios_of_that_group_sums",),
    ),
    Mutation(
        "offending_rows_not_json_safe",
        "consistency check's offending rows not made JSON-safe",
        "metrics_pipeline/checks/report.py",
        '"offending_json": MetadataValue.json(json_safe(list(offending)[:MAX_ROWS_SHOWN])),',
        '"offending_json": MetadataValue.json(list(offending)[:MAX_ROWS_SHOWN]),',
        (
            T + "test_consistency_checks.py::test_a_row_off_its_days_fails_the_check_with_the_"
            "row_and_alerts_once[sqlite-weekly]",
        ),
    ),
    Mutation(
        "stop_left_to_retries",
        "a stop on request left to the step retry policy",
        "metrics_pipeline/steps/partial.py",
        'metadata={"partitions_written": len(written)},\n        allow_retries=False,',
        'metadata={"partitions_written": len(written)},\n        allow_retries=True,',
        (
            T + "test_crash_and_concurrency.py::test_a_stop_request_mid_backfill_ends_fast_"
            "cancels_the_run_and_keeps_whole_partitions[2]",
        ),
    ),
    Mutation(
        "unreachable_retried",
        "an unreachable Meta host retried like a transient error",
        "metrics_pipeline/meta/errors.py",
        "RETRYABLE = {ErrorKind.THROTTLED, ErrorKind.TRANSIENT}",
        "RETRYABLE = {ErrorKind.THROTTLED, ErrorKind.TRANSIENT, ErrorKind.UNREACHABLE}",
        (T + "test_cli_failures.py", "-k", "refused_meta_host"),
    ),
    Mutation(
        "paging_to_any_host",
        "paging.next followed to any host",
        "metrics_pipeline/meta/client.py",
        "if origin(next_url) != origin(self.base_url):",
        "if False:",
        (T + "test_meta_bounds.py", "-k", "paging_next_to_another_host"),
    ),
    Mutation(
        "page_size_per_query",
        "a page size Meta asked to reduce is forgotten at the account's next query",
        "metrics_pipeline/meta/client.py",
        "        if key not in self._page_sizes:",
        "        if True:",
        (T + "test_meta_bounds.py", "-k", "reduced_page_size_holds"),
    ),
    Mutation(
        "split_pieces_one_at_a_time",
        "a split report's pieces started one at a time, each after the previous was read",
        "metrics_pipeline/meta/client.py",
        "REPORTS_AHEAD = 12",
        "REPORTS_AHEAD = 1",
        (T + "test_meta_faults.py", "-k", "side_by_side"),
    ),
    Mutation(
        "all_passed_after_failure",
        'summary line says "all passed" after a failed run',
        "metrics_pipeline/cli/main.py",
        "    elif run_failed:\n",
        "    elif False:\n",
        (T + "test_cli.py", "-k", "failed_collection"),
    ),
    Mutation(
        "kpi_columns_all_nullable",
        "KPI columns built from the registry all nullable",
        "metrics_pipeline/warehouse/schema.py",
        'nullable=m.kind == "ratio"',
        "nullable=True",
        (T + "test_metric_registry.py",),
    ),
    Mutation(
        "clients_file_ignores_registry",
        "clients-file conversion fields from the default registry, not the one given",
        "metrics_pipeline/config/clients.py",
        "for m in metrics.rule_metrics}",
        "for m in METRICS.rule_metrics}",
        (T + "test_metric_registry.py",),
    ),
    Mutation(
        "money_rule_reads_actions",
        "a money conversion metric read from the actions, not the action values",
        "metrics_pipeline/domain/conversions.py",
        "found, parse = (values, _cents) if money else (counts, _count)",
        "found, parse = (counts, _cents) if money else (counts, _count)",
        (T + "test_metric_registry.py",),
    ),
    Mutation(
        "due_hour_exclusive",
        "a day is due only after its ready hour, not from it",
        "metrics_pipeline/domain/periods.py",
        "if local.hour >= ready_hour",
        "if local.hour > ready_hour",
        (T + "test_due_days.py",),
    ),
    Mutation(
        "yesterday_always_settled",
        "the schedules collect the day before yesterday when yesterday is not settled",
        "metrics_pipeline/domain/periods.py",
        "    return day if day == local_today(moment, tz) - timedelta(days=1) else None",
        "    return day",
        (T + "test_due_days.py",),
    ),
    Mutation(
        "completeness_three_decimals",
        "completeness % rounded to three decimals, finer than collection_health stores",
        "metrics_pipeline/checks/completeness.py",
        "round(100.0 * present / due, 2)",
        "round(100.0 * present / due, 3)",
        (T + "test_checks_and_alerts.py::test_completeness_reports_the_missing_pairs",),
    ),
    Mutation(
        "fx_rounds_down",
        "currency conversion rounds down instead of half up",
        "metrics_pipeline/domain/fx.py",
        "quantize(Decimal(1), rounding=ROUND_HALF_UP)",
        'quantize(Decimal(1), rounding="ROUND_DOWN")',
        (T + "test_portfolio.py", "-k", "sqlite and converted_truth"),
    ),
    Mutation(
        "fx_carried_rate_unmarked",
        "a rate carried over a holiday or weekend recorded as published that day",
        "metrics_pipeline/domain/fx.py",
        "DayRate(day, currency, rate, published)\n",
        "DayRate(day, currency, rate, day)\n",
        (T + "test_portfolio.py", "-k", "sqlite and holidays"),
    ),
    Mutation(
        "portfolio_value_unconverted",
        "portfolio converts spend but not reservation value",
        "metrics_pipeline/domain/portfolio.py",
        "    for money in MONEY_METRICS:",
        "    for money in MONEY_METRICS[:1]:",
        (T + "test_portfolio.py", "-k", "sqlite and converted_truth"),
    ),
    Mutation(
        "rates_check_blind_to_gaps",
        "rates check ignores days without a usable rate",
        "metrics_pipeline/assets/portfolio/checks.py",
        "            _missing_rates(catalog, warehouse, fx, days)\n",
        "            []\n",
        (T + "test_portfolio.py", "-k", "sqlite and missing_rate"),
    ),
    Mutation(
        "refresh_forgets_on_materialization",
        "derived stores forget a change when a materialisation ends (Dagster's own reset)",
        "metrics_pipeline/steps/freshness.py",
        "AutomationCondition.any_deps_updated().since(_CHANGE_HANDLED)",
        "AutomationCondition.any_deps_updated().since_last_handled()",
        (T + "test_automation.py", "-k", "forgotten"),
    ),
    Mutation(
        "refresh_forgets_right_after_request",
        "derived stores forget a change that lands between a request and the next tick",
        "metrics_pipeline/steps/freshness.py",
        "    & ~AutomationCondition.any_deps_updated()\n).with_label",
        "\n).with_label",
        (T + "test_automation.py", "-k", "forgotten"),
    ),
    Mutation(
        "rates_refresh_on_utc_clock",
        "the daily re-read of the rates fires at 16:30 UTC, not after the publication in Berlin",
        "metrics_pipeline/steps/freshness.py",
        '"30 16 * * *", "Europe/Berlin"',
        '"30 16 * * *", "UTC"',
        (T + "test_automation.py", "-k", "ecb_publishes"),
    ),
    Mutation(
        "rates_gap_stops_before_tomorrow",
        "the gap sensor asks for no rates of the UTC today and tomorrow",
        "metrics_pipeline/domain/periods.py",
        "return now.astimezone(UTC).date() + timedelta(days=1)",
        "return now.astimezone(UTC).date() - timedelta(days=1)",
        (T + "test_automation.py", "-k", "gap_sensor"),
    ),
    Mutation(
        "yen_rounded_to_cents",
        "a zero-decimal reporting currency is rounded to hundredths",
        "metrics_pipeline/domain/fx.py",
        "step = Decimal(10) ** (2 - currency_exponent(to))",
        "step = Decimal(1)",
        (T + "test_portfolio.py", "-k", "sqlite and yen"),
    ),
    Mutation(
        "rates_check_blind_to_jumps",
        "rates check lets a rate move 100 times the allowed percentage",
        "metrics_pipeline/assets/portfolio/checks.py",
        "if published in days and moved > limit:",
        "if published in days and moved > limit * 100:",
        (T + "test_portfolio.py", "-k", "sqlite and rate_jump"),
    ),
    Mutation(
        "pacing_band_open_above",
        "pacing ignores the upper end of the spend band",
        "metrics_pipeline/domain/pacing.py",
        "if not goal * low / 100 <= projected <= goal * high / 100:",
        "if projected < goal * low / 100:",
        (T + "test_pacing.py", "-k", "once"),
    ),
    Mutation(
        "pacing_never_recovers",
        "pacing check covers no condition, so a cleared one is never sent as recovered",
        "metrics_pipeline/assets/serving/checks.py",
        'covered[client_id] = [f"{month} {condition}" for condition in judged]',
        "covered[client_id] = []",
        (T + "test_pacing.py", "-k", "once"),
    ),
    Mutation(
        "reporting_currency_unchecked",
        "a reporting currency the rates feed does not quote accepted before any work",
        "metrics_pipeline/definitions.py",
        '    FX_ENV["reporting_currency"]: reporting_currency_problem,\n',
        "",
        (T + "test_front_door.py", "-k", "CURRENCY"),
    ),
    Mutation(
        "older_version_not_expired",
        "an API version older than every known one counts as unknown, not expired",
        "metrics_pipeline/meta/versions.py",
        "if number is not None and number < version_number(OLDEST.name):",
        "if False:",
        (T + "test_api_version.py", "-k", "older"),
    ),
    Mutation(
        "warnings_as_failures",
        "the checks line reports a non-blocking warning as a failed check",
        "metrics_pipeline/cli/main.py",
        "            elif evaluation.severity == AssetCheckSeverity.WARN:\n",
        "            elif False:\n",
        (T + "test_cli.py", "-k", "records_dagster_runs"),
    ),
    Mutation(
        "problems_per_client",
        "a problem that hit several clients repeated once per client",
        "metrics_pipeline/steps/partial.py",
        "    lines = distinct_problems(failures)",
        "    lines = list(failures)",
        (T + "test_front_door.py", "-k", "refused_token"),
    ),
    Mutation(
        "secrets_resolved_for_runs",
        "the command line hands Dagster its resolved settings, secrets included",
        "metrics_pipeline/cli/main.py",
        "        defs = build_definitions(catalog, default_resources(environ))",
        "        defs = build_definitions(catalog, settings)",
        (T + "test_secrets_in_storage.py",),
    ),
    Mutation(
        "files_world_readable",
        "the instance and warehouse the command line creates readable by everyone",
        "metrics_pipeline/cli/main.py",
        "    previous = os.umask(0o077)",
        "    previous = os.umask(0o022)",
        (T + "test_secrets_in_storage.py",),
    ),
    Mutation(
        "webhook_follows_redirects",
        "the alert webhook follows a redirect to another host",
        "metrics_pipeline/automation/notifier.py",
        "                allow_redirects=False,",
        "                allow_redirects=True,",
        (T + "test_alert_delivery.py", "-k", "redirected"),
    ),
    Mutation(
        "amounts_half_even",
        "Meta's amount strings rounded half to even, not half up",
        "metrics_pipeline/domain/money.py",
        "    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))",
        "    return int((amount * 100).quantize(Decimal(1), rounding='ROUND_HALF_EVEN'))",
        (T + "test_money_rules.py",),
    ),
    Mutation(
        "spend_band_low_end_excluded",
        "a projection exactly at 70 % of the budget counted as off pace",
        "metrics_pipeline/domain/pacing.py",
        "            if not goal * low / 100 <= projected <= goal * high / 100:",
        "            if not goal * low / 100 < projected <= goal * high / 100:",
        (T + "test_rule_boundaries.py", "-k", "spend_band"),
    ),
    Mutation(
        "fresh_hour_exclusive",
        "yesterday due only after the freshness hour, not from it",
        "metrics_pipeline/domain/periods.py",
        "1 if local.hour >= ready_hour else 2",
        "1 if local.hour > ready_hour else 2",
        (T + "test_rule_boundaries.py", "-k", "freshness_hour"),
    ),
    Mutation(
        "portfolio_total_ratio_dropped",
        "the portfolio's total rows lose their cost per reservation",
        "metrics_pipeline/domain/portfolio.py",
        "                    **totals_record(row),\n                }",
        "                    **totals_record(row),\n                    "
        '**({"cost_per_reservation": None} if client else {}),\n                }',
        (T + "test_portfolio.py", "-k", "sqlite and converted_truth"),
    ),
    Mutation(
        "spend_rounded_down_end_to_end",
        "three-decimal spend strings cut to the cent instead of rounded half up",
        "metrics_pipeline/domain/money.py",
        "    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))",
        "    return int((amount * 100).quantize(Decimal(1), rounding='ROUND_DOWN'))",
        (T + "test_end_to_end.py", "-k", "utc-0900-sqlite and daily_kpis"),
    ),
    Mutation(
        "no_row_for_a_day_without_delivery",
        "a day collected without any delivery gets no daily_kpi_data row",
        "metrics_pipeline/assets/kpis/daily_kpi_data.py",
        '        day: date = collection["date"]\n',
        '        day: date = collection["date"]\n        if day not in totals_by_day:\n'
        "            continue\n",
        (T + "test_end_to_end.py", "-k", "utc-0900-sqlite and daily_kpis"),
    ),
    Mutation(
        "null_ctr_judged",
        "a NULL CTR (no impressions) judged against the CTR bounds as 0 %",
        "metrics_pipeline/checks/quality.py",
        '    if not _missing(row.get("average_ctr")):\n        applied += 1\n'
        '        ctr = Decimal(str(row["average_ctr"]))',
        '    if True:\n        applied += 1\n        ctr = Decimal(str(row["average_ctr"] or 0))',
        (T + "test_rule_boundaries.py", "-k", "ratio_without_a_denominator"),
    ),
    Mutation(
        "completeness_target_99_4",
        "the shipped completeness target 99.4 % instead of 99.5 %",
        "metrics_pipeline/checks/settings.py",
        "completeness_target_pct: float = 99.5",
        "completeness_target_pct: float = 99.4",
        (T + "test_checks_and_alerts.py", "-k", "shipped_completeness"),
    ),
    Mutation(
        "gap_sensor_89_days",
        "the gap sensor's shipped look-back 89 days instead of 90",
        "metrics_pipeline/automation/gaps.py",
        "    history_days: int = 90,",
        "    history_days: int = 89,",
        (T + "test_automation.py", "-k", "shipped_gap"),
    ),
    Mutation(
        "rates_move_limit_exclusive",
        "a rate that moved exactly 5 % fails the rates check",
        "metrics_pipeline/assets/portfolio/checks.py",
        "if published in days and moved > limit:",
        "if published in days and moved >= limit:",
        (T + "test_portfolio.py", "-k", "move_limit and sqlite"),
    ),
    Mutation(
        "tracking_any_weekday",
        "a day's usual conversions come from the days just before it, not its own weekday",
        "metrics_pipeline/domain/tracking.py",
        "earlier = by_day.get(day - timedelta(weeks=weeks))",
        "earlier = by_day.get(day - timedelta(days=weeks))",
        (T + "test_kpi_watch_rules.py", "-k", "weekday"),
    ),
    Mutation(
        "tracking_break_becomes_usual",
        "broken days count in the baselines of the days after them",
        "metrics_pipeline/domain/tracking.py",
        "if earlier is not None and earlier.day not in broken:",
        "if earlier is not None:",
        (T + "test_kpi_watch_rules.py", "-k", "five_weeks"),
    ),
    Mutation(
        "tracking_drop_exclusive",
        "a day exactly at drop_pct of its expected conversions is not broken",
        "metrics_pipeline/domain/tracking.py",
        "figures.conversions * 100 <= expected * rule.drop_pct",
        "figures.conversions * 100 < expected * rule.drop_pct",
        (T + "test_kpi_watch_rules.py", "-k", "10_pct"),
    ),
    Mutation(
        "tracking_no_min_expected",
        "a small client's day without a booking is reported as a break",
        "metrics_pipeline/domain/tracking.py",
        "    if expected < rule.min_expected:\n        return None\n",
        "",
        (T + "test_kpi_watch_rules.py", "-k", "should_have_had"),
    ),
    Mutation(
        "tracking_expects_more_on_a_spike",
        "a day that spent more than usual is expected to bring more conversions",
        "metrics_pipeline/domain/tracking.py",
        "if usual_spend <= 0 or spend >= usual_spend:",
        "if usual_spend <= 0:",
        (T + "test_kpi_watch_rules.py", "-k", "spending_more"),
    ),
    Mutation(
        "anomaly_spend_two_sided",
        "spend below its band is warned about as well",
        "metrics_pipeline/domain/anomalies.py",
        "return value > band.high if side == HIGH else value < band.low",
        "return value > band.high or value < band.low",
        (T + "test_kpi_watch_rules.py", "-k", "costs or normal_days"),
    ),
    Mutation(
        "anomaly_band_from_deviation",
        "the band's spread is the deviation from the median, not the day-to-day change",
        "metrics_pipeline/domain/baselines.py",
        "half = max(width * typical_change(logs), min_factor.ln())",
        "half = max(width * median([abs(x - centre) for x in logs]), min_factor.ln())",
        (T + "test_kpi_watch_rules.py", "-k", "typical_day_to_day"),
    ),
    Mutation(
        "anomaly_ratios_of_small_clients",
        "CPA and ROAS are judged however few conversions a client has",
        "metrics_pipeline/domain/anomalies.py",
        "    if median([d.conversions for d in baseline]) >= rule.min_conversions:",
        "    if True:",
        (T + "test_kpi_watch_rules.py", "-k", "from_5_conversions"),
    ),
    Mutation(
        "anomaly_band_too_narrow",
        "the anomaly band is 6 typical day-to-day changes wide instead of 10",
        "metrics_pipeline/domain/anomalies.py",
        "DEFAULT_BAND_WIDTH = Decimal(10)",
        "DEFAULT_BAND_WIDTH = Decimal(6)",
        (T + "test_kpi_watch_rules.py", "-k", "normal_days"),
    ),
    Mutation(
        "tracking_drop_too_loose",
        "a day at 25 % of its expected conversions counts as broken",
        "metrics_pipeline/domain/tracking.py",
        "DEFAULT_DROP_PCT = Decimal(10)",
        "DEFAULT_DROP_PCT = Decimal(25)",
        (T + "test_kpi_watch_rules.py", "-k", "normal_days"),
    ),
    Mutation(
        "tracking_never_recovers",
        "the tracking check covers no day, so an ended break is never sent as recovered",
        "metrics_pipeline/assets/kpis/checks.py",
        "covered[client.id] = days_judged",
        "covered[client.id] = []",
        (T + "test_kpi_watch.py", "-k", "recovery"),
    ),
    Mutation(
        "tracking_alert_per_newest_day",
        "a break is named by its newest day, so each day it goes on alerts (and recovers) anew",
        "metrics_pipeline/checks/kpi_watch.py",
        '"date": str(found.days[0]),',
        '"date": str(found.days[-1]),',
        (T + "test_kpi_watch.py", "-k", "recovery"),
    ),
    Mutation(
        "kpi_metadata_not_per_partition",
        "every partition of a ranged run records the same (last) day's KPIs",
        "metrics_pipeline/assets/kpis/daily_kpi_data.py",
        'kpi_metadata(row), partition_key=multi_key(client_id, row["date"])',
        "kpi_metadata(row)",
        (T + "test_kpi_watch.py", "-k", "plots"),
    ),
    Mutation(
        "ratios_judged_on_idle_days",
        "CPA and ROAS judged on a day that spent under a quarter of the usual",
        "metrics_pipeline/domain/anomalies.py",
        "            if metric != SPEND and spent_little:",
        "            if metric != SPEND and spent_little and False:",
        (T + "test_kpi_watch_rules.py", "-k", "quarter"),
    ),
)


@dataclass(frozen=True)
class Row:
    mutation: Mutation
    verdict: str
    seconds: float

    @property
    def caught(self) -> bool:
        return self.verdict == "caught"


def _env(copy: Path) -> dict[str, str]:
    inherited = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "CI": "true",
        # The copy first: its metrics_pipeline wins over the installed (editable) one.
        "PYTHONPATH": os.pathsep.join([str(copy), *([inherited] if inherited else [])]),
        # A file mutated and restored within one second could reuse a stale .pyc.
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _pytest(copy: Path, args: Sequence[str], timeout: float) -> tuple[int | None, str]:
    """pytest's exit code (None on timeout) and its output's last lines."""
    try:
        done = subprocess.run(
            [sys.executable, *PYTEST, *args],
            cwd=copy,
            env=_env(copy),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])


def _assert_copy_is_imported(copy: Path) -> None:
    """The interpreter and the console script's interpreter both import the copy."""
    probe = "import metrics_pipeline, metrics_pipeline_tests; print(metrics_pipeline.__file__)"
    interpreters = [sys.executable]
    script = Path(sys.executable).with_name("metrics-pipeline")
    if script.exists():
        interpreters.append(script.read_text().splitlines()[0].removeprefix("#!").strip())
    for interpreter in interpreters:
        found = subprocess.run(
            [interpreter, "-c", probe],
            cwd=copy,
            env=_env(copy),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not Path(found).resolve().is_relative_to(copy.resolve()):
            raise SystemExit(f"{interpreter} imports {found}, not the copy in {copy}")


def _collect(copy: Path, args: Sequence[str]) -> list[str]:
    """The node ids a selection stands for, so the baseline runs their union once."""
    done = subprocess.run(
        [sys.executable, *PYTEST, "--collect-only", *args],
        cwd=copy,
        env=_env(copy),
        capture_output=True,
        text=True,
    )
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    if done.returncode != 0 or not ids:
        raise SystemExit(f"selection {' '.join(args)} collects nothing:\n{done.stdout}")
    return ids


def _run(copy: Path, mutation: Mutation, show: bool) -> Row:
    target = copy / mutation.path
    original = target.read_text()
    started = time.monotonic()
    if original.count(mutation.old) != 1:
        return Row(mutation, "does not apply (code changed)", 0.0)
    target.write_text(original.replace(mutation.old, mutation.new))
    try:
        code, tail = _pytest(copy, mutation.tests, ROW_TIMEOUT_SECONDS)
    finally:
        target.write_text(original)
    seconds = time.monotonic() - started
    if code == 1:  # tests ran and failed
        verdict = "caught"
    elif code == 0:
        verdict = "NOT CAUGHT"
    elif code is None:
        verdict = f"NOT CAUGHT (timed out after {ROW_TIMEOUT_SECONDS}s)"
    else:  # collection error, nothing selected, interrupted: nothing was proved
        verdict = f"error (pytest exit {code})"
    if (show or verdict != "caught") and tail:
        print(f"--- {mutation.name}: {verdict}\n{tail}", file=sys.stderr)
    return Row(mutation, verdict, seconds)


def _table(rows: Sequence[Row]) -> str:
    lines = ["| defect | tests run | result | seconds |", "|---|---|---|---|"]
    for row in rows:
        tests = " ".join(a.removeprefix(T) for a in row.mutation.tests).replace("|", "/")
        lines.append(
            f"| `{row.mutation.name}`: {row.mutation.defect} | `{tests}` | {row.verdict} "
            f"| {row.seconds:.0f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metrics_pipeline_tests.mutations")
    parser.add_argument("--only", action="append", metavar="NAME", help="run this row (repeat)")
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    parser.add_argument(
        "--show", action="store_true", help="print pytest's last lines for caught rows too"
    )
    options = parser.parse_args(argv)
    by_name = {m.name: m for m in MUTATIONS}
    if options.list:
        for m in MUTATIONS:
            print(f"{m.name:30} {m.path}: {m.defect}")
        return 0
    unknown = sorted(set(options.only or ()) - set(by_name))
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; see --list")
    chosen = [by_name[n] for n in options.only] if options.only else list(MUTATIONS)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutations-") as folder:
        copy = Path(folder) / "project"
        shutil.copytree(ROOT, copy, ignore=IGNORED)
        _assert_copy_is_imported(copy)

        union = list(dict.fromkeys(i for m in chosen for i in _collect(copy, m.tests)))
        print(f"baseline: {len(union)} test(s) on the unmutated copy", flush=True)
        code, tail = _pytest(copy, union, ROW_TIMEOUT_SECONDS * 2)
        if code != 0:
            print(f"baseline fails (pytest exit {code}); no mutation run\n{tail}", file=sys.stderr)
            return 2
        print(f"baseline passed in {time.monotonic() - started:.0f}s", flush=True)

        rows = []
        for mutation in chosen:
            rows.append(_run(copy, mutation, options.show))
            print(f"{mutation.name}: {rows[-1].verdict} ({rows[-1].seconds:.0f}s)", flush=True)
    print()
    print(_table(rows))
    total = time.monotonic() - started
    missed = [r.mutation.name for r in rows if not r.caught]
    print(f"\n{len(rows) - len(missed)}/{len(rows)} caught in {total:.0f}s (baseline included)")
    if missed:
        print(f"not caught: {', '.join(missed)}")
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
