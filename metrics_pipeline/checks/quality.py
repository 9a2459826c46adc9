"""Quality rules for one client-day, and the 0-100 score they add up to.

Pure functions over stored rows, so the checks, the alerts and the tests read the same
verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pandas as pd
from sqlalchemy import ColumnElement, Table, or_

from metrics_pipeline.config.clients import QualityConfig
from metrics_pipeline.domain.kpis import COUNT_METRICS, STORED_MONEY_COLUMNS


@dataclass(frozen=True)
class Finding:
    client_id: str
    day: date
    rule: str
    detail: str

    def as_row(self) -> dict[str, str]:
        return {
            "client": self.client_id,
            "date": str(self.day),
            "rule": self.rule,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class DayVerdict:
    client_id: str
    day: date
    findings: tuple[Finding, ...]
    rules_applied: int

    @property
    def score(self) -> int:
        """Share of applicable rules the day passes, 0-100."""
        if not self.rules_applied:
            return 100
        failed = len({f.rule for f in self.findings})
        return round(100 * (self.rules_applied - failed) / self.rules_applied)


def _number(value: object) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


def _missing(value: object) -> bool:
    """NULL as read back through pandas: None, NaN or NA."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def judge_day(row: Mapping[str, object], quality: QualityConfig) -> DayVerdict:
    """The quality rules for one stored daily KPI row."""
    client_id, day = str(row["client_id"]), row["date"]
    findings: list[Finding] = []
    applied = 0

    def fail(rule: str, detail: str) -> None:
        findings.append(Finding(client_id, day, rule, detail))

    applied += 1
    for column in (*COUNT_METRICS, *STORED_MONEY_COLUMNS):
        number = _number(row[column])
        if number is None or number < 0:
            fail("numeric", f"{column} = {row[column]!r} is negative or not a number")
    if findings:
        return DayVerdict(client_id, day, tuple(findings), applied)

    impressions, clicks = int(row["total_impressions"]), int(row["total_clicks"])
    spend = Decimal(str(row["total_spend"]))
    applied += 1
    if clicks > impressions:
        fail("clicks_le_impressions", f"clicks {clicks} > impressions {impressions}")
    if quality.check_funnel:
        applied += 1
        steps = [int(row[f"booking_step_{i}"]) for i in (1, 2, 3)]
        if not steps[0] >= steps[1] >= steps[2]:
            fail("funnel", f"booking steps {steps[0]} >= {steps[1]} >= {steps[2]} broken")
    applied += 1
    if impressions > 0 and spend == 0:
        fail("spend_present", f"{impressions} impressions but no spend")
    # A ratio without a denominator (no impression, no click) is NULL: its rule does not
    # apply, and it does not count towards the score.
    if not _missing(row.get("average_ctr")):
        applied += 1
        ctr = Decimal(str(row["average_ctr"]))
        low, high = quality.ctr_percent
        if not low <= ctr <= high:
            fail("ctr_bounds", f"CTR {ctr}% outside [{low}, {high}]")
    if not _missing(row.get("average_cpc")):
        applied += 1
        cpc = Decimal(str(row["average_cpc"]))
        low, high = quality.cpc
        if not low <= cpc <= high:
            fail("cpc_bounds", f"CPC {cpc} outside [{low}, {high}]")
    if quality.daily_spend_ceiling is not None:
        applied += 1
        if spend > quality.daily_spend_ceiling:
            fail("spend_ceiling", f"spend {spend} above the ceiling {quality.daily_spend_ceiling}")
    return DayVerdict(client_id, day, tuple(findings), applied)


def suspect_insight_rows(table: Table) -> ColumnElement[bool]:
    """The rows `judge_insight_rows` could find fault with, as a condition the database
    evaluates, so a check over a backfill reads a handful of rows instead of all of them."""
    numbers = [table.c[c] for c in ("spend", "impressions", "clicks")]
    return or_(
        *(c.is_(None) for c in numbers),
        *(c < 0 for c in numbers),
        table.c.reach < 0,  # NULL reach is Meta not returning it, not a bad number
        table.c.spend >= 10**16,  # PostgreSQL sorts a numeric NaN above every number
        table.c.clicks > table.c.impressions,
    )


def judge_insight_rows(rows: list[Mapping[str, object]]) -> list[Finding]:
    """Row-level rules of raw insights: non-negative numbers, clicks within impressions."""
    findings = []
    for row in rows:
        where = f"ad {row['ad_id']} / {row['country']}"
        for column in ("spend", "impressions", "clicks", "reach"):
            if column == "reach" and _missing(row[column]):
                continue  # not returned by Meta for old breakdown queries
            number = _number(row[column])
            if number is None or number < 0:
                findings.append(
                    Finding(
                        str(row["client_id"]),
                        row["date"],
                        "numeric",
                        f"{where}: {column} = {row[column]!r}",
                    )
                )
        if int(row["clicks"]) > int(row["impressions"]):
            findings.append(
                Finding(
                    str(row["client_id"]),
                    row["date"],
                    "clicks_le_impressions",
                    f"{where}: clicks {row['clicks']} > impressions {row['impressions']}",
                )
            )
    return findings
