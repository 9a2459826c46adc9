"""How fresh each store must be, and when derived stores refresh themselves."""

from datetime import timedelta

from dagster import AutomationCondition, FreshnessPolicy

# Yesterday is collected a couple of hours after it ends in the account's timezone; 30 hours
# leaves room for the furthest timezones and a retry.
DAILY_FRESHNESS = FreshnessPolicy.time_window(
    fail_window=timedelta(hours=30), warn_window=timedelta(hours=26)
)
WEEKLY_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(days=8))
MONTHLY_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(days=32))
CACHE_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(minutes=15))

# A period, cache or rollup is rebuilt when any of its days in daily_kpi_data changed, once
# nothing upstream is still running and the blocking checks of those days passed: bad days
# never flow up. A change is forgotten only on the tick after a rebuild was requested, and
# only if nothing changed again since that request. Dagster's `since_last_handled` also
# forgets on the tick a materialisation ends, and on a tick where change and reset coincide:
# either can hide for good a client's days that changed while a rebuild ran (it may have
# read them before). The price is an extra rebuild now and then.
_CHANGE_HANDLED = (
    (AutomationCondition.newly_requested() | AutomationCondition.initial_evaluation())
    & ~AutomationCondition.any_deps_updated()
).with_label("rebuild requested, nothing changed since")
REFRESH_WHEN_DAYS_CHANGE = (
    AutomationCondition.any_deps_updated().since(_CHANGE_HANDLED)
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
    & AutomationCondition.all_deps_blocking_checks_passed()
).with_label("refresh when its days change")

# The ECB publishes its reference rates around 16:00 CET on TARGET business days. Every
# day after that, the rates of the last week are read again: today's publication replaces
# the rate carried into today (and the days ahead of UTC), and days collected before it
# (accounts east of Berlin) are corrected, which refreshes the portfolio in turn.
FX_REFRESH = (
    AutomationCondition.in_latest_time_window(timedelta(days=7))
    & AutomationCondition.cron_tick_passed("30 16 * * *", "Europe/Berlin")
    & ~AutomationCondition.in_progress()
).with_label("daily after the ECB publication, the last 7 days")
