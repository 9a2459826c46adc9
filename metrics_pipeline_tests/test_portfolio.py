"""The agency view against the sandbox: exchange rates, the portfolio in EUR and its rates.

Every expected number is computed here from the sandbox's true spend and its published
rates, in a few lines of plain Decimal arithmetic: nothing is imported from `domain/`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance, Definitions

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.fx.resource import FxResource
from metrics_pipeline.runner import run_stage
from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline.sandbox.world import World
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import NOW, make_instance, make_resources
from metrics_pipeline_tests.helpers import days_between, monday_of
from metrics_pipeline_tests.truth import PortfolioRows, portfolio_truth, stored_portfolio

CENT = Decimal("0.01")
# Christmas week 2025: the ECB publishes on Wednesday the 24th, then not on the 25th and
# 26th (TARGET holidays) nor the weekend; November 2026 runs to the day before "now".
CHRISTMAS_WEEK = (date(2025, 12, 22), date(2025, 12, 28))
NOVEMBER = (date(2026, 11, 9), date(2026, 11, 17))
FX = [AssetKey("fx_rates")]
PORTFOLIO = [AssetKey("portfolio_kpis")]
RAW_AND_DAILY = [AssetKey("meta_insights"), AssetKey("daily_kpi_data")]


@dataclass
class Stack:
    world: World
    catalog: Catalog
    sandbox: SandboxServer
    defs: Definitions
    instance: DagsterInstance
    warehouse: WarehouseResource
    revisions: dict[tuple[str, date], int] = field(default_factory=dict)

    def run(self, selection, first: str | None = None, last: str | None = None):
        return run_stage(self.defs, self.instance, "test", selection, first, last, {}, "ERROR")


@pytest.fixture(scope="module")
def stack(world, catalog, module_warehouse_url, tmp_path_factory) -> Iterator[Stack]:
    with (
        SandboxServer(world, now=NOW) as sandbox,
        make_instance(tmp_path_factory.mktemp("dagster_home")) as instance,
    ):
        defs = build_definitions(catalog, make_resources(sandbox.url, module_warehouse_url))
        stack = Stack(
            world, catalog, sandbox, defs, instance, WarehouseResource(url=module_warehouse_url)
        )
        # Only the layers the portfolio stands on, one run each: objects (timezones),
        # raw and daily per window, the rates of both windows, then the portfolio.
        first, last = catalog.client_ids[0], catalog.client_ids[-1]
        assert stack.run([AssetKey("meta_ad_objects")], first, last).success
        for start, end in (CHRISTMAS_WEEK, NOVEMBER):
            assert stack.run(RAW_AND_DAILY, f"{first}|{start}", f"{last}|{end}").success
            assert stack.run(FX, str(start), str(end)).success
        assert stack.run(PORTFOLIO).success
        yield stack


def expected_portfolio(stack: Stack, to: str = "EUR") -> PortfolioRows:
    windows = days_between(*CHRISTMAS_WEEK) + days_between(*NOVEMBER)
    return portfolio_truth(
        stack.world,
        stack.sandbox.state.ecb,
        {c.id: c.meta_ad_account_id.removeprefix("act_") for c in stack.catalog.clients},
        {c.id: windows for c in stack.catalog.clients},
        NOW,
        to,
        stack.revisions,
    )


def test_every_portfolio_row_equals_the_converted_truth(stack: Stack):
    expected, stored = expected_portfolio(stack), stored_portfolio(stack.warehouse)
    assert sorted(stored) == sorted(expected)
    wrong = {key: (stored[key], want) for key, want in expected.items() if stored[key] != want}
    assert not wrong, list(wrong.items())[:5]
    # The week with the holidays and a weekend, the JPY client and the EUR client are in it.
    week = ("week", CHRISTMAS_WEEK[0])
    assert {key[2] for key in stored if key[:2] == week} == {
        *(c.id for c in stack.catalog.clients),
        "*",
    }
    assert stored[(*week, "sakura_ryokan")]["spend"] > 0


def test_holidays_and_the_weekend_carry_the_last_publication(stack: Stack):
    rates = stack.warehouse.read("fx_rates", {"date": days_between(*CHRISTMAS_WEEK)})
    published = {
        (r["date"], r["currency"]): (r["published_date"], Decimal(r["rate_per_eur"]))
        for r in rates.to_dict("records")
    }
    christmas_eve = date(2025, 12, 24)
    for day in days_between(*CHRISTMAS_WEEK):
        carried = christmas_eve if day >= christmas_eve else day
        for currency in ("USD", "NZD", "JPY"):
            rate, _ = stack.sandbox.state.ecb.rate_in_force(currency, carried, NOW)
            assert published[(day, currency)] == (carried, rate), (day, currency)
        assert published[(day, "EUR")] == (day, Decimal(1))


def test_the_portfolio_reports_in_yen_to_the_whole_yen(stack: Stack):
    """METRICS_REPORTING_CURRENCY=JPY: every amount converted through the euro and rounded
    once per client-day to whole yen; the JPY client keeps its own amounts."""
    resources = {
        **stack.defs.resources,
        "fx": FxResource(rates_url=stack.defs.resources["fx"].rates_url, reporting_currency="JPY"),
    }
    in_yen = build_definitions(stack.catalog, resources)
    try:
        assert run_stage(in_yen, stack.instance, "test", PORTFOLIO, None, None, {}, "ERROR").success
        stored, expected = (
            stored_portfolio(stack.warehouse, "JPY"),
            expected_portfolio(stack, "JPY"),
        )
        assert sorted(stored) == sorted(expected)
        wrong = {key: (stored[key], want) for key, want in expected.items() if stored[key] != want}
        assert not wrong, list(wrong.items())[:5]
        assert all(row["spend"] == row["spend"].to_integral_value() for row in stored.values())
    finally:
        assert stack.run(PORTFOLIO).success  # back to EUR for the other tests


def test_the_reporting_currency_client_keeps_its_exact_amounts(stack: Stack):
    """Rate 1, no rounding: the EUR client's portfolio rows are its own stored sums."""
    stored = stored_portfolio(stack.warehouse)
    daily = stack.warehouse.read("daily_kpi_data", {"client_id": "altstadt_apartments"})
    weekly = defaultdict(Decimal)
    for row in daily.to_dict("records"):
        weekly[monday_of(row["date"])] += Decimal(row["total_spend"])
    for monday, spend in weekly.items():
        assert stored[("week", monday, "altstadt_apartments")]["spend"] == spend


