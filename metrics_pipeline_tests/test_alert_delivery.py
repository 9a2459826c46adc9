"""Alerts are delivered once per channel: kept while a receiver is down, retried with
backoff, dropped with one log line after their maximum age; the webhook URL and the SMTP
password never show; mail goes only over verified TLS when a password is involved.

Real receivers on loopback, real Dagster runs and check evaluations, the real sensors.
"""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import urlsplit

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    Failure,
    asset,
    asset_check,
    build_sensor_context,
    materialize,
)
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value

from metrics_pipeline.automation.check_alerts import build_check_alert_sensor
from metrics_pipeline.automation.notifier import (
    AlertNotifier,
    DeliveryError,
    smtp_tls_required,
)
from metrics_pipeline.automation.run_alerts import run_failure_alert_sensor
from metrics_pipeline.checks.report import result
from metrics_pipeline.definitions import build_definitions
from metrics_pipeline_tests.receivers import (
    WebhookReceiver,
    free_port,
    self_signed_certificate,
    server_tls_context,
    smtp_server,
)

CHECK = AssetCheckKey(AssetKey("probe"), "rows")
check_alert_sensor = build_check_alert_sensor([CHECK])
# Shaped like a Slack webhook: the path is the credential and must show nowhere.
HOOK_PATH = f"/services/T0000/B0000/not-a-secret-{uuid.uuid4().hex}"


@asset
def probe() -> int:
    return 1


@asset_check(asset=probe, name="rows")
def probe_rows(context):
    day = context.run.tags.get("probe/day", "2026-01-01")
    offending = [{"client": "demo_client", "date": day, "rule": "rows_present"}]
    return result(False, offending, covered={"demo_client": [day]})


@asset
def flaky_source() -> None:
    raise Failure(description="source answered HTTP 500")


def fail_check(instance, day: str) -> None:
    outcome = materialize([probe, probe_rows], instance=instance, tags={"probe/day": day})
    assert outcome.success  # a failed (non-blocking) check does not fail the run


def fail_run(instance) -> str:
    outcome = materialize([flaky_source], instance=instance, raise_on_error=False)
    assert not outcome.success
    return outcome.run_id


def check_subject(count: int = 1) -> str:
    return f"Check failed: probe:rows ({count} new)"


def run_subject(run_id: str) -> str:
    return f"Run failed: __ephemeral_asset_job__ ({run_id[:8]})"


class Ticker:
    """Ticks one sensor as the daemon would: the cursor each tick saved feeds the next."""

    def __init__(self, sensor, instance, notifier: AlertNotifier) -> None:
        self.sensor, self.instance, self.notifier = sensor, instance, notifier
        self.cursor: str | None = None
        self.reasons: list[str] = []

    def __call__(self) -> str:
        context = build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"alerts": self.notifier}
        )
        data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor
        self.reasons.append(data.skip_message or "")
        return self.reasons[-1]

    def pending(self) -> list[dict]:
        return json.loads(self.cursor)["outbox"]


def tick_log_lines(capfd) -> list[str]:
    """What sensors wrote to `context.log`: a tick's logger writes to the console (stderr)."""
    return [line for line in capfd.readouterr().err.splitlines() if " - dagster - " in line]


def subjects(mails) -> list[str]:
    return sorted(m["Subject"] for m in mails)


def posted(posts) -> list[str]:
    return sorted(p["text"].split("\n")[0].strip("*") for p in posts)


