"""The token and the app secret never leave the Authorization header and the HMAC proof."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from dagster import EnvVar
from dagster._serdes import serialize_value

from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.meta.resource import MetaAdsResource
from metrics_pipeline.runner import materialize_window
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import NOW, make_resources
from metrics_pipeline_tests.helpers import TABLES


def test_secrets_appear_nowhere_after_a_failed_run(
    world, catalog, instance, tmp_path, monkeypatch, caplog, capsys
):
    token = f"tok{uuid.uuid4().hex}"
    secret = f"sec{uuid.uuid4().hex}"
    monkeypatch.setenv("META_ACCESS_TOKEN", token)
    monkeypatch.setenv("META_APP_SECRET", secret)
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    caplog.set_level(logging.DEBUG)
    with SandboxServer(world, now=NOW, access_token=token, app_secret=secret) as sandbox:
        sandbox.inject("transient", count=2, route="insights")
        sandbox.inject("auth", count=-1, route="insights", account="1000000004")
        resources = make_resources(sandbox.url, url)
        resources["meta"] = MetaAdsResource(
            access_token=EnvVar("META_ACCESS_TOKEN"),
            app_secret=EnvVar("META_APP_SECRET"),
            base_url=sandbox.url,
            backoff_base_seconds=0.05,
            backoff_max_seconds=0.1,
        )
        defs = build_definitions(catalog, resources)
        outcome = materialize_window(
            defs, catalog, instance, NOW.date() - timedelta(days=4), NOW.date() - timedelta(days=2)
        )
        requests_seen = list(sandbox.state.requests)

    assert not outcome.success  # the auth fault failed one client
    assert any("sakura_ryokan" in e and "code 190" in e for e in outcome.errors)
    # The other clients collected: the appsecret_proof the sandbox demands was right.
    warehouse = WarehouseResource(url=url)
    assert set(warehouse.read("daily_kpi_data")["client_id"]) == {
        "harbour_view_hotel",
        "canyon_lodge",
        "altstadt_apartments",
    }

    texts = ["\n".join(outcome.errors), caplog.text, *capsys.readouterr()]
    for run in instance.get_runs():
        texts.append(serialize_value(run))
        texts += [serialize_value(event) for event in instance.all_logs(run.run_id)]
    for table in TABLES:
        texts.append(warehouse.read(table).to_csv())
    texts += [r["path"] for r in requests_seen]
    # The scan covers the retry warnings and the failure, where a leak would show first.
    assert any("Retrying client" in t for t in texts)
    assert any("Meta API refused client 'sakura_ryokan'" in t for t in texts)
    for text in texts:
        assert token not in text
        assert secret not in text
    assert all(r["authorization"] for r in requests_seen)
