"""Re-running is harmless at scale: a 60-day backfill run twice, then again newest stretch
first, leaves every table with the same content hash."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from metrics_pipeline.runner import materialize_window
from metrics_pipeline.warehouse.resource import WarehouseResource
from metrics_pipeline_tests.conftest import NOW
from metrics_pipeline_tests.helpers import TABLES, snapshot

DAYS = 60
STRETCH = 20  # days per window of the reverse pass


def content_hashes(warehouse: WarehouseResource) -> dict[str, str]:
    rows = snapshot(warehouse)
    return {table: hashlib.sha256(repr(rows[table]).encode()).hexdigest() for table in TABLES}


def test_a_60_day_backfill_twice_and_in_reverse_changes_no_byte(
    defs, catalog, instance, warehouse_url
):
    end = NOW.date() - timedelta(days=2)
    start = end - timedelta(days=DAYS - 1)
    warehouse = WarehouseResource(url=warehouse_url)
    assert materialize_window(defs, catalog, instance, start, end).success
    first = content_hashes(warehouse)
    counts = {t: len(warehouse.read(t)) for t in ("meta_insights", "daily_kpi_data")}
    assert counts["daily_kpi_data"] == DAYS * len(catalog.clients)

    assert materialize_window(defs, catalog, instance, start, end).success
    assert content_hashes(warehouse) == first

    # Newest stretch first, back to the oldest: the same days in the other order, in
    # 20-day windows whose edges cut weeks (and a month) in two, so every summary that
    # spans two windows is rebuilt from days written by different runs.
    window_end = end
    while window_end >= start:
        window_start = max(start, window_end - timedelta(days=STRETCH - 1))
        outcome = materialize_window(defs, catalog, instance, window_start, window_end)
        assert outcome.success, outcome.errors
        window_end = window_start - timedelta(days=1)
    assert content_hashes(warehouse) == first
    assert {t: len(warehouse.read(t)) for t in counts} == counts
