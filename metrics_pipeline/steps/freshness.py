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
# never flow up. A change is forgotten only once the sensor requested a rebuild after it,
# not when a materialisation ends (Dagster's `since_last_handled`): a rebuild that started
# before another client's days changed would otherwise hide that change for good. The
# price is one extra rebuild after a materialisation from the UI or the command line.
REFRESH_WHEN_DAYS_CHANGE = (
    AutomationCondition.any_deps_updated().since(
        (
            AutomationCondition.newly_requested() | AutomationCondition.initial_evaluation()
        ).with_label("rebuild requested")
    )
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
