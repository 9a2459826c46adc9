"""The front door, tried as a newcomer would: every mistyped setting, an expired or unknown
API version, and a refused token end in one line naming what to fix and what is accepted,
within seconds and before any work; the command says which clients file it read, its help
describes every option with its default, and the repository root loads with bare `dg`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from metrics_pipeline.cli.main import build_parser, main
from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
from metrics_pipeline.sandbox.server import SANDBOX_TOKEN
from metrics_pipeline.steps.failures import distinct_problems
from metrics_pipeline_tests.conftest import BUNDLED_CLIENTS, NOW

ROOT = Path(__file__).parents[1]
COMMAND = str(Path(sys.executable).with_name("metrics-pipeline"))
DG = str(Path(sys.executable).with_name("dg"))
DAY = str(NOW.date() - timedelta(days=3))
ACCEPTED_VERSIONS_AT_NOW = "accepted: v25.0, v26.0, v27.0 (the newest is v27.0)"
ACCEPTED_URLS = (
    "accepted: sqlite:///<path of a file>, postgresql+psycopg2://<user>@<host>:<port>/<database>"
)


def _settings_only(monkeypatch, tmp_path) -> Path:
    """No setting of this process's own; the clients file named; a Dagster home that does not
    exist yet (so a refusal before any work leaves it uncreated); no token."""
    for name in list(os.environ):
        if name.startswith(("META_", "METRICS_", "DAGSTER_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("METRICS_CLIENTS_FILE", str(BUNDLED_CLIENTS))
    monkeypatch.setenv("METRICS_AS_OF", NOW.isoformat())
    monkeypatch.chdir(tmp_path)
    return home


def _materialize(capsys) -> tuple[int, list[str], list[str]]:
    status = main(["materialize", "--start", DAY, "--end", DAY])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err.splitlines()


# (variable, value, the one line naming it) - everything a person can mistype.
REFUSED = [
    (
        "METRICS_REPORTING_CURRENCY",
        "XYZ",
        "'XYZ' is not a currency the euro reference rates quote; accepted: EUR, AUD, BRL, CAD, "
        "CHF, CNY, CZK, DKK, GBP, HKD, HUF, IDR, ILS, INR, ISK, JPY, KRW, MXN, MYR, NOK, NZD, "
        "PHP, PLN, RON, SEK, SGD, THB, TRY, USD, ZAR",
    ),
    (
        "METRICS_REPORTING_CURRENCY",
        "usd",
        "'usd' is not a currency the euro reference rates quote (did you mean USD?); accepted: "
        "EUR, AUD, BRL, CAD, CHF, CNY, CZK, DKK, GBP, HKD, HUF, IDR, ILS, INR, ISK, JPY, KRW, "
        "MXN, MYR, NOK, NZD, PHP, PLN, RON, SEK, SGD, THB, TRY, USD, ZAR",
    ),
    (
        "METRICS_WAREHOUSE_URL",
        "postgresql://metrics:placeholder-pw@db.invalid:port/metrics",
        f"'postgresql://metrics:***@db.invalid:port/metrics' is not a database URL; "
        f"{ACCEPTED_URLS}",
    ),
    (
        "METRICS_WAREHOUSE_URL",
        "mysql://metrics:placeholder-pw@db.invalid/metrics",
        "'mysql://metrics:***@db.invalid/metrics': mysql is not supported, only SQLite and "
        f"PostgreSQL (psycopg2) are; {ACCEPTED_URLS}",
    ),
    (
        "METRICS_AS_OF",
        "yesterday",
        "'yesterday' is not an ISO 8601 date and time; accepted: e.g. 2026-11-19T10:00:00+00:00 "
        "or 2026-11-19 (UTC when no offset is given), or unset for the real clock",
    ),
    (
        "METRICS_HISTORY_START",
        "01/01/2025",
        "'01/01/2025' is not a date; accepted: YYYY-MM-DD, e.g. 2025-01-01",
    ),
    (
        "META_API_BASE_URL",
        "graph.facebook.com",
        "'graph.facebook.com' is not an http(s) URL; accepted: https://<host>[:<port>][/<path>]",
    ),
    ("METRICS_AUTOMATION", "yes", "'yes' is not on or off; accepted: on, off"),
    ("METRICS_STEP_MAX_RETRIES", "-1", "'-1' is not a whole number of 0 or more"),
    (
        "METRICS_COMPLETENESS_DAYS",
        "ninety",
        None,  # a number: env_settings' own wording, with the resource field
    ),
    # The API version, on NOW (2026-11-18): older than every known version, expired, unknown.
    (
        "META_API_VERSION",
        "v19.0",
        "'v19.0' is older than v22.0, the oldest version this project knows (expired "
        f"2026-02-19): Meta answers it as a newer version; {ACCEPTED_VERSIONS_AT_NOW}",
    ),
    (
        "META_API_VERSION",
        "v24.0",
        f"'v24.0' expired on 2026-11-10: Meta answers it as a newer version; "
        f"{ACCEPTED_VERSIONS_AT_NOW}",
    ),
    (
        "META_API_VERSION",
        "v28.0",
        "'v28.0' is not in meta/versions.py, the versions whose changes this project has "
        f"reviewed; {ACCEPTED_VERSIONS_AT_NOW}",
    ),
    (
        "META_API_VERSION",
        "25",
        "'25' is not a Marketing API version; accepted: vNN.0, e.g. v27.0",
    ),
]


@pytest.mark.parametrize(
    ("variable", "value", "message"), REFUSED, ids=[f"{v}={x}" for v, x, _ in REFUSED]
)
def test_a_mistyped_setting_is_one_line_before_any_work(
    monkeypatch, tmp_path, capsys, variable, value, message
):
    home = _settings_only(monkeypatch, tmp_path)
    monkeypatch.setenv(variable, value)
    started = time.monotonic()
    status, out, err = _materialize(capsys)
    assert status == 1
    if message is None:
        message = "'ninety' is not an integer"
        variable = "METRICS_COMPLETENESS_DAYS (CheckSettings.completeness_days)"
    assert err == [f"error: {variable}: {message}"]
    assert out == []  # nothing read, created or called before it
    assert not home.exists()
    assert "placeholder-pw" not in "\n".join(err)
    assert time.monotonic() - started < 10


def test_a_folder_for_a_file_and_a_file_for_a_folder_are_named(monkeypatch, tmp_path, capsys):
    _settings_only(monkeypatch, tmp_path)
    monkeypatch.setenv("METRICS_CLIENTS_FILE", str(tmp_path))
    status, out, err = _materialize(capsys)
    assert (status, out) == (1, [])
    assert err == [
        f"error: METRICS_CLIENTS_FILE: '{tmp_path}' is a folder, not a file; accepted: the path "
        "of a file"
    ]
    monkeypatch.setenv("METRICS_CLIENTS_FILE", str(BUNDLED_CLIENTS))
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "a-file"))
    status, out, err = _materialize(capsys)
    assert (status, out) == (1, [])
    assert err == [
        f"error: DAGSTER_HOME: '{tmp_path / 'a-file'}' is a file, not a folder; accepted: a "
        "folder (created if missing)"
    ]


def test_every_mistyped_setting_is_named_on_the_same_line(monkeypatch, tmp_path, capsys):
    _settings_only(monkeypatch, tmp_path)
    monkeypatch.setenv("METRICS_REPORTING_CURRENCY", "EURO")
    monkeypatch.setenv("METRICS_AS_OF", "yesterday")
    status, _, err = _materialize(capsys)
    assert status == 1 and len(err) == 1
    assert err[0].startswith("error: METRICS_AS_OF: 'yesterday' is not an ISO 8601 date")
    assert "; METRICS_REPORTING_CURRENCY: 'EURO' is not a currency" in err[0]


def test_the_demo_checks_the_settings_it_keeps_before_starting_anything(
    monkeypatch, tmp_path, capsys
):
    _settings_only(monkeypatch, tmp_path)
    monkeypatch.setenv("METRICS_FX_MAX_MOVE_PCT", "five")
    assert main(["demo"]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "error: METRICS_FX_MAX_MOVE_PCT (FxResource.max_move_pct): 'five' is not a number"
    ]
    assert "Meta sandbox" not in out  # no sandbox started, no folder made
    assert not (tmp_path / ".metrics_pipeline").exists()


@pytest.mark.parametrize(
    ("today", "note"),
    [
        # v25.0 expires on 2027-02-23; the shipped warning window is 30 days.
        ("2027-01-23", None),  # 31 days before: supported, nothing said
        ("2027-01-24", "in 30 day(s)"),  # 30 days before: inside the window
        ("2027-02-22", "in 1 day(s)"),  # the last day it is served
    ],
)
def test_a_version_inside_its_warning_window_is_named_and_still_used(
    monkeypatch, tmp_path, capsys, today, note
):
    _settings_only(monkeypatch, tmp_path)
    monkeypatch.setenv("META_API_VERSION", "v25.0")
    monkeypatch.setenv("METRICS_AS_OF", f"{today}T12:00:00+00:00")
    status, out, err = _materialize(capsys)
    # It goes on to the next check (no token set here): the version did not stop it.
    assert (
        status == 1 and len(err) == 1 and err[0].startswith("error: META_ACCESS_TOKEN is not set")
    )
    notes = [line for line in out if line.startswith("note: Marketing API")]
    if note is None:
        assert notes == []
    else:
        assert notes == [
            f"note: Marketing API v25.0 expires on 2027-02-23, {note}: set "
            "META_API_VERSION=v27.0, the newest supported, after reading its changelog "
            "(README: Moving to a new API version)"
        ]


def test_a_version_is_refused_on_its_expiry_day(monkeypatch, tmp_path, capsys):
    home = _settings_only(monkeypatch, tmp_path)
    monkeypatch.setenv("META_API_VERSION", "v25.0")
    monkeypatch.setenv("METRICS_AS_OF", "2027-02-23T00:00:00+00:00")
    status, out, err = _materialize(capsys)
    assert status == 1 and out == [] and not home.exists()
    assert err == [
        "error: META_API_VERSION: 'v25.0' expired on 2027-02-23: Meta answers it as a newer "
        "version; accepted: v26.0, v27.0 (the newest is v27.0)"
    ]


def test_materialize_names_the_clients_file_it_read(monkeypatch, tmp_path, capsys):
    _settings_only(monkeypatch, tmp_path)
    monkeypatch.delenv("METRICS_CLIENTS_FILE")
    bundled = ROOT / "metrics_pipeline" / "config" / "demo_clients.yaml"
    # Each run stops at the missing token, after saying what it read.
    _, out, _ = _materialize(capsys)
    assert out[0] == (
        f"Clients file: {bundled} (the bundled demo clients: METRICS_CLIENTS_FILE is unset "
        "and there is no clients.yaml in this folder)"
    )
    (tmp_path / "clients.yaml").write_text(BUNDLED_CLIENTS.read_text())
    _, out, _ = _materialize(capsys)
    assert out[0] == f"Clients file: {(tmp_path / 'clients.yaml').resolve()}"
    monkeypatch.setenv("METRICS_CLIENTS_FILE", str(BUNDLED_CLIENTS))
    _, out, _ = _materialize(capsys)
    assert out[0] == f"Clients file: {BUNDLED_CLIENTS}"


# subcommand -> (words of its description, {option: what its help must say of its default})
HELP = {
    "demo": (
        "bundled demo clients from the Monday six weeks back",
        {
            "--ui": "(default: off)",
            "--ui-port": "(default: 3000)",
            "--sandbox-port": "(default: 0, any free port)",
            "--verbose": "(default: off)",
        },
    ),
    "materialize": (
        "for a window of days",
        {
            "--start": "(required)",
            "--end": "(required)",
            "--client": "(default: every client)",
            "--verbose": "(default: off)",
        },
    ),
    "sandbox": (
        "imitation of Meta's Graph API",
        {
            "--port": "(default: 8765)",
            "--fault": "(default: none)",
            "--rate-limit": "(default: none)",
        },
    ),
}


@pytest.mark.parametrize("subcommand", HELP)
def test_every_subcommand_help_describes_it_and_each_option_with_its_default(capsys, subcommand):
    with pytest.raises(SystemExit) as done:
        main([subcommand, "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps at the terminal width
    description, options = HELP[subcommand]
    assert description in text
    listed = text.split(" options: ", 1)[1]
    for option, default in options.items():
        help_of_option = listed.split(f" {option} ", 1)[1].split(" --", 1)[0]
        assert help_of_option.rstrip().endswith(default), (option, help_of_option)
    # No option without a help text that says its default (an option added later included).
    parser = build_parser()
    (choices,) = [a.choices for a in parser._actions if a.dest == "command"]
    for action in choices[subcommand]._actions:
        if action.dest != "help":
            assert "(default:" in action.help or "(required)" in action.help, action.dest


def test_a_refused_token_is_one_line_naming_every_client_it_hit(tmp_path, sandbox):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("META_", "METRICS_"))},
        "DAGSTER_HOME": str(tmp_path / "home"),
        "METRICS_CLIENTS_FILE": str(BUNDLED_CLIENTS),
        "METRICS_WAREHOUSE_URL": f"sqlite:///{tmp_path / 'warehouse.sqlite'}",
        "METRICS_AS_OF": NOW.isoformat(),
        "META_API_BASE_URL": sandbox.url,
        "META_ACCESS_TOKEN": "not-the-token",
        "METRICS_FX_RATES_URL": sandbox.url + FEED_PATH,
    }
    result = subprocess.run(
        [COMMAND, "materialize", "--start", DAY, "--end", DAY],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "FAILED meta_ad_objects: 4 problem(s): Meta API refused clients 'harbour_view_hotel', "
        "'canyon_lodge', 'altstadt_apartments', 'sakura_ryokan' (accounts act_1000000001, "
        f"act_1000000002, act_1000000003, act_1000000004), ad account: {sandbox.url} answered "
        "HTTP 400, code 190/463: Invalid OAuth access token - Cannot parse access token"
    ]
    assert "not-the-token" not in result.stdout + result.stderr


def test_distinct_problems_keep_their_order_and_name_each_client_once():
    def refused(client: str, account: str, why: str) -> str:
        return f"Meta API refused client {client!r}, account {account}, ad account: {why}"

    problems = [
        refused("inn", "act_1", "code 190: expired"),
        refused("o'brien", "act_3", "code 200: permission"),
        refused("lodge", "act_2", "code 190: expired"),
        refused("inn", "act_1", "code 190: expired"),
        "client 'inn', date 2026-11-11, field 'spend': not an amount",
        "client 'inn', date 2026-11-11, field 'spend': not an amount",
    ]
    assert distinct_problems(problems) == [
        "Meta API refused clients 'inn', 'lodge' (accounts act_1, act_2), ad account: "
        "code 190: expired",
        'Meta API refused client "o\'brien", account act_3, ad account: code 200: permission',
        "client 'inn', date 2026-11-11, field 'spend': not an amount (2 times)",
    ]


def _root_env(**extra: str) -> dict[str, str]:
    """A fresh shell at the repository root: no Dagster or pipeline variable set."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("META_", "METRICS_", "DAGSTER_"))
    }
    return {**env, **extra}


