"""Adding a metric is one registry entry: the KPI lists, the clients file's conversion
fields and the warehouse's KPI columns all follow from it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from metrics_pipeline.config.clients import ClientsFileError, parse_clients
from metrics_pipeline.domain.conversions import MetricRule, conversion_metrics
from metrics_pipeline.domain.metrics import METRICS, Metric, MetricRegistry
from metrics_pipeline.warehouse.schema import kpi_columns
from metrics_pipeline_tests.helpers import COUNTS

ADD_TO_CART = Metric(
    "add_to_cart",
    "count",
    "Products added to a cart.",
    conversion=True,
    action_types=("offsite_conversion.fb_pixel_add_to_cart",),
)
WITH_CART = MetricRegistry((*METRICS.metrics, ADD_TO_CART), METRICS.total_conversions)

CLIENTS = """
clients:
  - id: lakeside
    name: Lakeside Inn
    meta_ad_account_id: act_42
    conversions:
      add_to_cart:
        action_types: [offsite_conversion.fb_pixel_add_to_cart, offsite_conversion.custom.77]
        combine: sum
      total_conversions: [reservations, add_to_cart]
"""

# The stored KPI columns of every store today: (name, nullable), in table order.
STORED_KPI_COLUMNS = [
    ("total_spend", False),
    ("total_impressions", False),
    ("total_clicks", False),
    ("total_conversions", False),
    ("average_ctr", True),
    ("average_cpc", True),
    ("click_to_call", False),
    ("email_contacts", False),
    ("booking_step_1", False),
    ("booking_step_2", False),
    ("booking_step_3", False),
    ("reservations", False),
    ("reservation_value", False),
    ("roas", True),
    ("cost_per_reservation", True),
    ("average_cpa", True),
]


def test_the_kpi_lists_follow_the_registry():
    assert WITH_CART.count_names == (*COUNTS, "add_to_cart")
    assert [(m.name, m.insight_field) for m in WITH_CART.delivery_metrics] == [
        ("total_spend", "spend"),
        ("total_impressions", "impressions"),
        ("total_clicks", "clicks"),
    ]
    assert WITH_CART.money_names == ("total_spend", "reservation_value")
    assert WITH_CART.money_frame_columns == ("total_spend_cents", "reservation_value_cents")
    assert WITH_CART.ratio_names == (
        "average_ctr",
        "average_cpc",
        "roas",
        "cost_per_reservation",
        "average_cpa",
    )
    # The conversion metrics read by a rule: the counts after the three totals, then money.
    assert [m.name for m in WITH_CART.rule_metrics] == [
        *COUNTS[3:],
        "reservation_value",
        "add_to_cart",
    ]


def test_the_warehouse_gets_the_new_column_after_the_existing_ones(warehouse_url):
    table = sa.Table(
        "daily_kpi_data",
        sa.MetaData(),
        sa.Column("client_id", sa.String(64), primary_key=True),
        *kpi_columns(WITH_CART),
    )
    engine = sa.create_engine(warehouse_url)
    try:
        table.metadata.create_all(engine)
        stored = sa.inspect(engine).get_columns("daily_kpi_data")
    finally:
        engine.dispose()
    assert [(c["name"], c["nullable"]) for c in stored[1:]] == [
        *STORED_KPI_COLUMNS,
        ("add_to_cart", False),
    ]
    assert isinstance(stored[-1]["type"], sa.BigInteger)


def test_the_default_registry_keeps_the_stored_columns():
    assert [(c.name, c.nullable) for c in kpi_columns()] == STORED_KPI_COLUMNS


def test_the_clients_file_takes_a_rule_for_the_new_metric():
    (client,) = parse_clients(CLIENTS, metrics=WITH_CART)
    mapping = client.conversion_mapping
    assert mapping.rules["add_to_cart"] == MetricRule(
        ("offsite_conversion.fb_pixel_add_to_cart", "offsite_conversion.custom.77"), "sum"
    )
    assert mapping.total_conversions == ("reservations", "add_to_cart")
    row = conversion_metrics(
        [
            {"action_type": "offsite_conversion.fb_pixel_add_to_cart", "value": "4"},
            {"action_type": "offsite_conversion.custom.77", "value": "3"},
            {"action_type": "purchase", "value": "2"},
        ],
        [{"action_type": "purchase", "value": "80.10"}],
        mapping,
    )
    # 4 + 3 added to carts (sum); 2 reservations worth 80.10; total = 2 + 7.
    assert (row["add_to_cart"], row["reservations"], row["reservation_value_cents"]) == (
        7,
        2,
        8010,
    )
    assert row["total_conversions"] == 9


def test_the_new_metric_without_a_rule_in_the_file_uses_its_default():
    text = CLIENTS.split("    conversions:")[0]
    (client,) = parse_clients(text, metrics=WITH_CART)
    assert client.conversion_mapping.rules["add_to_cart"] == MetricRule(
        ("offsite_conversion.fb_pixel_add_to_cart",), "first"
    )


def test_the_default_registry_refuses_the_unknown_metric():
    with pytest.raises(ClientsFileError) as caught:
        parse_clients(CLIENTS)
    assert str(caught.value) == (
        "clients file: client 'lakeside', field 'conversions.total_conversions': unknown "
        "metric 'add_to_cart'; use click_to_call, email_contacts, booking_step_1, "
        "booking_step_2, booking_step_3, reservations; "
        "client 'lakeside', field 'conversions.add_to_cart': unknown key"
    )
