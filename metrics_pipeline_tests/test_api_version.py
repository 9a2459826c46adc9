"""The configured Marketing API version is checked against Meta's published dates: an
expired version fails (Meta would silently answer as a newer one), and so does one older
than every version in the table; one expiring within 30 days warns, a supported one passes;
the failure is alerted once. The command line refuses what the check fails, before any work
(test_front_door.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey, AssetSelection, materialize

from metrics_pipeline.automation.notifier import AlertNotifier
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline.meta.resource import DEFAULT_API_VERSION
from metrics_pipeline.meta.versions import VERSIONS, WARN_DAYS, VersionStatus, version_status
from metrics_pipeline.sandbox.server import SandboxServer
from metrics_pipeline_tests.conftest import NOW, make_resources
from metrics_pipeline_tests.receivers import webhook_receiver
from metrics_pipeline_tests.test_checks_and_alerts import tick_alerts

CHECK = AssetCheckKey(AssetKey("meta_ad_objects"), "api_version")
CLIENT = "harbour_view_hotel"


@pytest.mark.parametrize(
    ("version", "today", "status", "expires"),
    [
        ("v24.0", date(2026, 10, 10), VersionStatus.SUPPORTED, date(2026, 11, 10)),
        ("v24.0", date(2026, 10, 11), VersionStatus.EXPIRING, date(2026, 11, 10)),
        ("v24.0", date(2026, 11, 9), VersionStatus.EXPIRING, date(2026, 11, 10)),
        ("v24.0", date(2026, 11, 10), VersionStatus.EXPIRED, date(2026, 11, 10)),
        ("v25.0", date(2026, 11, 30), VersionStatus.SUPPORTED, date(2027, 2, 23)),
        # The warning window at its shipped 30 days: 31 days before the expiry, then 30.
        ("v25.0", date(2027, 1, 23), VersionStatus.SUPPORTED, date(2027, 2, 23)),
        ("v25.0", date(2027, 1, 24), VersionStatus.EXPIRING, date(2027, 2, 23)),
        ("v25.0", date(2027, 2, 22), VersionStatus.EXPIRING, date(2027, 2, 23)),
        ("v25.0", date(2027, 2, 23), VersionStatus.EXPIRED, date(2027, 2, 23)),
        ("v26.0", date(2030, 1, 1), VersionStatus.SUPPORTED, None),
        ("v27.0", date(2026, 11, 30), VersionStatus.SUPPORTED, None),
        ("v22.0", date(2026, 2, 19), VersionStatus.EXPIRED, date(2026, 2, 19)),
        ("v23.0", date(2026, 6, 8), VersionStatus.EXPIRING, date(2026, 6, 9)),
        # Older than every version in the table: expired whatever the date, by the oldest
        # one's expiry at the latest.
        ("v19.0", date(2026, 11, 30), VersionStatus.EXPIRED, date(2026, 2, 19)),
        ("v21.0", date(2025, 1, 1), VersionStatus.EXPIRED, date(2026, 2, 19)),
        ("v28.0", date(2026, 11, 30), VersionStatus.UNKNOWN, None),
        ("25.0", date(2026, 11, 30), VersionStatus.UNKNOWN, None),
    ],
)
def test_version_status_at_a_date(version, today, status, expires):
    report = version_status(version, today)
    assert (report.status, report.expires) == (status, expires)


def test_the_default_version_is_the_newest_reviewed_and_supported_today():
    assert WARN_DAYS == 30
    assert DEFAULT_API_VERSION == "v27.0" == VERSIONS[-1].name
    assert version_status(DEFAULT_API_VERSION, NOW.date()).status is VersionStatus.SUPPORTED


def run_check(world, catalog, instance, tmp_path, version: str, moment: datetime):
    """meta_ad_objects for one client with its version check, clock and sandbox at `moment`."""
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    with SandboxServer(world, now=moment) as sandbox:
        defs = build_definitions(
            catalog, make_resources(sandbox.url, url, now=moment, api_version=version)
        )
        run = materialize(
            assets=[*(defs.assets or []), *(defs.asset_checks or [])],
            selection=AssetSelection.assets("meta_ad_objects").without_checks()
            | AssetSelection.checks(CHECK),
            instance=instance,
            resources=defs.resources,
            partition_key=CLIENT,
            raise_on_error=False,
        )
    assert run.success  # the check never blocks collection
    (evaluation,) = [e for e in run.get_asset_check_evaluations() if e.asset_check_key == CHECK]
    return defs, evaluation


def test_an_expired_version_fails_naming_its_expiry_and_is_alerted_once(
    world, catalog, instance, tmp_path
):
    defs, evaluation = run_check(world, catalog, instance, tmp_path, "v24.0", NOW)
    assert evaluation.passed is False
    assert evaluation.severity == AssetCheckSeverity.ERROR
    assert "v24.0" in evaluation.description and "2026-11-10" in evaluation.description
    assert evaluation.metadata["offending_json"].value == [
        {
            "client": CLIENT,
            "date": "2026-11-10",
            "version": "v24.0",
            "status": "expired",
            "expires": "2026-11-10",
        }
    ]
    with webhook_receiver() as (hook_url, posts):
        notifier = AlertNotifier(webhook_url=hook_url)
        cursor = tick_alerts(defs, instance, notifier, None)
        cursor = tick_alerts(defs, instance, notifier, cursor)
        assert len(posts) == 1
        assert posts[0]["text"].startswith("*Check failed: meta_ad_objects:api_version")
        assert f"client {CLIENT}, date 2026-11-10" in posts[0]["text"]
        assert "version=v24.0" in posts[0]["text"]


def test_a_version_expiring_within_30_days_warns(world, catalog, instance, tmp_path):
    moment = datetime(2027, 2, 1, 12, 0, tzinfo=UTC)
    _, evaluation = run_check(world, catalog, instance, tmp_path, "v25.0", moment)
    assert evaluation.passed is False
    assert evaluation.severity == AssetCheckSeverity.WARN
    assert "v25.0" in evaluation.description and "2027-02-23" in evaluation.description
    assert [r["status"] for r in evaluation.metadata["offending_json"].value] == ["expiring"]


def test_a_supported_version_passes(world, catalog, instance, tmp_path):
    moment = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    _, evaluation = run_check(world, catalog, instance, tmp_path, "v25.0", moment)
    assert evaluation.passed is True
    assert evaluation.metadata["offending_json"].value == []


def test_a_version_older_than_every_known_one_fails_as_expired(world, catalog, instance, tmp_path):
    _, evaluation = run_check(world, catalog, instance, tmp_path, "v19.0", NOW)
    assert evaluation.passed is False
    assert evaluation.severity == AssetCheckSeverity.ERROR
    assert evaluation.description == (
        "Marketing API v19.0 is older than v22.0, the oldest version in meta/versions.py, "
        "which expired on 2026-02-19; Meta answers it as a newer version: set "
        "META_API_VERSION to a supported one"
    )
    assert [r["status"] for r in evaluation.metadata["offending_json"].value] == ["expired"]
