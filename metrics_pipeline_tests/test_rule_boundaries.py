"""Rules with a threshold or a window, one step inside and one step outside, at the defaults
a user gets (a client written without pacing settings, `CheckSettings()` as shipped).

Each expected value is worked out by hand beside it: a defect that moves a boundary, or
turns `<=` into `<`, fails here."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from metrics_pipeline.checks.quality import judge_day
from metrics_pipeline.checks.settings import CheckSettings
from metrics_pipeline.config.clients import ClientConfig, load_clients
from metrics_pipeline.domain.pacing import judge
from metrics_pipeline.domain.periods import due_days, last_due_day
from metrics_pipeline_tests.conftest import BUNDLED_CLIENTS

# A client as a clients file without a `pacing` section gives it.
CLIENT = ClientConfig(id="c", name="C", meta_ad_account_id="act_1")


def projection(projected_spend: str, projected_reservations: str | None = None) -> dict:
    """The month's projection on the 11th of a 30-day month (10 whole days, 20 to come)."""
    return {
        "days_elapsed": 10,
        "days_in_month": 30,
        "projected_spend": Decimal(projected_spend),
        "monthly_budget": Decimal("1000.00"),
        "projected_reservations": (
            Decimal(projected_reservations) if projected_reservations else None
        ),
        "reservation_target": 200 if projected_reservations else None,
        "projected_conversions": None,
        "conversion_target": None,
    }


@pytest.mark.parametrize(
    ("projected", "off"),
    [
        ("699.99", True),  # under 70 % of 1,000.00
        ("700.00", False),  # the band's lower end is inside
        ("1150.00", False),  # so is its upper end, 115 %
        ("1150.01", True),
    ],
)
def test_the_spend_band_is_70_to_115_percent_of_the_budget_ends_included(projected, off):
    found, judged, _ = judge(projection(projected), CLIENT.pacing.rule)
    assert judged == ["spend"]
    assert [(o.condition, o.projected, o.days_left) for o in found] == (
        [("spend", Decimal(projected), 20)] if off else []
    )
    if off:
        assert found[0].limit == "budget 1000.00 (70%-115%)"


@pytest.mark.parametrize(
    ("projected", "off"),
    [
        ("179.999999", True),  # under 90 % of the target of 200
        ("180", False),  # 90 % itself is on pace
        ("180.000001", False),
    ],
)
def test_a_target_is_met_from_90_percent_of_it(projected, off):
    found, judged, _ = judge(projection("1000.00", projected), CLIENT.pacing.rule)
    assert judged == ["spend", "reservations"]
    assert [o.condition for o in found] == (["reservations"] if off else [])


# 2026-12-01 in Auckland (UTC+13 in December): 06:00 there is 17:00 UTC on 30 November.
AUCKLAND_SIX = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
# A Sunday night in Los Angeles (UTC-8): 06:00 on Monday 2026-11-23 is 14:00 UTC.
LA_MONDAY_SIX = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "tz", "last"),
    [
        (AUCKLAND_SIX - timedelta(minutes=1), "Pacific/Auckland", date(2026, 11, 29)),
        (AUCKLAND_SIX, "Pacific/Auckland", date(2026, 11, 30)),
        (LA_MONDAY_SIX - timedelta(minutes=1), "America/Los_Angeles", date(2026, 11, 21)),
        (LA_MONDAY_SIX, "America/Los_Angeles", date(2026, 11, 22)),
    ],
)
def test_yesterday_is_due_from_the_shipped_freshness_hour_in_the_client_zone(moment, tz, last):
    assert CheckSettings().daily_fresh_by_hour == 6
    assert last_due_day(moment, tz, CheckSettings().daily_fresh_by_hour) == last


def test_the_completeness_window_is_the_last_90_due_days_and_no_day_before_the_history():
    settings = CheckSettings()
    days = due_days(date(2025, 1, 1), AUCKLAND_SIX, "Pacific/Auckland", 6, 90)
    assert settings.completeness_days == 90
    assert (len(days), days[0], days[-1]) == (90, date(2026, 9, 2), date(2026, 11, 30))
    # A history that starts inside the window shortens it: the day before it is never due.
    started = due_days(date(2026, 11, 20), AUCKLAND_SIX, "Pacific/Auckland", 6, 90)
    assert (started[0], len(started)) == (date(2026, 11, 20), 11)


