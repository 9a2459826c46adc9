"""The repository's dagster.yaml gives a working PostgreSQL-backed Dagster instance."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance

from metrics_pipeline_tests.conftest import _postgres_url

ROOT = Path(__file__).parents[1]
DATABASE = "metrics_pipeline_dagster_test"


@pytest.fixture
def dagster_pg_url() -> str:
    base = sa.engine.make_url(_postgres_url())
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": DATABASE}
            ).first()
            if not exists:
                connection.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    finally:
        engine.dispose()
    return base.set(database=DATABASE).render_as_string(hide_password=False)


def test_dagster_yaml_runs_on_postgres_from_the_environment(tmp_path, monkeypatch, dagster_pg_url):
    text = (ROOT / "deploy" / "dagster.yaml").read_text()
    settings = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert "password" not in "\n".join(settings).lower()  # credentials come from the env
    assert "DAGSTER_PG_URL" in text
    shutil.copy(ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url)
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        instance.get_runs(limit=1)
