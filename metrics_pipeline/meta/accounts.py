"""The ad account behind a client: its currency and timezone, checked against the config."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from metrics_pipeline.config.clients import ClientConfig
from metrics_pipeline.domain.money import is_known_currency
from metrics_pipeline.meta.client import CallSite, GraphApiClient
from metrics_pipeline.meta.errors import ErrorKind, MetaApiError
from metrics_pipeline.text import readable
from metrics_pipeline.warehouse.resource import WarehouseResource


@dataclass(frozen=True)
class AccountInfo:
    currency: str
    timezone: str


def resolve_account(
    api: GraphApiClient, client: ClientConfig, warehouse: WarehouseResource, now: datetime
) -> AccountInfo:
    site = CallSite(client.id, client.meta_ad_account_id, "ad account")
    body = api.account(client.meta_ad_account_id, site)
    # Shown to people when they do not match: one short line, whatever Meta sent.
    currency, timezone = body.get("currency"), body.get("timezone_name")
    for field, configured, actual in (
        ("currency", client.currency, currency),
        ("timezone", client.timezone, timezone),
    ):
        if not actual:
            raise MetaApiError(
                ErrorKind.INVALID,
                f"client {client.id!r}, account "
                f"{client.meta_ad_account_id}: Meta returned no {field}",
            )
        if field == "currency" and not is_known_currency(actual):
            raise MetaApiError(
                ErrorKind.INVALID,
                f"client {client.id!r}, field 'currency': ad account "
                f"{client.meta_ad_account_id} reports unknown currency {readable(actual, 40)!r}",
            )
        if configured and configured != actual:
            raise MetaApiError(
                ErrorKind.INVALID,
                f"client {client.id!r}, field '{field}': "
                f"configured {configured!r} but ad account "
                f"{client.meta_ad_account_id} uses {readable(actual, 60)!r}",
            )
    warehouse.replace(
        "meta_ad_accounts",
        [{"client_id": client.id}],
        [
            {
                "client_id": client.id,
                "account_id": client.meta_ad_account_id.removeprefix("act_"),
                "name": body.get("name"),
                "currency": currency,
                "timezone": timezone,
                "account_status": body.get("account_status"),
                "collected_at": now,
            }
        ],
    )
    return AccountInfo(currency, timezone)


def client_zones(clients: Iterable[ClientConfig], warehouse: WarehouseResource) -> dict[str, str]:
    """Each client's timezone: configured, else read from its ad account; unknown ones are
    left out (the account has not been read yet)."""
    accounts = warehouse.read("meta_ad_accounts")
    known = dict(zip(accounts["client_id"], accounts["timezone"], strict=True))
    zones = {}
    for client in clients:
        tz = client.timezone or known.get(client.id)
        if tz:
            zones[client.id] = tz
    return zones


def client_timezone(client: ClientConfig, warehouse: WarehouseResource) -> str:
    """The timezone of one client, or an error saying how to make it known."""
    zones = client_zones([client], warehouse)
    if client.id not in zones:
        raise ValueError(
            f"client {client.id!r}: timezone unknown; set 'timezone' in the "
            "clients file or materialize meta_insights first"
        )
    return zones[client.id]
