"""The rules of the conversion_tracking and kpi_anomalies checks as pure functions: exact
expectations one step each side of every default threshold, a weekday pattern and a small
client that must not alert, the sandbox's planted incidents found on their days, and no
alert at all on 90 normal days of every demo client."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from metrics_pipeline.domain.anomalies import AnomalyRule, DayKpis, kpi_anomalies
from metrics_pipeline.domain.tracking import (
    DayFigures,
    TrackingBreak,
    TrackingRule,
    judge_days,
    tracking_break,
)
from metrics_pipeline.sandbox import plants
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.sandbox.world import DEMO_ACCOUNTS, World
from metrics_pipeline_tests.conftest import NOW

RULE = TrackingRule()
ANOMALY = AnomalyRule()
START = date(2026, 9, 7)  # a Monday
SIX = Decimal("0.000001")


def steady(days: int, spend: str, conversions: int, start: date = START) -> list[DayFigures]:
    return [DayFigures(start + timedelta(n), Decimal(spend), conversions) for n in range(days)]


def then(history: list[DayFigures], *days: tuple[str, int]) -> list[DayFigures]:
    """`history` followed by one day per (spend, conversions)."""
    last = history[-1].day
    return history + [
        DayFigures(last + timedelta(n + 1), Decimal(s), c) for n, (s, c) in enumerate(days)
    ]


# --- conversion_tracking ------------------------------------------------------------------


def test_a_day_at_10_pct_of_its_conversions_is_a_break_and_one_more_is_not():
    history = steady(28, "100.00", 40)
    found = tracking_break(then(history, ("100.00", 4)), RULE)
    assert found == TrackingBreak(
        days=(date(2026, 10, 5),),
        spend=Decimal("100.00"),
        conversions=4,
        expected=Decimal(40),
        spend_range=(Decimal("100.00"), Decimal("100.00")),
        conversions_range=(40, 40),
    )
    assert tracking_break(then(history, ("100.00", 5)), RULE) is None


def test_spend_at_a_quarter_of_its_usual_still_counts_a_cent_less_does_not():
    history = steady(28, "100.00", 40)
    found = tracking_break(then(history, ("25.00", 0)), RULE)
    assert found is not None
    assert found.expected == Decimal(10)  # expectations scale down with the spend
    assert tracking_break(then(history, ("24.99", 0)), RULE) is None


def test_days_that_should_have_had_10_conversions_alert_and_9_do_not():
    small = steady(28, "20.00", 2)  # a small client: 2 bookings a day
    assert tracking_break(then(small, *[("20.00", 0)] * 4), RULE) is None  # 8 expected
    found = tracking_break(then(small, *[("20.00", 0)] * 5), RULE)
    assert found is not None and found.expected == Decimal(10) and len(found.days) == 5
    nine = steady(28, "20.00", 9)
    assert tracking_break(then(nine, ("20.00", 0)), RULE) is None
    ten = steady(28, "20.00", 10)
    assert tracking_break(then(ten, ("20.00", 0)), RULE).days == (date(2026, 10, 5),)


def test_a_weekday_without_conversions_is_not_a_break():
    # No bookings on Sundays, ever: the same weekday's history says so.
    days = [
        DayFigures(START + timedelta(n), Decimal("80.00"), 0 if n % 7 == 6 else 30)
        for n in range(84)
    ]
    assert days[-1].day.weekday() == 6
    assert [v.figures.day for v in judge_days(days, RULE) if v.broken] == []
    assert tracking_break(days, RULE) is None


def test_spending_more_does_not_raise_the_conversions_expected():
    history = steady(28, "100.00", 40)
    assert tracking_break(then(history, ("1000.00", 40)), RULE) is None
    assert tracking_break(then(history, ("1000.00", 4)), RULE).expected == Decimal(40)


def test_a_break_of_five_weeks_stays_a_break_and_ends_when_conversions_return():
    history = steady(28, "100.00", 40)
    broken = then(history, *[("100.00", 0)] * 35)
    found = tracking_break(broken, RULE)
    assert found is not None
    assert found.days[0] == date(2026, 10, 5) and len(found.days) == 35
    assert found.expected == Decimal(40 * 35)
    assert tracking_break(then(broken, ("100.00", 38)), RULE) is None


def test_a_day_needs_three_same_weekdays_before_it_to_be_judged():
    assert tracking_break(then(steady(14, "100.00", 40), ("100.00", 0)), RULE) is None
    assert tracking_break(then(steady(21, "100.00", 40), ("100.00", 0)), RULE) is not None


# --- kpi_anomalies --------------------------------------------------------------------------


def kpis(day: date, spend: str, conversions: int = 50, reservations: int = 50, **ratios):
    return DayKpis(
        day, Decimal(spend), conversions, reservations, ratios.get("cpa"), ratios.get("roas")
    )


def spend_history(values: list[str]) -> list[DayKpis]:
    return [kpis(START + timedelta(n), v) for n, v in enumerate(values)]


def judged_day(history: list[DayKpis], spend: str) -> list[tuple[date, str, Decimal]]:
    day = history[-1].day + timedelta(1)
    found, _ = kpi_anomalies([*history, kpis(day, spend)], [day], ANOMALY)
    return [(a.day, a.metric, a.value) for a in found]


def ratio_history(cpa: str, roas: str) -> list[DayKpis]:
    return [
        kpis(START + timedelta(n), "100.00", cpa=Decimal(cpa), roas=Decimal(roas))
        for n in range(28)
    ]


def flagged(history: list[DayKpis], day: DayKpis) -> list[tuple[str, Decimal]]:
    found, _ = kpi_anomalies([*history, day], [day.day], ANOMALY)
    return [(a.metric, a.value) for a in found]


def test_the_band_is_never_narrower_than_a_factor_of_1_25_on_the_side_that_costs():
    flat = spend_history(["100.00"] * 28)
    day = date(2026, 10, 5)
    assert judged_day(flat, "125.00") == []
    assert judged_day(flat, "125.01") == [(day, "spend", Decimal("125.01"))]
    assert judged_day(flat, "1.00") == []  # spend below its band: pacing's concern
    history = ratio_history(cpa="20", roas="4")
    assert flagged(history, kpis(day, "100.00", cpa=Decimal("25.00"), roas=Decimal(4))) == []
    assert flagged(history, kpis(day, "100.00", cpa=Decimal("25.01"), roas=Decimal(4))) == [
        ("cpa", Decimal("25.01"))
    ]
    assert flagged(history, kpis(day, "100.00", cpa=Decimal(1), roas=Decimal("3.20"))) == []
    assert flagged(history, kpis(day, "100.00", cpa=Decimal(20), roas=Decimal("3.19"))) == [
        ("roas", Decimal("3.19"))
    ]
    assert flagged(history, kpis(day, "100.00", cpa=Decimal(20), roas=Decimal(90))) == []


def test_the_band_is_10_typical_day_to_day_changes_of_the_logarithms():
    # Days alternate 100 and 105: every change is ln 1.05; the median, between the two
    # middle logs, is sqrt(100 x 105).
    history = spend_history(["100", "105"] * 14)
    centre = (Decimal(100) * Decimal(105)).sqrt()
    high = centre * Decimal("1.05") ** 10  # 166.911...
    assert high.quantize(Decimal("0.01"), ROUND_HALF_UP) == Decimal("166.91")
    assert judged_day(history, "166.91") == []
    assert len(judged_day(history, "166.92")) == 1
    day = history[-1].day + timedelta(1)
    (anomaly,), _ = kpi_anomalies([*history, kpis(day, "166.92")], [day], ANOMALY)
    assert anomaly.band.median == centre.quantize(SIX, ROUND_HALF_UP)
    assert anomaly.band.high == high.quantize(SIX, ROUND_HALF_UP)
    assert anomaly.band.low == (centre / Decimal("1.05") ** 10).quantize(SIX, ROUND_HALF_UP)


def test_cpa_and_roas_are_judged_from_5_conversions_a_day():
    def history(conversions: int) -> list[DayKpis]:
        return [
            kpis(
                START + timedelta(n),
                "100.00",
                conversions,
                conversions,
                cpa=Decimal(20),
                roas=Decimal(3),
            )
            for n in range(28)
        ]

    day = date(2026, 10, 5)
    bad = kpis(day, "100.00", 1, 1, cpa=Decimal(100), roas=Decimal("0.5"))
    found, judged = kpi_anomalies([*history(5), bad], [day], ANOMALY)
    assert judged == [(day, "spend"), (day, "cpa"), (day, "roas")]
    assert [(a.metric, a.value) for a in found] == [
        ("cpa", Decimal(100)),
        ("roas", Decimal("0.5")),
    ]
    found, judged = kpi_anomalies([*history(4), bad], [day], ANOMALY)
    assert judged == [(day, "spend")] and found == []


@pytest.mark.parametrize(("spend", "judged_ratios"), [("25.00", True), ("24.99", False)])
def test_cpa_and_roas_of_a_day_that_spent_under_a_quarter_of_usual_are_not_judged(
    spend, judged_ratios
):
    """Usually 100.00 a day: from 25.00 a day without a booking is judged (ROAS 0 is below
    its band); a cent less, as on a day spent without an impression, it is not."""
    history = [
        kpis(START + timedelta(n), "100.00", 10, 10, cpa=Decimal(10), roas=Decimal(3))
        for n in range(28)
    ]
    day = date(2026, 10, 5)
    idle = kpis(day, spend, 0, 0, cpa=None, roas=Decimal(0))
    found, judged = kpi_anomalies([*history, idle], [day], ANOMALY)
    assert judged == ([(day, "spend"), (day, "roas")] if judged_ratios else [(day, "spend")])
    assert [(a.metric, a.value) for a in found] == ([("roas", 0)] if judged_ratios else [])


def test_a_day_needs_14_days_before_it_and_a_value_to_be_judged():
    day = date(2026, 9, 21)
    assert judged_day(spend_history(["100.00"] * 13), "900.00") == []
    assert judged_day(spend_history(["100.00"] * 14), "900.00") == [
        (day, "spend", Decimal("900.00"))
    ]
    history = [kpis(START + timedelta(n), "100.00", cpa=Decimal(2)) for n in range(28)]
    no_cpa = kpis(date(2026, 10, 5), "100.00", 0, 0)  # nothing to divide by: NULL
    found, judged = kpi_anomalies([*history, no_cpa], [no_cpa.day], ANOMALY)
    assert (no_cpa.day, "cpa") not in judged and found == []


# --- the sandbox's days ----------------------------------------------------------------------


def truth_series(world: World, account: str, days: list[date], today: date):
    """(tracking figures, KPI days) of the account, from the ground truth, ratios written
    out here: CPA = spend / conversions, ROAS = reservation value / spend, six decimals."""
    figures, kpi_days = [], []
    for day in days:
        t = day_truth(world, account, day, 0, today)
        cpa = (
            (t.spend / t.total_conversions).quantize(SIX, ROUND_HALF_UP)
            if t.total_conversions
            else None
        )
        roas = (t.reservation_value / t.spend).quantize(SIX, ROUND_HALF_UP) if t.spend else None
        figures.append(DayFigures(day, t.spend, t.reservations))
        kpi_days.append(DayKpis(day, t.spend, t.total_conversions, t.reservations, cpa, roas))
    return figures, kpi_days


TODAY = NOW.date()
NINETY = [TODAY - timedelta(days=n) for n in range(90, 0, -1)]
HISTORY = [TODAY - timedelta(days=n) for n in range(90 + 16 * 7, 0, -1)]


@pytest.mark.parametrize("spec", DEMO_ACCOUNTS, ids=[s.name for s in DEMO_ACCOUNTS])
def test_no_alert_on_90_normal_days_of_a_demo_client(spec):
    world = World(anchor=TODAY)
    figures, kpi_days = truth_series(world, f"act_{spec.account_id}", HISTORY, TODAY)
    breaks = [day for day in NINETY if tracking_break([f for f in figures if f.day <= day], RULE)]
    assert breaks == []
    found, judged = kpi_anomalies(kpi_days, NINETY, ANOMALY)
    assert found == []
    assert {day for day, _ in judged} == set(NINETY)  # every day was judged


def test_the_planted_break_and_spike_are_found_on_their_days_and_nothing_else():
    world = World(anchor=TODAY)
    broken = [TODAY - timedelta(days=n) for n in (3, 2, 1)]
    spike = TODAY - timedelta(days=6)
    plants.plant(world, plants.TrackingBreak("1000000002", broken[0], broken[-1]))
    plants.plant(world, plants.SpendSpike("1000000003", spike, 10))
    found = {}
    for spec in DEMO_ACCOUNTS:
        figures, kpi_days = truth_series(world, f"act_{spec.account_id}", HISTORY, TODAY)
        anomalies, _ = kpi_anomalies(kpi_days, NINETY, ANOMALY)
        found[spec.account_id] = (
            tracking_break(figures, RULE),
            {(a.day, a.metric) for a in anomalies},
        )
    assert found["1000000002"][0].days == tuple(broken)
    assert found["1000000002"][0].conversions == 0
    assert found["1000000003"][1] >= {(spike, "spend")}
    assert {day for day, _ in found["1000000002"][1]} <= set(broken)
    assert {day for day, _ in found["1000000003"][1]} == {spike}
    assert found["1000000003"][0] is None
    assert all(found[a] == (None, set()) for a in ("1000000001", "1000000004"))
