"""From raw insight rows to KPI inputs: the one place actions become conversion metrics.

Conversion metrics are computed once per insight row, by `conversion_metrics`, when the
row is validated, and stored with the row together with the fingerprint of the mapping
that computed them. Daily KPIs then sum the stored columns; rows stored under another
mapping (or before the columns existed) are derived again from their stored actions.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
import pandas as pd

from metrics_pipeline.domain.conversions import ConversionMapping, conversion_metrics
from metrics_pipeline.domain.kpis import ADDITIVE_METRICS
from metrics_pipeline.domain.metrics import METRICS
from metrics_pipeline.domain.money import cents_to_decimal, decimal_to_cents

KEY_COLUMNS = ("date", "campaign_id", "campaign_name")
# The columns of meta_insights that KPIs are made of when derived from the actions.
INPUT_COLUMNS = (
    *KEY_COLUMNS,
    *(m.insight_field for m in METRICS.delivery_metrics),
    "actions",
    "action_values",
)
# Conversion metrics as stored on each meta_insights row (in that table's column order:
# the counts read by a rule, then their total, then money as a decimal).
_RULE_TOTALS = [m.name for m in METRICS.conversion_metrics if m.kind == "count" and not m.has_rule]
STORED_CONVERSION_COUNTS = (*(m.name for m in METRICS.count_rule_metrics), *_RULE_TOTALS)
_CONVERSION_MONEY = [m for m in METRICS.conversion_metrics if m.kind == "money"]
STORED_CONVERSION_COLUMNS = (*STORED_CONVERSION_COUNTS, *(m.name for m in _CONVERSION_MONEY))
# The columns summed per (date, campaign) when every row's stored metrics are current.
SUMMED_COLUMNS = (
    *(m.insight_field for m in METRICS.delivery_metrics),
    *STORED_CONVERSION_COLUMNS,
)
FINGERPRINT_COLUMN = "conversions_fingerprint"
# The additive frame every path produces: keys, then the metrics `aggregate_kpis` sums.
INPUT_FRAME_COLUMNS = [*KEY_COLUMNS, *ADDITIVE_METRICS]


def stored_conversions(metrics: Mapping[str, int]) -> dict[str, object]:
    """`conversion_metrics` of one row in stored form (money in hundredths -> decimal)."""
    stored: dict[str, object] = {m: metrics[m] for m in STORED_CONVERSION_COUNTS}
    for metric in _CONVERSION_MONEY:
        stored[metric.name] = cents_to_decimal(metrics[metric.frame_column])
    return stored


def _with_delivery(conversions: pd.DataFrame, source: pd.DataFrame) -> pd.DataFrame:
    """Conversion metrics plus the source's keys, spend in hundredths and counts."""
    for metric in METRICS.delivery_metrics:
        field = source[metric.insight_field]
        if metric.kind == "money":
            conversions[metric.frame_column] = [decimal_to_cents(v) for v in field]
        else:
            conversions[metric.frame_column] = field.astype("int64")
    for key in KEY_COLUMNS:
        conversions[key] = source[key]
    return conversions[INPUT_FRAME_COLUMNS]


def kpi_inputs(insights: pd.DataFrame, mapping: ConversionMapping) -> pd.DataFrame:
    """One additive row per insight row, its conversion metrics derived from its actions."""
    if insights.empty:
        return pd.DataFrame(columns=INPUT_FRAME_COLUMNS)
    conversions = [
        conversion_metrics(orjson.loads(a), orjson.loads(v), mapping)
        for a, v in zip(insights["actions"], insights["action_values"], strict=True)
    ]
    return _with_delivery(pd.DataFrame(conversions, index=insights.index), insights)


def kpi_inputs_from_sums(sums: pd.DataFrame) -> pd.DataFrame:
    """Sums of SUMMED_COLUMNS per KEY_COLUMNS -> the same additive columns as `kpi_inputs`.

    Every KPI input is a sum, so a frame of partial sums aggregates to the same totals as
    the rows it sums.
    """
    if sums.empty:
        return pd.DataFrame(columns=INPUT_FRAME_COLUMNS)
    conversions = pd.DataFrame(
        {m: sums[m].astype("int64") for m in STORED_CONVERSION_COUNTS}, index=sums.index
    )
    for metric in _CONVERSION_MONEY:
        conversions[metric.frame_column] = [decimal_to_cents(v) for v in sums[metric.name]]
    return _with_delivery(conversions, sums)
