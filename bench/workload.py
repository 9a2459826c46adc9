"""The standard workload: a sandbox world of many ad accounts and the clients file for it."""

from __future__ import annotations

import multiprocessing
import threading
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from metrics_pipeline.sandbox.world import AccountSpec

# (timezone, currency, countries) cycled over the clients, so days and money vary as in
# a real agency: ahead of UTC, behind it, and a zero-decimal currency.
MARKETS = (
    ("Pacific/Auckland", "NZD", ("NZ", "AU", "US", "GB")),
    ("America/Los_Angeles", "USD", ("US", "CA", "MX", "GB")),
    ("Europe/Berlin", "EUR", ("DE", "AT", "CH", "NL")),
    ("Asia/Tokyo", "JPY", ("JP", "KR", "TW", "HK")),
)


@dataclass(frozen=True)
class Workload:
    clients: int
    days: int
    adsets_per_campaign: int = 4  # 4 campaigns x 4 ad sets x 4 ads x 4 countries ...
    ads_per_adset: int = 4  # ... about 200 delivering rows a day over 90 days

    def accounts(self) -> tuple[AccountSpec, ...]:
        specs = []
        for index in range(self.clients):
            zone, currency, countries = MARKETS[index % len(MARKETS)]
            specs.append(
                AccountSpec(
                    account_id=f"{2000000001 + index}",
                    name=f"Bench client {index + 1:03d}",
                    currency=currency,
                    timezone=zone,
                    countries=countries,
                    adsets_per_campaign=self.adsets_per_campaign,
                    ads_per_adset=self.ads_per_adset,
                )
            )
        return tuple(specs)

    def client_ids(self) -> list[str]:
        return [f"bench_{index + 1:03d}" for index in range(self.clients)]

    def write_clients_file(self, path: Path) -> Path:
        lines = ["clients:"]
        for client_id, spec in zip(self.client_ids(), self.accounts(), strict=True):
            lines += [
                f"  - id: {client_id}",
                f"    name: {spec.name}",
                f"    meta_ad_account_id: act_{spec.account_id}",
                f"    timezone: {spec.timezone}",
                f"    currency: {spec.currency}",
            ]
            if spec.currency == "JPY":
                lines += ["    quality:", "      cpc: [1, 5000]"]
        path.write_text("\n".join(lines) + "\n")
        return path


def _serve(workload: Workload, anchor: date, now: datetime, port: int, ready) -> None:
    from metrics_pipeline.sandbox.server import SandboxServer
    from metrics_pipeline.sandbox.world import World

    with SandboxServer(World(workload.accounts(), anchor=anchor), port=port, now=now) as server:
        ready.put(server.url)
        threading.Event().wait()  # serve until terminated


class SandboxProcess:
    """The sandbox in its own process, so serving does not share the pipeline's core."""

    def __init__(self, workload: Workload, anchor: date, now: datetime) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready = context.Queue()
        self._process = context.Process(
            target=_serve, args=(workload, anchor, now, 0, self._ready), daemon=True
        )

    def __enter__(self) -> str:
        self._process.start()
        return self._ready.get(timeout=120)

    @property
    def pid(self) -> int:
        """The sandbox's process, whose CPU the bench reports beside the pipeline's."""
        assert self._process.pid is not None, "not started"
        return self._process.pid

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        self._process.join(10)
