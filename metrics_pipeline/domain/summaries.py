"""Summaries of a set of days: the single path from daily KPI rows to any period's numbers.

Weekly and monthly summaries, every rollup and the current-week cache call
`summarize_windows_of_clients`, which groups the rows in `_summarize_labelled` and sums
them with `aggregate_kpis`, so one period has one set of numbers.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import pandas as pd

from metrics_pipeline.domain.kpis import (
    ADDITIVE_METRICS,
    COUNT_METRICS,
    MONEY_METRICS,
    STORED_MONEY_COLUMNS,
    aggregate_kpis,
    totals_record,
)
from metrics_pipeline.domain.money import decimal_to_cents
from metrics_pipeline.domain.periods import Period

CAMPAIGN_KEYS = ("campaign_id", "campaign_name")
Label = TypeVar("Label", bound=Hashable)
Client = TypeVar("Client", bound=Hashable)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _campaigns_json(rows: Iterable[dict[str, Any]]) -> str:
    """Per-campaign aggregated rows, in campaign order -> stored JSON (money as decimal
    strings)."""
    records = []
    for row in rows:
        record = {"campaign_id": row["campaign_id"], "campaign_name": row["campaign_name"]}
        record.update(totals_record(row))
        records.append(record)
    return json.dumps(records, default=_json_default, sort_keys=True, separators=(",", ":"))


def campaigns_to_json(aggregated: pd.DataFrame) -> str:
    """Per-campaign aggregated rows -> stored JSON (money as decimal strings)."""
    return _campaigns_json(aggregated.sort_values("campaign_id").to_dict("records"))


def campaigns_json_by(aggregated: pd.DataFrame, key: str) -> dict[Any, str]:
    """`campaigns_to_json` of each `key` group of `aggregated` (a day, a period), from one
    pass over the frame: a backfill has a group per client and day, and a frame per group
    would cost more than its few rows."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for row in aggregated.sort_values([key, "campaign_id"]).to_dict("records"):
        groups.setdefault(row[key], []).append(row)
    return {value: _campaigns_json(rows) for value, rows in groups.items()}


def campaigns_from_json(texts: pd.Series) -> pd.DataFrame:
    """Stored campaign JSON of many rows -> one additive frame (money in hundredths)."""
    rows: list[dict[str, Any]] = []
    for position, text in enumerate(texts):
        for entry in json.loads(text or "[]"):
            row = {m: int(entry[m]) for m in COUNT_METRICS}
            for stored, cents in zip(STORED_MONEY_COLUMNS, MONEY_METRICS, strict=True):
                row[cents] = decimal_to_cents(Decimal(entry[stored]))
            row["campaign_id"] = entry["campaign_id"]
            row["campaign_name"] = entry["campaign_name"]
            row["_order"] = position
            rows.append(row)
    return pd.DataFrame(rows, columns=[*CAMPAIGN_KEYS, *ADDITIVE_METRICS, "_order"])


def aggregate_campaigns(frame: pd.DataFrame, within: Sequence[str] = ()) -> pd.DataFrame:
    """Per-campaign totals (per group of `within` and campaign); a renamed campaign keeps
    its latest name."""
    keys = [*within, "campaign_id"]
    if frame.empty:
        empty = frame.assign(**{k: [] for k in keys})
        return aggregate_kpis(empty, by=keys).assign(campaign_name=[])
    latest = (
        frame.sort_values("_order", kind="stable")
        .groupby(keys, sort=False)["campaign_name"]
        .last()
        .reset_index()
    )
    return aggregate_kpis(frame, by=keys).merge(latest, on=keys, how="left")


def daily_rows_to_additive(daily: pd.DataFrame) -> pd.DataFrame:
    """Stored daily KPI rows -> additive frame (money back to hundredths)."""
    frame = pd.DataFrame({m: daily[m].astype("int64") for m in COUNT_METRICS}, index=daily.index)
    for stored, cents in zip(STORED_MONEY_COLUMNS, MONEY_METRICS, strict=True):
        frame[cents] = [decimal_to_cents(v) for v in daily[stored]]
    return frame


@dataclass(frozen=True)
class PeriodSummary:
    totals: dict[str, Any]  # stored form: KPI columns
    campaign_data: str
    days_with_data: int
    currency: str | None


PERIOD = "_period"


def _summarize_labelled(daily: pd.DataFrame) -> dict[Hashable, PeriodSummary]:
    """The numbers of each group of daily rows that share a label in PERIOD, in one
    grouped pass. A day may carry several labels (rolling windows overlap)."""
    if daily.empty:
        return {}
    daily = daily.sort_values("date", kind="stable", ignore_index=True)
    labels = list(daily[PERIOD])
    totals = aggregate_kpis(daily_rows_to_additive(daily).assign(**{PERIOD: labels}), by=[PERIOD])
    # A campaign's latest name wins: `_order` is its row's position in date order.
    entries = campaigns_from_json(daily["campaign_data"])
    entries[PERIOD] = [labels[position] for position in entries["_order"]]
    campaigns = aggregate_campaigns(entries, within=[PERIOD])
    campaigns_by_label = campaigns_json_by(campaigns, PERIOD)
    no_campaigns = campaigns_to_json(campaigns.iloc[0:0])
    grouped = daily.groupby(PERIOD, sort=False)
    days_with_data = grouped["date"].nunique().to_dict()
    currencies = grouped["currency"].agg(lambda values: sorted(set(values))).to_dict()
    summaries = {}
    for row in totals.to_dict("records"):
        label = row[PERIOD]
        if len(currencies[label]) > 1:
            raise ValueError(f"days in more than one currency: {currencies[label]}")
        summaries[label] = PeriodSummary(
            totals=totals_record(row),
            campaign_data=campaigns_by_label.get(label, no_campaigns),
            days_with_data=int(days_with_data[label]),
            currency=currencies[label][0] if currencies[label] else None,
        )
    return summaries


def _no_days() -> PeriodSummary:
    no_rows = aggregate_kpis(pd.DataFrame(columns=list(ADDITIVE_METRICS))).iloc[0].to_dict()
    return PeriodSummary(
        totals=totals_record(no_rows), campaign_data="[]", days_with_data=0, currency=None
    )


def summarize_windows_of_clients(
    daily_by_client: Mapping[Client, pd.DataFrame],
    windows_by_client: Mapping[Client, Mapping[Label, Period]],
) -> dict[Client, dict[Label, PeriodSummary]]:
    """The numbers of each client's windows of its daily rows, all in one grouped pass (a
    run summarises a block of clients; a pass per client would cost more in pandas' fixed
    costs than its few rows).

    Windows may overlap (the last 7 and the last 30 days); a window without rows gets
    zeros. A window summarised alone or among others has the same numbers.
    """
    parts, windows = [], []  # a window's position in `windows` labels its rows
    for client, client_windows in windows_by_client.items():
        daily = daily_by_client[client]
        for label, window in client_windows.items():
            inside = daily[(daily["date"] >= window.start) & (daily["date"] <= window.end)]
            if not inside.empty:
                parts.append(inside.assign(**{PERIOD: [len(windows)] * len(inside)}))
            windows.append((client, label))
    found = _summarize_labelled(pd.concat(parts, ignore_index=True)) if parts else {}
    summaries: dict[Client, dict[Label, PeriodSummary]] = {c: {} for c in windows_by_client}
    for position, (client, label) in enumerate(windows):
        summaries[client][label] = found.get(position) or _no_days()
    return summaries