def test_a_corrected_rate_and_late_attribution_reach_the_portfolio(stack: Stack):
    before = stack.warehouse.read("portfolio_kpis")
    # Re-running changes nothing.
    assert stack.run(PORTFOLIO).success
    again = stack.warehouse.read("portfolio_kpis")
    key = ["period_type", "period_start", "client_id"]
    assert (
        before.sort_values(key)
        .reset_index(drop=True)
        .equals(again.sort_values(key).reset_index(drop=True))
    )
    # The ECB corrects Tuesday's USD rate; late conversions arrive for the EUR client.
    tuesday = date(2026, 11, 10)
    old, _ = stack.sandbox.state.ecb.rate_in_force("USD", tuesday, NOW)
    stack.sandbox.state.ecb.correct("USD", tuesday, old * Decimal("1.02"))
    stack.sandbox.set_revision(1)
    late = days_between(date(2026, 11, 12), NOVEMBER[1])
    stack.revisions.update({("altstadt_apartments", day): 1 for day in late})
    try:
        assert stack.run(FX, str(tuesday), str(tuesday)).success
        assert stack.run(
            [AssetKey("meta_insights"), AssetKey("daily_kpi_data")],
            f"altstadt_apartments|{late[0]}",
            f"altstadt_apartments|{late[-1]}",
        ).success
        assert stack.run(PORTFOLIO).success
        stored, expected = stored_portfolio(stack.warehouse), expected_portfolio(stack)
        assert stored == expected
        assert stored[("day", tuesday, "canyon_lodge")]["spend"] != money_of(
            before, ("day", tuesday, "canyon_lodge"), "total_spend"
        )
        assert stored[("day", late[0], "altstadt_apartments")]["value"] != money_of(
            before, ("day", late[0], "altstadt_apartments"), "reservation_value"
        )
    finally:
        stack.sandbox.state.ecb.corrections.clear()
        stack.sandbox.set_revision(0)


def money_of(frame, key: tuple[str, date, str], column: str) -> Decimal:
    chosen = frame[
        (frame["period_type"] == key[0])
        & (frame["period_start"] == key[1])
        & (frame["client_id"] == key[2])
    ]
    return Decimal(chosen.iloc[0][column])


def test_a_missing_rate_fails_the_rates_check_and_stops_the_portfolio(stack: Stack):
    """JPY leaves the feed for two weeks: from the sixth day on no rate is usable."""
    stack.sandbox.state.ecb.withhold("JPY", date(2026, 11, 2), date(2026, 11, 13))
    day = date(2026, 11, 9)  # last JPY publication: Friday 30 October, 10 days before
    before = stack.warehouse.read("portfolio_kpis")
    try:
        outcome = stack.run(FX, str(day), str(day))
        assert not outcome.success
        evaluation = latest_rates_evaluation(stack.instance)
        assert not evaluation.passed
        offending = evaluation.metadata["offending_json"].value
        assert [(r["client"], r["date"], r["currency"], r["rule"]) for r in offending] == [
            ("sakura_ryokan", "2026-11-09", "JPY", "no_usable_rate")
        ]
        # The portfolio refuses to convert without the rate, naming client, day and currency.
        failed = stack.run(PORTFOLIO)
        assert not failed.success
        assert any(
            "client 'sakura_ryokan', date 2026-11-09, field 'currency': no usable JPY rate" in e
            for e in failed.errors
        ), failed.errors
        assert stack.warehouse.read("portfolio_kpis").equals(before)  # never half a table
    finally:
        stack.sandbox.state.ecb.withheld.clear()
    assert stack.run(FX, str(day), str(day)).success


