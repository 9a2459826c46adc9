"""Ad-level insight rows for a time range, as Meta writes them, with the DATA_FAULTS that
corrupt them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from metrics_pipeline.sandbox.graph.errors import ApiError
from metrics_pipeline.sandbox.graph.messages import Request
from metrics_pipeline.sandbox.graph.objects import known_account, status_filter
from metrics_pipeline.sandbox.graph.paging import DEFAULT_LIMIT, page
from metrics_pipeline.sandbox.graph.state import SandboxState
from metrics_pipeline.sandbox.render import actions_of, format_minor
from metrics_pipeline.sandbox.world import Account, AdObject, TrueEvents

REACH_MONTHS = 13
MAX_HISTORY_MONTHS = 37
# The attribution windows Meta still returns (7d_view and 28d_view stopped on 2026-01-12).
SERVED_WINDOWS = ("1d_click", "7d_click", "28d_click", "1d_view", "1d_ev")

DayFaults = Callable[[str], tuple[str, ...]]


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier (the month's last day when shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    for last in (31, 30, 29, 28):
        try:
            return date(year, month + 1, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def serve(state: SandboxState, request: Request, account_id: str) -> dict[str, Any]:
    """GET insights: one page of the rows, computed for this request."""
    return page(state, request, insight_rows(state, request, account_id))


def insight_rows(state: SandboxState, request: Request, account_id: str) -> list[dict]:
    """Every row the request asks for (level=ad, one row per ad, day and country)."""
    return rows_to_compute(state, request, account_id)()


def rows_to_compute(
    state: SandboxState, request: Request, account_id: str
) -> Callable[[], list[dict]]:
    """The request checked now (an error is raised here), its rows computed when called:
    a report job is accepted at once and computed afterwards, as Meta does."""
    account = known_account(state, account_id)
    if request.param("level", "account") != "ad":
        raise ApiError(400, 100, "(#100) The sandbox serves level=ad insights only")
    time_range = request.json_param("time_range", None)
    if not time_range:
        raise ApiError(400, 100, "(#100) time_range is required by the sandbox")
    try:
        since = date.fromisoformat(time_range["since"])
        until = date.fromisoformat(time_range["until"])
    except (KeyError, TypeError, ValueError):
        raise ApiError(400, 100, f"(#100) Invalid time_range {time_range!r}") from None
    today = state.world.local_today(account_id, state.clock())
    if since < today - timedelta(days=MAX_HISTORY_MONTHS * 31):
        raise ApiError(
            400,
            3018,
            "The start date of the time range cannot be beyond 37 months from the current date",
            error_type="OAuthException",
        )
    breakdowns = request.json_param("breakdowns", [])
    # Like Meta since 2026-01-12: a retired or unknown window is left out, not refused.
    windows = [
        w for w in request.json_param("action_attribution_windows", []) if w in SERVED_WINDOWS
    ]
    fields = set((request.param("fields") or "").split(","))
    statuses = status_filter(request, "ad")
    wanted: dict[str, set[str]] = {}
    for rule in request.json_param("filtering", []):
        if rule.get("field") in ("campaign.id", "adset.id") and rule.get("operator") == "IN":
            wanted[rule["field"]] = {str(v) for v in rule.get("value") or []}
    day_faults = state.faults.data_faults_by_day(account_id)
    # Like Meta since 2025-06-10: no reach for breakdowns starting over 13 months back.
    no_reach = bool(breakdowns) and since < months_before(today, REACH_MONTHS)
    revision = state.revision  # the numbers as of the request, whenever they are computed

    def compute() -> list[dict]:
        rows: list[dict] = []
        day = since
        while day <= until:
            for ad in account.ads:
                if ad.effective_status not in statuses:
                    continue
                if ad.campaign_id not in wanted.get("campaign.id", {ad.campaign_id}):
                    continue
                if ad.adset_id not in wanted.get("adset.id", {ad.adset_id}):
                    continue
                for country in account.spec.countries:
                    events = state.world.events(account_id, ad, day, country, revision, today)
                    if events is None:
                        continue
                    row = _insight_row(account, ad, day, events, windows)
                    _corrupt_row(row, events, account.exponent, day_faults(day.isoformat()))
                    row = {k: v for k, v in row.items() if k in fields}
                    row["date_start"] = row["date_stop"] = day.isoformat()
                    if "country" in breakdowns:
                        row["country"] = country
                    if no_reach:
                        row.pop("reach", None)
                    rows.append(row)
            day += timedelta(days=1)
        return _mangle(day_faults, until, rows)

    return compute


def _insight_row(
    account: Account,
    ad: AdObject,
    day: date,
    events: TrueEvents,
    windows: list[str],
) -> dict[str, Any]:
    """The row as Meta writes it, before faults and field selection."""
    row: dict[str, Any] = {
        "account_id": account.spec.account_id,
        "account_currency": account.spec.currency,
        "campaign_id": ad.campaign_id,
        "campaign_name": account.object(ad.campaign_id).name,
        "adset_id": ad.adset_id,
        "adset_name": account.object(ad.adset_id).name,
        "ad_id": ad.id,
        "ad_name": ad.name,
        "impressions": str(events.impressions),
        "clicks": str(events.clicks),
        "reach": str(events.reach),
        "spend": format_minor(events.spend_minor, account.exponent)
        + (str(events.spend_sub) if account.spec.sub_cent_spend else ""),
        "ctr": f"{(events.clicks * 100 / events.impressions):.6f}" if events.impressions else "0",
    }
    row["actions"], row["action_values"] = actions_of(account, ad, day, events, windows)
    return row


def _corrupt_row(
    row: dict[str, Any], events: TrueEvents, exponent: int, kinds: tuple[str, ...]
) -> None:
    """Data faults that change a row's values (they still parse)."""
    for kind in kinds:
        row.update(_corrupt(kind, events, exponent))
    if "missing_ad_id" in kinds:
        row.pop("ad_id")
    if "unknown_action" in kinds:
        row["actions"].append(
            {"action_type": "offsite_conversion.fb_pixel_custom_mystery", "value": "7"}
        )
    if "broken_funnel" in kinds:
        # More people reach the last booking step than started the first.
        step_3 = "offsite_conversion.fb_pixel_add_payment_info"
        row["actions"] = [a for a in row["actions"] if a["action_type"] != step_3]
        row["actions"].append({"action_type": step_3, "value": str(events.searches + 5)})
    # Meta leaves out what has nothing in it.
    for name in ("actions", "action_values"):
        if not row[name]:
            del row[name]


