"""What the conversion_tracking and kpi_anomalies checks judge for one client: its stored
daily KPIs read back, the rules of `domain.tracking` and `domain.anomalies` applied, and
the findings as rows the alerts can name.

Only complete days count: the client's local today is still being spent and booked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from metrics_pipeline.config.clients import ClientConfig
from metrics_pipeline.domain.anomalies import BASELINE_DAYS, ROAS, DayKpis, kpi_anomalies
from metrics_pipeline.domain.kpis import PLATFORM
from metrics_pipeline.domain.tracking import (
    BASELINE_WEEKS,
    LOOKBACK_WEEKS,
    DayFigures,
    judge_days,
    tracking_break,
)
from metrics_pipeline.warehouse.resource import WarehouseResource

# History read for the tracking rule: the baselines of the newest days reach this far back,
# and those of the days they are built from as far again.
TRACKING_HISTORY_DAYS = 7 * (LOOKBACK_WEEKS + BASELINE_WEEKS)
TWO_PLACES = Decimal("0.01")
COLUMNS = (
    "date",
    "total_spend",
    "total_conversions",
    "reservations",
    "click_to_call",
    "email_contacts",
    "booking_step_1",
    "booking_step_2",
    "booking_step_3",
    "average_cpa",
    "roas",
    "currency",
)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value != value:  # NULL, or NaN as pandas reads it
        return None
    return Decimal(str(value))


def _shown(value: Decimal) -> str:
    return str(value.quantize(TWO_PLACES, rounding=ROUND_HALF_UP))


def _daily_rows(
    warehouse: WarehouseResource, client_id: str, first: date, last: date
) -> list[dict[str, Any]]:
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if not days:
        return []
    scope = {"client_id": client_id, "platform": PLATFORM, "date": days}
    frame = warehouse.read("daily_kpi_data", scope, columns=COLUMNS)
    return sorted(frame.to_dict("records"), key=lambda row: row["date"])


def tracking_findings(
    client: ClientConfig, warehouse: WarehouseResource, today: date
) -> tuple[list[dict[str, Any]], list[str]]:
    """(the client's ongoing tracking break as one row, or none; the days judged).

    The row's "date" is the break's first day, so a break that goes on is alerted once and
    its end (the newest day no longer broken) is a recovery of that same item.
    """
    metric = client.tracking.conversions
    rows = _daily_rows(
        warehouse, client.id, today - timedelta(days=TRACKING_HISTORY_DAYS), today - timedelta(1)
    )
    figures = [
        DayFigures(row["date"], _decimal(row["total_spend"]) or Decimal(0), int(row[metric]))
        for row in rows
    ]
    judged = [str(v.figures.day) for v in judge_days(figures, client.tracking.rule)]
    found = tracking_break(figures, client.tracking.rule)
    if found is None:
        return [], judged
    spend_low, spend_high = found.spend_range
    low, high = found.conversions_range
    return [
        {
            "client": client.id,
            "date": str(found.days[0]),
            "days": f"{found.days[0]}..{found.days[-1]} ({len(found.days)})",
            "spend": _shown(found.spend),
            "usual_spend": f"{_shown(spend_low)}-{_shown(spend_high)} a day",
            metric: found.conversions,
            f"usual_{metric}": f"{low}-{high} a day",
            "expected": _shown(found.expected),
            "currency": rows[-1]["currency"],
        }
    ], judged


def anomaly_findings(
    client: ClientConfig, warehouse: WarehouseResource, days: Sequence[date], today: date
) -> tuple[list[dict[str, Any]], list[str]]:
    """(a row per anomalous (day, metric) among the complete `days`; "day metric" labels of
    everything judged)."""
    complete = sorted(d for d in days if d < today)
    if not complete:
        return [], []
    rows = _daily_rows(
        warehouse, client.id, complete[0] - timedelta(days=BASELINE_DAYS), complete[-1]
    )
    history = [
        DayKpis(
            row["date"],
            _decimal(row["total_spend"]) or Decimal(0),
            int(row["total_conversions"]),
            int(row["reservations"]),
            _decimal(row["average_cpa"]),
            _decimal(row["roas"]),
        )
        for row in rows
    ]
    anomalies, judged = kpi_anomalies(history, complete, client.anomalies.rule)
    currency = rows[-1]["currency"] if rows else ""
    return [
        {
            "client": client.id,
            "date": f"{a.day} {a.metric}",
            "value": _shown(a.value),
            "band": f"{_shown(a.band.low)}-{_shown(a.band.high)}",
            "median": _shown(a.band.median),
            **({"currency": currency} if a.metric != ROAS else {}),
        }
        for a in anomalies
    ], [f"{day} {metric}" for day, metric in judged]
