"""The sandbox answers as Meta does today: retired attribution windows are left out, reach is
missing from old breakdown queries, failed report runs carry their error details."""

from __future__ import annotations

import json
from datetime import timedelta

import requests

from metrics_pipeline.sandbox.server import SANDBOX_TOKEN

AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
ACCOUNT = "act_1000000001"


def insights(sandbox, since, until=None, **extra) -> list[dict]:
    params = {
        "level": "ad",
        "time_increment": 1,
        "breakdowns": json.dumps(["country"]),
        "time_range": json.dumps(
            {"since": since.isoformat(), "until": (until or since).isoformat()}
        ),
        "fields": "ad_id,spend,impressions,reach,actions",
        "limit": 500,
        **extra,
    }
    response = requests.get(
        f"{sandbox.url}/v25.0/{ACCOUNT}/insights", params=params, headers=AUTH, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_retired_windows_are_left_out_and_served_ones_split_the_value(sandbox, now):
    windows = ["7d_click", "7d_view", "28d_view", "1d_view", "1d_ev"]
    rows = insights(
        sandbox,
        now.date() - timedelta(days=3),
        action_attribution_windows=json.dumps(windows),
    )
    actions = [a for row in rows for a in row.get("actions", [])]
    assert actions
    for action in actions:
        assert set(action) == {"action_type", "value", "7d_click", "1d_view", "1d_ev"}
        # Click and view windows partition the conversions the unified value counts.
        assert int(action["7d_click"]) + int(action["1d_view"]) == int(action["value"])
