"""The exchange-rates resource: where the rates come from and how the portfolio uses them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import requests
from dagster import ConfigurableResource
from pydantic import Field

from metrics_pipeline.fx.ecb import parse_feed
from metrics_pipeline.http_bounds import (
    MIB,
    BoundsError,
    RedirectRefused,
    open_bounded,
    public_url,
    read_body,
)

DEFAULT_RATES_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.xml"
DEFAULT_REPORTING_CURRENCY = "EUR"
# The whole history since 1999 (the default URL; backfills reach 37 months back, further
# than the 90-day feed) was about 4 MB in 2015 and grows by about 0.3 MB a year.
DEFAULT_MAX_FEED_BYTES = 16 * MIB


class FxRatesUnavailableError(RuntimeError):
    """The feed did not answer, or not within bounds; the message names the feed (its URL
    without query or credentials), never a secret."""


class FxResource(ConfigurableResource):
    """Euro reference rates (ECB format) and the currency the portfolio reports in."""

    rates_url: str = DEFAULT_RATES_URL
    reporting_currency: str = DEFAULT_REPORTING_CURRENCY
    # The rates check fails when a rate moves more than this from the previous publication.
    max_move_pct: float = 5.0
    # A currency last published longer ago than this has no usable rate (the longest
    # gap in the TARGET calendar, Maundy Thursday to Easter Monday, is 4 days).
    max_rate_age_days: int = 5
    timeout_seconds: float = Field(default=60.0, description="Per connect and per socket read.")
    # timeout_seconds bounds each read; this bounds the whole body, so a feed that trickles
    # in byte by byte still ends.
    body_deadline_seconds: float = Field(
        default=60.0, description="The whole feed body, however it trickles in."
    )
    max_response_bytes: int = Field(
        default=DEFAULT_MAX_FEED_BYTES,
        ge=1024,
        description="Decoded bytes of the feed body (a compressed body counts inflated).",
    )
    max_redirects: int = Field(
        default=3,
        ge=0,
        description="Redirects followed, only within the feed's own scheme, host and port.",
    )

    def feed_name(self) -> str:
        """How every message names the feed: its URL without query or credentials."""
        return f"exchange-rate feed {public_url(self.rates_url)}"

    def publications(self) -> dict[date, dict[str, Decimal]]:
        """Every publication in the feed: {day: {currency: units per euro}}."""
        feed = self.feed_name()
        try:
            with requests.Session() as session:
                response = open_bounded(
                    session,
                    "GET",
                    self.rates_url,
                    timeout=self.timeout_seconds,
                    max_redirects=self.max_redirects,
                )
                with response:
                    if not 200 <= response.status_code < 300:
                        raise FxRatesUnavailableError(
                            f"{feed}: answered HTTP {response.status_code}: check "
                            "METRICS_FX_RATES_URL"
                        )
                    body = read_body(
                        response,
                        max_bytes=self.max_response_bytes,
                        deadline_seconds=self.body_deadline_seconds,
                    )
        except RedirectRefused as exc:
            hint = " (if that address is trusted, set METRICS_FX_RATES_URL to it)"
            raise FxRatesUnavailableError(
                f"{feed}: {exc.reason}{hint if exc.elsewhere else ''}"
            ) from None
        except BoundsError as exc:
            raise FxRatesUnavailableError(f"{feed}: {exc.reason}") from None
        except requests.RequestException as exc:
            raise FxRatesUnavailableError(
                f"{feed}: cannot read it ({type(exc).__name__}): check METRICS_FX_RATES_URL "
                "and the network"
            ) from None
        return parse_feed(body, feed)
