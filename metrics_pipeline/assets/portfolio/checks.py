"""Checks of the exchange rates and of the portfolio built on them."""

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

from dagster import AssetCheckExecutionContext, asset_check

from metrics_pipeline.catalog import Catalog
from metrics_pipeline.checks import names
from metrics_pipeline.checks.consistency import (
    ClientSpan,
    as_number,
    clients_by_span,
    mismatches,
)
from metrics_pipeline.checks.report import result
from metrics_pipeline.domain.fx import (
    MAX_PLAUSIBLE_RATE,
    MIN_PLAUSIBLE_RATE,
    implausible,
    move_pct,
)
from metrics_pipeline.domain.kpis import PLATFORM, STORED_ADDITIVE_COLUMNS
from metrics_pipeline.domain.portfolio import TOTAL
from metrics_pipeline.fx.resource import FxResource
from metrics_pipeline.warehouse.resource import WarehouseResource


def _missing_rates(
    catalog: Catalog, warehouse: WarehouseResource, fx: FxResource, days: list[date]
) -> list[dict]:
    """(client, day) pairs with spend whose currency (or the reporting one) has no rate."""
    spent = warehouse.read(
        "daily_kpi_data",
        {"client_id": catalog.client_ids, "platform": PLATFORM, "date": days},
        columns=["client_id", "date", "currency"],
        where=lambda t: t.c.total_spend > 0,
    )
    stored = warehouse.read("fx_rates", {"date": days}, columns=["date", "currency"])
    available = set(zip(stored["date"], stored["currency"], strict=True))
    offending = []
    for client_id, day, currency in spent.itertuples(index=False):
        for needed in dict.fromkeys((currency, fx.reporting_currency)):
            if (day, needed) not in available:
                offending.append(
                    {
                        "client": client_id,
                        "date": str(day),
                        "currency": needed,
                        "rule": "no_usable_rate",
                        "detail": f"no {needed} rate published in the {fx.max_rate_age_days} "
                        f"days up to {day}",
                    }
                )
    return offending


def _implausible_rates(warehouse: WarehouseResource, days: list[date]) -> list[dict]:
    """Stored publications in force on `days` whose rate no real currency has."""
    stored = warehouse.read(
        "fx_rates", {"date": days}, columns=["currency", "published_date", "rate_per_eur"]
    )
    offending = []
    for currency, published, rate in sorted(
        set(stored.itertuples(index=False, name=None)), key=lambda r: (r[1], r[0])
    ):
        why = implausible(Decimal(str(rate)))
        if why is not None:
            offending.append(
                {
                    "client": TOTAL,
                    "date": str(published),
                    "currency": currency,
                    "rule": "implausible_rate",
                    "detail": f"{rate} {why}",
                }
            )
    return offending


def _big_moves(warehouse: WarehouseResource, fx: FxResource, days: list[date]) -> list[dict]:
    """Publications in `days` whose rate moved more than allowed from the one before."""
    first = min(days) - timedelta(days=fx.max_rate_age_days + 1)
    stored = warehouse.read(
        "fx_rates",
        columns=["currency", "published_date", "rate_per_eur"],
        where=lambda t: t.c.date.between(first, max(days)),
    )
    offending = []
    limit = Decimal(str(fx.max_move_pct))
    publications = stored.drop_duplicates(["currency", "published_date"])
    for currency, rows in publications.sort_values("published_date").groupby("currency"):
        pairs = list(zip(rows["published_date"], rows["rate_per_eur"], strict=True))
        for (_, before), (published, rate) in pairwise(pairs):
            moved = move_pct(before, rate)
            if published in days and moved > limit:
                offending.append(
                    {
                        "client": TOTAL,
                        "date": str(published),
                        "currency": currency,
                        "rule": "rate_move",
                        "detail": f"{before} -> {rate} ({moved}% > {fx.max_move_pct}%)",
                    }
                )
    return offending


