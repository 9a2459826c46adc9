"""Calls per stored row when Meta refuses big result pages, against the ideal.

The Graph API client reads the same accounts three times from an in-process sandbox:
clean at the configured page size, with every result page above `FAULT_MAX_LIMIT` rows
refused ("please reduce the amount of data", `reduce_data_pages`), and clean at the size
the fault accepts from the start (the ideal). The sandbox counts every request.
"""

from __future__ import annotations

import logging
from datetime import date

from workload import Workload

from metrics_pipeline.config.clients import DEFAULT_ATTRIBUTION_WINDOWS
from metrics_pipeline.meta.resource import MetaAdsResource
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN, SandboxServer
from metrics_pipeline.sandbox.world import World

# The client's warnings ("reading pages of 62 rows") are expected here: not shown.
QUIET = logging.getLogger("bench.calls")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False
FAULT_MAX_LIMIT = 100
PAGE_SIZE = 500
ACCEPTED = 62  # 500 halved until within 100: 250, 125, 62


def _read(url: str, workload: Workload, start: date, end: date, page_size: int) -> int:
    """Every account's rows of the window through the client; how many rows."""
    settings = MetaAdsResource(
        access_token=SANDBOX_TOKEN, base_url=url, page_size=page_size, report_poll_seconds=0.2
    )
    client = settings.client(log=QUIET)
    rows = 0
    for spec, client_id in zip(workload.accounts(), workload.client_ids(), strict=True):
        chunks = client.insight_chunks(
            f"act_{spec.account_id}", start, end, DEFAULT_ATTRIBUTION_WINDOWS, client_id
        )
        rows += sum(len(chunk) for _, _, chunk in chunks)
    return rows


def calls_per_row(workload: Workload, start: date, end: date, now) -> dict[str, float]:
    """Calls per row: clean, with every page above 100 rows refused, and the ideal."""
    figures: dict[str, float] = {}
    for label, page_size, fault in (
        ("clean", PAGE_SIZE, False),
        ("refused_pages", PAGE_SIZE, True),
        ("ideal", ACCEPTED, False),
    ):
        world = World(workload.accounts(), anchor=now.date())
        with SandboxServer(world, now=now) as server:
            if fault:
                server.inject("reduce_data_pages", max_limit=FAULT_MAX_LIMIT, count=-1)
            rows = _read(server.url, workload, start, end, page_size)
            calls = len(server.state.requests)
        figures[f"calls_{label}"] = calls
        figures[f"calls_per_row_{label}"] = round(calls / rows, 5)
    figures["calls_rows"] = rows
    return figures
