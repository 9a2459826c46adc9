"""From raw insight rows to KPI inputs: the one place actions become conversion metrics."""

from __future__ import annotations

import json

import pandas as pd

from metrics_pipeline.domain.conversions import ConversionMapping, conversion_metrics
from metrics_pipeline.domain.kpis import ADDITIVE_METRICS
from metrics_pipeline.domain.money import decimal_to_cents

KEY_COLUMNS = ("date", "campaign_id", "campaign_name")
# The columns of meta_insights that KPIs are made of.
INPUT_COLUMNS = (*KEY_COLUMNS, "spend", "impressions", "clicks", "actions", "action_values")


def kpi_inputs(insights: pd.DataFrame, mapping: ConversionMapping) -> pd.DataFrame:
    """One additive row per insight row: spend in hundredths, counts, conversion metrics."""
    columns = [*KEY_COLUMNS, *ADDITIVE_METRICS]
    if insights.empty:
        return pd.DataFrame(columns=columns)
    conversions = [
        conversion_metrics(json.loads(a), json.loads(v), mapping)
        for a, v in zip(insights["actions"], insights["action_values"], strict=True)
    ]
    frame = pd.DataFrame(conversions, index=insights.index)
    frame["total_spend_cents"] = [decimal_to_cents(v) for v in insights["spend"]]
    frame["total_impressions"] = insights["impressions"].astype("int64")
    frame["total_clicks"] = insights["clicks"].astype("int64")
    for key in KEY_COLUMNS:
        frame[key] = insights[key]
    return frame[columns]