def _portfolio_sums(
    warehouse: WarehouseResource, spans: Iterable[ClientSpan]
) -> dict[ClientSpan, dict[str, Decimal]]:
    """The database's own sums of the converted client-days over each span: the client's
    own days, every client's for the total.

    The total's single days come from one query grouped by day; every other span from one
    query grouped by client, and one more when the total is asked for over it."""
    spans = list(spans)
    day_totals = {start for client_id, start, end in spans if client_id == TOTAL and start == end}
    other_spans = clients_by_span(
        span for span in spans if not (span[0] == TOTAL and span[1] == span[2])
    )

    def summed(group_by: list[str], first: date, last: date) -> dict[tuple, dict[str, Decimal]]:
        frame = warehouse.totals(
            "portfolio_kpis",
            STORED_ADDITIVE_COLUMNS,
            {"period_type": "day"},
            group_by=group_by,
            where=lambda t: t.c.period_start.between(first, last) & (t.c.client_id != TOTAL),
        )
        return {
            tuple(row[g] for g in group_by): {c: as_number(row[c]) for c in STORED_ADDITIVE_COLUMNS}
            for row in frame.to_dict("records")
        }

    zero = dict.fromkeys(STORED_ADDITIVE_COLUMNS, Decimal("0"))
    sums: dict[ClientSpan, dict[str, Decimal]] = {}
    if day_totals:
        by_day = summed(["period_start"], min(day_totals), max(day_totals))
        for day in day_totals:
            sums[(TOTAL, day, day)] = by_day.get((day,), zero)
    for (start, end), clients in other_spans.items():
        if clients - {TOTAL}:
            by_client = summed(["client_id"], start, end)
            for client_id in clients - {TOTAL}:
                sums[(client_id, start, end)] = by_client.get((client_id,), zero)
        if TOTAL in clients:
            total = summed([], start, end)
            sums[(TOTAL, start, end)] = total.get((), zero)
    return sums


def build_portfolio_checks(catalog: Catalog, fx_rates, portfolio_kpis) -> list:
    @asset_check(
        asset=fx_rates,
        name=names.RATES,
        blocking=True,
        description="Every day some client spent on has a usable rate for its currency and "
        "the reporting currency; every rate in force lies within the plausible "
        f"{MIN_PLAUSIBLE_RATE} to {MAX_PLAUSIBLE_RATE} units per euro; no rate moved more "
        "than the allowed percentage from the previous publication.",
    )
    def rates_check(
        context: AssetCheckExecutionContext, warehouse: WarehouseResource, fx: FxResource
    ):
        days = sorted(date.fromisoformat(key) for key in context.partition_keys)
        offending = (
            _missing_rates(catalog, warehouse, fx, days)
            + _implausible_rates(warehouse, days)
            + _big_moves(warehouse, fx, days)
        )
        labels = sorted(str(d) for d in days)
        covered = {client: labels for client in [*catalog.client_ids, TOTAL]}
        return result(
            not offending,
            offending,
            covered=covered,
            days_checked=len(days),
            max_move_pct=fx.max_move_pct,
            plausible_rates_per_eur=f"{MIN_PLAUSIBLE_RATE} to {MAX_PLAUSIBLE_RATE}",
        )

    @asset_check(
        asset=portfolio_kpis,
        name=names.CONSISTENCY,
        blocking=True,
        description="Every period row equals the database's sum of its converted days, each "
        "total row the sum of the clients' rows, and every stored daily row has its "
        "converted day.",
    )
    def portfolio_consistency(warehouse: WarehouseResource):
        offending, compared = [], 0
        stored = warehouse.read("portfolio_kpis")
        day_rows = stored[stored["period_type"] == "day"]
        daily = warehouse.read(
            "daily_kpi_data",
            {"client_id": catalog.client_ids, "platform": PLATFORM},
            columns=["client_id", "date"],
        )
        converted = set(zip(day_rows["client_id"], day_rows["period_start"], strict=True))
        for client_id, day in daily.itertuples(index=False):
            if (client_id, day) not in converted:
                offending.append(
                    {"client": client_id, "date": str(day), "column": "(row)", "stored": "missing"}
                )
        compared_rows = [
            row
            for row in stored.to_dict("records")
            if row["period_type"] != "day" or row["client_id"] == TOTAL
        ]
        sums = _portfolio_sums(
            warehouse, ((r["client_id"], r["period_start"], r["period_end"]) for r in compared_rows)
        )
        for row in compared_rows:
            compared += 1
            label = {
                "client": row["client_id"],
                "date": f"{row['period_type']} {row['period_start']}",
                "period": f"{row['period_start']}..{row['period_end']}",
            }
            expected = sums[(row["client_id"], row["period_start"], row["period_end"])]
            offending += mismatches(row, expected, label)
        covered = {
            client: sorted(
                {
                    f"{t} {s}"
                    for t, s, c in zip(
                        stored["period_type"],
                        stored["period_start"],
                        stored["client_id"],
                        strict=True,
                    )
                    if c == client
                }
            )
            for client in [*catalog.client_ids, TOTAL]
        }
        return result(not offending, offending, covered=covered, rows_compared=compared)

    return [rates_check, portfolio_consistency]
