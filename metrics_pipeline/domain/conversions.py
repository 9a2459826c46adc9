"""Which Meta action types feed each conversion metric: one mapping per client.

Meta reports the same purchase under several names (`omni_purchase`, `purchase`,
`offsite_conversion.fb_pixel_purchase`). A rule therefore lists action types as synonyms
and takes the FIRST one present in a row; only a rule that says `combine: sum` adds
distinct action types together, and it may not add known synonyms.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property

from metrics_pipeline.domain.metrics import METRICS, Combine, MetricRegistry
from metrics_pipeline.domain.money import parse_amount_cents

PURCHASE_SYNONYMS = frozenset(
    {
        "omni_purchase",
        "purchase",
        "offsite_conversion.fb_pixel_purchase",
        "onsite_conversion.purchase",
    }
)
LEAD_SYNONYMS = frozenset(
    {"lead", "offsite_conversion.fb_pixel_lead", "onsite_conversion.lead_grouped"}
)
SYNONYM_GROUPS = (PURCHASE_SYNONYMS, LEAD_SYNONYMS)

# Raised whenever `conversion_metrics` changes what it computes, so conversion metrics
# stored with an older fingerprint are derived again (see `mapping_fingerprint`).
CONVERSION_RULES_REVISION = 1


class ActionValueError(ValueError):
    """An action entry whose value is not a number."""

    def __init__(self, action_type: str, value: object) -> None:
        super().__init__(f"action {action_type!r} has a non-numeric value {value!r}")
        self.action_type = action_type
        self.value = value


@dataclass(frozen=True)
class MetricRule:
    action_types: tuple[str, ...]
    combine: Combine = "first"

    def overlapping_synonyms(self) -> set[str]:
        if self.combine != "sum":
            return set()
        found: set[str] = set()
        for group in SYNONYM_GROUPS:
            hit = group.intersection(self.action_types)
            if len(hit) > 1:
                found |= hit
        return found


@dataclass(frozen=True)
class ConversionMapping:
    # By each metric's frame column (money in hundredths: `reservation_value_cents`).
    rules: Mapping[str, MetricRule] = field(default_factory=dict)
    # total_conversions is the sum of these metrics (distinct outcomes, never synonyms).
    total_conversions: tuple[str, ...] = METRICS.total_conversions
    # Which metrics the rules compute; not part of the fingerprint (the rules are).
    metrics: MetricRegistry = field(default=METRICS, compare=False)

    @cached_property
    def action_types(self) -> frozenset[str]:
        """Every action type some rule reads: the only entries of a row worth indexing."""
        return frozenset(t for rule in self.rules.values() for t in rule.action_types)

    @cached_property
    def plan(self) -> tuple[tuple[str, tuple[str, ...], bool, bool], ...]:
        """Per rule metric: (frame column, action types, whether they are summed, whether
        read from action values). Resolved once: `conversion_metrics` runs for every row."""
        return tuple(
            (
                metric.frame_column,
                self.rules[metric.frame_column].action_types,
                self.rules[metric.frame_column].combine == "sum",
                metric.kind == "money",
            )
            for metric in self.metrics.rule_metrics
        )

    @cached_property
    def no_conversions(self) -> dict[str, int]:
        """The metrics of a row none of whose entries a rule reads: all zero."""
        zero = {column: 0 for column, *_ in self.plan}
        return {**zero, "total_conversions": 0}


@cache
def default_mapping(metrics: MetricRegistry = METRICS) -> ConversionMapping:
    """Every conversion metric of `metrics` under its default rule."""
    rules = {m.frame_column: MetricRule(m.action_types, m.combine) for m in metrics.rule_metrics}
    return ConversionMapping(rules, metrics.total_conversions, metrics)


def _index(
    entries: Iterable[Mapping[str, object]] | None, wanted: frozenset[str]
) -> dict[str, object]:
    """action type -> value, for the entries whose type a rule reads."""
    return {t: e.get("value") for e in entries or () if (t := e.get("action_type")) in wanted}


def _count(action_type: str, value: object) -> int:
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        raise ActionValueError(action_type, value)
    return int(text)


def _cents(action_type: str, value: object) -> int:
    try:
        return parse_amount_cents(value)
    except ValueError:
        raise ActionValueError(action_type, value) from None


def conversion_metrics(
    actions: Iterable[Mapping[str, object]] | None,
    action_values: Iterable[Mapping[str, object]] | None,
    mapping: ConversionMapping,
) -> dict[str, int]:
    """The conversion metrics of one insight row, from its `value` (default attribution)."""
    counts = _index(actions, mapping.action_types)
    values = _index(action_values, mapping.action_types)
    if not counts and not values:
        return dict(mapping.no_conversions)
    result = {}
    for column, action_types, add, money in mapping.plan:
        found, parse = (values, _cents) if money else (counts, _count)
        present = [t for t in action_types if t in found]
        if not present:
            result[column] = 0
        elif add:
            result[column] = sum(parse(t, found[t]) for t in present)
        else:  # synonyms: the first one present counts
            result[column] = parse(present[0], found[present[0]])
    result["total_conversions"] = sum(result[m] for m in mapping.total_conversions)
    return result


def mapping_fingerprint(mapping: ConversionMapping) -> str:
    """A short stable digest of a mapping and of the rules' revision.

    Conversion metrics stored with an insight row carry the fingerprint of the mapping that
    computed them; a row whose fingerprint differs from the client's mapping today is
    derived again from its stored actions, so editing a mapping never leaves stale numbers.
    """
    described = {
        "revision": CONVERSION_RULES_REVISION,
        "rules": {
            metric: [list(rule.action_types), rule.combine]
            for metric, rule in sorted(mapping.rules.items())
        },
        "total_conversions": list(mapping.total_conversions),
    }
    text = json.dumps(described, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
