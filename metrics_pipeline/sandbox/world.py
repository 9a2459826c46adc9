"""The sandbox's deterministic advertising world.

Everything is a pure function of (seed, anchor date, revision): the same inputs always give
the same ads, the same daily numbers and the same ground truth. The world knows the TRUE
events behind each insight row (one purchase is one purchase); `render` turns them into
what Meta returns, with string metrics, synonyms and attribution windows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from metrics_pipeline.sandbox.plants import Plant, planted

ATTRIBUTION_DAYS = 28  # numbers for a day keep changing this long
HISTORY_DAYS = 400  # how far back the world's campaigns started

# The order in which the clients file (default conversion mapping) reads Meta's purchase
# synonyms: the first name present in a row is the true count (see `render`).
PURCHASE_PRIORITY = ("omni_purchase", "purchase", "offsite_conversion.fb_pixel_purchase")

CURRENCY_EXPONENT = {"USD": 2, "NZD": 2, "EUR": 2, "GBP": 2, "AUD": 2, "JPY": 0}


@dataclass(frozen=True)
class AccountSpec:
    account_id: str  # digits, without "act_"
    name: str
    currency: str
    timezone: str
    countries: tuple[str, ...]
    business_id: str = "900000000000001"
    adsets_per_campaign: int = 2
    ads_per_adset: int = 2
    custom_call_conversion_id: str | None = None  # also reports calls as a custom conversion
    scale: int = 1  # multiplies the size of the daily numbers
    # Awkward data real accounts have (all off in the tidy demo world, see AWKWARD_ACCOUNTS):
    sub_cent_spend: bool = False  # spend written with one decimal more than the currency has
    no_delivery_every: int | None = None  # on every n-th day (by ordinal) nothing delivers
    unseen_spend_every: int | None = None  # every n-th day: spend, no impressions or clicks


DEMO_ACCOUNTS: tuple[AccountSpec, ...] = (
    AccountSpec("1000000001", "Harbour View Hotel", "NZD", "Pacific/Auckland", ("NZ", "AU", "US")),
    AccountSpec(
        "1000000002",
        "Canyon Lodge",
        "USD",
        "America/Los_Angeles",
        ("US", "CA", "MX"),
        custom_call_conversion_id="710001",
    ),
    AccountSpec("1000000003", "Altstadt Apartments", "EUR", "Europe/Berlin", ("DE", "AT", "CH")),
    AccountSpec("1000000004", "Sakura Ryokan", "JPY", "Asia/Tokyo", ("JP", "KR", "TW")),
)


# The demo's accounts with the data tidy fixtures never have: spend with three decimals
# ("12.345", "0.005") and so half-cent ties, a Berlin day every fifth day with spend but no
# impression or click (every ratio over them NULL), and a Tokyo day every sixth day on which
# nothing delivered at all.
AWKWARD_ACCOUNTS: tuple[AccountSpec, ...] = (
    DEMO_ACCOUNTS[0],
    replace(DEMO_ACCOUNTS[1], sub_cent_spend=True),
    replace(DEMO_ACCOUNTS[2], sub_cent_spend=True, unseen_spend_every=5),
    replace(DEMO_ACCOUNTS[3], no_delivery_every=6),
)


@dataclass(frozen=True)
class AdObject:
    id: str
    level: str  # campaign | adset | ad
    name: str
    status: str
    effective_status: str
    campaign_id: str
    adset_id: str | None
    objective: str
    daily_budget: int | None  # minor units
    lifetime_budget: int | None
    created_time: datetime
    updated_time: datetime
    first_day: date  # spends from this day ...
    last_day: date | None  # ... to this day (None: still running)


@dataclass(frozen=True)
class TrueEvents:
    """What really happened for one (ad, day, country), as counts and minor-unit amounts."""

    impressions: int
    clicks: int
    reach: int
    spend_minor: int
    searches: int
    checkouts: int
    payment_infos: int
    purchases: int
    purchase_value_minor: int
    calls_native: int
    calls_custom: int
    leads: int
    landing_page_views: int
    # Share of each conversion counted in the 1-day view window (the rest is 7-day click).
    view_share_pct: int = 0
    # The next decimal digit of the spend after the currency's minor unit (0-9), written by
    # accounts with `sub_cent_spend`: the true spend is spend_minor + spend_sub / 10.
    spend_sub: int = 0


@dataclass
class Account:
    spec: AccountSpec
    campaigns: list[AdObject] = field(default_factory=list)
    adsets: list[AdObject] = field(default_factory=list)
    ads: list[AdObject] = field(default_factory=list)
    _by_id: dict[str, AdObject] = field(default_factory=dict, repr=False)

    @property
    def exponent(self) -> int:
        return CURRENCY_EXPONENT[self.spec.currency]

    def object(self, object_id: str) -> AdObject:
        if len(self._by_id) != len(self.campaigns) + len(self.adsets) + len(self.ads):
            self._by_id = {o.id: o for o in (*self.campaigns, *self.adsets, *self.ads)}
        return self._by_id[object_id]


_CAMPAIGN_PLANS = (
    # name, status, objective, stops (days before anchor) or None
    ("Prospecting", "ACTIVE", "OUTCOME_SALES", None),
    ("Retargeting", "ACTIVE", "OUTCOME_SALES", None),
    ("Calls and leads", "PAUSED", "OUTCOME_LEADS", 10),
    ("Autumn offer", "ARCHIVED", "OUTCOME_TRAFFIC", 30),
)
DELETED_AD_STOPS_DAYS_BEFORE = 12


def _stamp(day: date, tz: str, seconds: int) -> datetime:
    base = datetime.combine(day, time(0, 0), tzinfo=ZoneInfo(tz))
    return base + timedelta(seconds=seconds % 86400)


def build_account(spec: AccountSpec, anchor: date) -> Account:
    account = Account(spec)
    rng = random.Random(f"objects:{spec.account_id}")
    start = anchor - timedelta(days=HISTORY_DAYS)
    prefix = spec.account_id[-4:]
    for c_index, (label, status, objective, stops) in enumerate(_CAMPAIGN_PLANS):
        campaign_id = f"23{prefix}{c_index:02d}0000"
        last_day = anchor - timedelta(days=stops) if stops is not None else None
        created = _stamp(start, spec.timezone, rng.randrange(86400))
        updated = _stamp(
            last_day or anchor - timedelta(days=3), spec.timezone, rng.randrange(86400)
        )
        account.campaigns.append(
            AdObject(
                campaign_id,
                "campaign",
                f"{label} {spec.countries[0]}",
                status,
                status,
                campaign_id,
                None,
                objective,
                rng.choice([2500, 5000, 8000]) * (spec.scale or 1) if c_index % 2 == 0 else None,
                None,
                created,
                updated,
                start,
                last_day,
            )
        )
        for s_index in range(spec.adsets_per_campaign):
            adset_id = f"23{prefix}{c_index:02d}{s_index + 1:02d}00"
            adset_effective = {"ARCHIVED": "ARCHIVED", "PAUSED": "CAMPAIGN_PAUSED"}.get(
                status, "ACTIVE"
            )
            account.adsets.append(
                AdObject(
                    adset_id,
                    "adset",
                    f"{label} / audience {s_index + 1}",
                    "ACTIVE",
                    adset_effective,
                    campaign_id,
                    None,
                    objective,
                    None,
                    None if c_index % 2 == 0 else rng.choice([30000, 60000]) * spec.scale,
                    created,
                    updated,
                    start,
                    last_day,
                )
            )
            for a_index in range(spec.ads_per_adset):
                ad_id = f"23{prefix}{c_index:02d}{s_index + 1:02d}{a_index + 1:02d}"
                ad_status, ad_effective, ad_last = "ACTIVE", adset_effective, last_day
                if c_index == 0 and s_index == 0 and a_index == 1:
                    ad_status = ad_effective = "DELETED"
                    ad_last = anchor - timedelta(days=DELETED_AD_STOPS_DAYS_BEFORE)
                account.ads.append(
                    AdObject(
                        ad_id,
                        "ad",
                        f"{label} / creative {s_index + 1}.{a_index + 1}",
                        ad_status,
                        ad_effective,
                        campaign_id,
                        adset_id,
                        objective,
                        None,
                        None,
                        created,
                        updated if ad_last is None else _stamp(ad_last, spec.timezone, 3600),
                        start,
                        ad_last,
                    )
                )
    return account


@lru_cache(maxsize=500_000)
def base_events(
    seed: int, ad_id: str, day: date, country: str, scale: int, with_custom_calls: bool
) -> TrueEvents | None:
    """The settled events of one (ad, day, country); None when the ad did not deliver."""
    rng = random.Random(f"{seed}:{ad_id}:{day.isoformat()}:{country}")
    if rng.random() < 0.12:
        return None
    impressions = rng.randint(80, 4000)
    clicks = rng.randint(0, max(1, impressions // 25))
    reach = max(1, int(impressions * rng.uniform(0.55, 0.95)))
    spend_minor = rng.randint(impressions // 4, impressions * 2) * scale
    searches = rng.randint(0, clicks)
    checkouts = rng.randint(0, searches)
    payment_infos = rng.randint(0, checkouts)
    purchases = rng.randint(0, payment_infos)
    value = sum(rng.randint(90, 600) * 100 for _ in range(purchases)) * scale
    # Some value amounts carry cents, so money exactness is really tested.
    value += rng.randint(0, 99) * scale if purchases else 0
    return TrueEvents(
        impressions=impressions,
        clicks=clicks,
        reach=reach,
        spend_minor=spend_minor,
        searches=searches,
        checkouts=checkouts,
        payment_infos=payment_infos,
        purchases=purchases,
        purchase_value_minor=value,
        calls_native=rng.randint(0, 2) if rng.random() < 0.3 else 0,
        calls_custom=(rng.randint(0, 1) if rng.random() < 0.2 else 0) if with_custom_calls else 0,
        leads=rng.randint(0, 3) if rng.random() < 0.25 else 0,
        landing_page_views=rng.randint(0, clicks),
        view_share_pct=rng.choice([0, 20, 35, 50]),
    )


def unseen_spend(seed: int, ad_id: str, day: date, country: str, scale: int) -> TrueEvents:
    """A row that spent without a single impression or click (Meta bills such rows)."""
    rng = random.Random(f"unseen:{seed}:{ad_id}:{day.isoformat()}:{country}")
    zero = {f.name: 0 for f in fields(TrueEvents)}
    return TrueEvents(**{**zero, "spend_minor": rng.randint(0, 40) * scale})


def sub_cent_digit(seed: int, ad_id: str, day: date, country: str) -> int:
    """The spend's digit after the minor unit; 5 (a half-cent tie) one time in ten."""
    return random.Random(f"sub:{seed}:{ad_id}:{day.isoformat()}:{country}").randrange(10)


