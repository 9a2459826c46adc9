"""The code location loads, as `dagster dev` and the UI load it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_dagster_validates_the_code_location(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    env.pop("METRICS_CLIENTS_FILE", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-w",
            str(ROOT / "workspace.yaml"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_store_is_an_asset_in_the_graph():
    from metrics_pipeline.definitions import defs

    keys = {k.to_user_string() for k in defs().resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "meta_ad_objects",
        "meta_insights",
        "daily_kpi_data",
        "campaign_summaries/weekly",
        "campaign_summaries/monthly",
        "current_week_cache",
        "client_kpi_rollups",
        "collection_health",
        "fx_rates",
        "portfolio_kpis",
    }