def test_bare_dg_check_defs_works_at_the_repository_root():
    result = subprocess.run(
        [DG, "check", "defs"],
        cwd=ROOT,
        env=_root_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully." in result.stdout
    assert "DAGSTER_PG_URL" not in result.stdout + result.stderr


def test_a_mistyped_reporting_currency_stops_the_code_location_loading_naming_it():
    result = subprocess.run(
        [DG, "check", "defs"],
        cwd=ROOT,
        env=_root_env(METRICS_REPORTING_CURRENCY="XYZ"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert (
        "SettingError: METRICS_REPORTING_CURRENCY: 'XYZ' is not a currency the euro reference "
        "rates quote; accepted: EUR, AUD, BRL, CAD, CHF, CNY, CZK, DKK, GBP, HKD, HUF, IDR, ILS, "
        "INR, ISK, JPY, KRW, MXN, MYR, NOK, NZD, PHP, PLN, RON, SEK, SGD, THB, TRY, USD, ZAR"
    ) in result.stdout + result.stderr


def test_the_sandbox_prints_every_variable_the_readme_ui_recipe_exports():
    """The README's hand-made UI recipe sets every variable the sandbox says to set, the
    rates feed included (without it the gap sensor reads the real ECB site)."""
    process = subprocess.Popen(
        [COMMAND, "sandbox", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        printed = [process.stdout.readline().strip() for _ in range(5)]
    finally:
        process.terminate()
        process.wait(timeout=10)
    exported = [line.split()[1].split("=")[0] for line in printed if line.startswith("export ")]
    assert exported == ["META_API_BASE_URL", "META_ACCESS_TOKEN", "METRICS_FX_RATES_URL"]
    readme = (ROOT / "README.md").read_text()
    recipe = readme.split("## Using the Dagster UI", 1)[1].split("\n## ", 1)[0]
    for variable in exported:
        assert f"{variable}=" in recipe, variable
    assert SANDBOX_TOKEN in recipe