def late_events(
    seed: int, ad_id: str, day: date, country: str, revision: int, scale: int
) -> tuple[int, int]:
    """Purchases (and their value) attributed late, after `revision` re-attributions."""
    purchases = value = 0
    for step in range(1, revision + 1):
        rng = random.Random(f"late:{seed}:{ad_id}:{day.isoformat()}:{country}:{step}")
        if rng.random() < 0.35:
            purchases += 1
            value += rng.randint(90, 600) * 100 * scale
    return purchases, value


class World:
    """All accounts of the sandbox, anchored at `anchor` (the sandbox's creation day)."""

    def __init__(
        self,
        accounts: tuple[AccountSpec, ...] = DEMO_ACCOUNTS,
        seed: int = 7,
        anchor: date | None = None,
    ) -> None:
        self.seed = seed
        self.anchor = anchor or datetime.now(ZoneInfo("UTC")).date()
        self.accounts = {spec.account_id: build_account(spec, self.anchor) for spec in accounts}
        # (account digits, day, ad id or None for every ad): delivery Meta no longer reports,
        # as when an advertiser's delivery is voided after the fact.
        self.removed: set[tuple[str, date, str | None]] = set()
        # Incidents planted on chosen days (`sandbox.plants`): broken tracking, spend spikes.
        self.plants: list[Plant] = []

    def remove_delivery(self, account_id: str, day: date, ad_id: str | None = None) -> None:
        """From now on the account reports no rows for `ad_id` on `day` (every ad if None)."""
        self.account(account_id)  # an unknown account is an error, not a silent no-op
        self.removed.add((account_id.removeprefix("act_"), day, ad_id))

    def _removed(self, account_id: str, ad_id: str, day: date) -> bool:
        digits = account_id.removeprefix("act_")
        return (digits, day, None) in self.removed or (digits, day, ad_id) in self.removed

    def account(self, account_id: str) -> Account:
        return self.accounts[account_id.removeprefix("act_")]

    def local_today(self, account_id: str, now: datetime) -> date:
        return now.astimezone(ZoneInfo(self.account(account_id).spec.timezone)).date()

    def events(
        self, account_id: str, ad: AdObject, day: date, country: str, revision: int, today: date
    ) -> TrueEvents | None:
        """The events of one row as Meta would report them on `today` at `revision`."""
        if day > today or day < ad.first_day or (ad.last_day is not None and day > ad.last_day):
            return None
        if self.removed and self._removed(account_id, ad.id, day):
            return None
        spec = self.account(account_id).spec
        if spec.no_delivery_every and day.toordinal() % spec.no_delivery_every == 0:
            return None
        events = base_events(
            self.seed, ad.id, day, country, spec.scale, spec.custom_call_conversion_id is not None
        )
        if events is None:
            return None
        if spec.unseen_spend_every and day.toordinal() % spec.unseen_spend_every == 0:
            events = unseen_spend(self.seed, ad.id, day, country, spec.scale)
        if spec.sub_cent_spend:
            events = replace(events, spend_sub=sub_cent_digit(self.seed, ad.id, day, country))
        # Nothing seen, nothing attributed late.
        if revision and events.impressions and (today - day).days < ATTRIBUTION_DAYS:
            extra, extra_value = late_events(self.seed, ad.id, day, country, revision, spec.scale)
            if extra:
                # Late purchases went through the funnel, so every step grows with them.
                events = TrueEvents(
                    **{
                        **events.__dict__,
                        "searches": events.searches + extra,
                        "checkouts": events.checkouts + extra,
                        "payment_infos": events.payment_infos + extra,
                        "purchases": events.purchases + extra,
                        "purchase_value_minor": events.purchase_value_minor + extra_value,
                    }
                )
        return planted(self.plants, account_id, day, events) if self.plants else events