def _corrupt(kind: str, events: TrueEvents, exponent: int) -> dict[str, str]:
    if kind == "clicks_over_impressions":
        return {"clicks": str(events.impressions + 10)}
    if kind == "zero_spend":
        return {"spend": format_minor(0, exponent)}
    if kind == "empty_spend":
        return {"spend": ""}
    if kind == "nan_impressions":
        return {"impressions": "NaN"}
    if kind == "negative_spend":
        return {"spend": "-" + format_minor(events.spend_minor, exponent)}
    if kind == "huge_spend":
        return {"spend": format_minor(events.spend_minor * 1000, exponent)}
    return {}


def _mangle(day_faults: DayFaults, until: date, rows: list[dict]) -> list[dict]:
    """Data faults that change the set of rows rather than their values."""
    mangled = []
    for row in rows:
        mangled.append(row)
        if "duplicate_rows" in day_faults(row["date_start"]):
            mangled.append(dict(row))
    repeat_days = [r["date_start"] for r in rows if "repeated_page" in day_faults(r["date_start"])]
    if repeat_days:
        # The rows of that day come back twice in a row, as a page Meta served again.
        first = mangled.index(next(r for r in mangled if r["date_start"] == repeat_days[0]))
        block = [dict(r) for r in mangled[first : first + DEFAULT_LIMIT]]
        mangled[first + len(block) : first + len(block)] = block
    for kind_day in {r["date_start"] for r in rows}:
        if "out_of_range_date" in day_faults(kind_day) and mangled:
            stray = dict(next(r for r in mangled if r["date_start"] == kind_day))
            stray["date_start"] = stray["date_stop"] = (until + timedelta(days=1)).isoformat()
            mangled.append(stray)
    return mangled
