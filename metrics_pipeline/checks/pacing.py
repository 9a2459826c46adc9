"""A client's month pacing as the pacing check and the demo judge it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metrics_pipeline.config.clients import ClientConfig
from metrics_pipeline.domain.pacing import OffPace, judge, pacing


def client_pace(
    client: ClientConfig, month_to_date: Mapping[str, Any]
) -> tuple[list[OffPace], list[str], list[str]]:
    """(off-pace conditions, conditions judged, conditions skipped and why) for a stored
    month_to_date rollup row, against the client's budget and targets as configured now."""
    projection = pacing(
        month_to_date["as_of_date"],
        month_to_date,
        client.monthly_budget,
        client.targets.conversions,
        client.targets.reservations,
    )
    return judge(projection, client.pacing.rule)
