"""The KPI rules that every store relies on, checked on hand-made inputs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd

from metrics_pipeline.domain.conversions import conversion_metrics, default_mapping
from metrics_pipeline.domain.kpis import ADDITIVE_METRICS, aggregate_kpis
from metrics_pipeline.domain.periods import month_of, week_of


def _frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame([{**dict.fromkeys(ADDITIVE_METRICS, 0), **r} for r in rows])


def test_ratios_are_ratios_of_sums_not_averages_of_ratios():
    # Day 1: 1 click on 10 impressions (10 %); day 2: 1 click on 1000 impressions (0.1 %).
    frame = _frame(
        {"total_clicks": 1, "total_impressions": 10, "total_spend_cents": 100},
        {"total_clicks": 1, "total_impressions": 1000, "total_spend_cents": 300},
    )
    row = aggregate_kpis(frame).iloc[0]
    assert row["average_ctr"] == Decimal("0.198020")  # 2 / 1010 * 100, not (10 + 0.1) / 2
    assert row["average_cpc"] == Decimal("2.000000")  # 4.00 / 2 clicks


def test_a_zero_denominator_is_no_data_never_zero_or_infinity():
    row = aggregate_kpis(_frame({"total_spend_cents": 500})).iloc[0]
    for name in (
        "average_ctr",
        "average_cpc",
        "cost_per_reservation",
        "average_cpa",
    ):
        assert row[name] is None
    assert aggregate_kpis(_frame({"reservation_value_cents": 100})).iloc[0]["roas"] is None


def test_ratios_of_each_group_are_ratios_of_that_group_sums():
    # Group "a": CTR 10 % and 0.1 % on its two rows (ratio of sums 0.198020, average 5.05);
    # group "b": 50 % and 1 % (ratio of sums 1.960784, average 25.5).
    frame = _frame(
        {"g": "a", "total_clicks": 1, "total_impressions": 10, "total_spend_cents": 100},
        {"g": "a", "total_clicks": 1, "total_impressions": 1000, "total_spend_cents": 300},
        {"g": "b", "total_clicks": 1, "total_impressions": 2, "total_spend_cents": 50},
        {
            "g": "b",
            "total_clicks": 1,
            "total_impressions": 100,
            "total_spend_cents": 950,
            "reservations": 1,
            "reservation_value_cents": 5000,
        },
        {
            "g": "b",
            "total_clicks": 0,
            "total_impressions": 0,
            "total_spend_cents": 0,
            "reservations": 3,
            "reservation_value_cents": 1000,
        },
    )
    rows = {r["g"]: r for r in aggregate_kpis(frame, by=["g"]).to_dict("records")}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["total_clicks"] == 2 and rows["a"]["total_impressions"] == 1010
    assert rows["a"]["average_ctr"] == Decimal("0.198020")  # 2 / 1010 * 100
    assert rows["a"]["average_cpc"] == Decimal("2.000000")  # 4.00 / 2 clicks
    assert rows["a"]["roas"] == Decimal("0.000000")  # no value on 4.00 of spend
    assert rows["a"]["cost_per_reservation"] is None  # no reservations
    assert rows["b"]["average_ctr"] == Decimal("1.960784")  # 2 / 102 * 100, not 25.5
    assert rows["b"]["average_cpc"] == Decimal("5.000000")  # 10.00 / 2, not (0.50 + 9.50) / 2
    assert rows["b"]["roas"] == Decimal("6.000000")  # 60.00 / 10.00
    assert rows["b"]["cost_per_reservation"] == Decimal("2.500000")  # 10.00 / 4


def test_purchase_synonyms_are_read_once_in_priority_order():
    # As Meta reports them: the same purchases under three names, counted differently.
    # The default mapping (every client of the clients file) reads omni_purchase first,
    # then purchase, then the pixel's name.
    actions = [
        {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "2"},
        {"action_type": "purchase", "value": "4"},
        {"action_type": "omni_purchase", "value": "5"},
    ]
    values = [
        {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "80.25"},
        {"action_type": "purchase", "value": "160.50"},
        {"action_type": "omni_purchase", "value": "200.75"},
    ]
    metrics = conversion_metrics(actions, values, default_mapping())
    assert metrics["reservations"] == 5
    assert metrics["reservation_value_cents"] == 20075
    assert metrics["total_conversions"] == 5
    without_omni = conversion_metrics(actions[:2], values[:2], default_mapping())
    assert (without_omni["reservations"], without_omni["reservation_value_cents"]) == (4, 16050)
    only_pixel = conversion_metrics(actions[:1], values[:1], default_mapping())
    assert (only_pixel["reservations"], only_pixel["reservation_value_cents"]) == (2, 8025)


def test_weeks_start_on_monday_and_months_cross_cleanly():
    week = week_of(date(2026, 11, 1))  # a Sunday
    assert (week.start, week.end) == (date(2026, 10, 26), date(2026, 11, 1))
    assert month_of(date(2028, 2, 10)).end == date(2028, 2, 29)
