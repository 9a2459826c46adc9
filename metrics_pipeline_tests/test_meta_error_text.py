"""Meta's error text reaches a person as one short line: no escape sequence, no control
character, at most `MESSAGE_LIMIT` characters, on the terminal and in the alert alike."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from dagster import DagsterInstance, build_sensor_context

from metrics_pipeline.automation.notifier import AlertNotifier
from metrics_pipeline.automation.run_alerts import run_failure_alert_sensor
from metrics_pipeline.sandbox.faults import HOSTILE_MESSAGE
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN
from metrics_pipeline.text import MESSAGE_LIMIT, readable
from metrics_pipeline_tests.conftest import BUNDLED_CLIENTS, NOW
from metrics_pipeline_tests.receivers import WebhookReceiver

COMMAND = str(Path(sys.executable).with_name("metrics-pipeline"))
# Everything a terminal could act on; a newline only where the project itself breaks lines.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# What is left of HOSTILE_MESSAGE: its words on one line, cut to 300 characters.
SHOWN = "(#100) Invalid parameter see below " + "x" * 262 + "..."


def test_the_limit_and_one_character_either_side_of_it():
    assert MESSAGE_LIMIT == 300
    assert readable("a" * 299) == "a" * 299
    assert readable("a" * 300) == "a" * 300
    assert readable("a" * 301) == "a" * 297 + "..."
    assert len(readable("a" * 5000)) == 300


def test_escape_sequences_and_control_characters_become_single_spaces():
    assert readable("\x1b[1;31mred\x1b[0m and\r\nnext\tline\x00\x07\x7f\x85\x9b2J") == (
        "red and next line 2J"
    )
    shown = readable("title\x1b]0;pwned\x07 set, \x1b]8;;http://x\x1b\\link")
    assert shown == "title set, link"
    assert readable("line\u2028separator \u202eevil\u202c") == "line separator evil"
    # Cut after flattening, so white space never counts against the limit.
    assert readable(" \n" * 400 + "kept") == "kept"
    assert readable(HOSTILE_MESSAGE) == SHOWN
    assert len(SHOWN) == MESSAGE_LIMIT


def test_a_hostile_meta_message_reaches_the_terminal_and_the_alert_as_one_short_line(
    tmp_path, sandbox
):
    """The sandbox answers canyon_lodge's insights with an escape-laden 5,000-character
    message; the command line prints it, then the run-failure alert carries it."""
    fault = sandbox.inject("hostile_message", count=-1, route="insights", account="1000000002")
    home = tmp_path / "home"
    home.mkdir()
    day = str(NOW.date() - timedelta(days=3))
    result = subprocess.run(
        [COMMAND, "materialize", "--start", day, "--end", day, "--client", "canyon_lodge"],
        env={
            **os.environ,
            "DAGSTER_HOME": str(home),
            "METRICS_CLIENTS_FILE": str(BUNDLED_CLIENTS),
            "METRICS_WAREHOUSE_URL": f"sqlite:///{tmp_path / 'warehouse.sqlite'}",
            "METRICS_AS_OF": NOW.isoformat(),
            "META_API_BASE_URL": sandbox.url,
            "META_ACCESS_TOKEN": SANDBOX_TOKEN,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert fault.fired == 1  # code 100: never asked again
    printed = result.stdout + result.stderr
    assert CONTROL.findall(printed) == []
    assert "x" * 263 not in printed
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED ")]
    refused = (
        f"Meta API refused client 'canyon_lodge', account act_1000000002, insights {day}..{day}: "
        f"{sandbox.url} answered HTTP 400, code 100: {SHOWN}"
    )
    assert failed == [f"FAILED meta_insights + daily_kpi_data: 1 problem(s): {refused}"]

    with (
        DagsterInstance.local_temp(str(home), overrides={"telemetry": {"enabled": False}}) as inst,
        WebhookReceiver() as hook,
    ):
        context = build_sensor_context(
            instance=inst, resources={"alerts": AlertNotifier(webhook_url=hook.url)}
        )
        reason = run_failure_alert_sensor.evaluate_tick(context).skip_message
    assert reason == "1 failed run(s); 1 sent, 0 pending"
    (post,) = hook.posts
    assert CONTROL.findall(post["text"]) == []
    assert "x" * 263 not in post["text"]
    lines = post["text"].split("\n")
    assert lines[1:] == [
        f"partitions: canyon_lodge|{day} .. canyon_lodge|{day}",
        f"meta_insights: 1 problem(s): {refused}",
    ]
