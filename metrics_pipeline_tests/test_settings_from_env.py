"""The code location's resources read every documented variable, and keep their defaults
when it is unset; secrets and URLs stay variable names in the configuration."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from dagster import EnvVar, build_resources

from metrics_pipeline.automation.notifier import AlertNotifier
from metrics_pipeline.definitions import ALERTS_ENV, RENAMED_ENV, defs
from metrics_pipeline.env_settings import env_settings
from metrics_pipeline_tests.conftest import BUNDLED_CLIENTS

# variable -> (resource, field, placeholder text, value the resource must hold)
PLACEHOLDERS = {
    "META_ACCESS_TOKEN": ("meta", "access_token", "placeholder-token", "placeholder-token"),
    "META_APP_SECRET": ("meta", "app_secret", "placeholder-secret", "placeholder-secret"),
    "META_API_BASE_URL": ("meta", "base_url", "http://meta.invalid", "http://meta.invalid"),
    "META_API_VERSION": ("meta", "api_version", "v99.0", "v99.0"),
    "META_CONNECT_BUDGET_SECONDS": ("meta", "connect_budget_seconds", "7.5", 7.5),
    "METRICS_AS_OF": ("clock", "as_of", "2026-11-18T20:00:00+00:00", "2026-11-18T20:00:00+00:00"),
    "METRICS_ALERT_WEBHOOK_URL": (
        "alerts",
        "webhook_url",
        "http://hook.invalid/p",
        "http://hook.invalid/p",
    ),
    "METRICS_ALERT_SMTP_HOST": ("alerts", "smtp_host", "mail.invalid", "mail.invalid"),
    "METRICS_ALERT_SMTP_PORT": ("alerts", "smtp_port", "2525", 2525),
    "METRICS_ALERT_SMTP_SSL": ("alerts", "smtp_ssl", "true", True),
    "METRICS_ALERT_SMTP_REQUIRE_TLS": ("alerts", "smtp_require_tls", "true", True),
    "METRICS_ALERT_SMTP_CA_FILE": ("alerts", "smtp_ca_file", "/etc/ca.pem", "/etc/ca.pem"),
    "METRICS_ALERT_SMTP_USERNAME": ("alerts", "smtp_username", "mailer", "mailer"),
    "METRICS_ALERT_SMTP_PASSWORD": ("alerts", "smtp_password", "placeholder-pw", "placeholder-pw"),
    "METRICS_ALERT_MAIL_FROM": ("alerts", "mail_from", "from@mail.invalid", "from@mail.invalid"),
    "METRICS_ALERT_MAIL_TO": ("alerts", "mail_to", "to@mail.invalid", "to@mail.invalid"),
    "METRICS_ALERT_RETRY_BASE_SECONDS": ("alerts", "retry_base_seconds", "5", 5.0),
    "METRICS_ALERT_MAX_AGE_HOURS": ("alerts", "max_age_hours", "2.5", 2.5),
    "METRICS_COMPLETENESS_DAYS": ("checks", "completeness_days", "30", 30),
    "METRICS_DAILY_FRESH_BY_HOUR": ("checks", "daily_fresh_by_hour", "9", 9),
    "METRICS_FX_RATES_URL": ("fx", "rates_url", "http://rates.invalid/f", "http://rates.invalid/f"),
    "METRICS_REPORTING_CURRENCY": ("fx", "reporting_currency", "USD", "USD"),
    "METRICS_FX_MAX_MOVE_PCT": ("fx", "max_move_pct", "2.5", 2.5),
}
# With every variable above unset: the documented defaults (README, Configuration).
DEFAULTS = {
    ("meta", "access_token"): "",
    ("meta", "app_secret"): None,
    ("meta", "base_url"): "https://graph.facebook.com",
    ("meta", "api_version"): "v27.0",
    ("meta", "connect_budget_seconds"): 60.0,
    ("clock", "as_of"): "",
    ("alerts", "webhook_url"): "",
    ("alerts", "smtp_host"): "",
    ("alerts", "smtp_port"): 25,
    ("alerts", "smtp_ssl"): False,
    ("alerts", "smtp_require_tls"): None,  # required for every host but loopback
    ("alerts", "smtp_ca_file"): "",
    ("alerts", "smtp_username"): "",
    ("alerts", "smtp_password"): "",
    ("alerts", "mail_from"): "metrics-pipeline@localhost",
    ("alerts", "mail_to"): "",
    ("alerts", "retry_base_seconds"): 60.0,
    ("alerts", "max_age_hours"): 24.0,
    ("checks", "completeness_days"): 90,
    ("checks", "daily_fresh_by_hour"): 6,
    ("fx", "rates_url"): "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.xml",
    ("fx", "reporting_currency"): "EUR",
    ("fx", "max_move_pct"): 5.0,
}
# What must never be a value in the configuration the UI shows.
SECRETS_AND_URLS = {
    ("meta", "access_token"): "META_ACCESS_TOKEN",
    ("meta", "app_secret"): "META_APP_SECRET",
    ("meta", "base_url"): "META_API_BASE_URL",
    ("alerts", "webhook_url"): "METRICS_ALERT_WEBHOOK_URL",
    ("alerts", "smtp_password"): "METRICS_ALERT_SMTP_PASSWORD",
    ("warehouse", "url"): "METRICS_WAREHOUSE_URL",
    ("fx", "rates_url"): "METRICS_FX_RATES_URL",
}


@pytest.fixture
def location_env(monkeypatch, tmp_path):
    """Only the clients file and a warehouse of this test's own; nothing else set."""
    for variable in [*PLACEHOLDERS, *RENAMED_ENV]:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("METRICS_CLIENTS_FILE", str(BUNDLED_CLIENTS))
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    monkeypatch.setenv("METRICS_WAREHOUSE_URL", url)
    return url