def test_a_dead_webhook_delays_only_the_webhook_and_each_alert_arrives_once(instance, capfd):
    fail_check(instance, "2026-01-01")
    run_id = fail_run(instance)
    port = free_port()  # nothing listens here yet
    with smtp_server() as (smtp_port, inbox):
        notifier = AlertNotifier(
            webhook_url=f"http://127.0.0.1:{port}{HOOK_PATH}",
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            mail_to="ops@example.test",
            retry_base_seconds=0,
        )
        checks = Ticker(check_alert_sensor, instance, notifier)
        runs = Ticker(run_failure_alert_sensor, instance, notifier)
        refused = "webhook 127.0.0.1: ConnectionError"

        assert checks() == f"1 new alert(s); 1 sent, 1 pending ({refused})"
        assert runs() == f"1 failed run(s); 1 sent, 1 pending ({refused})"
        # Mail went out at once, one each; the webhook's copies wait in the cursors.
        assert subjects(inbox.messages) == sorted([check_subject(), run_subject(run_id)])
        assert [i["channel"] for i in checks.pending() + runs.pending()] == ["webhook"] * 2

        # Still down: retried, and the mail is not sent again.
        assert checks() == f"0 new alert(s); 0 sent, 1 pending ({refused})"
        assert runs() == f"0 failed run(s); 0 sent, 1 pending ({refused})"
        assert len(inbox.messages) == 2

        with WebhookReceiver(port=port, path=HOOK_PATH, status=503) as hook:
            assert checks() == "0 new alert(s); 0 sent, 1 pending (webhook 127.0.0.1: HTTP 503)"
            assert hook.hits == 1 and hook.posts == []
            hook.status = 204
            assert checks() == "0 new alert(s); 1 sent, 0 pending"
            assert runs() == "0 failed run(s); 1 sent, 0 pending"
            for _ in range(2):
                assert checks() == "no new check results"
                assert runs() == "no failed runs"
            assert posted(hook.posts) == sorted([check_subject(), run_subject(run_id)])
            body = next(p["text"] for p in hook.posts if "Run failed" in p["text"])
            assert body.endswith("partitions: -\nflaky_source: source answered HTTP 500")
        assert len(inbox.messages) == 2

    # No tick reason, log line or cursor names the webhook's path.
    logs = tick_log_lines(capfd)
    assert sum(f"WARNING - Alert not delivered ({refused})" in line for line in logs) == 4
    for text in [*checks.reasons, *runs.reasons, *logs, checks.cursor, runs.cursor]:
        assert HOOK_PATH not in text
        assert "not-a-secret" not in text


def test_every_alert_queued_during_an_outage_arrives_once_when_the_webhook_is_back(instance):
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    for day in days:
        fail_check(instance, day)
    run_ids = [fail_run(instance) for _ in range(3)]
    with WebhookReceiver(path=HOOK_PATH, status=503) as hook:
        notifier = AlertNotifier(webhook_url=hook.url, retry_base_seconds=0)
        checks = Ticker(check_alert_sensor, instance, notifier)
        runs = Ticker(run_failure_alert_sensor, instance, notifier)
        down = "(webhook 127.0.0.1: HTTP 503)"
        assert checks() == f"3 new alert(s); 0 sent, 3 pending {down}"
        assert runs() == f"3 failed run(s); 0 sent, 3 pending {down}"
        # After the first refusal a tick leaves the channel alone: one request per sensor.
        assert hook.hits == 2
        fail_check(instance, "2026-01-04")  # a new failure while the webhook is down
        assert checks() == f"1 new alert(s); 0 sent, 4 pending {down}"

        hook.status = 204
        assert checks() == "0 new alert(s); 4 sent, 0 pending"
        assert runs() == "0 failed run(s); 3 sent, 0 pending"
        for _ in range(2):
            assert checks() == "no new check results"
            assert runs() == "no failed runs"
    expected = [check_subject()] * 4 + [run_subject(r) for r in run_ids]
    assert posted(hook.posts) == sorted(expected)
    # Oldest first, so the days arrive in order.
    check_posts = [p["text"] for p in hook.posts if "Check failed" in p["text"]]
    assert [t.split("date ")[1][:10] for t in check_posts] == [*days, "2026-01-04"]


def test_retries_wait_longer_each_time(instance):
    run_id = fail_run(instance)
    with WebhookReceiver(path=HOOK_PATH, status=503) as hook:
        notifier = AlertNotifier(webhook_url=hook.url, retry_base_seconds=0.3)
        runs = Ticker(run_failure_alert_sensor, instance, notifier)
        runs()
        assert hook.hits == 1
        runs()  # within the first 0.3 s: not tried
        assert hook.hits == 1
        time.sleep(0.35)
        runs()
        assert hook.hits == 2
        time.sleep(0.35)  # the second wait is 0.6 s
        runs()
        assert hook.hits == 2
        assert runs.pending()[0]["attempts"] == 2
        hook.status = 204
        time.sleep(0.3)
        assert runs() == "0 failed run(s); 1 sent, 0 pending"
        assert hook.hits == 3
    assert posted(hook.posts) == [run_subject(run_id)]


