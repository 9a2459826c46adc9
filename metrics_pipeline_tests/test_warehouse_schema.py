"""The warehouse carries a schema version; a mismatched warehouse is never written to."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline.warehouse.schema import SCHEMA_VERSION
from metrics_pipeline.warehouse.versioning import WarehouseSchemaError


def _version(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        value = connection.execute(
            sa.text("SELECT version FROM warehouse_schema WHERE component = 'warehouse'")
        ).scalar()
    engine.dispose()
    return value


def _set_version(url: str, version: int) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE warehouse_schema SET version = :v"), {"v": version})
    engine.dispose()


def test_a_new_warehouse_is_stamped_with_the_current_version(warehouse_url):
    WarehouseResource(url=warehouse_url).ensure_schema()
    assert _version(warehouse_url) == SCHEMA_VERSION


def test_a_newer_warehouse_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'newer.sqlite'}"
    WarehouseResource(url=url).ensure_schema()
    _set_version(url, SCHEMA_VERSION + 1)
    other = f"sqlite:///{tmp_path}/./newer.sqlite"  # a fresh engine on the same file
    with pytest.raises(WarehouseSchemaError) as error:
        WarehouseResource(url=other).ensure_schema()
    assert (
        f"schema version {SCHEMA_VERSION + 1}, newer than this pipeline's "
        f"{SCHEMA_VERSION}; upgrade metrics_pipeline"
    ) in str(error.value)


def test_an_older_warehouse_without_a_migration_is_refused_with_instructions(tmp_path):
    url = f"sqlite:///{tmp_path / 'older.sqlite'}"
    WarehouseResource(url=url).ensure_schema()
    _set_version(url, 0)
    with pytest.raises(WarehouseSchemaError) as error:
        WarehouseResource(url=f"sqlite:///{tmp_path}/./older.sqlite").ensure_schema()
    assert f"no migration from warehouse schema version 0 to {SCHEMA_VERSION}" in str(error.value)
    assert _version(url) == 0  # nothing was changed


def test_foreign_tables_without_a_version_are_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'foreign.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE daily_kpi_data (client_id TEXT, spend REAL)"))
    engine.dispose()
    with pytest.raises(WarehouseSchemaError) as error:
        WarehouseResource(url=url).ensure_schema()
    assert "has tables (daily_kpi_data) but no schema version" in str(error.value)
