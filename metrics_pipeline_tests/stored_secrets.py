"""Where marker secrets ended up: every file of an instance, its databases' values with
compressed ones inflated, and what a webserver answers over GraphQL."""

from __future__ import annotations

import sqlite3
import uuid
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import requests
import sqlalchemy as sa


def marker(kind: str) -> str:
    """A value no code could produce by chance, that names what it stands for."""
    return f"marker-{kind}-{uuid.uuid4().hex}"


def _texts_of(value: object) -> Iterator[str]:
    """A stored value as text, and inflated too when it is zlib-compressed (Dagster stores
    snapshots that way)."""
    if value is None:
        return
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
        try:
            inflated = zlib.decompress(value)
        except zlib.error:
            return
        yield inflated.decode("utf-8", "replace")
    else:
        yield str(value)


def _sqlite_values(path: Path) -> Iterator[tuple[str, object]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    yield table, value
    finally:
        connection.close()


def found_in_files(folder: Path, markers: Iterable[str]) -> list[str]:
    """`file: marker` for each marker found in a file under `folder`, SQLite files read
    value by value."""
    markers = list(markers)
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        texts = [raw.decode("utf-8", "replace")]
        if raw.startswith(b"SQLite format 3"):
            texts += [t for _, value in _sqlite_values(path) for t in _texts_of(value)]
        found += [f"{path}: {m}" for m in markers if any(m in t for t in texts)]
    return found


def found_in_database(url: str, markers: Iterable[str]) -> list[str]:
    """`table: marker` for each marker found in any table of the database at `url`."""
    markers = list(markers)
    engine = sa.create_engine(url)
    found = []
    try:
        with engine.connect() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection)
            for table in metadata.sorted_tables:
                texts = [
                    t
                    for row in connection.execute(sa.select(table))
                    for v in row
                    for t in _texts_of(v)
                ]
                found += [f"{table.name}: {m}" for m in markers if any(m in t for t in texts)]
    finally:
        engine.dispose()
    return found


# Everything the webserver says about runs and resources: run configuration, the job
# snapshots' resource defaults, and the code location's resources as the UI lists them.
RUNS_AND_RESOURCES = """
{
  runsOrError {
    ... on Runs {
      results {
        runId
        runConfigYaml
        tags { key value }
        pipelineSnapshotId
      }
    }
  }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        allTopLevelResourceDetails {
          name
          configFields { name defaultValueAsJson }
          configuredValues { key value type }
        }
        jobs {
          name
          modes { resources { name configField { defaultValueAsJson } } }
        }
      }
    }
  }
}
"""

RUN_SNAPSHOT = """
query($id: String!) {
  pipelineSnapshotOrError(snapshotId: $id) {
    ... on PipelineSnapshot {
      modes { resources { name configField { defaultValueAsJson } } }
    }
  }
}
"""


def webserver_answers(graphql_url: str) -> list[str]:
    """The webserver's answers (JSON text) about every run, its stored job snapshot and the
    code location's resources."""

    def ask(query: str, variables: dict | None = None) -> dict:
        answer = requests.post(
            graphql_url, json={"query": query, "variables": variables or {}}, timeout=60
        )
        answer.raise_for_status()
        body = answer.json()
        assert "errors" not in body, body
        return body

    first = ask(RUNS_AND_RESOURCES)
    texts = [str(first)]
    for run in first["data"]["runsOrError"]["results"]:
        texts.append(str(ask(RUN_SNAPSHOT, {"id": run["pipelineSnapshotId"]})))
    return texts
