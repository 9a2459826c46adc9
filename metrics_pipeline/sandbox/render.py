"""How the sandbox writes its world the way the Graph API does.

Metrics are strings, zero-valued actions are left out, purchases appear under up to three
synonymous names (with different counts: only the name read first is the true count), and
each action carries one key per requested attribution window.
"""

from __future__ import annotations

from datetime import date, datetime

from metrics_pipeline.sandbox.world import PURCHASE_PRIORITY, Account, AdObject, TrueEvents


def format_minor(minor: int, exponent: int) -> str:
    if exponent == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{frac:0{exponent}d}"


def format_time(moment: datetime) -> str:
    """Meta's timestamp form: 2026-11-20T15:02:47-0800 (offset without a colon)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S%z")


def _windowed(
    action_type: str, amount: int, view_pct: int, windows: list[str], as_text
) -> dict[str, str]:
    view = amount * view_pct // 100
    entry = {"action_type": action_type, "value": as_text(amount)}
    for window in windows:
        entry[window] = as_text(view if window.endswith("_view") else amount - view)
    return entry


def actions_of(
    account: Account, ad: AdObject, day: date, events: TrueEvents, windows: list[str]
) -> tuple[list[dict], list[dict]]:
    counts: list[tuple[str, int]] = [
        ("link_click", events.clicks),
        ("landing_page_view", events.landing_page_views),
        ("post_engagement", events.clicks + events.landing_page_views),
        ("offsite_conversion.fb_pixel_search", events.searches),
        ("offsite_conversion.fb_pixel_initiate_checkout", events.checkouts),
        ("offsite_conversion.fb_pixel_add_payment_info", events.payment_infos),
        ("click_to_call_native_call_placed", events.calls_native),
        ("lead", events.leads),
        ("offsite_conversion.fb_pixel_lead", events.leads),
    ]
    if account.spec.custom_call_conversion_id:
        counts.append(
            (
                f"offsite_conversion.custom.{account.spec.custom_call_conversion_id}",
                events.calls_custom,
            )
        )
    # Older rows lack omni_purchase. The name read first (see PURCHASE_PRIORITY) carries the
    # true purchases; each lower-priority name reports one purchase fewer per rank, as Meta's
    # differently attributed names do, so reading the synonyms in another order is wrong.
    present = [n for n in PURCHASE_PRIORITY if n != "omni_purchase" or _has_omni(ad, day)]
    purchases = [(name, *synonym_purchases(events, rank)) for rank, name in enumerate(present)]
    counts.extend((name, count) for name, count, _ in purchases)

    pct = events.view_share_pct
    actions = [_windowed(t, n, pct, windows, str) for t, n in counts if n > 0]
    values = [
        _windowed(name, value, pct, windows, lambda m: format_minor(m, account.exponent))
        for name, _, value in purchases
        if value > 0
    ]
    return actions, values


def _has_omni(ad: AdObject, day: date) -> bool:
    return (int(ad.id) + day.toordinal()) % 3 != 0


def synonym_purchases(events: TrueEvents, rank: int) -> tuple[int, int]:
    """(count, value in minor units) a purchase name of priority `rank` (0: read first)
    reports: `rank` purchases fewer, the value in proportion."""
    count = max(0, events.purchases - rank)
    if events.purchases == 0:
        return 0, 0
    if rank == 0:
        return count, events.purchase_value_minor
    return count, events.purchase_value_minor * count // events.purchases