def _resolved(resources: dict):
    """The resources as a run sees them: configuration read, variables resolved."""
    return build_resources(resources)


def test_every_variable_reaches_its_resource_field(location_env, monkeypatch):
    for variable, (_, _, text, _) in PLACEHOLDERS.items():
        monkeypatch.setenv(variable, text)
    configured = defs().resources
    for (resource, field), variable in SECRETS_AND_URLS.items():
        value = getattr(configured[resource], field)
        assert isinstance(value, EnvVar) and value.env_var_name == variable, (resource, field)
    with _resolved(configured) as resolved:
        for variable, (resource, field, _, expected) in PLACEHOLDERS.items():
            assert getattr(getattr(resolved, resource), field) == expected, variable
        assert resolved.warehouse.url == location_env


def test_unset_variables_keep_the_fields_defaults(location_env):
    with _resolved(defs().resources) as resolved:
        for (resource, field), expected in DEFAULTS.items():
            assert getattr(getattr(resolved, resource), field) == expected, (resource, field)


def test_a_malformed_number_stops_loading_naming_variable_and_value(location_env, monkeypatch):
    monkeypatch.setenv("METRICS_COMPLETENESS_DAYS", "ninety")
    with pytest.raises(ValueError) as error:
        defs()
    assert str(error.value) == (
        "METRICS_COMPLETENESS_DAYS (CheckSettings.completeness_days): 'ninety' is not an integer"
    )


def test_the_old_starttls_variable_still_sets_require_tls_and_says_so_once(location_env):
    """METRICS_ALERT_SMTP_STARTTLS always set "require TLS"; renamed, it keeps working,
    and a process that reads it says so once, however often it builds its resources."""
    assert RENAMED_ENV == {"METRICS_ALERT_SMTP_STARTTLS": "METRICS_ALERT_SMTP_REQUIRE_TLS"}
    script = (
        "from metrics_pipeline.definitions import default_resources\n"
        "for _ in range(3):\n"
        "    print(default_resources()['alerts'].smtp_require_tls)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "METRICS_ALERT_SMTP_STARTTLS": "false"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["False"] * 3
    assert result.stderr.splitlines() == [
        "METRICS_ALERT_SMTP_STARTTLS is deprecated; use METRICS_ALERT_SMTP_REQUIRE_TLS, "
        "which means the same"
    ]

    def require_tls(**environ: str) -> bool | None:
        settings = env_settings(AlertNotifier, ALERTS_ENV, environ, True, RENAMED_ENV)
        return settings.get("smtp_require_tls")

    assert require_tls(METRICS_ALERT_SMTP_STARTTLS="true") is True
    assert require_tls(METRICS_ALERT_SMTP_STARTTLS="false") is False
    # The new name wins when both are set.
    assert (
        require_tls(METRICS_ALERT_SMTP_STARTTLS="true", METRICS_ALERT_SMTP_REQUIRE_TLS="false")
        is False
    )
    assert require_tls() is None


# variable -> (mistyped value, the one line loading stops with)
MISTYPED = {
    "METRICS_REPORTING_CURRENCY": (
        "XYZ",
        "METRICS_REPORTING_CURRENCY: 'XYZ' is not a currency the euro reference rates quote; "
        "accepted: EUR, AUD, BRL, CAD, CHF, CNY, CZK, DKK, GBP, HKD, HUF, IDR, ILS, INR, ISK, "
        "JPY, KRW, MXN, MYR, NOK, NZD, PHP, PLN, RON, SEK, SGD, THB, TRY, USD, ZAR",
    ),
    "METRICS_WAREHOUSE_URL": (
        "mysql://metrics:placeholder-pw@db.invalid/metrics",
        "METRICS_WAREHOUSE_URL: 'mysql://metrics:***@db.invalid/metrics': mysql is not "
        "supported, only SQLite and PostgreSQL (psycopg2) are; accepted: sqlite:///<path of a "
        "file>, postgresql+psycopg2://<user>@<host>:<port>/<database>",
    ),
    "META_API_VERSION": (
        "25.0",
        "META_API_VERSION: '25.0' is not a Marketing API version; accepted: vNN.0, e.g. v27.0",
    ),
    "METRICS_AUTOMATION": ("of", "METRICS_AUTOMATION: 'of' is not on or off; accepted: on, off"),
}


@pytest.mark.parametrize("variable", MISTYPED)
def test_a_mistyped_setting_stops_loading_naming_variable_value_and_what_is_accepted(
    location_env, monkeypatch, variable
):
    value, message = MISTYPED[variable]
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError) as error:
        defs()
    assert str(error.value) == message
