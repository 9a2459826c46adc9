"""KPI incidents planted in the sandbox's world on chosen days, for the tracking and anomaly
checks to find: broken conversion tracking and a spend spike.

They change what Meta reports (`World.events`), so the ground truth follows them: a broken
pixel's purchases never reach Meta, a mistyped budget's spend is really spent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the world imports this module to apply the plants
    from metrics_pipeline.sandbox.world import TrueEvents, World


@dataclass(frozen=True)
class TrackingBreak:
    """From `first` to `last`, the site's pixel reports nothing: no searches, checkouts,
    payment details or purchases reach Meta, while ads deliver and spend as before (calls
    and lead forms happen on Meta and are still counted)."""

    account_id: str  # digits, without "act_"
    first: date
    last: date

    def applies(self, account_id: str, day: date) -> bool:
        return account_id == self.account_id and self.first <= day <= self.last

    def apply(self, events: TrueEvents) -> TrueEvents:
        return replace(
            events,
            searches=0,
            checkouts=0,
            payment_infos=0,
            purchases=0,
            purchase_value_minor=0,
        )


@dataclass(frozen=True)
class SpendSpike:
    """On `day` every ad spends `factor` times its usual amount (a mistyped budget)."""

    account_id: str
    day: date
    factor: int

    def applies(self, account_id: str, day: date) -> bool:
        return account_id == self.account_id and day == self.day

    def apply(self, events: TrueEvents) -> TrueEvents:
        return replace(events, spend_minor=events.spend_minor * self.factor)


Plant = TrackingBreak | SpendSpike


def plant(world: World, incident: Plant) -> None:
    """From now on the world reports `incident`."""
    world.account(incident.account_id)  # an unknown account is an error, not a no-op
    world.plants.append(incident)


def planted(plants: list[Plant], account_id: str, day: date, events: TrueEvents) -> TrueEvents:
    """`events` of one row as the plants on that account and day change them."""
    digits = account_id.removeprefix("act_")
    for incident in plants:
        if incident.applies(digits, day):
            events = incident.apply(events)
    return events


def parse_plant(spec: dict) -> Plant:
    """A plant from its JSON form (the sandbox's control endpoint): `{"kind":
    "tracking_break", "account": "1000000002", "first": "2026-11-15", "last": "2026-11-17"}`
    or `{"kind": "spend_spike", "account": ..., "day": ..., "factor": 10}`."""
    account = str(spec["account"]).removeprefix("act_")
    if spec.get("kind") == "tracking_break":
        first = date.fromisoformat(spec["first"])
        return TrackingBreak(account, first, date.fromisoformat(spec.get("last", spec["first"])))
    if spec.get("kind") == "spend_spike":
        return SpendSpike(account, date.fromisoformat(spec["day"]), int(spec["factor"]))
    raise ValueError(f"unknown plant kind {spec.get('kind')!r}; use tracking_break, spend_spike")