def stored_day(**changes: object) -> dict[str, object]:
    """A daily_kpi_data row as read back: 1,000 impressions, 20 clicks, 30.00 spent (CTR 2 %,
    CPC 1.50, both well inside the default bounds), booking steps in order."""
    row: dict[str, object] = {
        "client_id": "c",
        "date": date(2026, 11, 17),
        "total_impressions": 1000,
        "total_clicks": 20,
        "total_conversions": 3,
        "click_to_call": 1,
        "email_contacts": 0,
        "booking_step_1": 9,
        "booking_step_2": 5,
        "booking_step_3": 2,
        "reservations": 2,
        "total_spend": Decimal("30.00"),
        "reservation_value": Decimal("400.00"),
        "average_ctr": Decimal("2.000000"),
        "average_cpc": Decimal("1.500000"),
    }
    return {**row, **changes}


@pytest.mark.parametrize(
    ("changes", "failed"),
    [
        ({"average_ctr": Decimal("0.1")}, []),  # the default CTR bounds, 0.1 % and 10 %,
        ({"average_ctr": Decimal("10")}, []),  # are inside
        ({"average_ctr": Decimal("0.099999")}, ["ctr_bounds"]),
        ({"average_ctr": Decimal("10.000001")}, ["ctr_bounds"]),
        ({"average_cpc": Decimal("0.10")}, []),  # so are the CPC bounds, 0.10 and 50
        ({"average_cpc": Decimal("50")}, []),
        ({"average_cpc": Decimal("0.099999")}, ["cpc_bounds"]),
        ({"average_cpc": Decimal("50.000001")}, ["cpc_bounds"]),
        ({"total_clicks": 1000}, []),  # as many clicks as impressions is possible
        ({"total_clicks": 1001}, ["clicks_le_impressions"]),
        ({"booking_step_2": 9}, []),  # equal steps keep the funnel ordered
        ({"booking_step_3": 6}, ["funnel"]),
        ({"total_spend": Decimal("0.01")}, []),  # one cent is spend
        ({"total_spend": Decimal("0.00")}, ["spend_present"]),
    ],
)
def test_the_default_quality_bounds_hold_their_ends(changes, failed):
    verdict = judge_day(stored_day(**changes), CLIENT.quality)
    assert [f.rule for f in verdict.findings] == failed
    # Six rules apply to a day with both ratios (numbers, clicks, funnel, spend, CTR, CPC):
    # one failed is 5 of 6, 83 (83.33 rounded).
    assert (verdict.rules_applied, verdict.score) == (6, 83 if failed else 100)


@pytest.mark.parametrize("null", [None, float("nan")])  # NULL as the database or pandas
def test_a_ratio_without_a_denominator_is_not_judged(null):
    """Spend with no impression or click: CTR and CPC are NULL, so the two bounds do not
    apply; the four other rules do, and one of them failing is 3 of 4, a score of 75."""
    unseen = {"total_impressions": 0, "total_clicks": 0, "average_ctr": null}
    verdict = judge_day(stored_day(**unseen, average_cpc=null), CLIENT.quality)
    assert (verdict.findings, verdict.rules_applied, verdict.score) == ((), 4, 100)
    broken = judge_day(stored_day(**unseen, average_cpc=null, booking_step_3=6), CLIENT.quality)
    assert ([f.rule for f in broken.findings], broken.rules_applied, broken.score) == (
        ["funnel"],
        4,
        75,
    )


@pytest.mark.parametrize(("spend", "failed"), [("200000", []), ("200000.01", ["spend_ceiling"])])
def test_a_daily_spend_ceiling_is_the_most_a_day_may_spend(spend, failed):
    """The bundled Tokyo client's ceiling (200,000 yen); clicks scaled so CPC stays inside."""
    tokyo = next(c for c in load_clients(BUNDLED_CLIENTS) if c.id == "sakura_ryokan")
    assert tokyo.quality.daily_spend_ceiling == Decimal("200000")
    row = stored_day(total_spend=Decimal(spend), average_cpc=Decimal("100"))
    verdict = judge_day(row, tokyo.quality)
    assert [f.rule for f in verdict.findings] == failed
    assert verdict.rules_applied == 7
