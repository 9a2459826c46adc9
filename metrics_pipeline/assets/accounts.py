"""The ad account behind a client: its currency and timezone, checked against the config."""

from dataclasses import dataclass
from datetime import datetime

from metrics_pipeline.config.clients import ClientConfig
from metrics_pipeline.domain.money import is_known_currency
from metrics_pipeline.meta.client import CallSite, GraphApiClient
from metrics_pipeline.meta.errors import ErrorKind, MetaApiError
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
                f"{client.meta_ad_account_id} reports unknown currency {actual!r}",
            )
        if configured and configured != actual:
            raise MetaApiError(
                ErrorKind.INVALID,
                f"client {client.id!r}, field '{field}': "
                f"configured {configured!r} but ad account "
                f"{client.meta_ad_account_id} uses {actual!r}",
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


def client_timezone(client: ClientConfig, warehouse: WarehouseResource) -> str:
    """The configured timezone, else the one read from the ad account."""
    if client.timezone:
        return client.timezone
    accounts = warehouse.read("meta_ad_accounts", {"client_id": client.id})
    if accounts.empty:
        raise ValueError(
            f"client {client.id!r}: timezone unknown; set 'timezone' in the "
            "clients file or materialize meta_insights first"
        )
    return str(accounts.iloc[0]["timezone"])
