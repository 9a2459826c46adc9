"""The floor: the least work that moves the same rows from the same sandbox into PostgreSQL.

A bare loop with `requests`: the same async report jobs and pages the pipeline asks for,
every job started before any is read (so Meta's compute time is paid once), the rows kept
as Meta's JSON text, one COPY per client. JSON is read and written with the standard
library (`requests`' own `.json()`), or with orjson, the library the pipeline uses, when
`fast_json` is set: the bench reports the floor both ways.
"""

from __future__ import annotations

import io
import json
import time
from datetime import date, timedelta

import orjson
import requests
import sqlalchemy as sa

from metrics_pipeline.config.clients import DEFAULT_ATTRIBUTION_WINDOWS
from metrics_pipeline.meta.client import ALL_EFFECTIVE_STATUSES, INSIGHT_FIELDS

# The query is the pipeline's own, so both sides read exactly the same pages.

FLOOR_TABLE = "floor_insights"


def _chunks(start: date, end: date, days: int) -> list[tuple[date, date]]:
    chunks, since = [], start
    while since <= end:
        until = min(end, since + timedelta(days=days - 1))
        chunks.append((since, until))
        since = until + timedelta(days=1)
    return chunks


def _pages(session: requests.Session, url: str, params: dict, fast_json: bool) -> list[dict]:
    rows: list[dict] = []
    while url:
        response = session.get(url, params=params, timeout=120)
        body = orjson.loads(response.content) if fast_json else response.json()
        rows += body["data"]
        url, params = body.get("paging", {}).get("next"), None
    return rows


def start_jobs(
    session: requests.Session, base: str, account_id: str, start: date, end: date
) -> list[str]:
    """One async report job per 31 days of the account, as the pipeline asks for them."""
    jobs = []
    for since, until in _chunks(start, end, 31):
        job = session.post(
            f"{base}/act_{account_id}/insights",
            data={
                "level": "ad",
                "fields": ",".join(INSIGHT_FIELDS),
                "time_range": json.dumps({"since": str(since), "until": str(until)}),
                "time_increment": 1,
                "breakdowns": json.dumps(["country"]),
                "action_attribution_windows": json.dumps(list(DEFAULT_ATTRIBUTION_WINDOWS)),
                "filtering": json.dumps(
                    [
                        {
                            "field": "ad.effective_status",
                            "operator": "IN",
                            "value": list(ALL_EFFECTIVE_STATUSES),
                        }
                    ]
                ),
            },
            timeout=120,
        ).json()
        jobs.append(job["report_run_id"])
    return jobs


def fetch_job(
    session: requests.Session, base: str, report_id: str, fast_json: bool = False
) -> list[dict]:
    while session.get(f"{base}/{report_id}", timeout=60).json()["async_status"] != (
        "Job Completed"
    ):
        time.sleep(0.05)
    return _pages(session, f"{base}/{report_id}/insights", {"limit": 500}, fast_json)


def _copy(engine: sa.Engine, rows: list[dict], fast_json: bool) -> None:
    dumps = (lambda value: orjson.dumps(value).decode()) if fast_json else json.dumps
    buffer = io.StringIO()
    for row in rows:
        values = (
            row["account_id"],
            row["date_start"],
            row["ad_id"],
            row["country"],
            row["spend"],
            row["impressions"],
            row["clicks"],
            dumps(row.get("actions", [])),
            dumps(row.get("action_values", [])),
        )
        buffer.write("\t".join(v.replace("\\", "\\\\") for v in values) + "\n")
    buffer.seek(0)
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.copy_expert(
                f"COPY {FLOOR_TABLE} (account_id, date, ad_id, country, spend, impressions, "
                "clicks, actions, action_values) FROM STDIN",
                buffer,
            )
        connection.commit()
    finally:
        connection.close()


def run_floor(
    sandbox_url: str,
    api_version: str,
    token: str,
    warehouse_url: str,
    account_ids: list[str],
    start: date,
    end: date,
    fast_json: bool = False,
) -> int:
    """Fetch and load every account's rows; returns how many rows were loaded."""
    engine = sa.create_engine(warehouse_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {FLOOR_TABLE}"))
        connection.execute(
            sa.text(
                f"CREATE TABLE {FLOOR_TABLE} (account_id text, date date, ad_id text, "
                "country text, spend numeric(18,2), impressions bigint, clicks bigint, "
                "actions text, action_values text, PRIMARY KEY (account_id, date, ad_id, country))"
            )
        )
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    base = f"{sandbox_url}/{api_version}"
    # Every job is started before any is read: no waiting on Meta beyond the first.
    jobs = {
        account_id: start_jobs(session, base, account_id, start, end) for account_id in account_ids
    }
    loaded = 0
    for account_id in account_ids:
        rows = [row for job in jobs[account_id] for row in fetch_job(session, base, job, fast_json)]
        _copy(engine, rows, fast_json)
        loaded += len(rows)
    engine.dispose()
    return loaded
