"""A bad clients file fails with a message naming the client and the field."""

from __future__ import annotations

from decimal import Decimal

import pytest

from metrics_pipeline.config.clients import (
    BUNDLED_CLIENTS_FILE,
    ClientsFileError,
    load_clients,
    parse_clients,
)

GOOD = """
clients:
  - id: lakeside
    name: Lakeside Inn
    meta_ad_account_id: act_42
"""


def test_the_tracking_and_anomaly_watches_are_set_per_client():
    (default,) = parse_clients(GOOD)
    assert (default.tracking.enabled, default.tracking.conversions) == (True, "reservations")
    assert default.tracking.rule.drop_pct == Decimal(10)
    assert default.anomalies.rule.band_width == Decimal(10)
    text = GOOD + (
        "    tracking:\n      enabled: false\n      conversions: total_conversions\n"
        "      drop_pct: 20\n      min_expected: 4\n"
        "    anomalies:\n      band_width: 8\n      min_conversions: 2\n"
    )
    (client,) = parse_clients(text)
    assert (client.tracking.enabled, client.tracking.conversions) == (False, "total_conversions")
    assert (client.tracking.rule.drop_pct, client.tracking.rule.min_expected) == (Decimal(20), 4)
    assert client.tracking.rule.spend_floor_pct == Decimal(25)
    assert (client.anomalies.rule.band_width, client.anomalies.rule.min_conversions) == (
        Decimal(8),
        2,
    )


def test_a_minimal_client_gets_the_default_mapping():
    (client,) = parse_clients(GOOD)
    rules = client.conversion_mapping.rules
    assert rules["reservations"].action_types == (
        "omni_purchase",
        "purchase",
        "offsite_conversion.fb_pixel_purchase",
    )
    assert rules["reservations"].combine == "first"
    assert client.attribution_windows == ("7d_click", "1d_view")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace("act_42", "42"),
            "client 'lakeside', field 'meta_ad_account_id': '42' must look like 'act_<digits>'",
        ),
        (
            GOOD + "    timezone: Mars/Olympus\n",
            "client 'lakeside', field 'timezone': unknown IANA timezone 'Mars/Olympus'",
        ),
        (
            GOOD + "    currency: XYZ\n",
            "client 'lakeside', field 'currency': unknown currency 'XYZ'",
        ),
        (
            GOOD + "    monthly_budget: -5\n",
            "client 'lakeside', field 'monthly_budget': Input should be greater than or equal to 0",
        ),
        (GOOD + "    budget: 5\n", "client 'lakeside', field 'budget': unknown key"),
        (GOOD + GOOD.replace("clients:\n", ""), "duplicate client id 'lakeside'"),
        (
            GOOD + "    conversions:\n      reservations:\n        action_types: [purchase, "
            "omni_purchase]\n        combine: sum\n",
            "client 'lakeside', field 'conversions.reservations': combine 'sum' would add synonyms",
        ),
        (
            GOOD + "    tracking:\n      conversions: bookings\n",
            "client 'lakeside', field 'tracking.conversions': unknown conversion metric "
            "'bookings'; use total_conversions, click_to_call",
        ),
        (
            GOOD + "    anomalies:\n      min_factor: 1\n",
            "client 'lakeside', field 'anomalies.min_factor': Input should be greater than 1",
        ),
        ("clients: [", "not valid YAML"),
    ],
)
def test_bad_files_name_the_client_and_field(text, message):
    with pytest.raises(ClientsFileError) as error:
        parse_clients(text, source="clients.yaml")
    assert message in str(error.value)
    assert str(error.value).startswith("clients.yaml: ")


@pytest.mark.parametrize(
    ("client_id", "name", "message"),
    [
        (
            r'"lake\nside"',
            "Lakeside Inn",
            r"client 'lake\nside', field 'id': 'lake\nside' may not contain control "
            "characters (U+000A)",
        ),
        (
            r'"lakeside\0"',
            "Lakeside Inn",
            r"client 'lakeside\x00', field 'id': 'lakeside\x00' may not contain control "
            "characters (U+0000)",
        ),
        (
            r'"lake\e[2Jside\r"',
            "Lakeside Inn",
            r"client 'lake\x1b[2Jside\r', field 'id': 'lake\x1b[2Jside\r' may not contain "
            "control characters (U+000D, U+001B)",
        ),
        (
            "lakeside",
            r'"Lakeside\x85Inn\u2028"',
            r"client 'lakeside', field 'name': 'Lakeside\x85Inn\u2028' may not contain "
            "control characters (U+0085, U+2028)",
        ),
    ],
)
def test_a_control_character_in_an_id_or_name_is_refused_on_one_line(
    client_id, name, message, tmp_path
):
    path = tmp_path / "clients.yaml"
    path.write_text(
        f"clients:\n  - id: {client_id}\n    name: {name}\n    meta_ad_account_id: act_42\n"
    )
    with pytest.raises(ClientsFileError) as error:
        load_clients(path)
    assert str(error.value) == f"{path}: {message}"


SERVED = "1d_click, 7d_click, 28d_click, 1d_view, 1d_ev"


@pytest.mark.parametrize("window", ["7d_view", "28d_view"])
def test_a_retired_attribution_window_is_refused_naming_when_and_what_is_served(window):
    text = GOOD + f"    attribution_windows: [7d_click, {window}]\n"
    with pytest.raises(ClientsFileError) as error:
        parse_clients(text, source="clients.yaml")
    message = str(error.value)
    assert "\n" not in message
    assert message.endswith(
        f"client 'lakeside', field 'attribution_windows': attribution window {window!r} is no "
        f"longer returned by Meta since 2026-01-12; windows still served: {SERVED}"
    )


def test_every_window_meta_still_serves_is_accepted():
    (client,) = parse_clients(GOOD + f"    attribution_windows: [{SERVED}]\n")
    assert client.attribution_windows == ("1d_click", "7d_click", "28d_click", "1d_view", "1d_ev")


def test_the_bundled_demo_clients_still_load():
    assert {c.id for c in load_clients(BUNDLED_CLIENTS_FILE)} == {
        "harbour_view_hotel",
        "canyon_lodge",
        "altstadt_apartments",
        "sakura_ryokan",
    }