def test_an_alert_undeliverable_past_its_max_age_is_logged_once_and_dropped(instance, capfd):
    fail_check(instance, "2026-01-01")
    with smtp_server() as (smtp_port, inbox):
        notifier = AlertNotifier(
            webhook_url=f"http://127.0.0.1:{free_port()}{HOOK_PATH}",
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            mail_to="ops@example.test",
            retry_base_seconds=0,
            max_age_hours=0.5 / 3600,  # half a second
        )
        checks = Ticker(check_alert_sensor, instance, notifier)
        assert checks().endswith("1 sent, 1 pending (webhook 127.0.0.1: ConnectionError)")
        time.sleep(0.6)
        assert checks() == "0 new alert(s); 0 sent, 0 pending, 1 dropped"
        assert checks.pending() == []
        assert checks() == "no new check results"
    assert subjects(inbox.messages) == [check_subject()]
    dropped = [line for line in tick_log_lines(capfd) if "Could not deliver" in line]
    assert len(dropped) == 1
    assert dropped[0].endswith(
        " - dagster - ERROR - Could not deliver alert by webhook within 0.000138889 h "
        "(1 attempt(s), last error: webhook 127.0.0.1: ConnectionError); "
        f"dropped: {check_subject()}"
    )


def test_a_webhook_error_names_the_host_only_and_chains_nothing():
    port = free_port()
    notifier = AlertNotifier(webhook_url=f"http://127.0.0.1:{port}{HOOK_PATH}?token=not-a-secret")
    with pytest.raises(DeliveryError) as refused:
        notifier.deliver("webhook", "subject", "body")
    assert str(refused.value) == "webhook 127.0.0.1: ConnectionError"
    assert refused.value.__cause__ is None and refused.value.__context__ is None
    with (
        WebhookReceiver(port=port, path=HOOK_PATH, status=503),
        pytest.raises(DeliveryError) as answered,
    ):
        notifier.deliver("webhook", "subject", "body")
    assert str(answered.value) == "webhook 127.0.0.1: HTTP 503"
    assert answered.value.__cause__ is None and answered.value.__context__ is None


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirected_alert_goes_nowhere_else_and_waits_for_its_receiver(status, instance, capfd):
    """A 307/308 would carry the alert to another host; a 301/302 would turn it into a GET
    there that counts as delivered while the alert is lost. Neither is followed."""
    run_id = fail_run(instance)
    with (
        WebhookReceiver(path="/elsewhere") as elsewhere,
        WebhookReceiver(path=HOOK_PATH, status=status, location=elsewhere.url) as hook,
    ):
        notifier = AlertNotifier(webhook_url=hook.url, retry_base_seconds=0)
        runs = Ticker(run_failure_alert_sensor, instance, notifier)
        other = urlsplit(elsewhere.url).netloc
        refused = f"webhook 127.0.0.1: HTTP {status} redirect to {other}, not followed"
        assert runs() == f"1 failed run(s); 0 sent, 1 pending ({refused})"
        assert runs() == f"0 failed run(s); 0 sent, 1 pending ({refused})"
        assert [(i["channel"], i["attempts"], i["last_error"]) for i in runs.pending()] == [
            ("webhook", 2, refused)
        ]
        assert (hook.hits, hook.posts, elsewhere.hits) == (2, [], 0)

        hook.status = 200
        assert runs() == "0 failed run(s); 1 sent, 0 pending"
        assert runs() == "no failed runs"
    assert posted(hook.posts) == [run_subject(run_id)]
    assert elsewhere.hits == 0
    warning = f"WARNING - Alert not delivered ({refused}); retrying in 0 s: {run_subject(run_id)}"
    assert sum(line.endswith(warning) for line in tick_log_lines(capfd)) == 2


def test_a_receiver_body_that_never_ends_does_not_hold_the_alert_up():
    with WebhookReceiver(path=HOOK_PATH, status=200, body_seconds=5) as hook:
        started = time.monotonic()
        AlertNotifier(webhook_url=hook.url).deliver("webhook", "subject", "body")
        took = time.monotonic() - started
    assert took < 1, took
    assert posted(hook.posts) == ["subject"]


