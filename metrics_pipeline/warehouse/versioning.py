"""The warehouse's schema version: stamped on creation, migrated forward, never ignored.

A pipeline that finds an older warehouse migrates it step by step inside one transaction;
one that finds a newer warehouse (or an older one it has no migration for) refuses to
write and says what to do, rather than writing into tables of another shape.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select, text

from metrics_pipeline.warehouse import schema

COMPONENT = "warehouse"
SCHEMA_LOCK = 727_001  # advisory lock key held while the schema is checked or changed


def _add_columns(version: int) -> Callable[[Connection], None]:
    """A migration that adds the columns `schema.ADDED_COLUMNS` lists for `version`."""

    def migrate(connection: Connection) -> None:
        for table_name, columns in schema.ADDED_COLUMNS[version].items():
            table = schema.metadata.tables[table_name]
            for name in columns:
                column = table.c[name]
                kind = column.type.compile(dialect=connection.dialect)
                connection.execute(text(f'ALTER TABLE "{table_name}" ADD COLUMN "{name}" {kind}'))

    return migrate


def _reach_nullable(connection: Connection) -> None:
    """Version 3: meta_insights.reach may be NULL (Meta no longer returns it for old days)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text('ALTER TABLE "meta_insights" ALTER COLUMN "reach" DROP NOT NULL'))
        return
    # SQLite cannot drop a NOT NULL: the table is rebuilt with the same rows.
    table = schema.metadata.tables["meta_insights"]
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    connection.execute(text('ALTER TABLE "meta_insights" RENAME TO "meta_insights_v2"'))
    table.create(connection)
    connection.execute(
        # Column names from the package's own schema, never from input.
        text(f'INSERT INTO "meta_insights" ({columns}) SELECT {columns} FROM "meta_insights_v2"')  # noqa: S608
    )
    connection.execute(text('DROP TABLE "meta_insights_v2"'))


# version -> function migrating a warehouse from that version to the next one.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _add_columns(2),
    2: _reach_nullable,
}


class WarehouseSchemaError(RuntimeError):
    """The warehouse's tables are not the shape this pipeline writes."""


def stored_version(connection: Connection) -> int | None:
    table = schema.schema_info
    if not inspect(connection).has_table(table.name):
        return None
    return connection.execute(
        select(table.c.version).where(table.c.component == COMPONENT)
    ).scalar()


def ensure_schema(engine: Engine, target: int = schema.SCHEMA_VERSION) -> int:
    """Create a new warehouse, or check and migrate an existing one; returns its version."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two processes starting on an empty warehouse must not both create tables.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        existing = set(inspect(connection).get_table_names())
        version = stored_version(connection)
        data_tables = {t for t in schema.metadata.tables if t != schema.schema_info.name}
        if version is None and existing & data_tables:
            raise WarehouseSchemaError(
                f"the warehouse at {engine.url.render_as_string(hide_password=True)} has "
                f"tables ({', '.join(sorted(existing & data_tables))}) but no schema version; "
                "point METRICS_WAREHOUSE_URL at an empty database or schema, or move those "
                "tables away"
            )
        if version is not None and version > target:
            raise WarehouseSchemaError(
                f"the warehouse is at schema version {version}, newer than this pipeline's "
                f"{target}; upgrade metrics_pipeline to the version that wrote it"
            )
        while version is not None and version < target:
            migrate = MIGRATIONS.get(version)
            if migrate is None:
                raise WarehouseSchemaError(
                    f"no migration from warehouse schema version {version} to {target}; "
                    "export the data and recreate the warehouse, or install the release "
                    f"that still reads version {version}"
                )
            migrate(connection)
            version += 1
        schema.metadata.create_all(connection)
        table = schema.schema_info
        connection.execute(table.delete().where(table.c.component == COMPONENT))
        connection.execute(table.insert(), [{"component": COMPONENT, "version": target}])
    return target
