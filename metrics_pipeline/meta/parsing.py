"""Turning the API's insight rows into warehouse rows, refusing what cannot be trusted.

Absent metrics are missing keys in Meta's answer and mean zero. Anything else that is not
a number, a negative amount, a row for a day that was not asked for, or two different rows
for the same (day, ad, country) is refused for that client and day with a message that
names the client, the date, the field and the value.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

from metrics_pipeline.domain.conversions import (
    ActionValueError,
    ConversionMapping,
    conversion_metrics,
    mapping_fingerprint,
)
from metrics_pipeline.domain.insight_kpis import FINGERPRINT_COLUMN, stored_conversions
from metrics_pipeline.domain.money import MoneyError, cents_to_decimal, parse_amount_cents

COUNT_FIELDS = ("impressions", "clicks", "reach")


@dataclass(frozen=True)
class RowProblem:
    client_id: str
    day: date | None
    field: str
    value: object
    reason: str

    def __str__(self) -> str:
        return (
            f"client {self.client_id!r}, date {self.day or '?'}, field {self.field!r}, "
            f"value {self.value!r}: {self.reason}"
        )


@dataclass
class ParsedInsights:
    rows_by_day: dict[date, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    problems: list[RowProblem] = field(default_factory=list)
    ignored: list[RowProblem] = field(default_factory=list)

    def bad_days(self, requested: set[date]) -> set[date]:
        """Requested days refused because of a problem (an undated problem taints all)."""
        days = {p.day for p in self.problems}
        if None in days:
            return set(requested)
        return {d for d in days if d in requested}


def _count(value: object) -> int:
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError("not a non-negative whole number")
    return int(text)


def _canonical(entries: object) -> str:
    """A list of action entries as compact JSON with sorted keys: one text per content."""
    if entries is None:
        return "[]"
    if not isinstance(entries, list):
        raise ValueError("not a list")
    try:
        return orjson.dumps(entries, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"cannot be stored as JSON ({exc})") from None


def parse_insight_rows(
    raw_rows: list[dict[str, Any]],
    *,
    client_id: str,
    account_id: str,
    currency: str,
    days: set[date],
    attribution_windows: tuple[str, ...],
    mapping: ConversionMapping,
    collected_at: datetime,
) -> ParsedInsights:
    parsed = ParsedInsights()
    seen: dict[tuple[date, str, str], dict[str, Any]] = {}
    windows_json = json.dumps(list(attribution_windows))
    fingerprint = mapping_fingerprint(mapping)
    for raw in raw_rows:
        day_text = raw.get("date_start")
        try:
            day = date.fromisoformat(str(day_text))
        except ValueError:
            parsed.problems.append(
                RowProblem(client_id, None, "date_start", day_text, "not a date")
            )
            continue
        if day not in days:
            # Not a day that was asked for: nothing of the requested days is at stake, so
            # the row is left out and reported, and the requested days are still stored.
            parsed.ignored.append(
                RowProblem(client_id, day, "date_start", day_text, "outside the requested days")
            )
            continue
        problem = None
        record: dict[str, Any] = {
            "client_id": client_id,
            "date": day,
            "account_id": account_id.removeprefix("act_"),
            "currency": currency,
            "collected_at": collected_at,
            "attribution_windows": windows_json,
        }
        for name in ("ad_id", "country"):
            value = raw.get(name)
            if not isinstance(value, str) or not value.strip():
                problem = RowProblem(client_id, day, name, value, "missing")
                break
            record[name] = value
        for name in ("campaign_id", "campaign_name", "adset_id", "adset_name", "ad_name"):
            record[name] = raw.get(name)
        if problem is None:
            try:
                cents = parse_amount_cents(raw.get("spend", "0"))
                if cents < 0:
                    raise MoneyError("negative spend")
                record["spend"] = cents_to_decimal(cents)
            except MoneyError as exc:
                problem = RowProblem(client_id, day, "spend", raw.get("spend"), str(exc))
        for name in COUNT_FIELDS:
            if problem is None:
                if name == "reach" and raw.get(name) is None:
                    # Meta leaves reach out of breakdown queries reaching over 13 months back:
                    # unknown, stored as NULL, never as zero people.
                    record[name] = None
                    continue
                try:
                    record[name] = _count(raw.get(name, "0"))
                except ValueError as exc:
                    problem = RowProblem(client_id, day, name, raw.get(name), str(exc))
        for name in ("actions", "action_values"):
            if problem is None:
                try:
                    record[name] = _canonical(raw.get(name))
                except ValueError as exc:
                    problem = RowProblem(client_id, day, name, raw.get(name), str(exc))
        if problem is None:
            try:
                metrics = conversion_metrics(raw.get("actions"), raw.get("action_values"), mapping)
                record.update(stored_conversions(metrics))
                record[FINGERPRINT_COLUMN] = fingerprint
            except ActionValueError as exc:
                problem = RowProblem(
                    client_id, day, f"actions[{exc.action_type}]", exc.value, "not a number"
                )
        if problem is not None:
            parsed.problems.append(problem)
            continue
        key = (day, record["ad_id"], record["country"])
        if key in seen:
            if _same(seen[key], record):
                continue  # the same row twice (a repeated page): keep one
            parsed.problems.append(
                RowProblem(
                    client_id,
                    day,
                    "ad_id/country",
                    f"{key[1]}/{key[2]}",
                    "two different rows for the same ad and country",
                )
            )
            continue
        seen[key] = record
        parsed.rows_by_day[day].append(record)
    return parsed


def _same(left: dict[str, Any], right: dict[str, Any]) -> bool:
    ignore = {"collected_at"}
    return all(left.get(k) == right.get(k) for k in left if k not in ignore)


def summarize_problems(problems: list[RowProblem]) -> list[str]:
    """One line per distinct problem, with how many rows had it."""
    counts: dict[str, int] = {}
    for problem in problems:
        counts[str(problem)] = counts.get(str(problem), 0) + 1
    return [text if n == 1 else f"{text} ({n} rows)" for text, n in counts.items()]
