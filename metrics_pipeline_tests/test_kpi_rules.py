"""The KPI rules that every store relies on, checked on hand-made inputs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd

from metrics_pipeline.domain.conversions import DEFAULT_MAPPING, conversion_metrics
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


def test_purchase_synonyms_are_read_once_in_priority_order():
    actions = [
        {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "3"},
        {"action_type": "purchase", "value": "3"},
        {"action_type": "omni_purchase", "value": "3"},
    ]
    values = [{"action_type": t["action_type"], "value": "120.50"} for t in actions]
    metrics = conversion_metrics(actions, values, DEFAULT_MAPPING)
    assert metrics["reservations"] == 3
    assert metrics["reservation_value_cents"] == 12050
    only_pixel = conversion_metrics(actions[:1], values[:1], DEFAULT_MAPPING)
    assert only_pixel["reservations"] == 3


def test_weeks_start_on_monday_and_months_cross_cleanly():
    week = week_of(date(2026, 11, 1))  # a Sunday
    assert (week.start, week.end) == (date(2026, 10, 26), date(2026, 11, 1))
    assert month_of(date(2028, 2, 10)).end == date(2028, 2, 29)
