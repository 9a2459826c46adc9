"""The metric registry: every metric of the KPI stores, once.

Everything that lists metrics derives from `METRICS`: the KPI lists `aggregate_kpis` sums,
the conversion metrics and their default rules, the clients file's `conversions` fields
and the KPI columns of every warehouse table. Adding a metric is one entry here (plus, for
a conversion metric, its default rule in that entry).

The entries are in stored column order; a new metric goes at the end, where a migration's
`ADD COLUMN` puts it in an existing warehouse too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

MetricKind = Literal["count", "money", "ratio"]
Combine = Literal["first", "sum"]

# Meta reports one purchase under several names: the first one present counts.
PURCHASE_TYPES = ("omni_purchase", "purchase", "offsite_conversion.fb_pixel_purchase")


@dataclass(frozen=True)
class Metric:
    """One KPI column.

    `kind`: a count (integer), money (stored as a decimal, summed in hundredths) or a ratio
    (derived from sums by `kpis.derive_ratios`, never summed). A conversion metric is read
    from each insight row's actions (a count) or action values (money) by a rule; its
    default rule is `action_types` combined by `combine`. `total_conversions` is a
    conversion metric without a rule: the sum of the metrics the mapping names. A delivery
    metric sums one numeric field of the insight rows, `insight_field`.
    """

    name: str
    kind: MetricKind
    description: str
    insight_field: str | None = None
    conversion: bool = False
    action_types: tuple[str, ...] = ()
    combine: Combine = "first"

    @property
    def frame_column(self) -> str:
        """Its column in frames of KPI inputs: money is summed as integer hundredths."""
        return f"{self.name}_cents" if self.kind == "money" else self.name

    @property
    def has_rule(self) -> bool:
        return bool(self.action_types)


@dataclass(frozen=True)
class MetricRegistry:
    metrics: tuple[Metric, ...]
    # The metrics total_conversions adds up unless a client names others (distinct outcomes,
    # never synonyms); order kept as configured, it is part of the mapping's fingerprint.
    total_conversions: tuple[str, ...]

    def __post_init__(self) -> None:
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"metric names repeat: {names}")
        unknown = set(self.total_conversions) - {m.name for m in self.count_rule_metrics}
        if unknown:
            raise ValueError(f"total_conversions names metrics without a count rule: {unknown}")

    def of_kind(self, kind: MetricKind) -> tuple[Metric, ...]:
        return tuple(m for m in self.metrics if m.kind == kind)

    @cached_property
    def rule_metrics(self) -> tuple[Metric, ...]:
        """Conversion metrics read by a rule, in registry order: the clients-file fields."""
        return tuple(m for m in self.metrics if m.conversion and m.has_rule)

    @cached_property
    def count_rule_metrics(self) -> tuple[Metric, ...]:
        return tuple(m for m in self.rule_metrics if m.kind == "count")

    @cached_property
    def count_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.of_kind("count"))

    @cached_property
    def money_names(self) -> tuple[str, ...]:
        """Money as stored: decimals, no suffix."""
        return tuple(m.name for m in self.of_kind("money"))

    @cached_property
    def money_frame_columns(self) -> tuple[str, ...]:
        """Money inside frames: integer hundredths."""
        return tuple(m.frame_column for m in self.of_kind("money"))

    @cached_property
    def ratio_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.of_kind("ratio"))

    @cached_property
    def delivery_metrics(self) -> tuple[Metric, ...]:
        """The metrics summed from an insight row's own numeric fields."""
        return tuple(m for m in self.metrics if m.insight_field)

    @cached_property
    def conversion_metrics(self) -> tuple[Metric, ...]:
        """What each insight row stores as computed by its mapping."""
        return tuple(m for m in self.metrics if m.conversion)


METRICS = MetricRegistry(
    metrics=(
        Metric("total_spend", "money", "Amount spent, in the account's currency.", "spend"),
        Metric("total_impressions", "count", "Times an ad was shown.", "impressions"),
        Metric("total_clicks", "count", "Clicks on ads.", "clicks"),
        Metric(
            "total_conversions",
            "count",
            "Sum of the conversion metrics the client's mapping names.",
            conversion=True,
        ),
        Metric("average_ctr", "ratio", "Clicks per impression, in percent."),
        Metric("average_cpc", "ratio", "Spend per click."),
        Metric(
            "click_to_call",
            "count",
            "Calls placed from an ad.",
            conversion=True,
            action_types=("click_to_call_native_call_placed",),
        ),
        Metric(
            "email_contacts",
            "count",
            "Leads (contact forms, emails).",
            conversion=True,
            action_types=("lead", "offsite_conversion.fb_pixel_lead"),
        ),
        Metric(
            "booking_step_1",
            "count",
            "Booking funnel step 1: searches.",
            conversion=True,
            action_types=("offsite_conversion.fb_pixel_search",),
        ),
        Metric(
            "booking_step_2",
            "count",
            "Booking funnel step 2: checkouts started.",
            conversion=True,
            action_types=("offsite_conversion.fb_pixel_initiate_checkout",),
        ),
        Metric(
            "booking_step_3",
            "count",
            "Booking funnel step 3: payment details added.",
            conversion=True,
            action_types=("offsite_conversion.fb_pixel_add_payment_info",),
        ),
        Metric(
            "reservations",
            "count",
            "Completed bookings (purchases).",
            conversion=True,
            action_types=PURCHASE_TYPES,
        ),
        Metric(
            "reservation_value",
            "money",
            "Value of the completed bookings.",
            conversion=True,
            action_types=PURCHASE_TYPES,
        ),
        Metric("roas", "ratio", "Reservation value per unit of spend."),
        Metric("cost_per_reservation", "ratio", "Spend per reservation."),
        Metric("average_cpa", "ratio", "Spend per conversion (total_conversions)."),
    ),
    total_conversions=("reservations", "click_to_call", "email_contacts"),
)
