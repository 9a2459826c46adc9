"""`metrics-pipeline materialize` keeps every secret out of what Dagster stores, and keeps
what it creates private to its owner.

Marker values stand for the token, the app secret, the warehouse password, the webhook URL
and the SMTP login; afterwards every file of the instance is read (SQLite values one by one,
compressed snapshots inflated), and every table of the warehouse. The demo's scan is in
`test_cli_environment.py`, the daemon's and the webserver's in `test_production_topology.py`.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline_tests.conftest import BUNDLED_CLIENTS, NOW, postgres_schema_url
from metrics_pipeline_tests.receivers import WebhookReceiver
from metrics_pipeline_tests.stored_secrets import found_in_database, found_in_files, marker

COMMAND = str(Path(sys.executable).with_name("metrics-pipeline"))


def test_materialize_stores_no_secret_and_creates_private_files(tmp_path, world):
    token, app_secret = marker("token"), marker("app-secret")
    password, smtp_password = marker("warehouse-password"), marker("smtp-password")
    hook_path = f"/hook/{marker('webhook')}"
    markers = [token, app_secret, password, smtp_password, hook_path]
    day = NOW.date() - timedelta(days=3)
    with (
        contextmanager(postgres_schema_url)() as schema_url,
        SandboxServer(world, now=NOW, access_token=token, app_secret=app_secret) as sandbox,
        WebhookReceiver(path=hook_path) as hook,
    ):
        # The test server trusts loopback, so the password is sent and never checked.
        warehouse_url = sa.make_url(schema_url).set(password=password)
        env = {
            **{k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
            "METRICS_CLIENTS_FILE": str(BUNDLED_CLIENTS),
            "METRICS_WAREHOUSE_URL": warehouse_url.render_as_string(hide_password=False),
            "METRICS_AS_OF": NOW.isoformat(),
            "META_API_BASE_URL": sandbox.url,
            "META_ACCESS_TOKEN": token,
            "META_APP_SECRET": app_secret,
            "METRICS_FX_RATES_URL": sandbox.url + FEED_PATH,
            "METRICS_ALERT_WEBHOOK_URL": hook.url,
            "METRICS_ALERT_SMTP_USERNAME": "alerts",
            "METRICS_ALERT_SMTP_PASSWORD": smtp_password,
        }
        done = subprocess.run(
            [COMMAND, "materialize", "--start", str(day), "--end", str(day)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        # The run really used each secret: the sandbox checked the token and the proof.
        assert sandbox.state.requests
        stored_in_warehouse = found_in_database(schema_url, markers)
        rows = sa.create_engine(schema_url)
        with rows.connect() as connection:
            daily = connection.execute(sa.text("SELECT count(*) FROM daily_kpi_data")).scalar()
        rows.dispose()

    assert daily == 4  # one day of each demo client
    data = tmp_path / ".metrics_pipeline"
    assert found_in_files(data, markers) == []
    assert stored_in_warehouse == []
    assert not [m for m in markers if m in done.stdout + done.stderr]
    # The folder the command made, and all in it, is its owner's alone.
    paths = [data, *data.rglob("*")]
    assert any(p.name == "runs.db" for p in paths)
    assert {
        str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode))
        for p in paths
        if stat.S_IMODE(p.stat().st_mode) not in ((0o700,) if p.is_dir() else (0o600,))
    } == {}
