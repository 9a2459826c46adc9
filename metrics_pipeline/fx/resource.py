"""The exchange-rates resource: where the rates come from and how the portfolio uses them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

import requests
from dagster import ConfigurableResource

from metrics_pipeline.fx.ecb import parse_feed

DEFAULT_RATES_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.xml"
DEFAULT_REPORTING_CURRENCY = "EUR"


class FxRatesUnavailableError(RuntimeError):
    """The feed did not answer; the message names the host, never the path or query."""


class FxResource(ConfigurableResource):
    """Euro reference rates (ECB format) and the currency the portfolio reports in."""

    rates_url: str = DEFAULT_RATES_URL
    reporting_currency: str = DEFAULT_REPORTING_CURRENCY
    # The rates check fails when a rate moves more than this from the previous publication.
    max_move_pct: float = 5.0
    # A currency last published longer ago than this has no usable rate (the longest
    # gap in the TARGET calendar, Maundy Thursday to Easter Monday, is 4 days).
    max_rate_age_days: int = 5
    timeout_seconds: float = 60.0

    def publications(self) -> dict[date, dict[str, Decimal]]:
        """Every publication in the feed: {day: {currency: units per euro}}."""
        parts = urlsplit(self.rates_url)
        where = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}".rstrip(":")
        try:
            response = requests.get(self.rates_url, timeout=self.timeout_seconds)
            response.raise_for_status()
        except requests.RequestException as error:
            status = getattr(error.response, "status_code", None)
            reason = f"HTTP {status}" if status else type(error).__name__
            raise FxRatesUnavailableError(
                f"cannot read the exchange rates from {where} ({reason}): check "
                "METRICS_FX_RATES_URL and the network"
            ) from None
        return parse_feed(response.text)