def test_the_webhook_url_and_smtp_password_stay_off_the_resources_page(
    catalog, instance, monkeypatch
):
    url_path = f"{HOOK_PATH}-env"
    with WebhookReceiver(path=url_path) as hook:
        monkeypatch.setenv("METRICS_ALERT_WEBHOOK_URL", hook.url)
        monkeypatch.setenv("METRICS_ALERT_SMTP_PASSWORD", "not-a-secret-password")
        defs = build_definitions(catalog)
        # What the UI's resources page shows is the repository snapshot's configured values.
        snapshot = serialize_value(RepositorySnap.from_def(defs.get_repository_def()))
        shown = [snapshot, repr(defs.resources["alerts"])]
        for text in shown:
            assert url_path not in text
            assert "not-a-secret-password" not in text
        assert "METRICS_ALERT_WEBHOOK_URL" in snapshot
        # The value is read when the sensor runs, and reaches the receiver.
        sensor = defs.resolve_sensor_def("run_failure_alert_sensor")
        run_id = fail_run(instance)
        context = build_sensor_context(
            instance=instance, resources={"alerts": defs.resources["alerts"]}
        )
        assert sensor.evaluate_tick(context).skip_message == "1 failed run(s); 1 sent, 0 pending"
    assert posted(hook.posts) == [run_subject(run_id)]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def mailer(port: int, **settings) -> AlertNotifier:
    return AlertNotifier(
        smtp_host="127.0.0.1", smtp_port=port, mail_to="ops@example.test", **settings
    )


def test_mail_goes_over_starttls_to_a_verified_server_only(certificate):
    cert, key = certificate
    with smtp_server(starttls=server_tls_context(cert, key)) as (port, inbox):
        with pytest.raises(DeliveryError) as untrusted:
            mailer(port).deliver("email", "subject", "body")
        assert str(untrusted.value).startswith("email 127.0.0.1: certificate verify failed")
        assert inbox.messages == [] and inbox.logins == []

        trusting = mailer(
            port, smtp_ca_file=str(cert), smtp_username="alerts", smtp_password="not-a-secret"
        )
        trusting.deliver("email", "Check failed: probe:rows (1 new)", "body")
    assert subjects(inbox.messages) == ["Check failed: probe:rows (1 new)"]
    assert inbox.logins == ["alerts"]


def test_mail_goes_over_implicit_tls(certificate):
    cert, key = certificate
    with smtp_server(implicit_tls=server_tls_context(cert, key)) as (port, inbox):
        with pytest.raises(DeliveryError) as untrusted:
            mailer(port, smtp_ssl=True).deliver("email", "subject", "body")
        assert "certificate verify failed" in str(untrusted.value)
        mailer(port, smtp_ssl=True, smtp_ca_file=str(cert)).deliver("email", "over SMTPS", "b")
    assert subjects(inbox.messages) == ["over SMTPS"]


def test_a_password_is_never_sent_to_a_server_without_tls():
    with smtp_server() as (port, inbox):
        notifier = mailer(port, smtp_username="alerts", smtp_password="not-a-secret")
        with pytest.raises(DeliveryError) as refused:
            notifier.deliver("email", "subject", "body")
        # Without a login, plain SMTP still works (a relay on the same host, say).
        mailer(port).deliver("email", "no login", "body")
    assert str(refused.value) == (
        "SMTP host 127.0.0.1 offers no TLS; refusing to send the password in clear"
    )
    assert inbox.logins == []
    assert subjects(inbox.messages) == ["no login"]


def test_tls_is_required_for_every_mail_host_but_loopback_unless_set():
    for host in ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST."]:
        assert not smtp_tls_required(host, None), host
    for host in ["10.0.0.5", "192.168.1.20", "smtp.example.com", "localhost.example.com", "::"]:
        assert smtp_tls_required(host, None), host
    # Set, the setting decides for any host.
    assert smtp_tls_required("127.0.0.1", True)
    assert not smtp_tls_required("smtp.example.com", False)


def test_with_tls_required_a_server_without_starttls_gets_no_mail_and_the_alert_waits(instance):
    run_id = fail_run(instance)
    with smtp_server() as (port, inbox):
        notifier = mailer(port, smtp_require_tls=True, retry_base_seconds=0)
        runs = Ticker(run_failure_alert_sensor, instance, notifier)
        refused = "SMTP host 127.0.0.1 offers no TLS, which METRICS_ALERT_SMTP_REQUIRE_TLS requires"
        assert runs() == f"1 failed run(s); 0 sent, 1 pending ({refused})"
        assert runs() == f"0 failed run(s); 0 sent, 1 pending ({refused})"
        assert [(i["channel"], i["attempts"]) for i in runs.pending()] == [("email", 2)]
        assert inbox.messages == []

        # Allowed in clear, the same server takes it, once.
        runs.notifier = mailer(port, smtp_require_tls=False, retry_base_seconds=0)
        assert runs() == "0 failed run(s); 1 sent, 0 pending"
        assert runs() == "no failed runs"
    assert subjects(inbox.messages) == [run_subject(run_id)]
