"""Bad configuration stops the definitions from loading before anything is written; odd
client names and ids are stored and read back safely."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

from metrics_pipeline.catalog import build_catalog
from metrics_pipeline.config.clients import parse_clients
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.ground_truth import day_truth
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import NOW, make_resources
from metrics_pipeline_tests.helpers import days_between, local_today
from metrics_pipeline_tests.truth import normal_expected, stored_kpis

BAD_FILES = {
    "duplicate.yaml": (
        "clients:\n  - {id: a, name: A, meta_ad_account_id: act_1}\n"
        "  - {id: a, name: B, meta_ad_account_id: act_2}\n",
        "duplicate client id 'a'",
    ),
    "no_act.yaml": (
        "clients:\n  - {id: inn, name: Inn, meta_ad_account_id: '123'}\n",
        "client 'inn', field 'meta_ad_account_id': '123' must look like",
    ),
    "malformed.yaml": ("clients:\n  - id: [unclosed\n", "not valid YAML"),
}


def test_bad_clients_files_stop_the_code_location_from_loading(tmp_path):
    for name, (text, message) in BAD_FILES.items():
        path = tmp_path / name
        path.write_text(text)
        warehouse = tmp_path / f"{name}.sqlite"
        env = {
            **os.environ,
            "METRICS_CLIENTS_FILE": str(path),
            "DAGSTER_HOME": str(tmp_path),
            "METRICS_WAREHOUSE_URL": f"sqlite:///{warehouse}",
        }
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "dagster",
                "definitions",
                "validate",
                "-m",
                "metrics_pipeline.definitions",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode != 0, name
        assert message in result.stdout + result.stderr, name
        assert not warehouse.exists()  # nothing was written


ODD = """
clients:
  - id: "o'brien;drop table daily_kpi_data;--"
    name: "Café Ünïcødé \\"Zürich\\" ; 東京"
    meta_ad_account_id: act_1000000003
    timezone: Europe/Berlin
    currency: EUR
"""


def test_quotes_semicolons_and_unicode_are_stored_and_queried_safely(
    world, instance, sandbox, warehouse_url
):
    clients = parse_clients(ODD)
    catalog = build_catalog(clients)
    defs = build_definitions(catalog, make_resources(sandbox.url, warehouse_url))
    window = (NOW.date() - timedelta(days=3), NOW.date() - timedelta(days=2))
    outcome = materialize_window(defs, catalog, instance, *window)
    assert outcome.success, outcome.errors
    warehouse = WarehouseResource(url=warehouse_url)
    client_id = clients[0].id
    daily = warehouse.read("daily_kpi_data", {"client_id": client_id}, ["date"])
    assert list(daily["date"]) == days_between(*window)
    today = local_today(world, "act_1000000003", NOW)
    for row in daily.to_dict("records"):
        assert stored_kpis(row) == normal_expected(
            day_truth(world, "act_1000000003", row["date"], 0, today)
        )
    accounts = warehouse.read("meta_ad_accounts", {"client_id": client_id})
    assert list(accounts["client_id"]) == [client_id]
    assert set(warehouse.read("daily_kpi_data")["client_id"]) == {client_id}