def test_a_rate_jump_fails_the_rates_check(stack: Stack):
    """A USD publication 8 % off the one before (the limit is 5 %) is named."""
    day = date(2026, 11, 13)
    previous, _ = stack.sandbox.state.ecb.rate_in_force("USD", date(2026, 11, 12), NOW)
    jumped = (previous * Decimal("1.08")).quantize(Decimal("0.0001"))
    stack.sandbox.state.ecb.correct("USD", day, jumped)
    moved = (abs(jumped / previous - 1) * 100).quantize(Decimal("0.0001"))
    try:
        assert not stack.run(FX, str(day), str(day)).success
        offending = latest_rates_evaluation(stack.instance).metadata["offending_json"].value
        assert [(r["client"], r["date"], r["currency"], r["rule"]) for r in offending] == [
            ("*", "2026-11-13", "USD", "rate_move")
        ]
        assert offending[0]["detail"].endswith(f"({moved}% > 5.0%)"), offending
    finally:
        stack.sandbox.state.ecb.corrections.clear()
    assert stack.run(FX, str(day), str(day)).success


@pytest.mark.parametrize(
    ("step", "passes"),
    [
        (Decimal("0"), True),  # exactly 5 % above the publication before: the limit itself
        (Decimal("0.000001"), False),  # one stored step (a millionth) more: 5.0001 %
    ],
)
def test_the_shipped_rates_move_limit_is_5_percent_included(stack: Stack, step, passes):
    day = date(2026, 11, 13)
    previous, _ = stack.sandbox.state.ecb.rate_in_force("USD", date(2026, 11, 12), NOW)
    stack.sandbox.state.ecb.correct("USD", day, previous * Decimal("1.05") + step)
    try:
        assert stack.run(FX, str(day), str(day)).success is passes
        evaluation = latest_rates_evaluation(stack.instance)
        offending = [] if passes else evaluation.metadata["offending_json"].value
        assert evaluation.passed is passes
        assert [(r["currency"], r["rule"]) for r in offending] == (
            [] if passes else [("USD", "rate_move")]
        )
    finally:
        stack.sandbox.state.ecb.corrections.clear()
    assert stack.run(FX, str(day), str(day)).success


@pytest.mark.parametrize(
    ("rate", "why"),
    [
        ("1E-7", "rounds to zero at the stored 6 decimals"),  # would be stored as 0.000000
        ("1E+30", "does not fit the stored NUMERIC(18, 6)"),  # PostgreSQL would refuse it
    ],
)
def test_a_rate_the_table_cannot_hold_fails_the_step_naming_it(stack: Stack, rate, why):
    """Refused before the write, as published: the table keeps the rates it had."""
    day = date(2026, 11, 12)
    before = stack.warehouse.read("fx_rates", {"date": [day]})
    stack.sandbox.state.ecb.correct("USD", day, Decimal(rate))
    try:
        outcome = stack.run(FX, str(day), str(day))
        assert not outcome.success
        feed = f"exchange-rate feed {stack.sandbox.url}{FEED_PATH}"
        assert any(
            f"{feed}: publication {day}, currency USD, rate {rate}: {why}; nothing stored" in e
            for e in outcome.errors
        ), outcome.errors
        assert stack.warehouse.read("fx_rates", {"date": [day]}).equals(before)
    finally:
        stack.sandbox.state.ecb.corrections.clear()
    assert stack.run(FX, str(day), str(day)).success


def test_rates_outside_the_plausible_range_fail_the_rates_check(stack: Stack):
    """0.001 to 1,000,000 units per euro, both ends included: one stored step (0.000001)
    outside each end is named with its currency, day and value; the end itself and one step
    inside pass."""
    day = date(2026, 11, 13)
    rates = {
        "USD": "0.000999",
        "GBP": "0.001",
        "CHF": "0.001001",
        "AUD": "999999.999999",
        "SEK": "1000000",
        "JPY": "1000000.000001",
    }
    for currency, rate in rates.items():
        stack.sandbox.state.ecb.correct(currency, day, Decimal(rate))
    # Moves of any size allowed, so only the plausible range can fail the check.
    resources = {
        **stack.defs.resources,
        "fx": FxResource(rates_url=stack.defs.resources["fx"].rates_url, max_move_pct=1e9),
    }
    any_move = build_definitions(stack.catalog, resources)
    try:
        outcome = run_stage(any_move, stack.instance, "test", FX, str(day), str(day), {}, "ERROR")
        assert not outcome.success
        offending = latest_rates_evaluation(stack.instance).metadata["offending_json"].value
        plausible = "outside the plausible 0.001 to 1000000 per EUR"
        assert [
            (r["client"], r["date"], r["currency"], r["rule"], r["detail"]) for r in offending
        ] == [
            ("*", "2026-11-13", "JPY", "implausible_rate", f"1000000.000001 {plausible}"),
            ("*", "2026-11-13", "USD", "implausible_rate", f"0.000999 {plausible}"),
        ]
    finally:
        stack.sandbox.state.ecb.corrections.clear()
    assert stack.run(FX, str(day), str(day)).success


def latest_rates_evaluation(instance: DagsterInstance):
    key = AssetCheckKey(AssetKey("fx_rates"), "rates")
    record = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)[0]
    return record.event.dagster_event.event_specific_data
