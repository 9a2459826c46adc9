"""What the pipeline must end up with, computed from the world's TRUE events.

Deliberately independent of the pipeline: it reads `TrueEvents` (one purchase is one
purchase) rather than parsing rendered actions, and uses plain Decimal arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from metrics_pipeline.sandbox.world import World

ADDITIVE_FIELDS = (
    "spend",
    "impressions",
    "clicks",
    "click_to_call",
    "email_contacts",
    "booking_step_1",
    "booking_step_2",
    "booking_step_3",
    "reservations",
    "reservation_value",
)


@dataclass
class Totals:
    spend: Decimal = Decimal("0.00")
    impressions: int = 0
    clicks: int = 0
    click_to_call: int = 0
    email_contacts: int = 0
    booking_step_1: int = 0
    booking_step_2: int = 0
    booking_step_3: int = 0
    reservations: int = 0
    reservation_value: Decimal = Decimal("0.00")
    rows: int = 0

    def add(self, other: Totals) -> None:
        for name in (*ADDITIVE_FIELDS, "rows"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def total_conversions(self) -> int:
        return self.reservations + self.click_to_call + self.email_contacts


@dataclass
class DayTruth(Totals):
    campaigns: dict[str, Totals] = field(default_factory=dict)
    campaign_names: dict[str, str] = field(default_factory=dict)


def _major(minor: int, exponent: int) -> Decimal:
    return (Decimal(minor) / (Decimal(10) ** exponent)).quantize(Decimal("0.01"))


def day_truth(world: World, account_id: str, day: date, revision: int, today: date) -> DayTruth:
    """Every ad of the account, deleted and archived included, on one local day."""
    account = world.account(account_id)
    truth = DayTruth()
    for ad in account.ads:
        for country in account.spec.countries:
            events = world.events(account_id, ad, day, country, revision, today)
            if events is None:
                continue
            row = Totals(
                # A spend written with a digit past the minor unit is stored to the minor
                # unit, half up: "0.125" is 0.13, "0.124" is 0.12.
                spend=_major(events.spend_minor + (events.spend_sub >= 5), account.exponent),
                impressions=events.impressions,
                clicks=events.clicks,
                click_to_call=events.calls_native + events.calls_custom,
                email_contacts=events.leads,
                booking_step_1=events.searches,
                booking_step_2=events.checkouts,
                booking_step_3=events.payment_infos,
                # The true purchases: what the name first in PURCHASE_PRIORITY reports.
                reservations=events.purchases,
                reservation_value=_major(events.purchase_value_minor, account.exponent),
                rows=1,
            )
            truth.add(row)
            truth.campaigns.setdefault(ad.campaign_id, Totals()).add(row)
            truth.campaign_names[ad.campaign_id] = account.object(ad.campaign_id).name
    return truth


def period_truth(
    world: World, account_id: str, days: list[date], revision: int, today: date
) -> DayTruth:
    total = DayTruth()
    for day in days:
        one = day_truth(world, account_id, day, revision, today)
        total.add(one)
        for campaign_id, totals in one.campaigns.items():
            total.campaigns.setdefault(campaign_id, Totals()).add(totals)
        total.campaign_names.update(one.campaign_names)
    return total
